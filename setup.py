"""Build of fastact's native extension (metadata lives in pyproject.toml).

Environment switches (all optional):
  FASTACT_OPENMP=0   build without OpenMP (kernels then run on one thread)
  FASTACT_AVX2=0     build only the portable baseline loops (no AVX2 / AVX-512 variants)
  FASTACT_DEBUG=1    a checked build for testing: Cython boundscheck, wraparound and
                     initializedcheck on (the .pyx headers turn them off, and a `# cython:`
                     header wins over cythonize's directives, so the .pyx files are compiled
                     from copies under build/debug-src/ with the header flipped), -O1 -g
  FASTACT_SANITIZE=1 AddressSanitizer + UndefinedBehaviorSanitizer (-fsanitize=address,
                     undefined -fno-omit-frame-pointer, -O1 -g); import it with libasan
                     preloaded: tools/sanitize.sh builds it and runs the suite

Flags: -O3 plus -fno-trapping-math -fno-math-errno, which let gcc vectorise
the branch-free kernels (DESIGN.md section 7).  Never -ffast-math (it breaks
NaN/inf handling) and never -march=native (wheels must run on any x86-64):
the AVX2+FMA loops come from a `#pragma GCC target` in
src/fa_kernels_avx2.c and are chosen at run time by cpuid.
"""

import os
import sys

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup


def _switch(name, default):
    return os.environ.get(name, default) not in ("", "0")


OPENMP = _switch("FASTACT_OPENMP", "1")
AVX2 = _switch("FASTACT_AVX2", "1")
DEBUG = _switch("FASTACT_DEBUG", "0")
SANITIZE = _switch("FASTACT_SANITIZE", "0")

if sys.platform == "win32":  # pragma: no cover - not built in CI here
    cflags = ["/O2", "/fp:precise"] + (["/openmp"] if OPENMP else [])
    lflags = []
else:
    cflags = ["-O3", "-fno-trapping-math", "-fno-math-errno", "-Wno-unused-function"]
    lflags = []
    if OPENMP:
        cflags.append("-fopenmp")
        lflags.append("-fopenmp")
    if DEBUG or SANITIZE:
        cflags[0] = "-O1"  # after distutils' own -O3 on the command line, so it wins
        cflags.append("-g")
    if SANITIZE:
        san = ["-fsanitize=address,undefined", "-fno-omit-frame-pointer"]
        cflags += san
        lflags += san

macros = [
    ("NPY_NO_DEPRECATED_API", "NPY_1_9_API_VERSION"),
    # reported by fastact.show_config(); a C string literal
    ("FA_BUILD_FLAGS", '"' + " ".join(cflags) + '"'),
]
if not AVX2:
    macros.append(("FA_HAVE_AVX2_BUILD", "0"))

ext = Extension(
    "fastact._activations",
    sources=[
        "src/_activations.pyx",
        "src/fa_dispatch.c",
        "src/fa_kernels_base.c",
        "src/fa_kernels_avx2.c",
        "src/fa_kernels_avx512.c",
    ],
    include_dirs=["src", np.get_include()],
    # dladdr() (fastact._activations.omp_library): in libc from glibc 2.34, libdl before
    libraries=["dl"] if sys.platform.startswith("linux") else [],
    define_macros=macros,
    depends=[
        "src/fa_kernels.h",
        "src/fa_impl.h",
        "src/fa_kernels_impl.h",
        "src/fa_acts.h",
        "src/fa_acts_body.h",
        "src/fa_avx512_hand.h",
        "src/fa_api.h",
        "src/fa_math.h",
        "src/fa_mathf.h",
        "src/erfcx_coeffs.h",
        "src/fa_gelu_simd.h",
        "src/gelu_f32_coeffs.h",
        "src/tanh_f32_coeffs.h",
        "src/fa_expf_simd.h",
        "src/fa_f64_simd.h",
        "src/fa_colsum.h",
    ],
)

# the dense layers and the MLP engine: BLAS from scipy.linalg.cython_blas, the kernels
# of fastact._activations through its C_API capsule (src/fa_api.h), so no C source is
# compiled into two extensions (DESIGN.md section 7)
nn_ext = Extension(
    "fastact._nn",
    sources=["src/_nn.pyx"],
    include_dirs=["src", np.get_include()],
    define_macros=macros,
    depends=[
        "src/fa_api.h",
        "src/fa_kernels.h",
        "src/fa_nn_loops.h",
        "src/fa_colsum.h",
        "src/_nn_ops.pxi",
        "src/_nn_engine.pxi",
        "src/_nn_sk.pxi",
        "src/fa_sk_loops.h",
    ],
)

directives = {"language_level": 3}
if DEBUG:
    directives.update(boundscheck=True, wraparound=True, initializedcheck=True)


def _debug_copy(path):
    """src/X.pyx copied to build/debug-src/X.pyx with the checks its `# cython:` header
    turns off turned on (written only when it changes, so rebuilds stay incremental)."""
    with open(path) as f:
        text = f.read()
    first, _, rest = text.partition("\n")
    if first.startswith("# cython:"):
        for d in ("boundscheck", "wraparound", "initializedcheck"):
            first = first.replace(f"{d}=False", f"{d}=True")
        text = first + "\n" + rest
    dst = os.path.join("build", "debug-src", os.path.basename(path))
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    old = None
    if os.path.exists(dst):
        with open(dst) as f:
            old = f.read()
    if old != text:
        with open(dst, "w") as f:
            f.write(text)
    return dst


if DEBUG:
    for e in (ext, nn_ext):
        e.sources = [_debug_copy(p) if p.endswith(".pyx") else p for p in e.sources]
    # the .pxi files a .pyx includes sit beside it (Cython looks there)
    for name in sorted(os.listdir("src")):
        if name.endswith(".pxi"):
            _debug_copy(os.path.join("src", name))

# cythonize() returns new Extension objects: set the flags on those (DESIGN.md section 7)
extensions = cythonize([ext, nn_ext], compiler_directives=directives, compile_time_env={})
for e in extensions:
    e.extra_compile_args = list(cflags)
    e.extra_link_args = list(lflags)

setup(ext_modules=extensions)
