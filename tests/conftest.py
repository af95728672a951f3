"""Shared helpers for the fastact test suite.

- CASES: (activation, parameters) pairs built from ``fastact.ACTIVATIONS``, so a
  new activation is covered automatically (with its default parameters; one
  with a required parameter needs an entry in EXTRA_PARAMS, and
  test_activations.py::test_every_activation_has_a_case fails until it has one).
- sweep builders: dense grids that cross every cutoff of the kernels.
- truth_*: fastact.reference evaluated on the float64 upcast of the inputs
  (the oracle of the accuracy contract).
- assert_forward_close / assert_backward_close: the accuracy contract.
- the ``n_threads`` fixture: 1 and 2.

The suite runs in three modes: native (default), FASTACT_PUREPYTHON=1 (fastact
*is* fastact.reference) and FASTACT_ISA=baseline (portable loops).
"""

from __future__ import annotations

import inspect
import os
import warnings
from dataclasses import dataclass, field

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

import fastact
from fastact import reference as ref

# hypothesis (tests/test_properties.py): derandomised by default, so every run draws the
# same examples and CI cannot flake; HYPOTHESIS_PROFILE=fuzz draws new ones, many more.
_HEALTH = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much]
settings.register_profile(
    "fastact",
    derandomize=True,
    max_examples=15,
    deadline=None,
    database=None,
    print_blob=True,
    suppress_health_check=_HEALTH,
)
settings.register_profile(
    "fuzz",
    max_examples=400,
    deadline=None,
    database=None,
    print_blob=True,
    suppress_health_check=_HEALTH,
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "fastact"))

PURE = fastact.PUREPYTHON
DTYPES = (np.float32, np.float64)
DTYPE_IDS = ("f32", "f64")
F64_TINY = np.finfo(np.float64).tiny

# A marker for tests that only make sense with the native kernels.
native_only = pytest.mark.skipif(PURE, reason="FASTACT_PUREPYTHON=1: fastact is the reference")


class _PerFeature:
    """Sentinel parameter value: one prelu slope per feature (last axis) of x."""

    def __repr__(self):
        return "per-feature"


PER_FEATURE = _PerFeature()

# Non-default parameter sets, beyond the defaults every activation gets
# automatically.  An activation with a *required* parameter (prelu's weight)
# gets no automatic case and must be listed here.
EXTRA_PARAMS = {
    "leaky_relu": [{"negative_slope": 0.2}],
    "prelu": [{"weight": 0.25}, {"weight": PER_FEATURE}],
    "elu": [{"alpha": 0.5}],
    "celu": [{"alpha": 0.5}],
    "gelu": [{"approximate": "tanh"}],
    "softplus": [{"beta": 2.0, "threshold": 10.0}],
    "hardtanh": [{"min_val": -2.0, "max_val": 3.0}],
}


def per_feature_weight(x, dtype=None):
    """Distinct positive slopes, one per feature of x (last axis; 1 for a 0-d x)."""
    x = np.asarray(x)
    features = x.shape[-1] if x.ndim else 1
    return np.linspace(0.05, 0.6, features).astype(dtype or x.dtype)


@dataclass(frozen=True)
class Case:
    """One activation with one set of parameters."""

    name: str
    params: dict = field(default_factory=dict)

    @property
    def id(self) -> str:
        if not self.params:
            return self.name
        return self.name + "(" + ",".join(f"{k}={v!r}" for k, v in self.params.items()) + ")"

    @property
    def spec(self):
        return fastact.ACTIVATIONS[self.name]

    @property
    def ref_spec(self):
        return ref.ACTIVATIONS[self.name]

    @property
    def saves(self) -> str:
        return self.spec.saves

    @property
    def kind(self) -> str:
        return self.spec.kind

    @property
    def has_grad_param(self) -> bool:
        """prelu: the backward returns (grad_in, grad_weight)."""
        return self.name == "prelu"

    def kwargs(self, x, dtype=None) -> dict:
        """The parameters with PER_FEATURE resolved for x (weights in x's float dtype)."""
        x = np.asarray(x)
        dt = dtype or (x.dtype if x.dtype.kind == "f" else np.float64)
        out = {}
        for k, v in self.params.items():
            out[k] = per_feature_weight(x, dt) if v is PER_FEATURE else v
        return out

    # the four evaluations every test needs -------------------------------
    def forward(self, x, **kw):
        return self.spec.forward(x, **self.kwargs(x), **kw)

    def backward(self, g, s, **kw):
        r = self.spec.backward(g, s, **self.kwargs(s), **kw)
        return r[0] if self.has_grad_param else r

    def ref_forward(self, x):
        return self.ref_spec.forward(x, **self.kwargs(x))

    def ref_backward(self, g, s):
        r = self.ref_spec.backward(g, s, **self.kwargs(s))
        return r[0] if self.has_grad_param else r

    def saved(self, x, y):
        """What the backward takes: the forward output or input."""
        return y if self.saves == "output" else x

    def kinks(self) -> list:
        """Points where the activation or its derivative is not smooth
        (finite differences must stay away from them)."""
        p = self.kwargs(np.zeros(1))
        n = self.name
        if n in ("relu", "leaky_relu", "prelu", "elu", "selu", "celu", "softsign"):
            return [0.0]  # softsign: |x| makes the second derivative jump
        if n == "relu6":
            return [0.0, 6.0]
        if n == "hardtanh":
            return [p.get("min_val", -1.0), p.get("max_val", 1.0)]
        if n in ("hardsigmoid", "hardswish"):
            return [-3.0, 3.0]
        if n == "softplus":
            return [p.get("threshold", 20.0) / p.get("beta", 1.0)]
        if n in ("gelu",):
            return [-40.0, 40.0]
        if n == "silu":
            return [-1000.0, 1000.0]
        if n == "mish":
            return [-1000.0, 40.0]
        return []

    def cutoffs(self) -> list:
        """Points where kernels switch branch or clamp, for the sweeps: the activation's own
        (kinks, threshold / beta, hardtanh's bounds), every switch of the exp / expm1 /
        tanh / log1p primitives (also divided by a celu alpha or softplus beta, or halved
        where the argument is 2x), and the clamps of gelu / silu / mish."""
        p = self.kwargs(np.zeros(1))
        prim = [
            0.0,
            0.34657359027997264,
            0.625,
            0.6931471805599453,
            1.0,
            3.0,
            6.0,
            20.0,
            40.0,
            87.0,
            88.0,
            88.7,
            89.0,
            103.0,
            104.0,
            105.0,
            708.0,
            709.0,
            709.78,
            710.0,  # the float64 AVX2 log_sigmoid' clamp (1 + e^x overflows just below)
            745.0,
            1000.0,
        ]
        scale = 1.0
        if self.name == "celu":
            scale = p.get("alpha", 1.0)
        if self.name == "softplus":
            scale = 1.0 / p.get("beta", 1.0)
        pts = set()
        for v in prim:
            for s in (1.0, scale, 0.5):
                pts.update((v * s, -v * s))
        pts.update(self.kinks())
        if self.name == "softplus":
            t = p.get("threshold", 20.0) / p.get("beta", 1.0)
            pts.update((t, -t))
        return sorted(pts)


def _build_cases():
    cases = []
    for name, act in fastact.ACTIVATIONS.items():
        required = [k for k, v in act.params.items() if v is inspect.Parameter.empty]
        if not required:
            cases.append(Case(name))
        for extra in EXTRA_PARAMS.get(name, []):
            cases.append(Case(name, dict(extra)))
    return cases


CASES = _build_cases()
ELEMENTWISE = [c for c in CASES if c.kind == "elementwise"]
ROWWISE = [c for c in CASES if c.kind == "rowwise"]
# elementwise activations with scalar parameters: the ones bias_act accepts
BIAS_CASES = [c for c in ELEMENTWISE if c.name != "prelu"]


def case_params(cases):
    return [pytest.param(c, id=c.id) for c in cases]


def dtype_params():
    return [pytest.param(d, id=i) for d, i in zip(DTYPES, DTYPE_IDS)]


@pytest.fixture(params=[1, 2], ids=["nt1", "nt2"])
def n_threads(request):
    return request.param


# ---- sweeps -------------------------------------------------------------------


def sweep_linear(dtype):
    return np.linspace(-60.0, 60.0, 200_001).astype(dtype)


def sweep_geometric(dtype):
    g = np.geomspace(1e-30, 1e4, 20_001)
    return np.concatenate([-g[::-1], g]).astype(dtype)


def sweep_cutoffs(points, dtype):
    """A dense window and the nearest representable neighbours around each point."""
    parts = []
    for c in points:
        w = 1e-3 * max(1.0, abs(c))
        parts.append(c + np.linspace(-w, w, 2001))
        v = np.asarray(c, dtype)
        lo = hi = v
        nb = [v]
        for _ in range(4):
            lo = np.nextafter(lo, dtype(-np.inf))
            hi = np.nextafter(hi, dtype(np.inf))
            nb += [lo, hi]
        parts.append(np.array(nb, dtype))
    return np.concatenate([np.asarray(p, np.float64) for p in parts]).astype(dtype)


def sweep_extremes(dtype):
    fi = np.finfo(dtype)
    big = 3e38 if dtype == np.float32 else 1e300
    v = [
        0.0,
        big,
        fi.max,
        fi.tiny,
        fi.smallest_subnormal,
        1e30,
        1e20,
        1e5,
        1e4,
        745.5,
        745.0,
        709.9,
        709.0,
        708.0,
        104.0,
        89.0,
        88.0,
        87.0,
        50.0,
    ]
    v = np.array(v, np.float64)
    return np.concatenate([v, -v, [-0.0]]).astype(dtype)


SWEEPS = {
    "linear": lambda case, dt: sweep_linear(dt),
    "geometric": lambda case, dt: sweep_geometric(dt),
    "cutoffs": lambda case, dt: sweep_cutoffs(case.cutoffs(), dt),
    "extremes": lambda case, dt: sweep_extremes(dt),
}


# ---- the oracle ---------------------------------------------------------------


def _quiet(fn, *args):
    """Evaluate the oracle with NumPy's floating-point warnings silenced: whether the
    reference leaks warnings is tested on its own (test_no_warnings_*)."""
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return fn(*args)


def f64(a):
    return np.asarray(a).astype(np.float64)


def _kwargs64(case, x):
    """The parameters the tested call got (weights in x's dtype), upcast to float64."""
    return {k: (f64(v) if isinstance(v, np.ndarray) else v) for k, v in case.kwargs(x).items()}


def truth_forward(case, x):
    return _quiet(lambda: case.ref_spec.forward(f64(x), **_kwargs64(case, x)))


def truth_backward(case, g, s):
    def run():
        r = case.ref_spec.backward(f64(g), f64(s), **_kwargs64(case, s))
        return r[0] if case.has_grad_param else r

    return _quiet(run)


# ---- the accuracy contract ----------------------------------------------------


def ulp32(t):
    """np.spacing of the float64 truth rounded to float32 (inf where it overflows)."""
    with np.errstate(over="ignore", invalid="ignore"):
        return np.abs(np.spacing(np.abs(f64(t).astype(np.float32)))).astype(np.float64)


def _check(got, truth, tol, dtype, what, inputs):
    got = np.asarray(got)
    g, t = f64(got), f64(truth)
    assert g.shape == t.shape, (what, g.shape, t.shape)
    with np.errstate(invalid="ignore", over="ignore"):
        t_rounded = f64(t.astype(dtype))  # a float32 truth beyond 3.4e38 rounds to inf
        err = np.abs(g - t)
        ok = (g == t) | (g == t_rounded) | (np.isnan(g) & np.isnan(t)) | (err <= tol)
    ok &= ~(np.isnan(g) ^ np.isnan(t))  # NaN exactly where the truth is NaN
    ok &= ~(np.isinf(t) & (g != t))  # infinities exactly
    if not ok.all():
        bad = np.flatnonzero(~ok.ravel())
        rows = []
        for i in bad[:8]:
            ins = ", ".join(f"{k}={np.ravel(v)[i]!r}" for k, v in inputs.items())
            rows.append(
                f"  {ins}: got {g.ravel()[i]!r}, want {t.ravel()[i]!r}, "
                f"err {err.ravel()[i]:.3g} > tol {np.ravel(tol)[i] if np.ndim(tol) else tol:.3g}"
            )
        pytest.fail(
            f"{what}: {bad.size} of {ok.size} values outside the contract\n" + "\n".join(rows)
        )


def forward_tol(truth, dtype):
    t = np.abs(f64(truth))
    if np.dtype(dtype) == np.float32:
        with np.errstate(invalid="ignore"):
            return np.where(t < 1e-6, np.maximum(1e-7, 4 * ulp32(t)), 4 * ulp32(t))
    return 1e-12 * t + F64_TINY


def backward_tol(truth, g, dtype):
    t = np.abs(f64(truth))
    ga = np.abs(f64(g))
    if np.dtype(dtype) == np.float32:
        return 8 * ulp32(t) + 2e-7 * ga
    return 1e-12 * t + F64_TINY + 1e-15 * ga


def assert_forward_close(got, truth, dtype, what="forward", **inputs):
    """float32: 4 ulp (1e-7 absolute where |truth| < 1e-6); float64: 1e-12 relative + tiny."""
    assert np.asarray(got).dtype == np.dtype(dtype), (what, np.asarray(got).dtype, dtype)
    _check(got, truth, forward_tol(truth, dtype), dtype, what, inputs)


def assert_backward_close(got, truth, g, dtype, what="backward", **inputs):
    """float32: 8 ulp + 2e-7 |g|; float64: 1e-12 relative + tiny + 1e-15 |g|."""
    assert np.asarray(got).dtype == np.dtype(dtype), (what, np.asarray(got).dtype, dtype)
    _check(got, truth, backward_tol(truth, g, dtype), dtype, what, dict(inputs, g=g))


def fd4(f, x, h):
    """4th-order central difference of the elementwise function f at x (float64)."""
    return (-f(x + 2 * h) + 8 * f(x + h) - 8 * f(x - h) + f(x - 2 * h)) / (12 * h)


def rng(seed=0):
    return np.random.default_rng(seed)
