"""fastact.show_config() / `fastact info`: what this build is and what it runs."""

from __future__ import annotations

import platform
import sys

import numpy as np

from . import _validate as V


def _blas_of(module) -> str:
    try:
        cfg = module.show_config(mode="dicts")
        blas = cfg.get("Build Dependencies", {}).get("blas", {})
        name = blas.get("name", "?")
        version = blas.get("version", "")
        return f"{name} {version}".strip()
    except Exception:  # pragma: no cover - very old NumPy/SciPy
        return "unknown"


def config() -> dict:
    """Return what show_config() prints, as a dict.

    Returns
    -------
    dict
        Versions (fastact, Python, NumPy, SciPy), the backend (native or pure NumPy),
        threads, the BLAS; for the native build also the compiler and flags, OpenMP, and
        the SIMD path in use.

    See Also
    --------
    fastact.show_config : The same, printed.

    Examples
    --------
    >>> import fastact
    >>> info = fastact.config()
    >>> info["fastact"] == fastact.__version__
    True
    >>> info["backend"] in ("native", "pure NumPy (FASTACT_PUREPYTHON)")
    True
    """
    import fastact

    info = {
        "fastact": fastact.__version__,
        "python": sys.version.split()[0],
        "platform": f"{platform.system()} {platform.machine()}",
        "numpy": np.__version__,
        "backend": "pure NumPy (FASTACT_PUREPYTHON)" if fastact.PUREPYTHON else "native",
        "usable cores": V.usable_cores(),
        "default n_threads": fastact.get_num_threads(),
        "threads pinned": _pinned(V),
        "BLAS (numpy)": _blas_of(np),
    }
    try:
        import scipy

        info["scipy"] = scipy.__version__
        info["BLAS (scipy)"] = _blas_of(scipy)
    except ImportError:  # pragma: no cover - scipy is a dependency
        info["scipy"] = "not installed"
    if not fastact.PUREPYTHON:
        from . import _activations as ext

        b = ext.build_info()
        info.update(
            {
                "compiler": b["compiler"],
                "build flags": b["flags"],
                "OpenMP": "on" if b["openmp"] else "off (built with FASTACT_OPENMP=0)",
                "OpenMP max threads": ext.omp_max_threads(),
                "OpenMP runtime": ext.omp_library() or "none",
                "serial below (elements)": ext.SERIAL_BELOW,
                "AVX2+FMA / AVX-512 variants built": "yes" if b["avx2_variant"] else "no",
                "CPU has AVX2+FMA": "yes" if ext.cpu_has_avx2_fma() else "no",
                "CPU has AVX-512": "yes" if ext.cpu_has_avx512() else "no",
                "SIMD path in use": ext.get_isa(),
            }
        )
    return info


def _pinned(V):
    p = V.pinned_threads()
    if p is None:
        return "no (set_num_threads / threads() not in force)"
    cores, cap = V.usable_cores(), V.thread_cap()
    if p <= cap:
        return p
    why = "the usable cores" if cap == cores else "OMP_THREAD_LIMIT"
    return f"{p} (used as {cap}: {why})"


def show_config() -> None:
    """Print the version, build flags, SIMD path, OpenMP and threads, and BLAS in use.

    ``fastact info`` on the command line prints the same.

    See Also
    --------
    fastact.config : The same facts as a dict.

    Examples
    --------
    >>> import fastact
    >>> fastact.show_config()  # doctest: +ELLIPSIS
    fastact ...
    python ...
    """
    info = config()
    width = max(len(k) for k in info)
    for k, v in info.items():
        print(f"{k:<{width}}  {v}")
