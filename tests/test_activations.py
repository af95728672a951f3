"""fastact's activations against the NumPy reference, finite differences and known values.

Truth = fastact.reference on the float64 upcast of the inputs (conftest.truth_*),
checked with the accuracy contract (conftest.assert_*_close).
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import math
import re
import warnings
from dataclasses import FrozenInstanceError

import mpmath
import numpy as np
import pytest
from conftest import (
    BIAS_CASES,
    CASES,
    DTYPES,
    ELEMENTWISE,
    EXTRA_PARAMS,
    F64_TINY,
    PURE,
    SWEEPS,
    Case,
    assert_backward_close,
    assert_forward_close,
    case_params,
    dtype_params,
    f64,
    fd4,
    per_feature_weight,
    rng,
    sweep_cutoffs,
    sweep_extremes,
    sweep_geometric,
    sweep_linear,
    truth_backward,
    truth_forward,
    ulp32,
)

import fastact
from fastact import reference as ref

SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946


# =============================================================================
# the registry
# =============================================================================


def test_every_activation_has_a_case():
    covered = {c.name for c in CASES}
    missing = set(fastact.ACTIVATIONS) - covered
    assert not missing, (
        f"activations without a test case: {sorted(missing)}; add their required "
        f"parameters to EXTRA_PARAMS in tests/conftest.py"
    )


def test_every_parameterised_activation_has_a_non_default_case():
    for name, act in fastact.ACTIVATIONS.items():
        if act.params:
            assert name in EXTRA_PARAMS, f"{name} takes {dict(act.params)}; test other values too"


def test_extra_params_name_real_parameters():
    for name, sets in EXTRA_PARAMS.items():
        assert name in fastact.ACTIVATIONS, f"EXTRA_PARAMS has a stale entry {name!r}"
        for p in sets:
            assert set(p) <= set(fastact.ACTIVATIONS[name].params), (name, p)


def test_registry_names_match_reference():
    assert set(fastact.ACTIVATIONS) == set(ref.ACTIVATIONS)
    assert list(fastact.ACTIVATIONS) == list(ref.ACTIVATIONS)


@pytest.mark.parametrize("name", list(fastact.ACTIVATIONS))
def test_registry_entry(name):
    act, ract = fastact.ACTIVATIONS[name], ref.ACTIVATIONS[name]
    assert act.name == name
    assert callable(act.forward) and callable(act.backward)
    assert callable(ract.forward) and callable(ract.backward)
    assert act.saves in {"input", "output"}
    assert act.kind in {"elementwise", "rowwise"}
    # the table's callables are the public functions
    assert act.forward is getattr(fastact, name)
    assert act.backward is getattr(fastact, name + "_backward")
    assert ract.forward is getattr(ref, name)
    assert ract.backward is getattr(ref, name + "_backward")
    assert name in fastact.__all__ and name + "_backward" in fastact.__all__
    # both tables describe the activation the same way
    assert (act.saves, act.kind, dict(act.params)) == (ract.saves, ract.kind, dict(ract.params))
    # the table's defaults are the functions' defaults
    sig = inspect.signature(act.forward)
    for p, default in act.params.items():
        assert sig.parameters[p].default == default, (name, p)
    bsig = inspect.signature(act.backward)
    assert list(bsig.parameters)[:2] == ["grad_out", "saved"]
    for p, default in act.params.items():
        assert bsig.parameters[p].default == default, (name, p)


def test_registry_is_read_only():
    with pytest.raises(TypeError):
        fastact.ACTIVATIONS["relu"] = fastact.ACTIVATIONS["tanh"]
    with pytest.raises(TypeError):
        fastact.ACTIVATIONS["new"] = fastact.ACTIVATIONS["tanh"]
    with pytest.raises(TypeError):
        del fastact.ACTIVATIONS["relu"]
    with pytest.raises(TypeError):
        ref.ACTIVATIONS["relu"] = ref.ACTIVATIONS["tanh"]
    with pytest.raises(TypeError):
        fastact.ACTIVATIONS["elu"].params["alpha"] = 2.0
    with pytest.raises(FrozenInstanceError):
        fastact.ACTIVATIONS["relu"].saves = "input"
    assert fastact.ACTIVATIONS["elu"].params["alpha"] == 1.0


def test_activation_object_is_callable():
    x = np.linspace(-3, 3, 13)
    np.testing.assert_array_equal(fastact.ACTIVATIONS["elu"](x, alpha=0.5), fastact.elu(x, 0.5))
    assert isinstance(fastact.ACTIVATIONS["relu"], fastact.Activation)


# =============================================================================
# native vs reference over shapes and layouts
# =============================================================================


def _layouts(dtype):
    r = rng(7)
    base = (r.standard_normal((6, 10, 8)) * 4).astype(dtype)
    base.ravel()[::17] = 0.0  # kinks
    base.ravel()[5::23] = 3.0
    ro = base[2].copy()
    ro.flags.writeable = False
    return {
        "1d": base.ravel()[:37].copy(),
        "2d": base[0].copy(),
        "3d": base.copy(),
        "empty": np.zeros((0, 5), dtype),
        "empty_last": np.zeros((3, 0), dtype),
        "one": base.ravel()[1:2].copy(),
        "0d": np.array(base.ravel()[3]),
        "slice": base[:, ::2, 1::3],
        "reversed": base[::-1, :, ::-2],
        "fortran": np.asfortranarray(base[1]),
        "fortran3d": np.asfortranarray(base),
        "readonly": ro,
    }


LAYOUTS = list(_layouts(np.float64))


def _like(x, values):
    """values (same shape) laid out like x: same strides pattern, read-only flag."""
    if x.ndim == 0:
        return np.array(values, x.dtype)
    out = np.empty_like(x, order="K") if (x.flags.c_contiguous or x.flags.f_contiguous) else None
    if out is None:  # a strided view, like x
        big = np.zeros(tuple(2 * n for n in x.shape), x.dtype)
        out = big[tuple(slice(None, None, 2) for _ in x.shape)]
    out[...] = values
    if not x.flags.writeable:
        out.flags.writeable = False
    return out


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", dtype_params())
@pytest.mark.parametrize("case", case_params(CASES))
def test_matches_reference_layouts(case, dtype, layout, n_threads):
    x = _layouts(dtype)[layout]
    if case.kind == "rowwise" and x.ndim == 0:
        pytest.skip("row-wise functions need at least one axis (tested in test_errors.py)")
    x_before = x.copy()
    y = case.forward(x, n_threads=n_threads)
    assert isinstance(y, np.ndarray) and y.shape == x.shape and y.dtype == x.dtype
    assert_forward_close(y, truth_forward(case, x), dtype, x=x)
    g = _like(x, rng(3).standard_normal(x.shape).astype(dtype))
    g_before = g.copy()
    s = case.saved(x, y)
    gx = case.backward(g, s, n_threads=n_threads)
    assert isinstance(gx, np.ndarray) and gx.shape == x.shape and gx.dtype == x.dtype
    assert_backward_close(gx, truth_backward(case, g, s), g, dtype, s=s)
    # the inputs are not touched
    np.testing.assert_array_equal(x, x_before)
    np.testing.assert_array_equal(g, g_before)


# =============================================================================
# accuracy sweeps
# =============================================================================

_NATIVE = not PURE
# (fastact.reference once flushed subnormal sigmoid values to zero through
# scipy.special.expit; it now keeps them, so no sweep needs an oracle exception)
_SWEEP_ORACLE_BUGS = {}


_REF_FINITE_WARNINGS = {}  # the reference computes under np.errstate and selects the limits


def _sweep_params():
    out = []
    for case in CASES:
        if case.kind != "elementwise":
            continue
        for dt, dtid in zip(DTYPES, ("f32", "f64")):
            for region in SWEEPS:
                marks = []
                bug = _SWEEP_ORACLE_BUGS.get((case.id, dtid, region))
                if bug:
                    marks.append(
                        pytest.mark.xfail(
                            _NATIVE,
                            strict=True,
                            reason="BUG (fastact.reference, the oracle): " + bug,
                        )
                    )
                bug = _REF_FINITE_WARNINGS.get((case.id, dtid))
                if bug and region == "extremes":
                    marks.append(
                        pytest.mark.xfail(
                            PURE, strict=True, reason="BUG (fastact.reference): " + bug
                        )
                    )
                out.append(
                    pytest.param(case, dt, region, id=f"{case.id}-{dtid}-{region}", marks=marks)
                )
    return out


@pytest.mark.parametrize("case, dtype, region", _sweep_params())
def test_accuracy_sweep(case, dtype, region):
    x = SWEEPS[region](case, dtype)
    y = case.forward(x)
    assert_forward_close(y, truth_forward(case, x), dtype, what=f"{case.id} forward", x=x)
    g = rng(11).standard_normal(x.size).astype(dtype)
    s = case.saved(x, y)
    with warnings.catch_warnings():
        if case.has_grad_param:
            # prelu's grad_weight sums x * g and overflows at the extremes; that it then
            # warns is a defect of its own (test_gradient_reductions_overflow_quietly)
            warnings.filterwarnings(
                "ignore", "overflow encountered in (cast|reduce|multiply)", RuntimeWarning
            )
        gx = case.backward(g, s)
    assert_backward_close(gx, truth_backward(case, g, s), g, dtype, what=f"{case.id} backward", s=s)


# ---- the oracle itself against mpmath, where the reference and the kernels disagree ----


def _silu_mp(x):
    x = mpmath.mpf(x)
    return float(x / (1 + mpmath.exp(-x)))


def _gelu_tanh_mp(x):
    x = mpmath.mpf(x)
    u = mpmath.sqrt(2 / mpmath.pi) * (x + mpmath.mpf("0.044715") * x**3)
    return float(x / (1 + mpmath.exp(-2 * u)))


_UNDERFLOW_POINTS = [
    ("silu", {}, [-709.5, -710.0, -712.0, -720.0, -740.0], _silu_mp),
    ("gelu", {"approximate": "tanh"}, [-21.165, -21.17, -21.175], _gelu_tanh_mp),
]


def _check_against_mp(fn, name, params, xs, exact):
    with mpmath.workdps(50):
        want = np.array([exact(v) for v in xs])
    got = fn(np.array(xs), **params)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=F64_TINY)


@pytest.mark.parametrize("name, params, xs, exact", _UNDERFLOW_POINTS, ids=["silu", "gelu_tanh"])
def test_reference_deep_negative_tail_vs_mpmath(name, params, xs, exact):
    _check_against_mp(getattr(ref, name), name, params, xs, exact)


@pytest.mark.parametrize("name, params, xs, exact", _UNDERFLOW_POINTS, ids=["silu", "gelu_tanh"])
def test_deep_negative_tail_vs_mpmath(name, params, xs, exact):
    _check_against_mp(getattr(fastact, name), name, params, xs, exact)


# =============================================================================
# finite differences (float64, away from kinks)
# =============================================================================


def _fd_points(case):
    r = rng(5)
    x = np.concatenate(
        [
            r.uniform(-8, 8, 600),
            [
                -35.0,
                -25.0,
                -15.0,
                -12.0,
                12.0,
                15.0,
                25.0,
                35.0,
                0.3,
                -0.3,
                0.35,
                -0.35,
                1e-3,
                -1e-3,
            ],
        ]
    )
    for k in case.kinks():
        x = x[np.abs(x - k) > 0.05]
    return x


@pytest.mark.parametrize("impl", ["fastact", "reference"])
@pytest.mark.parametrize("case", case_params(ELEMENTWISE))
def test_backward_matches_finite_differences(case, impl):
    spec = fastact.ACTIVATIONS[case.name] if impl == "fastact" else ref.ACTIVATIONS[case.name]
    x = _fd_points(case)
    kw = case.kwargs(x, np.float64)
    h = 1e-3
    fd = fd4(lambda v: spec.forward(v, **kw), x, h)
    y = spec.forward(x, **kw)
    g = rng(6).uniform(0.5, 2.0, x.size) * rng(8).choice([-1.0, 1.0], x.size)
    r = spec.backward(g, case.saved(x, y), **kw)
    an = r[0] if case.has_grad_param else r
    np.testing.assert_allclose(an, g * fd, rtol=1e-8, atol=1e-9)


# =============================================================================
# special values
# =============================================================================


def _limits(case):
    """(f(-inf), f(+inf)) and (f'(-inf), f'(+inf)) from the mathematics."""
    p = case.kwargs(np.zeros(1), np.float64)
    n = case.name
    slope = p.get("negative_slope", p.get("weight", 0.01))
    if isinstance(slope, np.ndarray):
        slope = slope[0]
    alpha = p.get("alpha", 1.0)
    lo, hi = p.get("min_val", -1.0), p.get("max_val", 1.0)
    inf = np.inf
    return {
        "identity": ((-inf, inf), (1, 1)),
        "sigmoid": ((0, 1), (0, 0)),
        "tanh": ((-1, 1), (0, 0)),
        "relu": ((0, inf), (0, 1)),
        "leaky_relu": ((-inf, inf), (slope, 1)),
        "prelu": ((-inf, inf), (slope, 1)),
        "elu": ((-alpha, inf), (0, 1)),
        "selu": ((-SELU_SCALE * SELU_ALPHA, inf), (0, SELU_SCALE)),
        "celu": ((-alpha, inf), (0, 1)),
        "gelu": ((0, inf), (0, 1)),
        "silu": ((0, inf), (0, 1)),
        "mish": ((0, inf), (0, 1)),
        "softplus": ((0, inf), (0, 1)),
        "softsign": ((-1, 1), (0, 0)),
        "hardtanh": ((lo, hi), (0, 0)),
        "relu6": ((0, 6), (0, 0)),
        "hardsigmoid": ((0, 1), (0, 0)),
        "hardswish": ((0, inf), (0, 1)),
        "log_sigmoid": ((-inf, 0), (1, 0)),
    }[n]


# fastact.reference leaks NumPy RuntimeWarnings at NaN / -inf (filterwarnings = error)
_REF_INF_WARNINGS = {}
_REF_NAN_WARNINGS = {}


def _nonfinite_params(impl, bugs):
    out = []
    for case in ELEMENTWISE:
        for dt, dtid in zip(DTYPES, ("f32", "f64")):
            marks = []
            bug = bugs.get(case.name)
            if bug and case.params.get("approximate") != "tanh":
                marks.append(
                    pytest.mark.xfail(
                        impl == "reference" or PURE,
                        strict=True,
                        reason="BUG (fastact.reference): " + bug,
                    )
                )
            out.append(pytest.param(case, dt, id=f"{case.id}-{dtid}", marks=marks))
    return out


@pytest.mark.parametrize("case, dtype", _nonfinite_params("fastact", _REF_INF_WARNINGS))
def test_infinities_give_the_limits(case, dtype):
    (f_lo, f_hi), (d_lo, d_hi) = _limits(case)
    x = np.array([-np.inf, np.inf], dtype)
    y = case.forward(x)
    assert_forward_close(y, np.array([f_lo, f_hi]), dtype, x=x)
    g = np.array([1.0, -2.0], dtype)
    gx = case.backward(g, case.saved(x, y))
    assert_backward_close(gx, g * np.array([d_lo, d_hi]), g, dtype)


@pytest.mark.parametrize("case, dtype", _nonfinite_params("fastact", _REF_NAN_WARNINGS))
def test_nan_propagates(case, dtype):
    x = np.array([np.nan, 1.0, np.nan, -1.0], dtype)
    y = case.forward(x)
    np.testing.assert_array_equal(np.isnan(y), [True, False, True, False])
    s = case.saved(x, y)
    g = np.ones_like(x)
    gx = case.backward(g, s)
    if case.name == "identity":  # the saved output is not read
        np.testing.assert_array_equal(gx, g)
    else:
        np.testing.assert_array_equal(np.isnan(gx), [True, False, True, False])
    # a NaN gradient gives a NaN result wherever saved is finite
    gn = np.full_like(x, np.nan)
    assert np.isnan(case.backward(gn, s)).all()


@pytest.mark.parametrize(
    "case, dtype", _nonfinite_params("reference", {**_REF_INF_WARNINGS, **_REF_NAN_WARNINGS})
)
def test_reference_no_warnings_nonfinite(case, dtype):
    x = np.array([np.nan, np.inf, -np.inf, 0.0], dtype)
    kw = case.kwargs(x)
    y = case.ref_spec.forward(x, **kw)
    r = case.ref_spec.backward(np.ones_like(x), case.saved(x, y), **kw)
    gx = r[0] if case.has_grad_param else r
    assert np.isnan(y[0]) and not np.isnan(y[1:]).any()
    assert np.isnan(gx[0]) or case.name == "identity"


# fastact.reference warns on finite inputs (float64 extremes): the arithmetic of the branch
# np.where discards still runs, or the float64 result overflows the float32 output.
def _finite_params(impl):
    out = []
    for case in ELEMENTWISE:
        for dt, dtid in zip(DTYPES, ("f32", "f64")):
            marks = []
            bug = _REF_FINITE_WARNINGS.get((case.id, dtid))
            if bug:
                marks.append(
                    pytest.mark.xfail(
                        impl == "reference" or PURE,
                        strict=True,
                        reason="BUG (fastact.reference): " + bug,
                    )
                )
            out.append(pytest.param(case, dt, id=f"{case.id}-{dtid}", marks=marks))
    return out


def _all_finite(case, dtype):
    x = np.concatenate(
        [
            sweep_linear(dtype),
            sweep_geometric(dtype),
            sweep_cutoffs(case.cutoffs(), dtype),
            sweep_extremes(dtype),
        ]
    )
    assert np.isfinite(x).all()
    return x


@pytest.mark.parametrize("case, dtype", _finite_params("fastact"))
def test_no_warnings_for_finite_inputs(case, dtype):
    """filterwarnings = error turns any NumPy RuntimeWarning into a failure."""
    x = _all_finite(case, dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y = case.forward(x)
        case.backward(np.ones_like(x), case.saved(x, y))
        case.backward(-np.ones_like(x), case.saved(x, y))


@pytest.mark.parametrize("case, dtype", _finite_params("reference"))
def test_reference_no_warnings_for_finite_inputs(case, dtype):
    x = _all_finite(case, dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y = case.ref_forward(x)
        case.ref_backward(np.ones_like(x), case.saved(x, y))


@pytest.mark.parametrize("dtype", dtype_params())
def test_saturation_is_exact(dtype):
    big = np.array([1e4], dtype)
    assert fastact.sigmoid(-big)[0] == 0.0
    assert fastact.sigmoid(big)[0] == 1.0
    assert fastact.softplus(big)[0] == dtype(1e4)
    assert fastact.softplus(-big)[0] == 0.0
    assert fastact.log_sigmoid(-big)[0] == dtype(-1e4)
    assert fastact.log_sigmoid(big)[0] == 0.0
    assert fastact.tanh(big)[0] == 1.0 and fastact.tanh(-big)[0] == -1.0
    for name in ("gelu", "silu", "mish", "hardswish", "relu"):
        assert getattr(fastact, name)(-big)[0] == 0.0, name
        assert getattr(fastact, name)(big)[0] == dtype(1e4), name
    assert fastact.gelu(-big, approximate="tanh")[0] == 0.0
    assert fastact.gelu(big, approximate="tanh")[0] == dtype(1e4)


def _gelu_exact(x):
    x = mpmath.mpf(x)
    return float(x / 2 * mpmath.erfc(-x / mpmath.sqrt(2)))


@pytest.mark.parametrize("dtype", dtype_params())
def test_known_values(dtype):
    def f(name, x, **kw):
        return getattr(fastact, name)(np.array([x], dtype), **kw)

    def close(got, want):
        assert_forward_close(got, np.array([want]), dtype)

    close(f("sigmoid", 0.0), 0.5)
    assert f("sigmoid", 0.0)[0] == 0.5
    assert f("tanh", 0.0)[0] == 0.0
    close(f("gelu", 1.0), 0.8413447460685429)
    with mpmath.workdps(40):
        for v in (-5.0, -1.0, -0.125, 0.5, 2.0, 7.0, -12.0):
            close(f("gelu", v), _gelu_exact(v))
    close(
        f("gelu", 1.0, approximate="tanh"),
        0.5 * (1 + math.tanh(math.sqrt(2 / math.pi) * (1 + 0.044715))),
    )
    close(f("silu", 1.0), 1 / (1 + math.exp(-1)))
    close(f("mish", 1.0), math.tanh(math.log1p(math.e)))
    assert f("mish", 0.0)[0] == 0.0
    close(f("softplus", 0.0), math.log(2))
    close(f("softplus", 1.0, beta=2.0), math.log1p(math.exp(2)) / 2)
    close(f("log_sigmoid", 0.0), -math.log(2))
    close(f("softsign", 1.0), 0.5)
    close(f("softsign", -3.0), -0.75)
    close(f("elu", -1.0), math.expm1(-1))
    close(f("elu", -1.0, alpha=0.5), 0.5 * math.expm1(-1))
    close(f("celu", -1.0, alpha=0.5), 0.5 * math.expm1(-2))
    close(f("selu", 1.0), 1.0507009873554805)
    close(f("selu", -1.0), 1.0507009873554805 * 1.6732632423543772 * math.expm1(-1))
    close(f("leaky_relu", -2.0), -0.02)
    close(f("leaky_relu", -2.0, negative_slope=0.2), -0.4)
    close(f("hardsigmoid", 0.0), 0.5)
    close(f("hardsigmoid", 1.5), 0.75)
    close(f("hardswish", 1.0), 2.0 / 3.0)
    assert f("hardswish", 3.0)[0] == 3.0 and f("hardswish", -3.0)[0] == 0.0
    assert f("hardtanh", 5.0, min_val=-2.0, max_val=3.0)[0] == 3.0
    assert f("hardtanh", -5.0, min_val=-2.0, max_val=3.0)[0] == -2.0
    assert f("relu6", 7.0)[0] == 6.0 and f("relu6", -1.0)[0] == 0.0
    assert f("relu", -1.0)[0] == 0.0 and f("relu", 2.5)[0] == 2.5


def test_selu_constants_match_the_paper():
    # Klambauer et al. (2017): alpha = 1.6732632423543772, lambda = 1.0507009873554805
    assert fastact.selu(np.array([1.0]))[0] == 1.0507009873554805
    np.testing.assert_allclose(
        fastact.selu(np.array([-np.inf]))[0], -1.0507009873554805 * 1.6732632423543772, rtol=1e-15
    )
    np.testing.assert_allclose(
        fastact.selu_backward(np.array([1.0]), np.array([0.0]))[0],
        1.0507009873554805 * 1.6732632423543772,
        rtol=1e-15,
    )
    assert fastact.selu_backward(np.array([1.0]), np.array([2.0]))[0] == 1.0507009873554805


@pytest.mark.parametrize("dtype", dtype_params())
def test_derivatives_at_kinks_follow_pytorch(dtype):
    def a(*v):
        return np.array(v, dtype)

    g = a(3.0)
    assert fastact.relu_backward(g, a(0.0))[0] == 0.0
    assert fastact.relu_backward(g, a(-0.0))[0] == 0.0
    assert fastact.hardtanh_backward(g, a(-1.0))[0] == 0.0
    assert fastact.hardtanh_backward(g, a(1.0))[0] == 0.0
    assert fastact.hardtanh_backward(g, a(-2.0), min_val=-2.0, max_val=3.0)[0] == 0.0
    assert fastact.hardtanh_backward(g, a(3.0), min_val=-2.0, max_val=3.0)[0] == 0.0
    assert fastact.relu6_backward(g, a(0.0))[0] == 0.0
    assert fastact.relu6_backward(g, a(6.0))[0] == 0.0
    assert fastact.relu6_backward(g, a(3.0))[0] == 3.0
    assert fastact.leaky_relu_backward(g, a(0.0))[0] == dtype(3.0 * 0.01)
    assert fastact.leaky_relu_backward(g, a(0.0), negative_slope=0.2)[0] == dtype(3.0 * 0.2)
    assert fastact.elu_backward(g, a(0.0))[0] == 3.0  # alpha = 1
    assert fastact.elu_backward(g, a(0.0), alpha=0.5)[0] == 1.5
    assert fastact.celu_backward(g, a(0.0), alpha=0.5)[0] == 3.0
    gx, gw = fastact.prelu_backward(g, a(0.0), 0.25)
    assert gx[0] == 0.75 and gw == 0.0
    # hardsigmoid: 1/6 strictly inside (-3, 3)
    np.testing.assert_array_equal(
        fastact.hardsigmoid_backward(a(6, 6, 6, 6, 6), a(-3.5, -3, 0, 3, 3.5)), a(0, 0, 1, 0, 0)
    )
    # hardswish: x <= -3: 0; -3 < x < 3: x/3 + 1/2; x >= 3: 1 (PyTorch 2.x's)
    x = a(-4.0, -3.0, -1.5, 0.0, 1.5, 3.0, 4.0)
    want = np.array([0.0, 0.0, 0.0, 0.5, 1.0, 1.0, 1.0])
    assert_backward_close(
        fastact.hardswish_backward(np.ones_like(x), x), want, np.ones_like(x), dtype
    )
    # softplus: sigmoid(beta x) up to beta x == threshold, 1 beyond
    x = a(20.0, 21.0)
    gx = fastact.softplus_backward(np.ones_like(x), x)
    assert gx[1] == 1.0
    assert_backward_close(gx[:1], np.array([1 / (1 + math.exp(-20.0))]), np.ones(1), dtype)


# =============================================================================
# in-place and out=
# =============================================================================


def _inplace_arrays(dtype, layout):
    base = (rng(21).standard_normal((9, 14)) * 3).astype(dtype)

    def mk(values):
        if layout == "C":
            return np.array(values, order="C")
        if layout == "F":
            return np.array(values, order="F")
        big = np.zeros((18, 28), dtype)
        v = big[::2, 1::2]
        v[...] = values
        return v

    return base, mk


@pytest.mark.parametrize("layout", ["C", "F", "strided"])
@pytest.mark.parametrize("dtype", dtype_params())
@pytest.mark.parametrize("case", case_params(CASES))
def test_inplace(case, dtype, layout):
    base, mk = _inplace_arrays(dtype, layout)
    want = case.forward(base)
    x = mk(base)
    kw = case.kwargs(x)
    r = case.spec.forward(x, **kw, out=x)
    assert r is x and np.shares_memory(r, x)
    np.testing.assert_array_equal(r, want)

    g0 = rng(22).standard_normal(base.shape).astype(dtype)
    s0 = case.saved(base, want)
    want_b = case.spec.backward(g0, s0, **kw)
    for which in ("grad_out", "saved"):
        g, s = mk(g0), mk(s0)
        out = g if which == "grad_out" else s
        r = case.spec.backward(g, s, **kw, out=out)
        if case.has_grad_param:  # grad_weight in place: test_prelu_inplace_grad_weight
            r, want_gx = r[0], want_b[0]
        else:
            want_gx = want_b
        assert r is out and np.shares_memory(r, out), which
        np.testing.assert_array_equal(r, want_gx)


@pytest.mark.parametrize("dtype", dtype_params())
@pytest.mark.parametrize("case", case_params(CASES))
def test_out_noncontiguous_and_separate(case, dtype):
    x = (rng(23).standard_normal((7, 12)) * 3).astype(dtype)
    want = case.forward(x)
    kw = case.kwargs(x)
    big = np.full((7, 24), np.nan, dtype)
    out = big[:, 1::2]
    r = case.spec.forward(x, **kw, out=out)
    assert r is out
    np.testing.assert_array_equal(out, want)
    assert np.isnan(big[:, ::2]).all()  # nothing written between the strides
    out2 = np.empty_like(x)
    assert case.spec.forward(x, **kw, out=out2) is out2
    np.testing.assert_array_equal(out2, want)
    # backward into a strided out
    g = rng(24).standard_normal(x.shape).astype(dtype)
    s = case.saved(x, want)
    want_b = case.backward(g, s)
    big = np.full((14, 12), np.nan, dtype)
    out = big[::2]
    r = case.spec.backward(g, s, **kw, out=out)
    r = r[0] if case.has_grad_param else r
    assert r is out
    np.testing.assert_array_equal(out, want_b)
    assert np.isnan(big[1::2]).all()


@pytest.mark.parametrize("dtype", dtype_params())
def test_bias_act_inplace(dtype):
    z0 = (rng(25).standard_normal((11, 6)) * 3).astype(dtype)
    b = rng(26).standard_normal(6).astype(dtype)
    g0 = rng(27).standard_normal(z0.shape).astype(dtype)
    for name in ("gelu", "tanh"):
        want = fastact.bias_act(z0, b, name)
        z = z0.copy()
        r = fastact.bias_act(z, b, name, out=z)
        assert r is z and np.shares_memory(r, z)
        np.testing.assert_array_equal(r, want)
        s0 = want if fastact.ACTIVATIONS[name].saves == "output" else z0
        kw = {"bias": b} if fastact.ACTIVATIONS[name].saves == "input" else {}
        want_z, want_b = fastact.bias_act_backward(g0, s0, name, **kw)
        for which in ("grad_out", "saved"):
            g, s = g0.copy(), s0.copy()
            out = g if which == "grad_out" else s
            rz, rb = fastact.bias_act_backward(g, s, name, out=out, **kw)
            assert rz is out and np.shares_memory(rz, out)
            np.testing.assert_array_equal(rz, want_z)
            np.testing.assert_array_equal(rb, want_b)


def test_scalars_and_lists():
    y = fastact.sigmoid(0.0)
    assert isinstance(y, np.float64) and y == 0.5
    y = fastact.sigmoid(np.float32(0.0))
    assert isinstance(y, np.float32) and y == 0.5
    y = fastact.relu(np.array(-2.0))
    assert isinstance(y, np.ndarray) and y.ndim == 0 and y == 0.0
    np.testing.assert_array_equal(fastact.relu([1.5, -2.0]), [1.5, 0.0])
    assert fastact.relu_backward(2.0, 1.0) == 2.0
    gx, gw = fastact.prelu_backward(1.0, -2.0, 0.5)
    assert gx == 0.5 and gw == -2.0


@pytest.mark.parametrize("int_dtype", [np.int8, np.uint8, np.int32, np.int64])
@pytest.mark.parametrize("case", case_params(CASES))
def test_int_input_is_computed_in_float64(case, int_dtype):
    x = np.array([[0, 1, 2, 5, 7], [3, 0, 4, 1, 6]], int_dtype)
    if np.issubdtype(int_dtype, np.signedinteger):
        x[1] *= -1
    y = case.forward(x)
    assert y.dtype == np.float64
    np.testing.assert_array_equal(y, case.forward(x.astype(np.float64)))
    g = np.array([[1, 2, 3, 4, 5], [5, 4, 3, 2, 1]], int_dtype)
    s = case.saved(x, y)
    gx = case.backward(g, s)
    assert gx.dtype == np.float64
    np.testing.assert_array_equal(gx, case.backward(g.astype(np.float64), f64(s)))


# =============================================================================
# threads: bit-identical results for any thread count
# =============================================================================

BIG = 300_001  # > SERIAL_BELOW = 65536: the kernels really split the work


@pytest.mark.parametrize("dtype", dtype_params())
@pytest.mark.parametrize("case", case_params(ELEMENTWISE))
def test_threads_bit_identical_elementwise(case, dtype):
    r = rng(31)
    x = r.uniform(-20, 20, BIG).astype(dtype)
    g = r.standard_normal(BIG).astype(dtype)
    y1 = case.forward(x, n_threads=1)
    y2 = case.forward(x, n_threads=2)
    y3 = case.forward(x, n_threads=3)
    np.testing.assert_array_equal(y1, y2)
    np.testing.assert_array_equal(y1, y3)
    s = case.saved(x, y1)
    b1 = case.spec.backward(g, s, **case.kwargs(s), n_threads=1)
    b2 = case.spec.backward(g, s, **case.kwargs(s), n_threads=2)
    if case.has_grad_param:
        np.testing.assert_array_equal(b1[1], b2[1])
        b1, b2 = b1[0], b2[0]
    np.testing.assert_array_equal(b1, b2)
    # and the threaded result is right everywhere, including at the part boundaries
    assert_forward_close(y2, truth_forward(case, x), dtype, x=x)
    assert_backward_close(b2, truth_backward(case, g, s), g, dtype, s=s)


@pytest.mark.parametrize("shape", [(3001, 100), (7, 50_000), (60_001, 5)], ids=str)
@pytest.mark.parametrize("dtype", dtype_params())
def test_threads_bit_identical_reductions(dtype, shape):
    r = rng(32)
    z = (r.standard_normal(shape) * 3).astype(dtype)
    b = r.standard_normal(shape[-1]).astype(dtype)
    g = r.standard_normal(shape).astype(dtype)
    for name in ("gelu", "sigmoid", "softplus"):
        act = fastact.ACTIVATIONS[name]
        y1 = fastact.bias_act(z, b, name, n_threads=1)
        y2 = fastact.bias_act(z, b, name, n_threads=2)
        np.testing.assert_array_equal(y1, y2)
        s = y1 if act.saves == "output" else z
        kw = {"bias": b} if act.saves == "input" else {}
        dz1, db1 = fastact.bias_act_backward(g, s, name, n_threads=1, **kw)
        dz2, db2 = fastact.bias_act_backward(g, s, name, n_threads=2, **kw)
        np.testing.assert_array_equal(dz1, dz2)
        np.testing.assert_array_equal(db1, db2)
        _assert_sum_close(
            db2, f64(dz2).sum(axis=0), np.abs(f64(dz2)).sum(axis=0), dtype, _half_ulps(dz2, 0)
        )
    for w in (0.3, per_feature_weight(z)):
        np.testing.assert_array_equal(
            fastact.prelu(z, w, n_threads=1), fastact.prelu(z, w, n_threads=2)
        )
        gx1, gw1 = fastact.prelu_backward(g, z, w, n_threads=1)
        gx2, gw2 = fastact.prelu_backward(g, z, w, n_threads=2)
        np.testing.assert_array_equal(gx1, gx2)
        np.testing.assert_array_equal(gw1, gw2)
        terms = np.where(z > 0, 0.0, f64(z) * f64(g))
        want = terms.sum(axis=0) if np.ndim(w) else terms.sum()
        _assert_sum_close(
            gw2, want, np.abs(terms).sum(axis=0) if np.ndim(w) else np.abs(terms).sum(), dtype
        )


@pytest.mark.parametrize("dtype", dtype_params())
def test_threads_bit_identical_rowwise(dtype):
    r = rng(33)
    x = (r.standard_normal((3001, 100)) * 3).astype(dtype)
    g = r.standard_normal(x.shape).astype(dtype)
    for name in ("softmax", "log_softmax"):
        f, fb = getattr(fastact, name), getattr(fastact, name + "_backward")
        y1, y2 = f(x, n_threads=1), f(x, n_threads=2)
        np.testing.assert_array_equal(y1, y2)
        np.testing.assert_array_equal(fb(g, y1, n_threads=1), fb(g, y1, n_threads=2))
    lab = r.integers(0, 100, 3001)
    l1, g1 = fastact.softmax_cross_entropy(x, lab, n_threads=1)
    l2, g2 = fastact.softmax_cross_entropy(x, lab, n_threads=2)
    assert l1 == l2
    np.testing.assert_array_equal(g1, g2)


def test_n_threads_forms():
    x = rng(34).standard_normal(BIG)
    want = fastact.gelu(x, n_threads=1)
    for nt in (None, -1, 2, np.int64(2), 8):
        np.testing.assert_array_equal(fastact.gelu(x, n_threads=nt), want)
    old = fastact.get_num_threads()
    try:
        fastact.set_num_threads(1)
        assert fastact.get_num_threads() == 1
        np.testing.assert_array_equal(fastact.gelu(x), want)
    finally:
        fastact.set_num_threads(None)
    assert fastact.get_num_threads() == old


# =============================================================================
# softmax, log_softmax, softmax_cross_entropy
# =============================================================================


def _rowwise_tol_check(got, truth, dtype, what):
    assert_forward_close(got, truth, dtype, what=what)


@pytest.mark.parametrize("shape", [(13,), (7, 13), (3, 4, 5), (1, 1), (5, 1), (2, 1000)], ids=str)
@pytest.mark.parametrize("dtype", dtype_params())
def test_softmax_family_matches_reference(dtype, shape, n_threads):
    x = (rng(41).standard_normal(shape) * 3).astype(dtype)
    g = rng(42).standard_normal(shape).astype(dtype)
    for name in ("softmax", "log_softmax"):
        y = getattr(fastact, name)(x, n_threads=n_threads)
        assert y.dtype == dtype and y.shape == shape
        _rowwise_tol_check(y, getattr(ref, name)(f64(x)), dtype, name)
        gx = getattr(fastact, name + "_backward")(g, y, n_threads=n_threads)
        assert_backward_close(
            gx, getattr(ref, name + "_backward")(f64(g), f64(y)), g, dtype, what=name + "_backward"
        )


@pytest.mark.parametrize("dtype", dtype_params())
def test_softmax_rows_sum_to_one(dtype, n_threads):
    x = (rng(43).standard_normal((50, 37)) * 10).astype(dtype)
    y = fastact.softmax(x, n_threads=n_threads)
    assert (y >= 0).all() and (y <= 1).all()
    eps = np.finfo(dtype).eps
    np.testing.assert_allclose(f64(y).sum(axis=-1), 1.0, rtol=0, atol=37 * eps)
    np.testing.assert_allclose(
        np.exp(f64(fastact.log_softmax(x))).sum(axis=-1), 1.0, rtol=0, atol=37 * 4 * eps
    )


@pytest.mark.parametrize("dtype", dtype_params())
def test_softmax_large_logits_are_stable(dtype):
    x = np.array(
        [
            [1e4, 0.0, -1e4],
            [1e4, 1e4, 1e4],
            [-1e4, -1e4 + 1, -1e4 + 2],
            [1e4, 1e4 - 0.5, 1e4 - 3.0],
        ],
        dtype,
    )
    y = fastact.softmax(x)
    assert np.isfinite(y).all()
    assert_forward_close(y, ref.softmax(f64(x)), dtype, what="softmax")
    np.testing.assert_allclose(f64(y).sum(axis=-1), 1.0, atol=4 * np.finfo(dtype).eps)
    ly = fastact.log_softmax(x)
    assert np.isfinite(ly).all()
    # exp(log_softmax) is softmax; the values themselves: test_log_softmax_precision
    np.testing.assert_allclose(np.exp(f64(ly)), f64(y), rtol=1e-6 if dtype == np.float32 else 1e-11)
    g = rng(48).standard_normal(x.shape).astype(dtype)
    assert_backward_close(
        fastact.softmax_backward(g, y), ref.softmax_backward(f64(g), f64(y)), g, dtype
    )
    assert_backward_close(
        fastact.log_softmax_backward(g, ly), ref.log_softmax_backward(f64(g), f64(ly)), g, dtype
    )
    lab = np.array([0, 1, 2, 1])
    loss, grad = fastact.softmax_cross_entropy(x, lab)
    rloss, rgrad = ref.softmax_cross_entropy(f64(x), lab)
    assert math.isfinite(loss) and np.isfinite(grad).all()
    np.testing.assert_allclose(loss, rloss, rtol=1e-11)
    assert_backward_close(grad, rgrad, np.ones_like(grad), dtype)


_LSM_ROWS = {
    "offset1e4": np.array([[1e4, 1e4 - 0.5, 1e4 - 3.0]]),
    "offset1e6": np.array([[0.0, 0.5, -0.25, 1.0]]) + 1e6,
    "peaked": np.array([[15.0, 0.0, 0.0, 0.0, 0.0]]),  # log p_max = -1.2e-6
}


@pytest.mark.parametrize("row", list(_LSM_ROWS))
def test_log_softmax_precision(row):
    x = _LSM_ROWS[row]
    assert_forward_close(
        fastact.log_softmax(x), ref.log_softmax(x), np.float64, what="log_softmax", x=x
    )
    lab = np.array([int(np.argmax(x))])
    loss, _ = fastact.softmax_cross_entropy(x, lab)
    want = -ref.log_softmax(x)[0, lab[0]]
    np.testing.assert_allclose(loss, want, rtol=1e-12)


@pytest.mark.parametrize("impl", ["fastact", "reference"])
def test_log_softmax_of_a_confident_row_against_mpmath(impl):
    """log_softmax of the top logit near -8e-13: log of the rounded 1 + s lost s's digits
    (1.2e-4 relative); log1p of the sum without the maximum's term keeps them.  The
    constants are mpmath's at 40 digits.  The same for float32 rows and the
    cross-entropy of that label."""
    m = fastact if impl == "fastact" else ref
    x = np.array([[30.0, 0.0, -1.0, 2.0], [0.0, 30.0, 30.0, -1.0]])
    top = -8.194410114667860697887037350196917924492e-13  # -log(1 + e^-30 + e^-31 + e^-28)
    y = m.log_softmax(x)
    np.testing.assert_allclose(y[0, 0], top, rtol=1e-15)
    np.testing.assert_allclose(y[0, 3], -28.00000000000081944101146678606978870374, rtol=1e-15)
    two = -0.6931471805600093099176186701654610843189  # -log(2 + e^-30 + e^-31): two maxima
    np.testing.assert_allclose(y[1, 1:3], [two, two], rtol=1e-15)
    loss, _ = m.softmax_cross_entropy(x[:1], np.array([0]))
    np.testing.assert_allclose(loss, -top, rtol=1e-15)
    y32 = m.log_softmax(x.astype(np.float32))
    assert y32[0, 0] == np.float32(top)


def test_softmax_special_rows():
    x = np.array([[-np.inf, 0.0, 1.0], [np.nan, 1.0, 2.0], [np.inf, 0.0, 1.0]])
    y = fastact.softmax(x)
    np.testing.assert_allclose(y[0], [0.0, 1 / (1 + math.e), math.e / (1 + math.e)], rtol=1e-15)
    assert np.isnan(y[1]).all()
    assert np.isnan(y[2]).all()
    ly = fastact.log_softmax(x)
    assert ly[0, 0] == -np.inf
    np.testing.assert_allclose(ly[0, 1:], np.log(y[0, 1:]), rtol=1e-15)
    assert np.isnan(ly[1]).all()


@pytest.mark.parametrize("impl", ["fastact", "reference"])
def test_softmax_backward_finite_differences(impl):
    m = fastact if impl == "fastact" else ref
    x = rng(44).standard_normal((4, 6)) * 2
    g = rng(45).standard_normal(x.shape)
    h = 1e-4
    for name in ("softmax", "log_softmax"):
        f = getattr(m, name)
        an = getattr(m, name + "_backward")(g, f(x))
        fd = np.empty_like(x)
        for idx in np.ndindex(x.shape):
            e = np.zeros_like(x)
            e[idx] = h
            fd[idx] = (
                -np.sum(g * f(x + 2 * e))
                + 8 * np.sum(g * f(x + e))
                - 8 * np.sum(g * f(x - e))
                + np.sum(g * f(x - 2 * e))
            ) / (12 * h)
        np.testing.assert_allclose(an, fd, rtol=1e-8, atol=1e-10)


def _xent_truth(x, t):
    """loss = mean_r sum_j -t log_softmax(x); grad = (softmax(x) * rowsum(t) - t) / N."""
    x = f64(x)
    t = f64(t)
    lp = ref.log_softmax(x)
    with np.errstate(invalid="ignore"):  # 0 * -inf where a zero target meets -inf
        loss = -np.where(t == 0, 0.0, t * lp).sum() / x.shape[0]
    grad = (np.exp(lp) * t.sum(axis=1, keepdims=True) - t) / x.shape[0]
    return loss, grad


@pytest.mark.parametrize(
    "labels_kind", ["indices", "int8", "list", "probabilities", "unnormalised"]
)
@pytest.mark.parametrize("dtype", dtype_params())
def test_cross_entropy_matches_reference(dtype, labels_kind, n_threads):
    r = rng(46)
    x = (r.standard_normal((9, 6)) * 3).astype(dtype)
    idx = r.integers(0, 6, 9)
    if labels_kind == "indices":
        lab = idx
    elif labels_kind == "int8":
        lab = idx.astype(np.int8)
    elif labels_kind == "list":
        lab = [int(i) for i in idx]
    else:
        t = r.random((9, 6))
        t[:, 0] = 0.0
        if labels_kind == "probabilities":
            t /= t.sum(axis=1, keepdims=True)
        lab = t.astype(dtype)
    t = np.eye(6)[np.asarray(idx)] if labels_kind in ("indices", "int8", "list") else f64(lab)
    loss, grad = fastact.softmax_cross_entropy(x, lab, n_threads=n_threads)
    assert isinstance(loss, float)
    assert grad.dtype == dtype and grad.shape == x.shape
    want_loss, want_grad = _xent_truth(x, t)
    np.testing.assert_allclose(loss, want_loss, rtol=1e-12)
    assert_backward_close(grad, want_grad, np.ones_like(grad), dtype)
    rl, rg = ref.softmax_cross_entropy(
        f64(x), f64(lab) if labels_kind in ("probabilities", "unnormalised") else lab
    )
    np.testing.assert_allclose(loss, rl, rtol=1e-12)
    assert_backward_close(grad, rg, np.ones_like(grad), dtype)
    if labels_kind == "indices":  # one-hot rows give the same answer
        l2, g2 = fastact.softmax_cross_entropy(x, np.eye(6, dtype=dtype)[idx])
        np.testing.assert_allclose(l2, loss, rtol=1e-14)
        np.testing.assert_allclose(g2, grad, rtol=0, atol=float(np.finfo(dtype).eps))


@pytest.mark.parametrize("impl", ["fastact", "reference"])
@pytest.mark.parametrize("labels_kind", ["indices", "unnormalised"])
def test_cross_entropy_gradient_finite_differences(impl, labels_kind):
    m = fastact if impl == "fastact" else ref
    r = rng(47)
    x = r.standard_normal((5, 4)) * 2
    lab = r.integers(0, 4, 5) if labels_kind == "indices" else r.random((5, 4))
    _, grad = m.softmax_cross_entropy(x, lab)
    h = 1e-4
    fd = np.empty_like(x)
    for idx in np.ndindex(x.shape):
        e = np.zeros_like(x)
        e[idx] = h
        L = [m.softmax_cross_entropy(x + k * e, lab)[0] for k in (2, 1, -1, -2)]
        fd[idx] = (-L[0] + 8 * L[1] - 8 * L[2] + L[3]) / (12 * h)
    np.testing.assert_allclose(grad, fd, rtol=1e-8, atol=1e-10)


def test_cross_entropy_zero_target_ignores_infinite_logit():
    x = np.array([[-np.inf, 0.0, 1.0]])
    t = np.array([[0.0, 0.5, 0.5]])
    loss, grad = fastact.softmax_cross_entropy(x, t)
    want_loss, want_grad = _xent_truth(x, t)
    np.testing.assert_allclose(loss, want_loss, rtol=1e-14)
    np.testing.assert_allclose(grad, want_grad, rtol=1e-14)
    assert fastact.softmax_cross_entropy(x, np.array([0]))[0] == np.inf


# =============================================================================
# bias_act
# =============================================================================


def _bias_kwargs(case):
    return {k: v for k, v in case.params.items()}


@pytest.mark.parametrize("shape", [(13, 7), (2, 3, 5), (6,), (0, 4)], ids=str)
@pytest.mark.parametrize("dtype", dtype_params())
@pytest.mark.parametrize("case", case_params(BIAS_CASES))
def test_bias_act_matches_reference(case, dtype, shape, n_threads):
    # z and bias on a grid of 1/64 so that z + bias is exact in float32 too (and hits the
    # kinks); test_bias_act_float32_adds_the_bias_in_double covers general values
    r = rng(51)
    z = (r.integers(-512, 513, shape) / 64).astype(dtype)
    b = (r.integers(-128, 129, shape[-1]) / 64).astype(dtype)
    g = r.standard_normal(shape).astype(dtype)
    kw = _bias_kwargs(case)
    y = fastact.bias_act(z, b, case.name, n_threads=n_threads, **kw)
    assert y.dtype == dtype and y.shape == shape
    pre = f64(z) + f64(b)
    assert_forward_close(y, truth_forward(case, pre), dtype, z=z)
    rz = ref.bias_act(z, b, case.name, **kw)
    assert_forward_close(y, rz, dtype, z=z)
    if case.saves == "output":
        s, extra = y, {}
        truth = truth_backward(case, g, y)
    else:
        s, extra = z, {"bias": b}
        truth = truth_backward(case, g, pre)
    dz, db = fastact.bias_act_backward(g, s, case.name, n_threads=n_threads, **extra, **kw)
    assert dz.dtype == dtype and dz.shape == shape
    assert db.dtype == dtype and db.shape == (shape[-1],)
    assert_backward_close(dz, truth, g, dtype, what="grad_z")
    rdz, rdb = ref.bias_act_backward(g, s, case.name, **extra, **kw)
    assert_backward_close(dz, rdz, g, dtype, what="grad_z vs reference")
    # grad_bias = grad_z summed over every axis but the last, in float64
    axes = tuple(range(len(shape) - 1))
    _assert_sum_close(
        db, f64(dz).sum(axis=axes), np.abs(f64(dz)).sum(axis=axes), dtype, _half_ulps(dz, axes)
    )


_BIAS_F32_EXAMPLE = (
    np.array([[-2.9999998, -9.58888, 0.1]], np.float32),
    np.array([1e-7, 0.3, 1e-9], np.float32),
)


@pytest.mark.parametrize(
    "name", ["sigmoid", "silu", "mish", "softplus", "log_sigmoid", "hardsigmoid", "hardswish"]
)
def test_bias_act_float32_rounds_the_sum_like_numpy(name):
    """bias_act(z, b) = act(z + b) with z + b rounded to float32, as NumPy's z + b is."""
    r = rng(55)
    z = np.concatenate(
        [np.tile(_BIAS_F32_EXAMPLE[0], 16), (r.standard_normal((3000, 48)) * 6).astype(np.float32)]
    )
    b = np.concatenate([np.tile(_BIAS_F32_EXAMPLE[1], 15), r.standard_normal(3).astype(np.float32)])
    y = fastact.bias_act(z, b, name)
    assert_forward_close(y, truth_forward(Case(name), f64(z + b)), np.float32, z=z)


def test_bias_act_float32_sum_beyond_float32_range():
    big = np.finfo(np.float32).max
    z = np.array([[-big, -big]], np.float32)
    b = np.array([-big, -big], np.float32)
    y = fastact.bias_act(z, b, "leaky_relu")  # z + b is -inf in float32, quietly
    np.testing.assert_array_equal(y, np.array([[-np.inf, -np.inf]], np.float32))


def _assert_sum_close(got, want, abs_sum, dtype, terms_ulp=0.0):
    """got == want (a float64 sum of terms) rounded to dtype; terms_ulp: the total rounding
    error the terms may carry (a float32 grad_z summed before or after its rounding)."""
    got, want, abs_sum = f64(got), f64(want), f64(abs_sum)
    if np.dtype(dtype) == np.float32:
        tol = ulp32(want) + 1e-12 * abs_sum + terms_ulp
    else:
        tol = 1e-12 * abs_sum + F64_TINY
    assert np.all(np.abs(got - want) <= tol), (got, want, np.abs(got - want), tol)


def _half_ulps(a, axis):
    return (0.5 * ulp32(a)).sum(axis=axis) if a.dtype == np.float32 else 0.0


@pytest.mark.parametrize(
    "dtype", [pytest.param(np.float32, id="f32"), pytest.param(np.float64, id="f64")]
)
@pytest.mark.parametrize("name", ["gelu", "sigmoid", "softplus", "tanh"])
def test_grad_bias_is_the_float64_sum_of_grad_z(name, dtype):
    r = rng(56)
    z = (r.standard_normal((4000, 64)) * 3).astype(dtype)
    b = r.standard_normal(64).astype(dtype)
    g = r.standard_normal(z.shape).astype(dtype)
    act = fastact.ACTIVATIONS[name]
    s = z if act.saves == "input" else fastact.bias_act(z, b, name)
    kw = {"bias": b} if act.saves == "input" else {}
    dz, db = fastact.bias_act_backward(g, s, name, **kw)
    _assert_sum_close(db, f64(dz).sum(axis=0), np.abs(f64(dz)).sum(axis=0), dtype)


@pytest.mark.parametrize("case", case_params(BIAS_CASES))
def test_bias_act_finite_differences(case):
    r = rng(52)
    z = r.uniform(-6, 6, (40, 5))
    b = r.uniform(-1, 1, 5)
    pre = z + b
    keep = np.ones(z.shape[0], bool)
    for k in case.kinks():
        keep &= (np.abs(pre - k) > 0.05).all(axis=1)
    z = z[keep]
    g = r.standard_normal(z.shape)
    kw = _bias_kwargs(case)
    y = fastact.bias_act(z, b, case.name, **kw)
    extra = {"bias": b} if case.saves == "input" else {}
    dz, db = fastact.bias_act_backward(
        g, y if case.saves == "output" else z, case.name, **extra, **kw
    )
    h = 1e-3
    fd_z = fd4(lambda v: fastact.bias_act(v, b, case.name, **kw), z, h)
    np.testing.assert_allclose(dz, g * fd_z, rtol=1e-8, atol=1e-9)
    fd_b = np.empty_like(b)
    for j in range(b.size):
        e = np.zeros_like(b)
        e[j] = h
        L = [np.sum(g * fastact.bias_act(z, b + k * e, case.name, **kw)) for k in (2, 1, -1, -2)]
        fd_b[j] = (-L[0] + 8 * L[1] - 8 * L[2] + L[3]) / (12 * h)
    np.testing.assert_allclose(db, fd_b, rtol=1e-8, atol=1e-9)


def test_bias_act_accepts_an_activation_object():
    z = rng(53).standard_normal((4, 3))
    b = np.array([0.1, -0.2, 0.3])
    act = fastact.ACTIVATIONS["softplus"]
    np.testing.assert_array_equal(
        fastact.bias_act(z, b, act, beta=2.0), fastact.bias_act(z, b, "softplus", beta=2.0)
    )


@pytest.mark.parametrize("case", case_params([c for c in BIAS_CASES if c.saves == "input"]))
def test_bias_act_backward_requires_bias_for_input_saving(case):
    z = np.ones((2, 3))
    with pytest.raises(ValueError, match=r"saves its input.*bias= is required"):
        fastact.bias_act_backward(np.ones_like(z), z, case.name, **_bias_kwargs(case))


@pytest.mark.parametrize("case", case_params([c for c in BIAS_CASES if c.saves == "output"]))
def test_bias_act_backward_output_saving_ignores_bias(case):
    r = rng(54)
    z, b, g = r.standard_normal((5, 3)), r.standard_normal(3), r.standard_normal((5, 3))
    kw = _bias_kwargs(case)
    y = fastact.bias_act(z, b, case.name, **kw)
    a = fastact.bias_act_backward(g, y, case.name, **kw)
    c = fastact.bias_act_backward(g, y, case.name, bias=b, **kw)
    np.testing.assert_array_equal(a[0], c[0])
    np.testing.assert_array_equal(a[1], c[1])


# =============================================================================
# prelu
# =============================================================================


@pytest.mark.parametrize("weight_kind", ["float", "0d", "one", "list", "per_feature", "int"])
@pytest.mark.parametrize("dtype", dtype_params())
def test_prelu_weights(dtype, weight_kind, n_threads):
    r = rng(61)
    x = (r.standard_normal((20, 4)) * 3).astype(dtype)
    x[0] = 0.0
    g = r.standard_normal(x.shape).astype(dtype)
    w = {
        "float": 0.3,
        "0d": np.array(0.3, dtype),
        "one": np.array([0.3], dtype),
        "list": [0.1, 0.2, 0.3, 0.4],
        "per_feature": np.array([0.1, 0.2, 0.3, 0.4], dtype),
        "int": 2,
    }[weight_kind]
    wv = np.broadcast_to(f64(np.asarray(w, dtype)), (4,))
    y = fastact.prelu(x, w, n_threads=n_threads)
    x64 = f64(x)
    assert_forward_close(y, np.where(x64 > 0, x64, wv * x64), dtype)
    gx, gw = fastact.prelu_backward(g, x, w, n_threads=n_threads)
    assert gw.shape == np.shape(w) and gw.dtype == dtype
    assert_backward_close(gx, f64(g) * np.where(x64 > 0, 1.0, wv), g, dtype)
    terms = np.where(x64 > 0, 0.0, x64 * f64(g))
    if np.size(w) == 4:
        _assert_sum_close(gw, terms.sum(axis=0), np.abs(terms).sum(axis=0), dtype)
    else:
        _assert_sum_close(gw, np.full(np.shape(w), terms.sum()), np.abs(terms).sum(), dtype)
    rgx, rgw = ref.prelu_backward(g, x, w)
    assert rgw.shape == gw.shape
    assert_backward_close(gx, rgx, g, dtype)


@pytest.mark.parametrize("impl", ["fastact", "reference"])
@pytest.mark.parametrize("per_feature", [False, True], ids=["scalar", "per_feature"])
def test_prelu_grad_weight_finite_differences(impl, per_feature):
    m = fastact if impl == "fastact" else ref
    r = rng(62)
    x = r.standard_normal((30, 3)) * 2
    g = r.standard_normal(x.shape)
    w = np.array([0.1, 0.25, 0.4]) if per_feature else 0.25
    _, gw = m.prelu_backward(g, x, w)
    h = 1e-3

    def L(wv):
        return np.sum(g * m.prelu(x, wv))

    if per_feature:
        fd = np.empty(3)
        for j in range(3):
            e = np.zeros(3)
            e[j] = h
            fd[j] = (-L(w + 2 * e) + 8 * L(w + e) - 8 * L(w - e) + L(w - 2 * e)) / (12 * h)
    else:
        fd = (-L(w + 2 * h) + 8 * L(w + h) - 8 * L(w - h) + L(w - 2 * h)) / (12 * h)
    np.testing.assert_allclose(gw, fd, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("which", ["grad_out", "saved"])
@pytest.mark.parametrize("per_feature", [False, True], ids=["scalar", "per_feature"])
@pytest.mark.parametrize(
    "dtype", [pytest.param(np.float32, id="f32"), pytest.param(np.float64, id="f64")]
)
def test_prelu_inplace_grad_weight(dtype, per_feature, which):
    r = rng(63)
    x0 = (r.standard_normal((8, 3)) * 3).astype(dtype)
    g0 = r.standard_normal(x0.shape).astype(dtype)
    w = np.array([0.1, 0.3, 0.5], dtype) if per_feature else 0.5
    want_gx, want_gw = fastact.prelu_backward(g0, x0, w)
    g, x = g0.copy(), x0.copy()
    out = g if which == "grad_out" else x
    gx, gw = fastact.prelu_backward(g, x, w, out=out)
    assert gx is out
    np.testing.assert_array_equal(gx, want_gx)
    np.testing.assert_array_equal(gw, want_gw)


@pytest.mark.parametrize("dtype", dtype_params())
def test_prelu_negative_weight_is_differentiated_from_the_input(dtype):
    x = np.array([-2.0, -0.5, 0.5, 2.0], dtype)
    y = fastact.prelu(x, -0.5)
    np.testing.assert_array_equal(y, np.array([1.0, 0.25, 0.5, 2.0], dtype))
    gx, gw = fastact.prelu_backward(np.ones_like(x), x, -0.5)
    np.testing.assert_array_equal(gx, np.array([-0.5, -0.5, 1.0, 1.0], dtype))
    assert gw == -2.5


# =============================================================================
# regressions: defects found while writing these tests, now fixed
# =============================================================================


def test_softplus_minus_inf_with_tiny_beta():
    # was a bug of the float32 kernels (fa_exp(-inf) clamped to 3.3e-308, scaled by 1/beta
    # into float32 range: 3.3e-08); fixed in 26a0061, kept as a regression test
    x = np.array([-np.inf], np.float32)
    assert fastact.softplus(x, beta=1e-300)[0] == 0.0
    assert fastact.softplus(x.astype(np.float64), beta=1e-300)[0] == 0.0


@pytest.mark.parametrize("dtype", dtype_params())
def test_zero_slope_at_minus_inf(dtype):
    x = np.array([-np.inf], dtype)
    assert fastact.leaky_relu(x, negative_slope=0.0)[0] == 0.0
    assert fastact.prelu(x, 0.0)[0] == 0.0


def _overflowing_reductions():
    big32, big64 = np.float32(3e38), 1e308
    return {
        # prelu, one slope: grad_weight = sum(x * g) = -6e38 -> float32 -inf
        "prelu_scalar_f32": lambda: fastact.prelu_backward(
            np.ones(2, np.float32), np.full(2, -big32, np.float32), 0.25
        )[1],
        # the float64 sum of the per-column partial sums overflows
        "prelu_scalar_f64": lambda: fastact.prelu_backward(np.ones(2), np.full(2, -big64), 0.25)[1],
        "prelu_per_feature_f32": lambda: fastact.prelu_backward(
            np.ones((2, 1), np.float32),
            np.full((2, 1), -big32, np.float32),
            np.array([0.25], np.float32),
        )[1],
        # bias_act_backward: grad_bias = 6e38 -> float32 inf
        "bias_act_f32": lambda: fastact.bias_act_backward(
            np.full((2, 1), big32, np.float32), np.zeros((2, 1), np.float32), "identity"
        )[1],
    }


@pytest.mark.parametrize("what", list(_overflowing_reductions()))
def test_gradient_reductions_overflow_quietly(what):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = _overflowing_reductions()[what]()
    assert np.all(np.isinf(got))


@pytest.mark.parametrize("impl", ["fastact", "reference"])
@pytest.mark.parametrize("dtype", dtype_params())
def test_bias_act_extremes(impl, dtype):
    m = fastact if impl == "fastact" else ref
    big = np.finfo(dtype).max
    z = np.array([[big, -big, big, 1.0, -big]], dtype)
    b = np.array([big, -big, -big, big, 1.0], dtype)
    with np.errstate(over="ignore"):
        pre = f64(z) + f64(b)  # +-inf where it overflows float64
    for case in BIAS_CASES:
        kw = _bias_kwargs(case)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            y = m.bias_act(z, b, case.name, **kw)
            s, extra = (y, {}) if case.saves == "output" else (z, {"bias": b})
            gz, gb = m.bias_act_backward(np.ones_like(z), s, case.name, **extra, **kw)
        if dtype == np.float64:  # float32: z + b beyond 3.4e38, see the test below
            assert_forward_close(y, truth_forward(case, pre), dtype, what=case.id)
        assert not np.isnan(y).any(), case.id


@pytest.mark.parametrize("dtype", dtype_params())
def test_unaligned_arrays(dtype):
    """Misaligned buffers (np.frombuffer at an odd offset) take the general path."""
    n = 70_001
    isz = np.dtype(dtype).itemsize

    def unaligned(values):
        a = np.ndarray((n,), dtype, buffer=np.zeros(n * isz + 3, np.uint8), offset=3)
        a[...] = values
        assert not a.flags.aligned
        return a

    x0 = np.linspace(-8, 8, n).astype(dtype)
    for case in ELEMENTWISE:
        want = case.forward(x0)
        np.testing.assert_array_equal(case.forward(unaligned(x0)), want)
        out = unaligned(0)
        r = case.forward(x0, out=out)
        assert r is out
        np.testing.assert_array_equal(out, want)
        s0 = case.saved(x0, want)
        g0 = np.cos(x0)
        np.testing.assert_array_equal(
            case.backward(unaligned(g0), unaligned(s0)), case.backward(g0, s0)
        )


def _at_line_offset(values, dtype, byte_offset):
    """a copy of values starting byte_offset bytes past a 64-byte boundary"""
    values = np.asarray(values, dtype)
    isz = values.itemsize
    raw = np.empty(values.size + 128 // isz, dtype)
    k = (-raw.ctypes.data % 64 + byte_offset) // isz
    a = raw[k : k + values.size]
    a[...] = values
    assert a.ctypes.data % 64 == byte_offset
    return a


@pytest.mark.parametrize("dtype", dtype_params())
def test_every_cache_line_offset(dtype):
    """The kernels split off the elements before the output's first 64-byte boundary
    (or the inputs', when both inputs sit on one boundary and the output on another):
    every element's result is the same at every offset of input and output in a cache
    line, forward and backward."""
    n = 3001  # above the size at which the head is split off
    isz = np.dtype(dtype).itemsize
    x0 = np.linspace(-9, 9, n).astype(dtype)
    g0 = np.cos(x0)
    for case in ELEMENTWISE:
        want = case.forward(_at_line_offset(x0, dtype, 0), n_threads=1)
        s0 = case.saved(x0, want)
        want_b = case.backward(
            _at_line_offset(g0, dtype, 0), _at_line_offset(s0, dtype, 0), n_threads=1
        )
        for xo in range(0, 64, 2 * isz):
            for oo in (0, isz, 48):
                x = _at_line_offset(x0, dtype, xo)
                out = _at_line_offset(np.zeros(n), dtype, oo)
                case.forward(x, out=out, n_threads=1)
                np.testing.assert_array_equal(out, want, err_msg=f"{case.id} {xo} {oo}")
                g = _at_line_offset(g0, dtype, xo)
                s = _at_line_offset(s0, dtype, (xo + isz * (oo == isz)) % 64)
                case.backward(g, s, out=out, n_threads=1)
                np.testing.assert_array_equal(out, want_b, err_msg=f"{case.id} {xo} {oo}")


# ---- regressions from the code review -----------------------------------------------


@pytest.mark.parametrize("m", [fastact, ref], ids=["fastact", "reference"])
def test_huge_thread_counts_are_clamped(m):
    x = np.linspace(-3, 3, 200_001).astype(np.float32)
    want = m.relu(x, n_threads=1)
    for nt in (1000, 2**31, 10**30):
        np.testing.assert_array_equal(m.relu(x, n_threads=nt), want)


@pytest.mark.parametrize("m", [fastact, ref], ids=["fastact", "reference"])
def test_prelu_out_may_alias_weight(m):
    buf = np.zeros((3, 4))
    w = buf[0]
    w[:] = 0.5
    y = m.prelu(-np.ones((3, 4)), w, out=buf)
    np.testing.assert_array_equal(y, np.full((3, 4), -0.5))


@pytest.mark.parametrize("m", [fastact, ref], ids=["fastact", "reference"])
def test_hardtanh_backward_at_float32_bounds(m):
    x = np.array([2.0, -1.0, 0.5], np.float32)
    y = m.hardtanh(x, 0.1, 0.7)
    np.testing.assert_array_equal(
        m.hardtanh_backward(np.ones(3, np.float32), y, 0.1, 0.7),
        np.array([0.0, 0.0, 1.0], np.float32),
    )
    gz, gb = m.bias_act_backward(
        np.ones((1, 3), np.float32), y[None, :], "hardtanh", min_val=0.1, max_val=0.7
    )
    np.testing.assert_array_equal(gz, np.array([[0.0, 0.0, 1.0]], np.float32))


@pytest.mark.parametrize("dtype", dtype_params())
def test_extreme_parameters_stay_finite(dtype):
    x = np.array([0.0, -1.0, -1e30, 2.0], dtype)
    for name, kw in [
        ("softplus", {"beta": 2.0**128}),
        ("softplus", {"beta": 2.0**-130}),
        ("celu", {"alpha": 2.0**-126}),
        ("celu", {"alpha": 2.0**126}),
        ("leaky_relu", {"negative_slope": 1e-50}),
        ("softplus", {"beta": 1.5, "threshold": 0.15}),
    ]:
        y = getattr(fastact, name)(x, **kw)
        t = getattr(ref, name)(x.astype(np.float64), **kw)
        assert not np.isnan(y).any(), (name, kw, y)
        assert_forward_close(y, t, dtype, what=f"{name}{kw}", x=x)
        g = np.ones_like(x)
        s = y if fastact.ACTIVATIONS[name].saves == "output" else x
        gb = getattr(fastact, name + "_backward")(g, s, **kw)
        tb = getattr(ref, name + "_backward")(g.astype(np.float64), s.astype(np.float64), **kw)
        assert_backward_close(gb, tb, g, dtype)


@pytest.mark.parametrize("dtype", dtype_params())
def test_tanh_keeps_the_sign_of_zero(dtype):
    y = fastact.tanh(np.array([-0.0, 0.0], dtype))
    assert np.signbit(y[0]) and not np.signbit(y[1])


@pytest.mark.skipif(PURE, reason="the native kernels' scratch (the reference computes in float64)")
def test_reduction_scratch_stays_small():
    """bias gradients of a wide, short batch: at most 64 blocks of partial sums."""
    import tracemalloc

    z = np.ones((64, 100_000), np.float32)
    tracemalloc.start()
    fastact.bias_act_backward(z, z, "relu")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 3 * z.nbytes  # grad_z + grad_bias; not 2 x 8 bytes per element more


@pytest.mark.skipif(PURE, reason="the native kernels release the GIL; the reference is NumPy")
def test_concurrent_python_threads_get_their_own_results():
    """Kernels run with the GIL released: several Python threads calling at once
    (each with its own arrays and n_threads) must each get exactly the serial result."""
    import threading

    r = rng(77)
    xs = [(r.standard_normal(300_001) * 4).astype(np.float32) for _ in range(4)]
    want = [(fastact.gelu(x, n_threads=1), fastact.silu_backward(x, x, n_threads=1)) for x in xs]
    got = [None] * len(xs)
    barrier = threading.Barrier(len(xs))

    def work(i):
        barrier.wait()
        for _ in range(5):
            got[i] = (
                fastact.gelu(xs[i], n_threads=1 + i % 2),
                fastact.silu_backward(xs[i], xs[i], n_threads=1 + i % 2),
            )

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(xs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for (wf, wb), (gf, gb) in zip(want, got):
        np.testing.assert_array_equal(gf, wf)
        np.testing.assert_array_equal(gb, wb)


@pytest.mark.parametrize("slope", [0.01, 0.2, 0.25, 1 / 3, 5.0, 0.0, 1e-30, 3e20, -0.5])
def test_leaky_relu_float32_is_the_product_rounded_once(slope):
    """float32 leaky_relu runs in float (slope a float32: x * slope; else fma of a
    two-float slope); it must give the float64 product rounded once, as the double path did
    (near-ties aside, which random inputs do not hit), and the right infinities."""
    r = rng(91)
    x = np.concatenate(
        [(r.standard_normal(20_000) * 3), [-np.inf, np.inf, -0.0, 0.0, -1e-45, -3e38]]
    ).astype(np.float32)
    g = np.concatenate([r.standard_normal(20_000), [-np.inf, np.inf, 1, -1, 1, 1]]).astype(
        np.float32
    )
    with np.errstate(all="ignore"):
        want = np.where(
            x > 0, x, np.where((slope == 0) & ~np.isnan(x), 0.0, f64(x) * slope)
        ).astype(np.float32)
    y = fastact.leaky_relu(x, slope)
    np.testing.assert_array_equal(y, want)
    assert np.array_equal(np.signbit(y), np.signbit(want))
    if slope >= 0:
        with np.errstate(all="ignore"):
            wb = (f64(g) * np.where(want > 0, 1.0, slope)).astype(np.float32)
        np.testing.assert_array_equal(fastact.leaky_relu_backward(g, want, slope), wb)
    np.testing.assert_array_equal(
        fastact.prelu(x, np.float32(slope) if abs(slope) < 1e30 else 0.5),
        fastact.reference.prelu(x, np.float32(slope) if abs(slope) < 1e30 else 0.5),
    )


@pytest.mark.parametrize("shape", [(1000,), (20, 50), (3, 7, 11), (65536,), (65537,)], ids=str)
@pytest.mark.parametrize("dtype", dtype_params())
def test_prelu_one_float_slope_shortcuts_match_the_general_path(dtype, shape):
    """prelu / prelu_backward with a plain-float slope take shortcuts (leaky_relu's loops,
    a NumPy float64 sum for small arrays); they must give what the general path gives."""
    r = rng(92)
    x = (r.standard_normal(shape) * 3).astype(dtype)
    g = r.standard_normal(shape).astype(dtype)
    x.reshape(-1)[:4] = [0.0, -0.0, -np.inf, np.inf]
    for w in (0.3, -0.5, 0.0):
        w_arr = np.array([w], dtype)  # the general path (a 1-element array)
        np.testing.assert_array_equal(fastact.prelu(x, w), fastact.prelu(x, w_arr))
        gx, gw = fastact.prelu_backward(g, x, w)
        gx2, gw2 = fastact.prelu_backward(g, x, w_arr)
        np.testing.assert_array_equal(gx, gx2)
        assert gw.shape == () and gw.dtype == dtype
        np.testing.assert_allclose(gw, gw2[0], rtol=1e-5 if dtype == np.float32 else 1e-12)
        rgx, rgw = ref.prelu_backward(g, x, w)
        assert_backward_close(gx, rgx, g, dtype)
    xn = x.copy()
    xn.reshape(-1)[5] = np.nan
    gx, gw = fastact.prelu_backward(g, xn, 0.3)
    assert np.isnan(gw) and np.isnan(gx.reshape(-1)[5])
    assert np.isnan(fastact.prelu(xn, 0.3).reshape(-1)[5])


@pytest.mark.parametrize("alpha", [2.0**126, 1e36, 1e33, 3e5, 1.0, 1e-20, 2.0**-126])
def test_celu_float32_large_and_small_alpha_within_4_ulp(alpha):
    """x / alpha in float32 is subnormal near 0 when alpha is large (4.6% off at 2**126
    before): celu within 4 ulp of the float64 truth over alpha's whole range, on every
    SIMD path of this CPU, forward and backward."""
    from fastact import _activations as ext

    x = -np.concatenate([np.logspace(-44, 38, 4000), [0.0, 1e-30, 0.085]]).astype(np.float32)
    x = np.concatenate([x, -x])
    with np.errstate(all="ignore"):
        truth = np.where(x > 0, f64(x), alpha * np.expm1(f64(x) / alpha)).astype(np.float32)
    cur = ext.get_isa()
    try:
        for cap in _paths_of_this_cpu():
            ext.set_isa(cap)
            y = fastact.celu(x, alpha)
            err = np.abs(f64(y) - f64(truth)) / np.spacing(np.abs(truth))
            assert err.max() <= 4, (cap, x[err.argmax()], y[err.argmax()], truth[err.argmax()])
            assert np.array_equal(np.signbit(y), np.signbit(truth))
            g = np.ones_like(y)
            truth_b = np.where(y > 0, 1.0, f64(y) / alpha + 1.0)
            assert_backward_close(fastact.celu_backward(g, y, alpha), truth_b, g, np.float32)
    finally:
        ext.set_isa({"avx2+fma": "avx2"}.get(cur, cur))


_F32_MAX = float(np.finfo(np.float32).max)


@pytest.mark.parametrize(
    "g, want",
    [
        ([_F32_MAX, 1e30], -_F32_MAX),  # 1e30 is below half an ulp of FLT_MAX: rounds down
        ([_F32_MAX, 1.1e31], -np.inf),  # above half an ulp: rounds to -inf
        ([_F32_MAX, _F32_MAX], -np.inf),
    ],
)
def test_prelu_one_slope_gradient_rounds_to_float32_once(g, want):
    """The float32 slope gradient is the double sum rounded once, on every path: the
    small-array shortcut, the general path, a 1-element weight and the twin."""
    x = np.array([-1.0, -1.0], np.float32)
    g = np.array(g, np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for gw in (
            fastact.prelu_backward(g, x, 0.25)[1],
            fastact.prelu_backward(g, x, np.float32(0.25))[1],
            fastact.prelu_backward(g, x, np.array([0.25], np.float32))[1][0],
            ref.prelu_backward(g, x, 0.25)[1],
        ):
            assert gw.dtype == np.float32 and gw == np.float32(want)


@pytest.mark.parametrize("impl", ["fastact", "reference"])
@pytest.mark.parametrize("n", [4, 3000])
def test_prelu_float64_slope_gradient_survives_overflowing_partial_sums(impl, n):
    """Near float64's range the double partial sums overflow (+inf and -inf column sums
    gave NaN and a NumPy warning); the gradient is then summed again scaled: the true sum
    when it is in range, inf with its sign when it is not, whatever the layout."""
    m = fastact if impl == "fastact" else ref
    x = np.full(n, -1e308)
    g = np.ones(n)
    g[: n // 2] = -1.0
    g[0] = -1.5  # sum of g * x over x < 0: 0.5e308
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for a, b in [(g, x), (g[::-1], x[::-1])]:
            for w in (0.25, np.array([0.25])):
                gw = m.prelu_backward(a, b, w)[1]
                np.testing.assert_allclose(gw, 5e307, rtol=1e-12)
        x2 = np.full(2048, -1e308)
        g2 = np.ones(2048)
        g2[1::1024] = -1.0  # the true sum, -2.044e311, is beyond the range
        for a, b in [(g2, x2), (g2[::-1], x2[::-1])]:
            assert m.prelu_backward(a, b, 0.25)[1] == -np.inf
        per_unit = m.prelu_backward(
            np.array([[1.0, 1.0], [1.0, -1.0], [-1.0, 1.0]]),
            np.full((3, 2), -1e308),
            np.array([0.25, 0.25]),
        )[1]
        np.testing.assert_allclose(per_unit, [-1e308, -1e308], rtol=1e-15)
        # the huge terms cancel: the ordinary ones must survive the re-sum whole
        x3 = np.array([-1e308] * 4 + [-1.0] * 1000)
        g3 = np.concatenate([[1.0, 1.0, -1.0, -1.0], np.full(1000, 1e-4)])
        np.testing.assert_allclose(m.prelu_backward(g3, x3, 0.25)[1], -0.1, rtol=1e-13)
        g3[4:] = 1e-300
        np.testing.assert_allclose(m.prelu_backward(g3, x3, 0.25)[1], -1e-297, rtol=1e-13)
        # in place the inputs are gone once the kernel has run: the direct sum, quietly
        for which in ("g", "x"):
            x4 = -np.ones(7)
            g4 = np.array([1e308, 1e308, -1e308, -1e308, 3.0, 0.1, 1e-5])
            np.testing.assert_allclose(m.prelu_backward(g4, x4, 0.25)[1], -3.10001, rtol=1e-14)
            out = g4 if which == "g" else x4
            assert not np.isfinite(m.prelu_backward(g4, x4, 0.25, out=out)[1])


# ---- float32 gelu on every SIMD path the CPU has: a sampled version of the exhaustive sweep ----
# tools/sweep_gelu_f32.py runs every float32 of [-15, 16] (where the result is neither 0 nor
# x, the derivative neither 0 nor 1) through each path; here every 997th, on each path.


def _paths_of_this_cpu():
    from fastact import _activations as ext

    cur = ext.get_isa()
    got = []
    for cap in ("avx512", "avx2", "baseline"):
        name = ext.set_isa(cap)
        if name not in [g[1] for g in got]:
            got.append((cap, name))
    ext.set_isa({"avx2+fma": "avx2"}.get(cur, cur))
    return [cap for cap, name in got]


@contextlib.contextmanager
def _each_path():
    """(set_isa, the SIMD paths of this CPU): loop over the paths, calling set_isa(cap);
    the path in use comes back at the end.  Pure-NumPy mode: one "twin" pass."""
    if PURE:
        yield (lambda cap: None), ["twin"]
        return
    ext = importlib.import_module("fastact._activations")
    cur = ext.get_isa()
    try:
        yield ext.set_isa, _paths_of_this_cpu()
    finally:
        ext.set_isa({"avx2+fma": "avx2"}.get(cur, cur))


@pytest.mark.skipif(PURE, reason="the native SIMD paths")
@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu_float32_sampled_sweep_every_path(approximate):
    from fastact import _activations as ext

    lo, hi = np.float32(-15.0).view(np.uint32), np.float32(16.0).view(np.uint32)
    bits = np.concatenate(
        [
            np.arange(0, int(hi) + 1, 997, dtype=np.uint64),
            np.arange(0x80000000, int(lo) + 1, 997, dtype=np.uint64),
        ]
    )
    x = bits.astype(np.uint32).view(np.float32)
    g = rng(3).standard_normal(x.size).astype(np.float32)
    case = next(
        c for c in CASES if c.name == "gelu" and c.params.get("approximate", "none") == approximate
    )
    want_y = truth_forward(case, x)
    want_gx = truth_backward(case, g, x)
    cur = ext.get_isa()
    try:
        for cap in _paths_of_this_cpu():
            ext.set_isa(cap)
            y = case.forward(x)
            assert_forward_close(
                y, want_y, np.float32, what=f"gelu {approximate} forward, {cap}", x=x
            )
            gx = case.backward(g, x)
            assert_backward_close(
                gx, want_gx, g, np.float32, what=f"gelu {approximate} backward, {cap}", s=x
            )
    finally:
        ext.set_isa({"avx2+fma": "avx2"}.get(cur, cur))


@pytest.mark.skipif(fastact.PUREPYTHON, reason="the native kernels' paths")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dense_layers_compute_the_activation_of_z_plus_b_bit_for_bit(dtype):
    """The bias + activation pass of a dense layer gives f(z + b) exactly as the activation
    kernel gives it, on every SIMD path of this CPU (a hand-vectorised forward without a
    bias loop of its own runs over z + b in blocks): W = I makes x @ W exact."""
    from fastact import _activations as ext

    r = rng(11)
    x = (r.standard_normal((37, 53)) * 3).astype(dtype)
    b = r.standard_normal(53).astype(dtype)
    eye = np.eye(53, dtype=dtype)
    cur = ext.get_isa()
    try:
        for cap in _paths_of_this_cpu():
            ext.set_isa(cap)
            for name in fastact.nn.MLP_ACTIVATIONS:
                if name in ("identity", "prelu"):
                    continue
                y, _ = fastact.dense_forward(x, eye, b, name)
                want = getattr(fastact, name)(x + b)
                np.testing.assert_array_equal(y, want, err_msg=f"{name}, {cap}")
    finally:
        ext.set_isa({"avx2+fma": "avx2"}.get(cur, cur))


def _row_by_row_sums(dz):
    """db[j] = sum_r dz[r, j] in double, added row after row (the kernels' order)"""
    db = np.zeros(dz.shape[1])
    for row in dz:
        db += row.astype(np.float64)
    return db


@pytest.mark.skipif(fastact.PUREPYTHON, reason="the native kernels' paths")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bias_gradient_sums_are_the_row_by_row_sums_bit_for_bit(dtype):
    """The fused backward's bias gradient (its column sums in registers, 32 columns at a
    time, then the last columns in memory) is the double sum of dz row after row, bit
    for bit, on every path of this CPU, for every activation of a dense layer, with a
    bias and without, whole column blocks and the columns after them (and dz is the
    activation's backward, within its contract)."""
    from fastact import _activations as ext
    from fastact import _registry as R

    r = rng(14)
    cur = ext.get_isa()
    try:
        for cap in _paths_of_this_cpu():
            ext.set_isa(cap)
            for cols in (5, 32, 64, 75):
                z = (r.standard_normal((37, cols)) * 3).astype(dtype)
                g = (r.standard_normal((37, cols)) * 1e3).astype(dtype)
                b = r.standard_normal(cols).astype(dtype)
                cases = [(n, {}) for n in sorted(R.BIAS_ACT_NAMES)]
                # softplus's three kernel ids: beta = 1 (pow2), 1.5, 0.5 (far)
                more = [("gelu", {"approximate": "tanh"})] + [
                    ("softplus", {"beta": bt}) for bt in (1.5, 0.5)
                ]
                for name, kw in cases + more:
                    kname, (a_, b_, c_, d_) = R.kernel_params(name, kw, "test")
                    kid = ext.ACT_IDS[kname]
                    ins = R.saves(name) == "input"
                    s = z if ins else getattr(fastact, name)(z + b, **kw)
                    for bias in (b, None) if ins else (None,):
                        dz = np.empty_like(g)
                        db = np.empty(cols)
                        ext.bias_backward(kid, g, s, bias, dz, db, 37, cols, a_, b_, c_, d_, 1)
                        what = f"{kname}, {cap}, {cols} columns, bias={bias is not None}"
                        np.testing.assert_array_equal(db, _row_by_row_sums(dz), err_msg=what)
                        u = s + bias if bias is not None else s
                        want = getattr(fastact, name + "_backward")(g, u, **kw)
                        f32 = dtype == np.float32
                        np.testing.assert_allclose(
                            dz, want, rtol=1e-5 if f32 else 1e-12, atol=0, err_msg=what
                        )
    finally:
        ext.set_isa({"avx2+fma": "avx2"}.get(cur, cur))


@pytest.mark.skipif(fastact.PUREPYTHON, reason="the native kernels' paths")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_forward_that_keeps_the_derivative(dtype):
    """fa_bias_fwd_d (what a dense layer with an input-saving activation keeps for its
    backward): y = f(z + b) and d = f'(z + b) equal the activation's forward and its
    backward with a gradient of ones, bit for bit, on every path of this CPU, fused loop
    or fallback, with a bias or none, and d written over z."""
    from fastact import _activations as ext
    from fastact import _registry as R

    r = rng(12)
    z0 = (r.standard_normal((9, 37)) * 4).astype(dtype)
    b = r.standard_normal(37).astype(dtype)
    # softplus's three kernel ids: beta = 1 (pow2), 1.5, 0.5 (far)
    more = [("gelu", {"approximate": "tanh"})] + [("softplus", {"beta": bt}) for bt in (1.5, 0.5)]
    cases = [
        (n, {})
        for n in fastact.nn.MLP_ACTIVATIONS
        if n not in ("identity", "prelu") and R.saves(n) == "input"
    ] + more
    cur = ext.get_isa()
    fused = set()
    try:
        for cap in _paths_of_this_cpu():
            ext.set_isa(cap)
            for name, kw in cases:
                kname, (a_, b_, c_, d_) = R.kernel_params(name, kw, "test")
                kid = ext.ACT_IDS[kname]
                for bias in (b, None):
                    u = z0 + bias if bias is not None else z0
                    want_y = getattr(fastact, name)(u, **kw)
                    want_d = getattr(fastact, name + "_backward")(np.ones_like(u), u, **kw)
                    z = z0.copy()
                    y = np.empty_like(z)
                    if ext._bias_forward_d(kid, z, bias, y, z, 9, 37, a_, b_, c_, d_):
                        fused.add(kname)
                    what = f"{name}, {cap}, bias={bias is not None}"
                    np.testing.assert_array_equal(y, want_y, err_msg=what)
                    np.testing.assert_array_equal(z, want_d, err_msg=what)  # d over z
    finally:
        ext.set_isa({"avx2+fma": "avx2"}.get(cur, cur))
    if dtype == np.float32 and ext.avx2_compiled() and ext.cpu_has_avx2_fma():
        assert {"silu", "gelu_tanh"} <= fused


# ---- the piecewise-linear functions: the same bits on every path ----
# The SIMD paths run hand-written mask loops (float32 and float64 on AVX2+FMA, some float32
# on AVX-512) in place of the portable selects; they must agree to the bit, NaN, signed
# zeros, infinities and the kinks included, over lengths that leave vector tails.


def _kink_values(dtype, kinks):
    tiny = np.finfo(dtype).smallest_subnormal
    vals = [0.0, -0.0, np.inf, -np.inf, np.nan, tiny, -tiny, 1e-30, -1e-30, 1e30, -1e30]
    for k in kinks:
        k = dtype(k)
        vals += [k, np.nextafter(k, dtype(np.inf)), np.nextafter(k, dtype(-np.inf))]
    return np.array(vals, dtype)


_PW_CASES = [
    ("relu", {}, (0,)),
    ("relu6", {}, (0, 6)),
    ("hardtanh", {}, (-1, 1)),
    ("hardtanh", {"min_val": -0.5, "max_val": 2.0}, (-0.5, 2)),
    ("hardsigmoid", {}, (-3, 3)),
    ("hardswish", {}, (-3, 3)),
    ("leaky_relu", {}, (0,)),
    ("leaky_relu", {"negative_slope": 0.3}, (0,)),
]


@pytest.mark.skipif(PURE, reason="the native SIMD paths")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name, kw, kinks", _PW_CASES, ids=lambda c: str(c))
def test_piecewise_linear_same_bits_on_every_path(name, kw, kinks, dtype):
    from fastact import _activations as ext

    r = rng(21)
    special = _kink_values(dtype, kinks)
    x = np.concatenate([special, (r.standard_normal(200) * 5).astype(dtype), special[::-1]])
    g = np.concatenate([r.standard_normal(x.size - 3), [np.inf, -0.0, np.nan]]).astype(dtype)
    f = getattr(fastact, name)
    fb = getattr(fastact, name + "_backward")
    got = {}
    cur = ext.get_isa()
    try:
        for cap in _paths_of_this_cpu():
            ext.set_isa(cap)
            for n in [x.size - k for k in range(16)] + [5, 1]:  # every tail length
                y = f(x[:n], **kw)
                s = y if name in ("relu", "relu6", "hardtanh", "leaky_relu") else x[:n]
                got.setdefault(n, []).append((cap, y, fb(g[:n], s, **kw)))
    finally:
        ext.set_isa({"avx2+fma": "avx2"}.get(cur, cur))
    for n, runs in got.items():
        cap0, y0, d0 = runs[0]
        for cap, y, d in runs[1:]:
            what = f"{name} {kw} {np.dtype(dtype).name}, n={n}: {cap} against {cap0}"
            # bits, not values: -0.0 == 0.0 and NaN != NaN would hide a difference
            np.testing.assert_array_equal(y.view(np.uint8), y0.view(np.uint8), err_msg=what)
            if name == "hardswish" and "baseline" in (cap, cap0):
                # s/3 + 1/2: one FMA where the CPU has it (gcc contracts the portable
                # body), a product and a sum on the baseline path: two roundings of a
                # value below 1.5 apart at most
                eps = np.finfo(dtype).eps
                np.testing.assert_allclose(d, d0, rtol=0, atol=2 * eps, err_msg=what)
            else:
                np.testing.assert_array_equal(d.view(np.uint8), d0.view(np.uint8), err_msg=what)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "name, kw", [("elu", {}), ("elu", {"alpha": 0.5}), ("selu", {}), ("celu", {"alpha": 2.0})]
)
def test_elu_family_keeps_the_sign_of_zero_on_every_path(name, kw, dtype):
    """f(+0) = +0 and f(-0) = -0 (alpha expm1(+-0), as PyTorch): the float32 SIMD elu
    gave -0 for +0, and every path +0 for -0 (the portable expm1's -0 + 0)."""
    x = np.zeros(37, dtype)
    x[1::2] = -0.0
    f = getattr(fastact, name)
    paths = [None] if PURE else _paths_of_this_cpu()
    if not PURE:
        from fastact import _activations as ext

        cur = ext.get_isa()
    try:
        for cap in paths:
            if cap is not None:
                ext.set_isa(cap)
            for n in (37, 16, 5, 1):  # vector bodies and tails
                y = f(x[:n], **kw)
                np.testing.assert_array_equal(np.signbit(y), np.signbit(x[:n]), err_msg=str(cap))
                assert not np.any(y)
    finally:
        if not PURE:
            ext.set_isa({"avx2+fma": "avx2"}.get(cur, cur))


def test_kink_values_of_hardswish_backward_are_pytorchs():
    """PyTorch 2.x: hardswish'(-3) = 0 and hardswish'(3) = 1 (the neighbouring branches)."""
    for dtype in (np.float32, np.float64):
        k = np.array([-3.0, 3.0], dtype)
        x = np.concatenate([k, np.nextafter(k, dtype(0))])  # the kinks and just inside
        got = fastact.hardswish_backward(np.ones_like(x), x)
        want = x / 3 + 0.5
        want[:2] = [0.0, 1.0]
        np.testing.assert_allclose(got, want, rtol=2e-7)
        np.testing.assert_array_equal(got[:2], [0.0, 1.0])
        np.testing.assert_array_equal(ref.hardswish_backward(np.ones_like(x), x)[:2], [0.0, 1.0])


def test_parameter_checks_found_in_review():
    """Zero parameters are not cached by value (0.0 == -0.0 as keys); float32-unsafe elu
    alphas and tiny softplus betas are refused; a huge softplus threshold warns nothing."""
    import warnings

    x = np.array([-1.0, -5.0])
    for lo, sign in ((-0.0, True), (0.0, False), (-0.0, True)):
        assert np.all(np.signbit(fastact.hardtanh(x, lo, 1.0)) == sign)
        assert np.all(np.signbit(fastact.elu(x, -lo)) == sign)  # -alpha expm1(x) > 0 for x < 0
    with pytest.raises(
        ValueError, match=re.escape("elu: alpha must be at most 3.4028235e+38 in magnitude")
    ):
        fastact.elu(np.ones(2, np.float32), alpha=1e39)
    with pytest.raises(ValueError, match=re.escape("softplus: beta must be at least 2**-1022")):
        fastact.softplus(np.ones(2), beta=1e-320)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(all="raise"):
            y = fastact.softplus(np.array([1.0]), threshold=1e39)
    assert y[0] == pytest.approx(np.log1p(np.e))
    with pytest.raises(TypeError, match=re.escape("hardtanh: max_val must be a real number")):
        fastact.hardtanh(x, 0.0, [1.0])  # a zero beside an unhashable argument
    with pytest.raises(
        ValueError, match=re.escape("differentiate it from the input instead: 1 for x > 0")
    ):
        fastact.elu_backward(np.ones(2), np.array([-0.5, 1.0]), alpha=-1.0)
    with pytest.raises(ValueError, match=re.escape("use fastact.prelu with weight=-0.5")):
        fastact.leaky_relu_backward(np.ones(2), np.array([-0.5, 1.0]), negative_slope=-0.5)


def test_elu_backward_twin_adds_alpha_as_the_output_holds_it():
    """y + alpha far left: the float32 output saturates at -float32(alpha), so the twin
    adds float32(alpha) as the kernels do (with the double alpha it returned alpha's
    rounding error, up to 15x the contract, for alpha = 100.7)."""
    for alpha in (10.1, 100.7):
        x = np.linspace(-40, -3, 4001, dtype=np.float32)
        y = fastact.elu(x, alpha=alpha)
        g = np.ones_like(y)
        nat = fastact.elu_backward(g, y, alpha=alpha)
        twin = ref.elu_backward(g, y, alpha=alpha)
        tol = 8 * np.spacing(np.abs(twin).astype(np.float32)) + 2e-7  # the contract
        assert np.all(np.abs(nat - twin) <= tol)
        assert np.all(np.abs(twin[:100]) < 1e-6)  # alpha exp(x) ~ 4e-17 at x = -40


# ---- softplus with a small beta where e^(beta x) underflows but e^(beta x) / beta does not ----


def _softplus_mp(x, beta):
    with mpmath.workdps(60):
        b, v = mpmath.mpf(beta), mpmath.mpf(float(x))
        if b * v > 20:
            return float(x)
        return float(mpmath.log1p(mpmath.exp(b * v)) / b)


def _sigmoid_mp(z):
    with mpmath.workdps(60):
        return float(1 / (1 + mpmath.exp(-mpmath.mpf(z))))


# (beta, z = beta x): below z = -708 e^z is subnormal in double (0 below -745) while
# e^z / beta is a normal number; 2**-1000 at -740 was 0.9% off, 2**-100 at -744.4 gave 0
_SOFTPLUS_FAR = [
    (2.0**-1000, [-700.5, -710.0, -740.0, -745.0, -800.0, -1000.0, -1300.0, -1400.0]),
    (2.0**-100, [-705.0, -720.0, -744.4, -760.0, -770.0]),
    (2.0**-20, [-709.0, -715.0, -719.8, -722.0]),
    (1e-5, [-702.8, -712.0, -719.8]),
    (1e-300, [-700.0, -750.0, -1000.0, -1390.0]),
]


@pytest.mark.parametrize("impl", ["fastact", "reference"])
@pytest.mark.parametrize("beta, zs", _SOFTPLUS_FAR, ids=[f"{b:g}" for b, _ in _SOFTPLUS_FAR])
def test_softplus_float64_small_beta_deep_negative_vs_mpmath(impl, beta, zs):
    """e^z / beta with e^z subnormal or 0 in double: e^(z + 700) (1/beta) e^-700 (the
    kernel and its twin, the oracle).  Within 1e-12 of mpmath (the rounding of x = z / beta
    and of beta x, |z| 2^-53 relative, is mpmath's input as it is the kernel's); the
    backward, sigma(beta x), was never affected."""
    m = fastact if impl == "fastact" else ref
    x = np.array(zs) / beta
    want = np.array([_softplus_mp(v, beta) for v in x])
    assert (np.abs(want) >= F64_TINY).all()  # normal results: the relative bound alone
    np.testing.assert_allclose(m.softplus(x, beta=beta), want, rtol=1e-12, atol=0)
    want_d = np.array([_sigmoid_mp(beta * v) for v in x])
    got_d = m.softplus_backward(np.ones_like(x), x, beta=beta)
    np.testing.assert_allclose(got_d, want_d, rtol=1e-12, atol=F64_TINY)
    # the limits and NaN are kept
    y = m.softplus(np.array([-np.inf, np.nan, 30 / beta]), beta=beta)
    assert y[0] == 0.0 and np.isnan(y[1]) and y[2] == 30 / beta


@pytest.mark.parametrize("beta", [2.0**-60, 2.0**-20, 0.5, 2.0**-126, 1e-30, 1.0, 2.0, 2.0**100])
def test_softplus_float32_small_beta_where_float_exp_underflows(beta):
    """float32 softplus over every 9973rd float32 (and the points where e^(beta x) < 2^-126
    but e^(beta x) / beta is normal), on every path of this CPU: within 1 ulp where the
    result is a normal float32 (the double body, beta < 1), 4 ulp on the float path
    (beta = 2^k >= 1), 2 units of 2^-149 where it is subnormal.  A power-of-two beta below 1
    went to the float kernel: beta = 2**-60, x = -104 * 2**60 gave 0 for 7.9e-28."""
    from fastact import _validate as V

    bits = np.arange(0, 0x7F800000, 9973, dtype=np.uint64).astype(np.uint32)
    x = bits.view(np.float32)
    with np.errstate(over="ignore"):  # (beyond float32 for the smallest betas: dropped)
        far = (np.linspace(-200, -80, 4001) / beta).astype(np.float32)
    x = np.concatenate([x, -x, far[np.isfinite(far)]])
    with np.errstate(over="ignore"):
        want = ref.softplus(f64(x), beta=beta)
        want32 = want.astype(np.float32)
    fin = np.isfinite(want32)
    normal = fin & (np.abs(want32) >= np.finfo(np.float32).tiny)
    tol_ulp = 4.0 if V.softplus_kernel(V.params_softplus(beta, 20.0)) == "softplus_pow2" else 1.0
    # the default beta keeps the float kernels
    assert V.softplus_kernel(V.params_softplus(1.0, 20.0)) == "softplus_pow2"
    with _each_path() as (set_isa, paths):
        for cap in paths:
            set_isa(cap)
            y = fastact.softplus(x, beta=beta)
            err = np.abs(f64(y) - want)
            ulp = err[normal] / f64(np.spacing(np.abs(want32[normal])))
            assert ulp.max() <= tol_ulp, (cap, x[normal][ulp.argmax()], ulp.max())
            sub = fin & ~normal
            assert (err[sub] <= 2 * 2.0**-149).all(), (cap, x[sub][err[sub].argmax()])
            assert np.array_equal(y[~fin], want32[~fin])


def test_softplus_float32_repro_small_pow2_beta():
    b = 2.0**-60
    x = np.array([-104 / b, -95 / b, -88 / b], np.float32)
    want = np.array([_softplus_mp(v, b) for v in x])
    np.testing.assert_allclose(f64(fastact.softplus(x, beta=b)), want, rtol=2**-23)


# beta -> the kernel id: softplus_far (the far tail) for beta < 1 only
_SOFTPLUS_IDS = [
    (2.0**-1022, "softplus_far"),
    (1e-300, "softplus_far"),
    (2.0**-60, "softplus_far"),
    (0.25, "softplus_far"),
    (0.5, "softplus_far"),
    (0.7, "softplus_far"),
    (1 - 2.0**-53, "softplus_far"),
    (1.0, "softplus_pow2"),
    (2.0, "softplus_pow2"),
    (2.0**126, "softplus_pow2"),
    (1 + 2.0**-52, "softplus"),
    (1.5, "softplus"),
    (3.0, "softplus"),
    (2.0**127, "softplus"),
    (1e300, "softplus"),
]


def test_softplus_far_tail_kernel_only_below_beta_one():
    """The far tail (e^(z + 700) (1/beta) e^-700 below z = -700) costs 15-20% per element:
    its own kernel id, softplus_far, for beta < 1 (powers of two included), where
    e^(beta x) / beta can be normal where e^(beta x) underflows.  beta >= 1 keeps the
    bodies without it (softplus; softplus_pow2, the float32 float kernels): e^(beta x) / beta
    <= e^(beta x) is subnormal wherever e^(beta x) is.  The layers and bias_act take
    the same id (kernel_params); the twin has the three names; the native table has it."""
    from fastact import _registry as R
    from fastact import _validate as V

    for beta, want in _SOFTPLUS_IDS:
        p = V.params_softplus(beta, 20.0)
        assert V.softplus_kernel(p) == want, beta
        assert R.kernel_params("softplus", {"beta": beta}, "test") == (want, p), beta
    assert {"softplus", "softplus_pow2", "softplus_far"} <= set(ref._MATH)
    if not PURE:
        ids = importlib.import_module("fastact._activations").ACT_IDS
        assert {"softplus", "softplus_pow2", "softplus_far"} <= set(ids)
        assert ids["softplus_far"] == len(ids) - 1  # new ids at the end: the others keep theirs


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softplus_below_beta_one_gives_the_far_tail_on_every_path(dtype):
    """The public softplus and bias_act with beta < 1 run softplus_far on every path of this
    CPU, both dtypes: results the body without the far tail returned as 0 (float64:
    beta = 2**-100, beta x = -744.4, 6.5e-294; float32: beta = 2**-60, beta x = -104,
    7.9e-28) within the contract of mpmath; a Dense layer with that beta trains as its twin."""
    if dtype == np.float64:
        beta, zs, rtol = 2.0**-100, [-720.0, -744.4, -760.0, -770.0], 1e-12
    else:
        beta, zs, rtol = 2.0**-60, [-90.0, -95.0, -104.0], 2.0**-23
    x = (np.array(zs) / beta).astype(dtype)
    want = np.array([_softplus_mp(v, beta) for v in x])
    with _each_path() as (set_isa, paths):
        for cap in paths:
            set_isa(cap)
            y = fastact.softplus(x, beta=beta)
            np.testing.assert_allclose(f64(y), want, rtol=rtol, atol=0, err_msg=cap)
            yb = fastact.bias_act(x[None, :], np.zeros_like(x), "softplus", beta=beta)
            np.testing.assert_array_equal(yb[0], y, err_msg=cap)
    # a network with beta < 1 (softplus_far in its program) trains as its twin
    X = rng(3).standard_normal((7, 3)).astype(dtype)
    y = rng(4).standard_normal((7, 2)).astype(dtype)
    tol = 1e-10 if dtype == np.float64 else 1e-4
    for beta in (0.25, 0.5):
        act = ("softplus", {"beta": beta})
        a = fastact.MLP([3, 4, 2], act, loss="mse", dtype=dtype, seed=1)
        r = ref.MLP([3, 4, 2], act, loss="mse", dtype=dtype, seed=1)
        oa, orf = fastact.optim.Adam(1e-2), fastact.optim.Adam(1e-2)
        for _ in range(3):
            la, lr = a.train_step(X, y, oa), r.train_step(X, y, orf)
            assert abs(la - lr) <= tol * max(1.0, abs(lr))
        assert np.max(np.abs(f64(a.theta) - f64(r.theta))) <= tol * np.max(np.abs(f64(r.theta)))


# ---- celu's twin with a large alpha: x / alpha subnormal near 0 ----


def _celu_mp(x, alpha):
    with mpmath.workdps(60):
        a, v = mpmath.mpf(alpha), mpmath.mpf(float(x))
        return float(v if v > 0 else a * mpmath.expm1(v / a))


@pytest.mark.parametrize("impl", ["fastact", "reference"])
@pytest.mark.parametrize("alpha", [2.0**126, 1e20, 1e36, 1.0, 2.0**-126])
def test_celu_float64_large_alpha_vs_mpmath(impl, alpha):
    """x where |x / alpha| < 2^-54, as the native kernel: alpha expm1(x / alpha) with a
    subnormal x / alpha lost its digits in the twin (alpha = 2**126, x = -2.5e-297: -0.0;
    alpha = 1e20 near x = -1e-294: 1e-10 relative)."""
    m = fastact if impl == "fastact" else ref
    x = np.concatenate(
        [
            [-2.4955188856371517e-297, -1e-294, -3.7e-295, -1e-300, -5e-324, -1e-310],
            -np.logspace(-320, 37, 400),
            [-0.5 * alpha, -3 * alpha, 1e-300, 2.0],
        ]
    )
    want = np.array([_celu_mp(v, alpha) for v in x])
    got = m.celu(x, alpha=alpha)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=np.finfo(np.float64).smallest_subnormal)
    z = m.celu(np.array([-0.0, -np.inf, np.nan]), alpha=alpha)
    assert z[0] == 0.0 and np.signbit(z[0]) and z[1] == -alpha and np.isnan(z[2])


# ---- a grad_out of +-inf where the derivative underflows to 0 (docs/guide/accuracy.md) ----


@pytest.mark.parametrize(
    "name, x, twin",
    [("silu", -113.0, (-np.inf, np.inf)), ("softsign", 1e21, (np.inf, -np.inf))],
    ids=["silu", "softsign"],
)
def test_infinite_grad_out_where_the_float32_derivative_underflows(name, x, twin):
    """float32 silu' at -113 (-1.4e-47) and softsign' at 1e21 (1e-42) are 0 in float: a
    grad_out of +-inf gives NaN (inf * 0; softsign: inf / inf) on every path, as PyTorch's
    float32 kernels; the float64 twin's derivative is a nonzero double: -+inf / +-inf."""
    g = np.array([np.inf, -np.inf], np.float32)
    xs = np.full(2, x, np.float32)
    np.testing.assert_array_equal(
        getattr(ref, f"{name}_backward")(g, xs), np.array(twin, np.float32)
    )
    if PURE:
        return
    from fastact import _activations as ext

    cur = ext.get_isa()
    try:
        for cap in _paths_of_this_cpu():
            ext.set_isa(cap)
            assert np.isnan(getattr(fastact, f"{name}_backward")(g, xs)).all(), cap
            # a finite grad_out: 0 (or the subnormal product), never NaN
            got = getattr(fastact, f"{name}_backward")(np.float32([1e30, -1e30]), xs)
            assert np.isfinite(got).all() and (np.abs(got) < 1e-10).all(), cap
    finally:
        ext.set_isa({"avx2+fma": "avx2"}.get(cur, cur))
