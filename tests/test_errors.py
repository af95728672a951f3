"""Every raise in fastact/_validate.py, _plumbing.py and _registry.py, with its message.

Both backends share the checks (fastact/_api.py), so each test runs on fastact and on
fastact.reference (the ``m`` fixture).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from fractions import Fraction

import numpy as np
import pytest
from conftest import CASES, PURE, case_params

import fastact
from fastact import reference as ref
from fastact._registry import BIAS_ACT_NAMES
from fastact._validate import usable_cores


@pytest.fixture(params=["fastact", "reference"])
def m(request):
    return fastact if request.param == "fastact" else ref


def esc(s):
    return re.escape(s)


BAD_DTYPES = [
    pytest.param(np.bool_, id="bool"),
    pytest.param(np.float16, id="float16"),
    pytest.param(np.complex64, id="complex64"),
    pytest.param(np.complex128, id="complex128"),
    pytest.param(np.longdouble, id="longdouble"),
    pytest.param(object, id="object"),
    pytest.param("U3", id="str"),
]


def bad_array(dtype, shape=(2, 3)):
    return np.ones(shape).astype(dtype)


def dtype_msg(name, dtype):
    return esc(
        f"{name} must be float32 or float64 (integers are computed in float64); got "
        f"{np.dtype(dtype)}. Convert with {name}.astype(np.float64)"
    )


def _kw(case, x):
    """The case's parameters (prelu's per-feature weight as float64) for an x of this shape."""
    return case.kwargs(np.zeros(np.shape(x)))


# ---- dtypes ---------------------------------------------------------------------


@pytest.mark.parametrize("dtype", BAD_DTYPES)
@pytest.mark.parametrize("case", case_params(CASES))
def test_bad_dtype_forward(m, case, dtype):
    x = bad_array(dtype)
    with pytest.raises(TypeError, match=dtype_msg("x", dtype)):
        getattr(m, case.name)(x, **_kw(case, x))


@pytest.mark.parametrize("dtype", BAD_DTYPES)
@pytest.mark.parametrize("case", case_params(CASES))
def test_bad_dtype_backward(m, case, dtype):
    good = np.ones((2, 3))
    bad = bad_array(dtype)
    f = getattr(m, case.name + "_backward")
    with pytest.raises(TypeError, match=dtype_msg("grad_out", dtype)):
        f(bad, good, **_kw(case, good))
    with pytest.raises(TypeError, match=dtype_msg("saved", dtype)):
        f(good, bad, **_kw(case, good))


@pytest.mark.parametrize("dtype", BAD_DTYPES)
def test_bad_dtype_bias_act(m, dtype):
    good, bad = np.ones((2, 3)), bad_array(dtype)
    with pytest.raises(TypeError, match=dtype_msg("z", dtype)):
        m.bias_act(bad, np.ones(3), "relu")
    with pytest.raises(TypeError, match=dtype_msg("bias", dtype)):
        m.bias_act(good, bad_array(dtype, (3,)), "relu")
    with pytest.raises(TypeError, match=dtype_msg("grad_out", dtype)):
        m.bias_act_backward(bad, good, "gelu", bias=np.ones(3))
    with pytest.raises(TypeError, match=dtype_msg("saved", dtype)):
        m.bias_act_backward(good, bad, "gelu", bias=np.ones(3))
    with pytest.raises(TypeError, match=dtype_msg("bias", dtype)):
        m.bias_act_backward(good, good, "gelu", bias=bad_array(dtype, (3,)))
    with pytest.raises(TypeError, match=dtype_msg("bias", dtype)):  # validated even if unused
        m.bias_act_backward(good, good, "relu", bias=bad_array(dtype, (3,)))


@pytest.mark.parametrize("dtype", BAD_DTYPES)
def test_bad_dtype_cross_entropy_logits(m, dtype):
    with pytest.raises(TypeError, match=dtype_msg("logits", dtype)):
        m.softmax_cross_entropy(bad_array(dtype), np.array([0, 1]))


@pytest.mark.parametrize(
    "dtype",
    [
        pytest.param(np.bool_, id="bool"),
        pytest.param(np.complex128, id="complex"),
        pytest.param(object, id="object"),
        pytest.param("U3", id="str"),
    ],
)
def test_bad_dtype_prelu_weight(m, dtype):
    x = np.ones((2, 3))
    w = np.ones(3).astype(dtype)
    msg = esc(f"prelu: weight must be real numbers; got dtype {np.dtype(dtype)}.")
    with pytest.raises(TypeError, match=msg):
        m.prelu(x, w)
    with pytest.raises(TypeError, match=msg):
        m.prelu_backward(x, x, w)
    with pytest.raises(TypeError, match=esc("prelu: weight must be real numbers")):
        m.prelu(x, None)


@pytest.mark.parametrize(
    "wdtype, xdtype",
    [
        (np.float32, np.float64),
        (np.float64, np.float32),
        (np.float16, np.float32),
        (np.longdouble, np.float64),
    ],
    ids=["f32-f64", "f64-f32", "f16-f32", "longdouble-f64"],
)
def test_prelu_weight_float_dtype_mismatch(m, wdtype, xdtype):
    x = np.ones((2, 3), xdtype)
    w = np.full(3, 0.25, wdtype)
    msg = esc(
        f"prelu: weight has dtype {np.dtype(wdtype)} but x has dtype {np.dtype(xdtype)}; "
        f"convert with weight.astype(np.{np.dtype(xdtype)})."
    )
    with pytest.raises(TypeError, match=msg):
        m.prelu(x, w)
    with pytest.raises(TypeError, match=msg):
        m.prelu_backward(x, x, w)


def test_prelu_weight_shape_and_values(m):
    x = np.ones((2, 4))
    with pytest.raises(
        ValueError, match=esc("prelu: weight must be a scalar or 1-D; got shape (2, 2).")
    ):
        m.prelu(x, np.ones((2, 2)))
    with pytest.raises(
        ValueError, match=esc("prelu: weight must be a scalar or 1-D; got shape (1, 4).")
    ):
        m.prelu_backward(x, x, np.ones((1, 4)))
    msg = esc("prelu: weight must hold 1 value or one per feature (x.shape[-1] = 4); got 3 values.")
    with pytest.raises(ValueError, match=msg):
        m.prelu(x, np.ones(3))
    with pytest.raises(ValueError, match=msg):
        m.prelu_backward(x, x, [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match=esc("(x.shape[-1] = 1); got 2 values.")):
        m.prelu(np.array(1.0), np.ones(2))
    with pytest.raises(ValueError, match=esc("got 0 values.")):
        m.prelu(x, np.ones(0))
    for bad in (np.nan, np.inf, -np.inf, [0.1, np.nan, 0.2, 0.3]):
        with pytest.raises(ValueError, match=esc("prelu: weight must be finite (in x's dtype).")):
            m.prelu(x, bad)
        with pytest.raises(ValueError, match=esc("prelu: weight must be finite (in x's dtype).")):
            m.prelu_backward(x, x, bad)


@pytest.mark.parametrize("impl", ["fastact", "reference"])
@pytest.mark.parametrize("dtype", [">f8", ">f4"])
@pytest.mark.parametrize(
    "case", case_params([c for c in CASES if c.kind == "elementwise" and c.name != "prelu"])
)
def test_non_native_byte_order_elementwise(impl, case, dtype):
    """Byte-swapped float32/float64 inputs are read as their values (converted to native
    order); an out= of the swapped dtype is rejected, since the result is native."""
    m = fastact if impl == "fastact" else ref
    x = np.array([[-1.0, 2.0, 3.5]], dtype)
    native = x.astype(np.dtype(dtype).newbyteorder("="))
    kw = _kw(case, x)
    f = getattr(m, case.name)
    y = f(x, **kw)
    assert y.dtype == native.dtype and y.dtype.isnative
    np.testing.assert_array_equal(y, f(native, **kw))
    b = getattr(m, case.name + "_backward")
    np.testing.assert_array_equal(b(x, x, **kw), b(native, native, **kw))
    with pytest.raises(
        TypeError,
        match=esc(f"out has dtype {np.dtype(dtype)}; the result has dtype {native.dtype}."),
    ):
        f(native, out=np.zeros_like(x), **kw)


@pytest.mark.parametrize("dtype", [">f8", ">f4"])
def test_non_native_byte_order_other_functions(m, dtype):
    x = np.array([[-1.0, 2.0, 3.5]], dtype)
    b = np.zeros(3, dtype)
    xn = x.astype(np.dtype(dtype).newbyteorder("="))
    bn = b.astype(xn.dtype)
    np.testing.assert_array_equal(m.softmax(x), m.softmax(xn))
    np.testing.assert_array_equal(m.prelu(x, 0.25), m.prelu(xn, 0.25))
    np.testing.assert_array_equal(m.bias_act(x, b, "relu"), m.bias_act(xn, bn, "relu"))
    assert (
        m.softmax_cross_entropy(x, np.array([0]))[0]
        == m.softmax_cross_entropy(xn, np.array([0]))[0]
    )


# ---- shapes and dtypes of grad_out / saved ------------------------------------------


@pytest.mark.parametrize("case", case_params(CASES))
def test_backward_shape_and_dtype_mismatch(m, case):
    f = getattr(m, case.name + "_backward")
    g = np.ones((2, 3))
    with pytest.raises(
        ValueError, match=esc("grad_out and saved must have the same shape; got (2, 3) and (3, 2).")
    ):
        f(g, np.ones((3, 2)), **_kw(case, g))
    with pytest.raises(
        ValueError, match=esc("grad_out and saved must have the same shape; got (2, 3) and (2, 1).")
    ):
        f(g, np.ones((2, 1)), **_kw(case, g))  # no broadcasting
    with pytest.raises(
        TypeError,
        match=esc(
            "grad_out and saved must have the same dtype; got "
            "float64 and float32. Convert one with "
            ".astype(np.float64) or .astype(np.float32)."
        ),
    ):
        f(g, np.ones((2, 3), np.float32), **_kw(case, g))
    with pytest.raises(TypeError, match=esc("got float32 and float64")):
        f(np.ones((2, 3), np.float32), g, **_kw(case, g))


def test_bias_act_shape_and_dtype_mismatch(m):
    z = np.ones((3, 4))
    with pytest.raises(
        ValueError,
        match=esc(
            "bias_act: bias must have shape (4,) to broadcast over the rows of a z of shape "
            "(3, 4); got (3,)."
        ),
    ):
        m.bias_act(z, np.ones(3), "relu")
    with pytest.raises(ValueError, match=esc("bias_act: bias must have shape (4,)")):
        m.bias_act(z, np.ones((1, 4)), "relu")
    with pytest.raises(ValueError, match=esc("bias_act: bias must have shape (4,)")):
        m.bias_act(z, 1.0, "relu")
    with pytest.raises(
        ValueError,
        match=esc(
            "bias_act_backward: bias must have shape (4,) to broadcast over the rows of a z of "
            "shape (3, 4); got (5,)."
        ),
    ):
        m.bias_act_backward(z, z, "gelu", bias=np.ones(5))
    with pytest.raises(ValueError, match=esc("bias_act_backward: bias must have shape (4,)")):
        m.bias_act_backward(z, z, "relu", bias=np.ones(5))  # checked though unused
    with pytest.raises(
        TypeError, match=esc("z and bias must have the same dtype; got float64 and float32.")
    ):
        m.bias_act(z, np.ones(4, np.float32), "relu")
    with pytest.raises(
        TypeError, match=esc("grad_out and bias must have the same dtype; got float64 and float32.")
    ):
        m.bias_act_backward(z, z, "gelu", bias=np.ones(4, np.float32))
    with pytest.raises(
        ValueError, match=esc("grad_out and saved must have the same shape; got (3, 4) and (4, 3).")
    ):
        m.bias_act_backward(z, z.T, "tanh")
    with pytest.raises(TypeError, match=esc("grad_out and saved must have the same dtype")):
        m.bias_act_backward(z, z.astype(np.float32), "tanh")


def test_scalars_where_an_axis_is_needed(m):
    with pytest.raises(
        ValueError,
        match=esc("bias_act: z must have at least one dimension (rows x features); got a scalar."),
    ):
        m.bias_act(1.0, np.ones(1), "relu")
    with pytest.raises(
        ValueError,
        match=esc("bias_act_backward: grad_out must have at least one dimension; got a scalar."),
    ):
        m.bias_act_backward(np.array(1.0), np.array(1.0), "relu")
    for name in ("softmax", "log_softmax"):
        with pytest.raises(
            ValueError,
            match=esc(
                f"{name}: x must have at least one dimension (the axis to normalise); got a scalar."
            ),
        ):
            getattr(m, name)(np.array(1.0))
        with pytest.raises(
            ValueError,
            match=esc(f"{name}_backward: grad_out must have at least one dimension; got a scalar."),
        ):
            getattr(m, name + "_backward")(np.array(1.0), np.array(1.0))


# ---- out= ---------------------------------------------------------------------------


def _out_calls(m, case, out):
    """(forward call, backward call) of case with out=out on (4, 5) float64 inputs."""
    x = np.linspace(-2, 2, 20).reshape(4, 5)
    kw = _kw(case, x)
    f = getattr(m, case.name)
    b = getattr(m, case.name + "_backward")
    return (lambda: f(x, out=out, **kw)), (lambda: b(np.ones_like(x), x, out=out, **kw))


@pytest.mark.parametrize("case", case_params(CASES))
def test_out_wrong(m, case):
    cases = [
        ([0.0] * 20, TypeError, "out must be a NumPy array or None; got list."),
        (np.zeros((5, 4)), ValueError, "out has shape (5, 4); the result has shape (4, 5)."),
        (np.zeros(20), ValueError, "out has shape (20,); the result has shape (4, 5)."),
        (
            np.zeros((4, 5), np.float32),
            TypeError,
            "out has dtype float32; the result has dtype float64. Pass an array of dtype float64 "
            "or out=None.",
        ),
    ]
    ro = np.zeros((4, 5))
    ro.flags.writeable = False
    cases.append((ro, ValueError, "out is read-only; pass a writeable array or out=None."))
    for out, exc, msg in cases:
        for call in _out_calls(m, case, out):
            with pytest.raises(exc, match=esc(msg)):
                call()


@pytest.mark.parametrize("case", case_params(CASES))
def test_out_partial_overlap(m, case):
    buf = np.linspace(-2, 2, 21)
    x = buf[:20].reshape(4, 5)
    out = buf[1:].reshape(4, 5)
    kw = _kw(case, x)
    with pytest.raises(
        ValueError,
        match=esc(
            "out overlaps x without being the same array; pass out=x for in-place, a separate "
            "array, or out=None."
        ),
    ):
        getattr(m, case.name)(x, out=out, **kw)
    b = getattr(m, case.name + "_backward")
    g = np.ones_like(x)
    with pytest.raises(ValueError, match=esc("out overlaps saved without being the same array")):
        b(g, x, out=out, **kw)
    with pytest.raises(ValueError, match=esc("out overlaps grad_out without being the same array")):
        b(x, g, out=out, **kw)
    # a transposed view of the same memory is an overlap, not the same array
    sq = np.linspace(-2, 2, 16).reshape(4, 4)
    kw = _kw(case, sq)
    with pytest.raises(ValueError, match=esc("out overlaps x without being the same array")):
        getattr(m, case.name)(sq, out=sq.T, **kw)


def test_bias_act_out_overlaps(m):
    buf = np.zeros(12)
    bias = buf[8:]
    out = buf.reshape(3, 4)
    z = np.ones((3, 4))
    with pytest.raises(
        ValueError,
        match=esc(
            "out overlaps bias, which this function still needs while it writes; pass a "
            "separate array or out=None."
        ),
    ):
        m.bias_act(z, bias, "relu", out=out)
    with pytest.raises(ValueError, match=esc("out overlaps bias, which this function still needs")):
        m.bias_act_backward(z, z, "gelu", bias=bias, out=out)
    zbuf = np.ones(13)
    with pytest.raises(ValueError, match=esc("out overlaps z without being the same array")):
        m.bias_act(zbuf[:12].reshape(3, 4), np.ones(4), "relu", out=zbuf[1:].reshape(3, 4))
    with pytest.raises(ValueError, match=esc("out overlaps grad_out without being the same array")):
        m.bias_act_backward(zbuf[:12].reshape(3, 4), z, "relu", out=zbuf[1:].reshape(3, 4))
    with pytest.raises(ValueError, match=esc("out overlaps saved without being the same array")):
        m.bias_act_backward(z, zbuf[:12].reshape(3, 4), "relu", out=zbuf[1:].reshape(3, 4))
    with pytest.raises(ValueError, match=esc("out has shape (4,); the result has shape (3, 4).")):
        m.bias_act(z, np.ones(4), "relu", out=np.zeros(4))
    with pytest.raises(
        TypeError, match=esc("out has dtype float32; the result has dtype float64.")
    ):
        m.bias_act_backward(z, z, "relu", out=np.zeros((3, 4), np.float32))


def test_cross_entropy_out(m):
    x = np.array([[1.0, 2.0, 3.0], [0.0, 0.5, -1.0]])
    with pytest.raises(
        ValueError,
        match=esc(
            "out overlaps logits, which this function still needs while it writes; pass a "
            "separate array or out=None."
        ),
    ):
        m.softmax_cross_entropy(x, np.array([0, 2]), out=x)
    t = np.full_like(x, 1 / 3)
    with pytest.raises(
        ValueError, match=esc("out overlaps labels, which this function still needs")
    ):
        m.softmax_cross_entropy(x, t, out=t)
    with pytest.raises(ValueError, match=esc("out has shape (3, 2); the result has shape (2, 3).")):
        m.softmax_cross_entropy(x, np.array([0, 2]), out=np.zeros((3, 2)))
    with pytest.raises(TypeError, match=esc("out must be a NumPy array or None; got tuple.")):
        m.softmax_cross_entropy(x, np.array([0, 2]), out=(0.0,))
    # and a valid out works
    out = np.empty_like(x)
    loss, grad = m.softmax_cross_entropy(x, np.array([0, 2]), out=out)
    assert grad is out


# ---- parameters ---------------------------------------------------------------------


def test_gelu_approximate(m):
    x = np.ones(3)
    for bad in ("fast", "Tanh", "", None, 1, True):
        msg = esc(f"gelu: approximate must be 'none' or 'tanh'; got {bad!r}.")
        with pytest.raises(ValueError, match=msg):
            m.gelu(x, approximate=bad)
        with pytest.raises(ValueError, match=msg):
            m.gelu_backward(x, x, approximate=bad)
        with pytest.raises(ValueError, match=msg):
            m.bias_act(x, x, "gelu", approximate=bad)
        with pytest.raises(ValueError, match=msg):
            m.bias_act_backward(x, x, "gelu", bias=x, approximate=bad)


PARAM_ERRORS = [
    # (function, kwargs, exception, message)
    ("softplus", {"beta": 0.0}, ValueError, "softplus: beta must be > 0; got 0.0."),
    ("softplus", {"beta": -1}, ValueError, "softplus: beta must be > 0; got -1.0."),
    ("softplus", {"threshold": 0}, ValueError, "softplus: threshold must be > 0; got 0.0."),
    ("softplus", {"threshold": -20.0}, ValueError, "softplus: threshold must be > 0; got -20.0."),
    ("softplus", {"beta": np.nan}, ValueError, "softplus: beta must be finite; got nan."),
    ("softplus", {"threshold": np.inf}, ValueError, "softplus: threshold must be finite; got inf."),
    ("softplus", {"beta": "1"}, TypeError, "softplus: beta must be a real number; got str '1'."),
    (
        "celu",
        {"alpha": 0.0},
        ValueError,
        "celu: alpha must be in [2**-126, 2**126] (about 1.2e-38 to 8.5e37) so that alpha and 1/alpha are normal float32 numbers; got 0.0.",
    ),
    (
        "celu",
        {"alpha": -0.5},
        ValueError,
        "celu: alpha must be in [2**-126, 2**126] (about 1.2e-38 to 8.5e37) so that alpha and 1/alpha are normal float32 numbers; got -0.5.",
    ),
    ("celu", {"alpha": -np.inf}, ValueError, "celu: alpha must be finite; got -inf."),
    ("elu", {"alpha": np.nan}, ValueError, "elu: alpha must be finite; got nan."),
    ("elu", {"alpha": None}, TypeError, "elu: alpha must be a real number; got NoneType None."),
    ("elu", {"alpha": True}, TypeError, "elu: alpha must be a real number; got bool True."),
    ("elu", {"alpha": 1j}, TypeError, "elu: alpha must be a real number; got complex 1j."),
    ("elu", {"alpha": np.array([1.0])}, TypeError, "elu: alpha must be a real number; got ndarray"),
    (
        "leaky_relu",
        {"negative_slope": "0.1"},
        TypeError,
        "leaky_relu: negative_slope must be a real number; got str '0.1'.",
    ),
    (
        "leaky_relu",
        {"negative_slope": np.inf},
        ValueError,
        "leaky_relu: negative_slope must be finite; got inf.",
    ),
    (
        "hardtanh",
        {"min_val": 1.0, "max_val": 1.0},
        ValueError,
        "hardtanh: min_val must be less than max_val; got min_val=1.0, max_val=1.0.",
    ),
    (
        "hardtanh",
        {"min_val": 2, "max_val": -2},
        ValueError,
        "hardtanh: min_val must be less than max_val; got min_val=2.0, max_val=-2.0.",
    ),
    ("hardtanh", {"min_val": -np.inf}, ValueError, "hardtanh: min_val must be finite; got -inf."),
    ("hardtanh", {"max_val": np.nan}, ValueError, "hardtanh: max_val must be finite; got nan."),
    (
        "hardtanh",
        {"max_val": [1.0]},
        TypeError,
        "hardtanh: max_val must be a real number; got list [1.0].",
    ),
]


@pytest.mark.parametrize(
    "name, kwargs, exc, msg", PARAM_ERRORS, ids=[f"{p[0]}-{i}" for i, p in enumerate(PARAM_ERRORS)]
)
def test_invalid_parameters(m, name, kwargs, exc, msg):
    x = np.ones((2, 3))
    with pytest.raises(exc, match=esc(msg)):
        getattr(m, name)(x, **kwargs)
    with pytest.raises(exc, match=esc(msg)):
        getattr(m, name + "_backward")(x, x, **kwargs)
    with pytest.raises(exc, match=esc(msg)):
        m.bias_act(x, np.ones(3), name, **kwargs)
    extra = {"bias": np.ones(3)} if fastact.ACTIVATIONS[name].saves == "input" else {}
    with pytest.raises(exc, match=esc(msg)):
        m.bias_act_backward(x, x, name, **extra, **kwargs)


def test_valid_parameter_types_are_accepted(m):
    x = np.linspace(-2, 2, 5)
    want = m.elu(x, 0.5)
    for a in (np.float32(0.5), np.float64(0.5), Fraction(1, 2)):
        np.testing.assert_array_equal(m.elu(x, a), want)
    np.testing.assert_array_equal(m.leaky_relu(x, 0), np.maximum(x, 0))  # an int slope
    # negative slopes are fine forward, only the output-based backward rejects them
    np.testing.assert_array_equal(m.leaky_relu(x, -0.5), np.where(x > 0, x, -0.5 * x))


def test_parameter_checks_do_not_confuse_equal_values(m):
    """Validated parameters may be cached; 1, 1.0 and True (equal, same hash) must still be
    told apart, and each value must give its own result."""
    x = np.linspace(-3, 3, 7)
    m.elu(x, 1)
    m.elu(x, 1.0)
    with pytest.raises(TypeError, match=esc("elu: alpha must be a real number; got bool True.")):
        m.elu(x, True)
    m.softplus(x, 1, 20)
    with pytest.raises(
        TypeError, match=esc("softplus: beta must be a real number; got bool True.")
    ):
        m.softplus(x, True, 20)
    m.hardtanh(x, 0, 1)
    with pytest.raises(
        TypeError, match=esc("hardtanh: min_val must be a real number; got bool False.")
    ):
        m.hardtanh(x, False, 1)
    for slope in (0.25, 0.5, 0.25):
        np.testing.assert_array_equal(m.leaky_relu(x, slope), np.where(x > 0, x, slope * x))
    for a in (0.5, 2.0, 0.5):
        np.testing.assert_allclose(
            m.celu(x, a), np.where(x > 0, x, a * np.expm1(x / a)), rtol=1e-15
        )


def test_repeated_parameter_objects_are_checked_once_but_right(m):
    """The public functions skip the parameter check when called again with the same
    argument objects; a different object, a bad value after a good one, a good one after
    a bad one, and the backward's own check must all still work."""
    x = np.linspace(-3, 3, 7)
    g = np.ones_like(x)
    a, b = 0.5, 2.0
    for alpha in (a, a, b, a):
        np.testing.assert_allclose(
            m.elu(x, alpha), np.where(x > 0, x, alpha * np.expm1(x)), rtol=1e-15
        )
    neg = -0.5
    for _ in range(2):
        m.leaky_relu(x, neg)  # fine forward
        with pytest.raises(ValueError, match=esc("leaky_relu_backward: negative_slope=-0.5 < 0")):
            m.leaky_relu_backward(g, x, neg)
        m.leaky_relu_backward(g, x, 0.5)
    with pytest.raises(ValueError, match=esc("softplus: beta must be > 0; got -1.0.")):
        m.softplus(x, -1.0)
    beta, thr = 2.0, 10.0
    for _ in range(2):
        np.testing.assert_allclose(
            m.softplus(x, beta, thr), np.log1p(np.exp(2 * x)) / 2, rtol=1e-14
        )
        np.testing.assert_allclose(m.softplus(x), np.log1p(np.exp(x)), rtol=1e-14)
    for approx in ("tanh", "none", "tanh"):
        np.testing.assert_array_equal(
            m.gelu(x, approx),
            ref.gelu(x, approx) if m is ref else m.gelu(x.copy(), approximate=approx),
        )
    with pytest.raises(ValueError, match=esc("gelu: approximate must be 'none' or 'tanh'")):
        m.gelu_backward(g, x, "exact")
    lo, hi = -2.0, 3.0
    for _ in range(2):
        np.testing.assert_array_equal(m.hardtanh(x, lo, hi), np.clip(x, lo, hi))
        np.testing.assert_array_equal(
            m.hardtanh_backward(g, x, lo, hi), ((x > lo) & (x < hi)).astype(x.dtype)
        )
    with pytest.raises(ValueError, match=esc("hardtanh: min_val must be less than max_val")):
        m.hardtanh(x, hi, lo)


def test_backward_negative_slope(m):
    g = y = np.ones(3)
    with pytest.raises(
        ValueError,
        match=esc(
            "leaky_relu_backward: negative_slope=-0.1 < 0 cannot be differentiated from the "
            "saved output (the sign of the output no longer tells the side of the kink); use "
            "fastact.prelu with weight=-0.1, whose backward takes the input."
        ),
    ):
        m.leaky_relu_backward(g, y, negative_slope=-0.1)
    with pytest.raises(
        ValueError,
        match=esc("elu_backward: alpha=-1.0 < 0 cannot be differentiated from the saved output"),
    ):
        m.elu_backward(g, y, alpha=-1.0)
    with pytest.raises(ValueError, match=esc("leaky_relu_backward: negative_slope=-2.0 < 0")):
        m.bias_act_backward(g, y, "leaky_relu", negative_slope=-2.0)
    with pytest.raises(ValueError, match=esc("elu_backward: alpha=-0.5 < 0")):
        m.bias_act_backward(g, y, "elu", alpha=-0.5)
    # zero is allowed
    np.testing.assert_array_equal(m.leaky_relu_backward(g, -y, negative_slope=0.0), 0 * g)
    np.testing.assert_array_equal(m.elu_backward(g, np.zeros(3), alpha=0.0), 0 * g)


# ---- bias_act names and parameters -------------------------------------------------

VALID = ", ".join(BIAS_ACT_NAMES) + "."


@pytest.mark.parametrize("func", ["bias_act", "bias_act_backward"])
def test_bias_act_unknown_activation(m, func):
    z = np.ones((2, 3))
    call = (
        (lambda a: m.bias_act(z, np.ones(3), a))
        if func == "bias_act"
        else (lambda a: m.bias_act_backward(z, z, a, bias=np.ones(3)))
    )
    with pytest.raises(
        ValueError, match=esc(f"unknown activation 'swish' for bias_act; valid names: {VALID}")
    ):
        call("swish")
    with pytest.raises(
        ValueError,
        match=esc("unknown activation 'ReLU' for bias_act; valid names: identity, sigmoid"),
    ):
        call("ReLU")
    for bad in (None, 3, fastact.relu):
        with pytest.raises(
            ValueError, match=esc(f"unknown activation {bad!r} for bias_act; valid names: ")
        ):
            call(bad)
    with pytest.raises(
        ValueError,
        match=esc(
            "unknown activation 'prelu' for bias_act (prelu has a weight array: apply "
            "fastact.prelu to z + bias); valid names: "
        ),
    ):
        call("prelu")
    with pytest.raises(ValueError, match=esc("unknown activation 'prelu' for bias_act (prelu has")):
        call(fastact.ACTIVATIONS["prelu"])
    for name in ("softmax", "log_softmax"):
        with pytest.raises(
            ValueError,
            match=esc(
                f"unknown activation '{name}' for bias_act (row-wise: apply fastact.{name} to "
                f"z + bias); valid names: "
            ),
        ):
            call(name)


def test_bias_act_valid_names_are_every_scalar_parameter_activation():
    expected = {n for n, a in fastact.ACTIVATIONS.items() if a.kind == "elementwise"} - {"prelu"}
    assert set(BIAS_ACT_NAMES) == expected


def test_bias_act_unexpected_parameters(m):
    z = np.ones((2, 3))
    b = np.ones(3)
    with pytest.raises(
        TypeError,
        match=esc(
            "bias_act: unexpected parameter(s) alpha for activation 'relu'; it takes no parameters."
        ),
    ):
        m.bias_act(z, b, "relu", alpha=1.0)
    with pytest.raises(
        TypeError,
        match=esc(
            "bias_act: unexpected parameter(s) alpha, beta for activation 'gelu'; it takes "
            "approximate."
        ),
    ):
        m.bias_act(z, b, "gelu", beta=1.0, alpha=2.0)
    with pytest.raises(
        TypeError,
        match=esc(
            "bias_act_backward: unexpected parameter(s) negative_slope for activation 'elu'; "
            "it takes alpha."
        ),
    ):
        m.bias_act_backward(z, z, "elu", negative_slope=0.1)
    with pytest.raises(
        TypeError,
        match=esc(
            "bias_act: unexpected parameter(s) min for activation 'hardtanh'; it takes "
            "min_val, max_val."
        ),
    ):
        m.bias_act(z, b, "hardtanh", min=0.0)
    with pytest.raises(TypeError, match=esc("it takes beta, threshold.")):
        m.bias_act(z, b, "softplus", thresh=3.0)
    with pytest.raises(
        TypeError, match=esc("bias_act: unexpected parameter(s) weight for activation 'identity'")
    ):
        m.bias_act(z, b, "identity", weight=0.1)


# ---- n_threads ----------------------------------------------------------------------


def test_n_threads(m):
    x = np.ones(4)
    for bad in (True, False, 1.0, 2.5, "2", np.float64(1.0), [1]):
        shown = f"{type(bad).__name__} {bad!r}"
        with pytest.raises(TypeError, match=esc(f"n_threads must be an int or None; got {shown}.")):
            m.relu(x, n_threads=bad)
    with pytest.raises(
        ValueError,
        match=esc(
            "n_threads=0 is not allowed; use None for all cores, a positive count, or a negative "
            "count from the end (-1 = all cores)."
        ),
    ):
        m.relu(x, n_threads=0)
    cores = usable_cores()
    too_few = -(cores + 1)
    with pytest.raises(
        ValueError,
        match=esc(
            f"n_threads={too_few} leaves no thread on this machine with {cores} usable cores; "
            f"use a value >= {-cores}."
        ),
    ):
        m.relu(x, n_threads=too_few)
    m.relu(x, n_threads=-cores)  # the last valid one
    with pytest.raises(ValueError, match=esc(f"n_threads={-(10**30)} leaves no thread")):
        m.relu(x, n_threads=-(10**30))
    # every public function checks it
    z = np.ones((2, 2))
    calls = [
        lambda nt: m.sigmoid_backward(z, z, n_threads=nt),
        lambda nt: m.prelu(z, 0.1, n_threads=nt),
        lambda nt: m.prelu_backward(z, z, 0.1, n_threads=nt),
        lambda nt: m.softmax(z, n_threads=nt),
        lambda nt: m.log_softmax_backward(z, z, n_threads=nt),
        lambda nt: m.softmax_cross_entropy(z, np.array([0, 1]), n_threads=nt),
        lambda nt: m.bias_act(z, np.ones(2), "relu", n_threads=nt),
        lambda nt: m.bias_act_backward(z, z, "relu", n_threads=nt),
    ]
    for call in calls:
        with pytest.raises(ValueError, match=esc("n_threads=0 is not allowed")):
            call(0)
        with pytest.raises(
            TypeError, match=esc("n_threads must be an int or None; got bool True.")
        ):
            call(True)


def test_set_num_threads_checks():
    old = fastact.get_num_threads()
    try:
        with pytest.raises(ValueError, match=esc("n_threads=0 is not allowed")):
            fastact.set_num_threads(0)
        with pytest.raises(
            TypeError, match=esc("n_threads must be an int or None; got float 2.0.")
        ):
            fastact.set_num_threads(2.0)
        assert fastact.get_num_threads() == old
        fastact.set_num_threads(-1)
        openmp = PURE or fastact._activations.build_info()["openmp"]
        assert fastact.get_num_threads() == (usable_cores() if openmp else 1)
    finally:
        fastact.set_num_threads(None)
    # unpinned: the usable cores, at most the OpenMP runtime's limit (OMP_NUM_THREADS=1: 1)
    omp = usable_cores() if PURE else fastact._activations.omp_max_threads()
    assert fastact.get_num_threads() == min(usable_cores(), omp)


# ---- softmax_cross_entropy ---------------------------------------------------------


def test_cross_entropy_logits(m):
    with pytest.raises(
        ValueError,
        match=esc("softmax_cross_entropy: logits must be 2-D (batch, classes); got shape (3,)."),
    ):
        m.softmax_cross_entropy(np.ones(3), np.array([0, 1, 2]))
    with pytest.raises(
        ValueError, match=esc("logits must be 2-D (batch, classes); got shape (2, 3, 4).")
    ):
        m.softmax_cross_entropy(np.ones((2, 3, 4)), np.array([0, 1]))
    with pytest.raises(ValueError, match=esc("logits must be 2-D (batch, classes); got shape ().")):
        m.softmax_cross_entropy(1.0, np.array([0]))
    with pytest.raises(
        ValueError,
        match=esc("softmax_cross_entropy: the batch is empty; a mean over 0 rows is undefined."),
    ):
        m.softmax_cross_entropy(np.ones((0, 3)), np.array([], np.int64))
    with pytest.raises(ValueError, match=esc("softmax_cross_entropy: logits have 0 classes.")):
        m.softmax_cross_entropy(np.ones((2, 0)), np.array([0, 0]))


def test_cross_entropy_labels(m):
    x = np.ones((3, 4))
    with pytest.raises(
        TypeError,
        match=esc(
            "softmax_cross_entropy: 1-D labels are class indices and must be integers; got "
            "dtype float64. Convert with labels.astype(np.int64), or pass probability rows of "
            "shape (3, 4)."
        ),
    ):
        m.softmax_cross_entropy(x, np.array([0.0, 1.0, 2.0]))
    with pytest.raises(
        TypeError, match=esc("1-D labels are class indices and must be integers; got dtype bool.")
    ):
        m.softmax_cross_entropy(x, np.array([True, False, True]))
    with pytest.raises(
        TypeError,
        match=esc("1-D labels are class indices and must be integers; got dtype float32."),
    ):
        m.softmax_cross_entropy(x, np.array([0, 1, 2], np.float32))
    with pytest.raises(
        ValueError, match=esc("softmax_cross_entropy: 2 labels for 3 rows of logits.")
    ):
        m.softmax_cross_entropy(x, np.array([0, 1]))
    with pytest.raises(
        ValueError, match=esc("softmax_cross_entropy: 4 labels for 3 rows of logits.")
    ):
        m.softmax_cross_entropy(x, [0, 1, 2, 3])
    with pytest.raises(
        ValueError,
        match=esc("softmax_cross_entropy: labels must be class indices in [0, 4); labels[1] = 4."),
    ):
        m.softmax_cross_entropy(x, np.array([0, 4, 1]))
    with pytest.raises(
        ValueError, match=esc("labels must be class indices in [0, 4); labels[2] = -1.")
    ):
        m.softmax_cross_entropy(x, np.array([0, 3, -1]))
    with pytest.raises(
        ValueError, match=esc("labels must be class indices in [0, 4); labels[0] = 200.")
    ):
        m.softmax_cross_entropy(x, np.array([200, 3, 1], np.uint8))
    with pytest.raises(
        TypeError,
        match=esc(
            "softmax_cross_entropy: 2-D labels are probability rows and must be float32 or "
            "float64; got dtype int64. Convert with labels.astype(np.float64), or pass class "
            "indices as a 1-D integer array."
        ),
    ):
        m.softmax_cross_entropy(x, np.ones((3, 4), np.int64))
    with pytest.raises(
        TypeError,
        match=esc(
            "2-D labels are probability rows and must be float32 or float64; got dtype bool."
        ),
    ):
        m.softmax_cross_entropy(x, np.ones((3, 4), bool))
    with pytest.raises(TypeError, match=esc("must be float32 or float64; got dtype float16.")):
        m.softmax_cross_entropy(x, np.full((3, 4), 0.25, np.float16))
    with pytest.raises(
        ValueError,
        match=esc(
            "softmax_cross_entropy: probability labels must have the logits' shape (3, 4); got "
            "(4, 3)."
        ),
    ):
        m.softmax_cross_entropy(x, np.ones((4, 3)))
    with pytest.raises(
        ValueError,
        match=esc(
            "softmax_cross_entropy: labels must be 1-D class indices or 2-D probability rows; "
            "got shape ()."
        ),
    ):
        m.softmax_cross_entropy(x, 1)
    with pytest.raises(
        ValueError,
        match=esc("labels must be 1-D class indices or 2-D probability rows; got shape (3, 4, 1)."),
    ):
        m.softmax_cross_entropy(x, np.ones((3, 4, 1)))


# ---- the environment ----------------------------------------------------------------


@pytest.mark.skipif(PURE, reason="FASTACT_PUREPYTHON=1 ignores FASTACT_ISA")
def test_bad_isa_environment_variable():
    env = {k: v for k, v in os.environ.items() if k != "FASTACT_PUREPYTHON"}
    env["FASTACT_ISA"] = "SSE9"
    r = subprocess.run(
        [sys.executable, "-c", "import fastact"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode != 0
    # the list of accepted names grows with the builds (avx512, ...); these are always in it
    assert re.search(
        r"ValueError: FASTACT_ISA='sse9' is not understood; use 'auto' \(default\), "
        r"(.*, )?'avx2',? or 'baseline'\.",
        r.stderr,
    ), r.stderr


def test_masked_arrays_are_rejected(m):
    x = np.ma.array([1.0, -5.0], mask=[0, 1])
    with pytest.raises(
        TypeError,
        match=esc(
            "x is a masked array; fastact ignores masks. Pass x.filled(value) or x.data explicitly."
        ),
    ):
        m.relu(x)
    with pytest.raises(TypeError, match=esc("grad_out is a masked array")):
        m.relu_backward(x, np.ones(2))
    out = np.ma.array(np.zeros(2), mask=[True, False])
    msg = esc(
        "out is a masked array; fastact ignores masks and would leave out's mask as it "
        "is. Pass out.data (written in place) or out=None."
    )
    for call in (
        lambda: m.relu(np.array([-1.0, 2.0]), out=out),
        lambda: m.relu_backward(np.ones(2), np.array([-1.0, 2.0]), out=out),
        lambda: m.prelu(np.array([-1.0, 2.0]), 0.2, out=out),
        lambda: m.prelu_backward(np.ones(2), np.array([-1.0, 2.0]), 0.2, out=out),
        lambda: m.softmax(np.array([[-1.0, 2.0]]), out=np.ma.array(np.zeros((1, 2)))),
    ):
        with pytest.raises(TypeError, match=msg):
            call()
    assert out.mask.tolist() == [True, False] and out.data.tolist() == [0.0, 0.0]


@pytest.mark.parametrize(
    "call, msg",
    [
        (lambda m, x: m.elu(x, alpha=10**400), "elu: alpha must be finite"),
        (lambda m, x: m.celu(x, -(10**400)), "celu: alpha must be finite"),
        (lambda m, x: m.leaky_relu(x, 10**400), "leaky_relu: negative_slope must be finite"),
        (lambda m, x: m.softplus(x, beta=10**400), "softplus: beta must be finite"),
        (lambda m, x: m.hardtanh(x, -(10**400), 1.0), "hardtanh: min_val must be finite"),
    ],
    ids=["elu", "celu", "leaky_relu", "softplus", "hardtanh"],
)
def test_integer_parameters_beyond_float64_are_value_errors(m, call, msg):
    """An int too large for a float was a bare OverflowError from float()."""
    with pytest.raises(
        ValueError, match=esc(f"{msg}; got an integer of 1329 bits, beyond float64's range.")
    ):
        call(m, np.ones(3))


def test_prelu_integer_weights_beyond_int64(m):
    """NumPy makes an object array of an int beyond int64 (a TypeError about dtype object
    before): such a weight is its float, refused when that is not finite in x's dtype."""
    with pytest.raises(ValueError, match=esc("prelu: weight must be finite (in x's dtype).")):
        m.prelu(np.ones(3), 10**400)
    with pytest.raises(ValueError, match=esc("prelu: weight must be finite (in x's dtype).")):
        m.prelu(np.ones(3, np.float32), 2**200)
    np.testing.assert_array_equal(m.prelu(-np.ones(2), 2**100), [-(2.0**100)] * 2)
    gx, gw = m.prelu_backward(np.ones(2), -np.ones(2), 2**70)
    np.testing.assert_array_equal(gx, [2.0**70] * 2)
    assert gw.shape == () and gw == -2.0


@pytest.mark.parametrize("alpha", [1e-39, 0.5 * 2.0**-126, 2.0**127, 1e300])
def test_celu_alpha_range(m, alpha):
    with pytest.raises(
        ValueError,
        match=esc(
            f"celu: alpha must be in [2**-126, 2**126] (about "
            f"1.2e-38 to 8.5e37) so that alpha and 1/alpha are "
            f"normal float32 numbers; got {alpha}."
        ),
    ):
        m.celu(np.ones(3), alpha=alpha)
