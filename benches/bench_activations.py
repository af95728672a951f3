"""fastact vs the reference twin vs the NumPy expression a user would write.

Every activation, forward and backward, float32 and float64, 1e3 to 1e7
elements (see conftest.py to narrow), fastact with n_threads=1.  Each
(activation, direction, dtype, size) is one pytest-benchmark group, so the
table puts the three candidates side by side:

    pytest benches --benchmark-only --benchmark-group-by=group
    pytest benches --benchmark-only --benchmark-save=run1   # then --benchmark-compare

Throughput (elements per second) goes into extra_info.  `fastact bench` prints
the speed-up summary of the same cases without pytest.
"""
import numpy as np
import pytest

import fastact
from fastact import bench as fb

from conftest import DTYPES, SIZES

NAMES = list(fb.NUMPY_EXPRESSIONS)


def _candidates(name):
    fa_f, fa_b = fb.fastact_calls(nt=1)[name]
    np_f, np_b = fb.NUMPY_EXPRESSIONS[name]
    ref = fastact.reference
    if name == "gelu_tanh":
        ref_f = lambda x: ref.gelu(x, "tanh")  # noqa: E731
        ref_b = lambda g, s: ref.gelu_backward(g, s, "tanh")  # noqa: E731
    elif name == "prelu":
        ref_f = lambda x: ref.prelu(x, fb._PRELU_W)  # noqa: E731
        ref_b = lambda g, s: ref.prelu_backward(g, s, fb._PRELU_W)[0]  # noqa: E731
    else:
        ref_f, ref_b = getattr(ref, name), getattr(ref, name + "_backward")
    return {"fastact": (fa_f, fa_b), "numpy": (np_f, np_b), "reference": (ref_f, ref_b)}


@pytest.mark.parametrize("impl", ["fastact", "numpy", "reference"])
@pytest.mark.parametrize("n", SIZES, ids=lambda n: f"n={n:.0e}")
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("direction", ["fwd", "bwd"])
@pytest.mark.parametrize("name", NAMES)
def bench_activation(benchmark, name, direction, dtype, n, impl):
    x, g, s = fb.make_inputs(name, n, dtype)
    f = _candidates(name)[impl][0 if direction == "fwd" else 1]
    args = (x,) if direction == "fwd" else (g, s)
    benchmark.group = f"{name} {direction} {dtype} n={n:.0e}"
    benchmark.extra_info["elements"] = n
    with np.errstate(all="ignore"):      # the NumPy expressions overflow where users' code would
        result = benchmark(f, *args)
    assert result.shape == x.shape and result.dtype == dtype
    if benchmark.stats is not None:
        benchmark.extra_info["Melem_per_s"] = n / benchmark.stats.stats.median / 1e6
