"""fastact against its peers: every activation, forward and backward, float32 and
float64, 1e3 to 1.6e7 elements (conftest.py narrows: FASTACT_BENCH_SIZES,
FASTACT_BENCH_DTYPES, FASTACT_BENCH_IMPLS).

Each case (direction, activation, dtype, size) is one pytest-benchmark group,
named like ``fwd-sigmoid-float32-1e5``, so one table compares its candidates:

    fastact-1t    fastact, n_threads=1
    fastact-all   fastact, n_threads=-1 (all usable cores; only from 65,536 elements,
                  below which fastact runs serially anyway, and with >= 2 cores)
    fastact-avx2-1t  fastact on its AVX2+FMA path (FASTACT_ISA=avx2 for the call), one
                  thread: the path a CPU without AVX-512 (AMD Zen 3, ...) runs; skipped on
                  CPUs without AVX2+FMA.  Its peer on such a CPU is torch-1t there; here,
                  run PyTorch with ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2
                  MKL_ENABLE_INSTRUCTIONS=AVX2 (gelu goes through oneDNN and tanh through
                  MKL's vsTanh, which ignore ATen's setting)
    fastact-1t-out, fastact-all-out, torch-1t-out, torch-all-out, roofline-out
                  the same, each writing into one preallocated array (fastact out=,
                  PyTorch's out= overloads: fastact._peers.torch_out_calls; not collected
                  where PyTorch has none: prelu, softsign, mish backward): the kernels
                  without the allocation of their result
    reference     fastact.reference (plain NumPy, float64-careful)
    numpy         the NumPy expression users write (fastact.bench.NUMPY_EXPRESSIONS)
    scipy         scipy.special (expit, log_expit, ndtr) where it has the function
    numexpr-1t / numexpr-all   numexpr with 1 / all threads (if installed)
    torch-1t / torch-all       PyTorch CPU with torch.set_num_threads(1 / all)
                  (if installed): torch.from_numpy -> torch.nn.functional forward,
                  ATen's own backward ops (aten.sigmoid_backward, ...) -> .numpy()
    roofline      np.copyto of the same bytes (forward: read n, write n); backward:
                  np.add(g, s, out=o) (read 2n, write n)

extra_info: elements, bytes (moved by the kernel), GB_per_s.  Plus the group
``overhead-16-<dtype>``: the cost of one call on 16 elements against NumPy's own
ufunc call (np.tanh(x, out=y)).

    pytest benches --benchmark-only                          # everything (hours at 1.6e7)
    FASTACT_BENCH_SIZES=1e4,1e6 FASTACT_BENCH_DTYPES=float32 \\
        pytest benches --benchmark-only -k "sigmoid or relu"
    pytest benches --benchmark-only --benchmark-save=before  # then, after a change:
    pytest benches --benchmark-only --benchmark-compare=0001 --benchmark-compare-fail=median:10%

`fastact bench` prints the speed-up summary of the same cases without pytest.
"""

import contextlib

import numpy as np
import pytest
from conftest import DTYPES, SIZES, _impls, size_label

import fastact
from fastact import _peers as peers
from fastact import bench as fb
from fastact._validate import usable_cores

NAMES = list(fb.NUMPY_EXPRESSIONS)
CORES = usable_cores()
SERIAL_BELOW = 65536

ALL_IMPLS = (
    "fastact-1t",
    "fastact-all",
    "fastact-1t-out",
    "fastact-all-out",
    "fastact-avx2-1t",
    "reference",
    "numpy",
    "scipy",
    "numexpr-1t",
    "numexpr-all",
    "torch-1t",
    "torch-all",
    "torch-1t-out",
    "torch-all-out",
    "roofline",
    "roofline-out",
)
# (name, direction) where PyTorch has no out= overload
TORCH_NO_OUT = {("prelu", "fwd"), ("prelu", "bwd"), ("softsign", "fwd"), ("softsign", "bwd")}
TORCH_NO_OUT.add(("mish", "bwd"))
IMPLS = _impls(ALL_IMPLS)


def _reference(name):
    ref = fastact.reference
    if name == "gelu_tanh":
        return (lambda x: ref.gelu(x, "tanh"), lambda g, s: ref.gelu_backward(g, s, "tanh"))
    if name == "prelu":
        return (
            lambda x: ref.prelu(x, fb._PRELU_W),
            lambda g, s: ref.prelu_backward(g, s, fb._PRELU_W)[0],
        )
    return getattr(ref, name), getattr(ref, name + "_backward")


_PEERS = {}


def _peer(kind):
    """The peer's calls, built once; pytest.skip when it is not installed."""
    if kind not in _PEERS:
        mod = {"scipy": "scipy.special", "numexpr": "numexpr", "torch": "torch"}[kind]
        pytest.importorskip(mod)
        _PEERS[kind] = {
            "scipy": peers.scipy_calls,
            "numexpr": peers.numexpr_calls,
            "torch": peers.torch_calls,
        }[kind]()
    return _PEERS[kind]


def _candidate(impl, name, n, out=None):
    """(forward, backward, context manager factory or None); out: the preallocated result
    of the -out candidates."""
    if impl.endswith("-out"):
        base = impl[: -len("-out")]
        if base.endswith("-all") and CORES < 2:
            pytest.skip("one usable core: -all is -1t")
        threads = 1 if base.endswith("-1t") else CORES
        if base.startswith("fastact"):
            f, b = fb.fastact_calls(nt=1 if base == "fastact-1t" else -1, out=out)[name]
            return f, b, None
        if base == "roofline":

            def copy(x):
                np.copyto(out, x)
                return out

            return copy, lambda g, s: np.add(g, s, out=out), None
        _peer("torch")
        f, b = peers.torch_out_calls(out)[name]
        return f, b, lambda: peers.torch_threads(threads)
    if impl.endswith("-all") and CORES < 2:
        pytest.skip("one usable core: -all is -1t")
    threads = 1 if impl.endswith("-1t") else CORES
    if impl == "fastact-avx2-1t":
        f, b = fb.fastact_calls(nt=1)[name]
        return f, b, _avx2_path
    if impl.startswith("fastact"):
        f, b = fb.fastact_calls(nt=1 if impl == "fastact-1t" else -1)[name]
        return f, b, None
    if impl == "reference":
        return (*_reference(name), None)
    if impl == "numpy":
        return (*fb.NUMPY_EXPRESSIONS[name], None)
    if impl == "roofline":
        return (*peers.roofline(), None)
    if impl == "scipy":
        f, b = _peer("scipy").get(name, (None, None))
        return f, b, None
    if impl.startswith("numexpr"):
        f, b = _peer("numexpr")[name]
        return f, b, lambda: peers.numexpr_threads(threads)
    f, b = _peer("torch")[name]
    return f, b, lambda: peers.torch_threads(threads)


@contextlib.contextmanager
def _avx2_path():
    from fastact import _activations as ext

    before = ext.get_isa()
    if ext.set_isa("avx2") != "avx2+fma":
        ext.set_isa({"avx2+fma": "avx2"}.get(before, before))
        pytest.skip("this CPU has no AVX2+FMA")
    try:
        yield
    finally:
        ext.set_isa({"avx2+fma": "avx2"}.get(before, before))


_INPUTS = {}


def _inputs(name, n, dtype):
    """make_inputs, keeping only the latest case (1.6e7 elements are 64 MB an array)."""
    key = (name, n, np.dtype(dtype))
    if key not in _INPUTS:
        _INPUTS.clear()
        _INPUTS[key] = fb.make_inputs(name, n, dtype)
    return _INPUTS[key]


def _exists(impl, name, direction, n):
    """False for the cases that cannot exist (so they are not collected, rather than skipped)."""
    if impl in ("fastact-all", "fastact-all-out") and n < SERIAL_BELOW:
        return False  # fastact runs serially below 65,536 elements: fastact-1t
    if impl.startswith("torch") and impl.endswith("-out"):
        return (name, direction) not in TORCH_NO_OUT
    if impl == "scipy":
        return peers.SCIPY_HAS.get(name, (False, False))[direction == "bwd"]
    if impl.startswith("numexpr") and name == "gelu":
        return False  # numexpr has no erf
    return True


CASES = [
    pytest.param(
        name, direction, dtype, n, impl, id=f"{direction}-{name}-{dtype}-{size_label(n)}-{impl}"
    )
    for name in NAMES
    for direction in ("fwd", "bwd")
    for dtype in DTYPES
    for n in SIZES
    for impl in IMPLS
    if _exists(impl, name, direction, n)
]


@pytest.mark.parametrize("name, direction, dtype, n, impl", CASES)
def bench_activation(benchmark, name, direction, dtype, n, impl):
    x, g, s = _inputs(name, n, dtype)
    f, b, ctx = _candidate(impl, name, n, np.empty_like(x) if impl.endswith("-out") else None)
    fn = f if direction == "fwd" else b
    args = (x,) if direction == "fwd" else (g, s)
    benchmark.group = f"{direction}-{name}-{dtype}-{size_label(n)}"
    nbytes = (2 if direction == "fwd" else 3) * n * np.dtype(dtype).itemsize
    benchmark.extra_info.update(elements=n, bytes=nbytes, impl=impl)
    with np.errstate(all="ignore"):  # the NumPy expressions overflow where users' code would
        if ctx is None:
            result = benchmark(fn, *args)
        else:
            with ctx():
                result = benchmark(fn, *args)
    assert result.shape == x.shape and result.dtype == dtype
    if benchmark.stats is not None:
        med = benchmark.stats.stats.median
        benchmark.extra_info["GB_per_s"] = nbytes / med / 1e9


# ---- call overhead: 16 elements ---------------------------------------------------------


def _overhead_cases():
    def torch_sigmoid():
        import torch

        return lambda x, y, g: torch.sigmoid(torch.from_numpy(x)).numpy()

    return {
        "np.tanh(x, out=y)": lambda: lambda x, y, g: np.tanh(x, out=y),
        "np.tanh(x)": lambda: lambda x, y, g: np.tanh(x),
        "np.maximum(x, 0, out=y)": lambda: lambda x, y, g: np.maximum(x, 0, out=y),
        "fastact.relu(x, out=y)": lambda: lambda x, y, g: fastact.relu(x, out=y),
        "fastact.relu(x)": lambda: lambda x, y, g: fastact.relu(x),
        "fastact.sigmoid(x, out=y)": lambda: lambda x, y, g: fastact.sigmoid(x, out=y),
        "fastact.sigmoid(x)": lambda: lambda x, y, g: fastact.sigmoid(x),
        "fastact.tanh(x, out=y)": lambda: lambda x, y, g: fastact.tanh(x, out=y),
        # (writes over x, which it does not read: g and y stay what they were)
        "fastact.sigmoid_backward(g, y, out=x)": lambda: (
            lambda x, y, g: fastact.sigmoid_backward(g, y, out=x)
        ),
        "reference.sigmoid(x)": lambda: lambda x, y, g: fastact.reference.sigmoid(x),
        "torch.sigmoid(from_numpy(x))": torch_sigmoid,
    }


OVERHEAD = _overhead_cases()


@pytest.mark.parametrize("call", list(OVERHEAD))
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def bench_call_overhead(benchmark, call, dtype):
    if call.startswith("torch"):
        pytest.importorskip("torch")
    fn = OVERHEAD[call]()
    x = np.linspace(-3, 3, 16).astype(dtype)
    y = (1 / (1 + np.exp(-x))).astype(dtype)  # a sigmoid output, for the backward case
    g = np.ones_like(x)
    benchmark.group = f"overhead-16-{dtype}"
    benchmark.extra_info["elements"] = 16
    if call.startswith("torch"):
        with peers.torch_threads(1):
            benchmark(fn, x, y, g)
    else:
        benchmark(fn, x, y, g)
