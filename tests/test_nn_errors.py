"""Every raise in fastact/nn.py (dense layers, the MLP) and the optimizer checks of
train_step / fit, with its message; plus the MLP behaviour the API promises (parameter
views, save/load, fit's history, callbacks and progress output, predict's shapes).

Each test runs on the native classes and on fastact.reference (under
FASTACT_PUREPYTHON=1 both are the reference).
"""

from __future__ import annotations

import io
import json
import re
import sys

import numpy as np
import pytest

import fastact
from fastact import reference as ref
from fastact.nn import INITS, LOSSES, MLP_ACTIVATIONS
from fastact.optim import SGD, Adam

CLASSES = [pytest.param(fastact.MLP, id="fastact"), pytest.param(ref.MLP, id="reference")]
DENSE = [
    pytest.param((fastact.dense_forward, fastact.dense_backward), id="fastact"),
    pytest.param((ref.dense_forward, ref.dense_backward), id="reference"),
]
DTYPES = [pytest.param(np.float32, id="f32"), pytest.param(np.float64, id="f64")]
BIG = 2**31  # one beyond the BLAS integer range
VALID = ", ".join(MLP_ACTIVATIONS)


def esc(s):
    return re.escape(s)


def rng(seed=0):
    return np.random.default_rng(seed)


@pytest.fixture(params=[0, 1], ids=["fastact", "reference"])
def dense(request):
    if request.param == 0:
        return fastact.dense_forward, fastact.dense_backward
    return ref.dense_forward, ref.dense_backward


@pytest.fixture(params=[0, 1], ids=["fastact", "reference"])
def cls(request):
    return (fastact.MLP, ref.MLP)[request.param]


def xwb(dtype=np.float64, rows=4, n_in=3, n_out=2, seed=0):
    r = rng(seed)
    return (
        r.standard_normal((rows, n_in)).astype(dtype),
        r.standard_normal((n_in, n_out)).astype(dtype),
        r.standard_normal(n_out).astype(dtype),
    )


def clf_data(rows=10, n_in=4, classes=3, dtype=np.float32, seed=0):
    r = rng(seed)
    return r.standard_normal((rows, n_in)).astype(dtype), np.arange(rows) % classes


# =====================================================================================
# dense_forward
# =====================================================================================


@pytest.mark.parametrize(
    "act, hint",
    [
        ("nope", ""),
        ("Tanh", ""),
        (5, ""),
        (None, ""),
        ("softmax", " (row-wise: apply fastact.softmax to the layer's output)"),
        ("log_softmax", " (row-wise: apply fastact.log_softmax to the layer's output)"),
    ],
)
def test_dense_forward_unknown_activation(dense, act, hint):
    """The functional layer's hint is its own (loss= is a network option), and its list
    of valid names leaves out prelu, which it refuses."""
    x, W, b = xwb()
    valid = VALID.replace(", prelu", "")
    assert valid != VALID
    with pytest.raises(
        ValueError,
        match=esc(f"dense_forward: unknown activation {act!r}{hint}; valid names: {valid}."),
    ):
        dense[0](x, W, b, act)


def test_dense_forward_accepts_activation_objects(dense):
    x, W, b = xwb()
    want = np.tanh(x @ W + b)
    for act in ("tanh", fastact.ACTIVATIONS["tanh"], ("tanh", {})):
        y, cache = dense[0](x, W, b, act)
        np.testing.assert_allclose(y, want, rtol=1e-12)
        assert cache.activation == "tanh"


@pytest.mark.parametrize("shape", [(3,), (1, 4, 3), ()])
def test_dense_forward_x_not_2d(dense, shape):
    _, W, b = xwb()
    x = np.ones(shape)
    with pytest.raises(
        ValueError,
        match=esc(
            f"dense_forward: x must be 2-D (rows x n_in); got "
            f"shape {shape}. Reshape a single sample with "
            "x.reshape(1, -1)."
        ),
    ):
        dense[0](x, W, b, "relu")


@pytest.mark.parametrize("shape", [(2,), (3, 2, 1)])
def test_dense_forward_W_not_2d(dense, shape):
    x, _, b = xwb()
    with pytest.raises(
        ValueError, match=esc(f"dense_forward: W must be 2-D (n_in x n_out); got shape {shape}.")
    ):
        dense[0](x, np.ones(shape), b, "relu")


@pytest.mark.parametrize("shape", [(1,), (3,), (1, 2), (2, 1), ()])
def test_dense_forward_b_wrong_shape(dense, shape):
    x, W, _ = xwb()
    with pytest.raises(
        ValueError,
        match=esc(f"dense_forward: b must be 1-D with W.shape[1] = 2 values; got shape {shape}."),
    ):
        dense[0](x, W, np.ones(shape), "relu")


def test_dense_forward_feature_mismatch(dense):
    x, W, b = xwb()
    with pytest.raises(
        ValueError,
        match=esc(
            "dense_forward: x has 2 features but W has 3 rows; "
            "W must be (n_in, n_out) = (2, n_out)."
        ),
    ):
        dense[0](x[:, :2], W, b, "relu")
    with pytest.raises(ValueError, match=esc("dense_forward: x has 3 features but W has 2 rows")):
        dense[0](x, W.T, np.ones(3), "relu")  # W given as (n_out, n_in)
    with pytest.raises(ValueError, match=esc("dense_forward: x has 3 features but W has 2 rows")):
        dense[0](x, W.T, b, "relu")  # (n_out, n_in) with its right b: W is named, not b


def test_dense_forward_dtype_mismatch(dense):
    x, W, b = xwb()
    with pytest.raises(
        TypeError,
        match=esc(
            "x and W must have the same dtype; got float32 and "
            "float64. Convert one with .astype(np.float32) or "
            ".astype(np.float64)."
        ),
    ):
        dense[0](x.astype(np.float32), W, b, "relu")
    with pytest.raises(
        TypeError, match=esc("x and W must have the same dtype; got float64 and float32.")
    ):
        dense[0](x, W.astype(np.float32), b, "relu")
    with pytest.raises(
        TypeError, match=esc("x and b must have the same dtype; got float64 and float32.")
    ):
        dense[0](x, W, b.astype(np.float32), "relu")


def test_dense_forward_bad_input_dtype(dense):
    x, W, b = xwb()
    with pytest.raises(
        TypeError,
        match=esc(
            "x must be float32 or float64 (integers are computed in float64); got complex128."
        ),
    ):
        dense[0](x.astype(complex), W, b, "relu")
    with pytest.raises(TypeError, match=esc("W must be float32 or float64")):
        dense[0](x, W.astype(np.float16), b, "relu")
    # integers are computed in float64
    y, _ = dense[0](np.ones((2, 3), np.int64), W, b, "identity")
    np.testing.assert_allclose(y, np.ones((2, 3)) @ W + b, rtol=1e-14)


def test_dense_forward_out_wrong_shape(dense):
    x, W, b = xwb()
    with pytest.raises(ValueError, match=esc("out has shape (4, 3); the result has shape (4, 2).")):
        dense[0](x, W, b, "relu", out=np.empty((4, 3)))
    with pytest.raises(ValueError, match=esc("out has shape (8,); the result has shape (4, 2).")):
        dense[0](x, W, b, "relu", out=np.empty(8))


def test_dense_forward_out_wrong_dtype(dense):
    x, W, b = xwb()
    with pytest.raises(
        TypeError,
        match=esc(
            "out has dtype float32; the result has dtype float64. "
            "Pass an array of dtype float64 or out=None."
        ),
    ):
        dense[0](x, W, b, "relu", out=np.empty((4, 2), np.float32))


def test_dense_forward_out_not_array_or_read_only(dense):
    x, W, b = xwb()
    with pytest.raises(TypeError, match=esc("out must be a NumPy array or None; got list.")):
        dense[0](x, W, b, "relu", out=[[0.0] * 2] * 4)
    ro = np.empty((4, 2))
    ro.flags.writeable = False
    with pytest.raises(
        ValueError, match=esc("out is read-only; pass a writeable array or out=None.")
    ):
        dense[0](x, W, b, "relu", out=ro)


@pytest.mark.parametrize(
    "make",
    [lambda: np.empty((4, 4))[:, ::2], lambda: np.empty((2, 4)).T, lambda: np.empty((8, 2))[::2]],
    ids=["strided-cols", "fortran", "strided-rows"],
)
def test_dense_forward_out_not_contiguous(dense, make):
    x, W, b = xwb()
    with pytest.raises(
        ValueError,
        match=esc(
            "dense_forward: out must be C-contiguous (it is kept "
            "as the saved output for dense_backward); pass "
            "out=None."
        ),
    ):
        dense[0](x, W, b, "relu", out=make())


def test_dense_forward_out_overlaps_input(dense):
    buf = rng().standard_normal((4, 3))
    W, b = np.eye(3), np.zeros(3)
    with pytest.raises(
        ValueError,
        match=esc(
            "out overlaps x, which this function still needs "
            "while it writes; pass a separate array or "
            "out=None."
        ),
    ):
        dense[0](buf, W, b, "relu", out=buf)
    W2 = np.zeros((3, 3))
    with pytest.raises(ValueError, match=esc("out overlaps W, which this function still needs")):
        dense[0](np.ones((3, 3)), W2, b, "relu", out=W2)
    big = np.zeros(12)
    with pytest.raises(ValueError, match=esc("out overlaps b, which this function still needs")):
        dense[0](np.ones((3, 3)), W, big[:3], "relu", out=big[:9].reshape(3, 3))


def test_dense_forward_out_is_used(dense):
    x, W, b = xwb()
    out = np.full((4, 2), np.nan)
    y, cache = dense[0](x, W, b, "sigmoid", out=out)
    assert y is out
    np.testing.assert_allclose(out, 1 / (1 + np.exp(-(x @ W + b))), rtol=1e-12)


def test_dense_forward_unexpected_parameter(dense):
    x, W, b = xwb()
    msg = esc(
        "dense_forward: unexpected parameter(s) alpha for activation 'leaky_relu'; it "
        "takes negative_slope."
    )
    with pytest.raises(TypeError, match=msg):
        dense[0](x, W, b, ("leaky_relu", {"alpha": 0.1}))
    with pytest.raises(TypeError, match=msg):  # keyword form
        dense[0](x, W, b, "leaky_relu", alpha=0.1)
    with pytest.raises(
        TypeError,
        match=esc(
            "dense_forward: unexpected parameter(s) beta for "
            "activation 'relu'; it takes no parameters."
        ),
    ):
        dense[0](x, W, b, "relu", beta=1.0)


@pytest.mark.parametrize("form", ["tuple", "keyword"])
def test_dense_forward_negative_slope(dense, form):
    x, W, b = xwb()
    for name, key in (("leaky_relu", "negative_slope"), ("elu", "alpha")):
        args = ((name, {key: -0.1}),) if form == "tuple" else (name,)
        kw = {} if form == "tuple" else {key: -0.1}
        with pytest.raises(
            ValueError, match=esc(f"{key}=-0.1 < 0 cannot be differentiated from the saved output")
        ):
            dense[0](x, W, b, *args, **kw)


@pytest.mark.parametrize("form", ["tuple", "keyword"])
def test_dense_forward_parameters_are_used(dense, form):
    """dense_forward(x, W, b, "leaky_relu", negative_slope=0.2) computes with slope 0.2."""
    x, W, b = xwb()
    z = x @ W + b
    assert (z < 0).any()
    if form == "tuple":
        y, cache = dense[0](x, W, b, ("leaky_relu", {"negative_slope": 0.2}))
    else:
        y, cache = dense[0](x, W, b, "leaky_relu", negative_slope=0.2)
    np.testing.assert_allclose(y, np.where(z > 0, z, 0.2 * z), rtol=1e-12)
    assert cache.params == {"negative_slope": 0.2}
    gx, gW, gb = dense[1](np.ones_like(y), cache)
    dz = np.where(z > 0, 1.0, 0.2)
    np.testing.assert_allclose(gb, dz.sum(axis=0), rtol=1e-12)


def test_dense_blas_range(dense):
    """Sizes beyond the BLAS integer range are refused before anything is allocated."""
    x = np.broadcast_to(np.zeros(1), (BIG, 1))
    with pytest.raises(
        ValueError, match=esc(f"rows = {BIG} is beyond the BLAS integer range (2**31 - 1).")
    ):
        dense[0](x, np.zeros((1, 2)), np.zeros(2), "relu")
    x = np.broadcast_to(np.zeros(1), (2, BIG))
    with pytest.raises(ValueError, match=esc(f"n_in = {BIG} is beyond the BLAS integer range")):
        dense[0](x, np.broadcast_to(np.zeros(1), (BIG, 1)), np.zeros(1), "relu")
    W = np.broadcast_to(np.zeros(1), (1, BIG))
    with pytest.raises(ValueError, match=esc(f"n_out = {BIG} is beyond the BLAS integer range")):
        dense[0](np.zeros((2, 1)), W, np.broadcast_to(np.zeros(1), (BIG,)), "relu")


# =====================================================================================
# dense_backward
# =====================================================================================


@pytest.mark.parametrize("bad", [None, (1, 2), "cache", {}], ids=["None", "tuple", "str", "dict"])
def test_dense_backward_cache_type(dense, bad):
    x, W, b = xwb()
    y, _ = dense[0](x, W, b, "tanh")
    with pytest.raises(
        TypeError,
        match=esc(
            "dense_backward: cache must be the DenseCache returned "
            f"by dense_forward; got {type(bad).__name__}."
        ),
    ):
        dense[1](np.ones_like(y), bad)


@pytest.mark.parametrize("shape", [(4, 1), (2, 4), (8,), (4, 2, 1)])
def test_dense_backward_grad_shape(dense, shape):
    x, W, b = xwb()
    _, cache = dense[0](x, W, b, "tanh")
    with pytest.raises(
        ValueError,
        match=esc(
            f"dense_backward: grad_y has shape {shape}; the layer's output has shape (4, 2)."
        ),
    ):
        dense[1](np.ones(shape), cache)


@pytest.mark.parametrize(
    "layer, grad",
    [(np.float64, np.float32), (np.float32, np.float64), (np.float32, np.int64)],
    ids=["64-32", "32-64", "32-int"],
)
def test_dense_backward_grad_dtype(dense, layer, grad):
    x, W, b = xwb(layer)
    _, cache = dense[0](x, W, b, "tanh")
    got = np.dtype(np.float64 if grad == np.int64 else grad)
    with pytest.raises(
        TypeError,
        match=esc(
            f"dense_backward: grad_y has dtype {got} but the "
            f"layer is {np.dtype(layer)}; convert with "
            f"grad_y.astype(np.{np.dtype(layer)})."
        ),
    ):
        dense[1](np.ones((4, 2), grad), cache)


def test_dense_backward_grad_not_real(dense):
    x, W, b = xwb()
    _, cache = dense[0](x, W, b, "tanh")
    with pytest.raises(
        TypeError,
        match=esc(
            "grad_y must be float32 or float64 (integers are computed in float64); got complex128."
        ),
    ):
        dense[1](np.ones((4, 2), complex), cache)


@pytest.mark.parametrize("act", ["tanh", "gelu", "relu", "softplus"])
def test_dense_backward_values(dense, act):
    """The happy path the errors guard: the backward of act(x @ W + b), float64."""
    x, W, b = xwb(rows=5, n_in=3, n_out=4)
    y, cache = dense[0](x, W, b, act)
    g = rng(1).standard_normal(y.shape)
    gx, gW, gb = dense[1](g, cache)
    z = x @ W + b
    _, d = ref.ACTIVATIONS[act].forward, ref.ACTIVATIONS[act].backward
    saved = z if ref.ACTIVATIONS[act].saves == "input" else ref.ACTIVATIONS[act].forward(z)
    dz = d(g, saved)
    np.testing.assert_allclose(gb, dz.sum(axis=0), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(gW, x.T @ dz, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(gx, dz @ W.T, rtol=1e-12, atol=1e-14)
    # the caller's grad_y is not overwritten
    np.testing.assert_array_equal(g, rng(1).standard_normal(y.shape))


# =====================================================================================
# the MLP constructor
# =====================================================================================


@pytest.mark.parametrize("bad", [5, None, 3.0])
def test_mlp_layer_sizes_not_iterable(cls, bad):
    with pytest.raises(
        TypeError,
        match=esc(
            f"MLP: layer_sizes must be a list of ints [n_in, hidden..., n_out]; got {bad!r}."
        ),
    ):
        cls(bad)


@pytest.mark.parametrize("bad", [[], [4], (4,)])
def test_mlp_layer_sizes_too_short(cls, bad):
    with pytest.raises(
        ValueError, match=esc(f"MLP: layer_sizes needs at least [n_in, n_out]; got {list(bad)}.")
    ):
        cls(bad)


@pytest.mark.parametrize(
    "bad", [[4, 0, 3], [4, -1, 3], [0, 3], [4, 2.5, 3], [4, 3.0], [4, True, 3], [4, "3"], [4, None]]
)
def test_mlp_layer_sizes_not_positive_ints(cls, bad):
    with pytest.raises(
        ValueError, match=esc(f"MLP: layer sizes must be positive integers; got {bad}.")
    ):
        cls(bad)


def test_mlp_layer_sizes_numpy_ints(cls):
    net = cls(np.array([4, 5, 3]))
    assert net.layer_sizes == (4, 5, 3) and all(type(s) is int for s in net.layer_sizes)
    assert net.n_params == 4 * 5 + 5 + 5 * 3 + 3


def test_mlp_layer_size_beyond_blas(cls):
    with pytest.raises(
        ValueError, match=esc(f"a layer size = {BIG} is beyond the BLAS integer range (2**31 - 1).")
    ):
        cls([BIG, 2])


@pytest.mark.parametrize("acts, n", [(["relu"], 2), (["relu"] * 3, 2), ([], 1)])
def test_mlp_activation_list_length(cls, acts, n):
    sizes = [4] + [5] * n + [3]
    with pytest.raises(
        ValueError,
        match=esc(
            f"MLP: activation is a list of {len(acts)} but the "
            f"network has {n} hidden layer(s); give one per "
            "hidden layer or a single name."
        ),
    ):
        cls(sizes, acts)


@pytest.mark.parametrize(
    "act, hint",
    [
        ("nope", ""),
        (3, ""),
        (None, ""),
        ("softmax", " (row-wise: use loss='softmax_cross_entropy' for a softmax output)"),
    ],
)
def test_mlp_unknown_activation(cls, act, hint):
    with pytest.raises(
        ValueError, match=esc(f"MLP: unknown activation {act!r}{hint}; valid names: {VALID}.")
    ):
        cls([4, 5, 3], act)
    with pytest.raises(ValueError, match=esc(f"MLP: unknown activation {act!r}{hint}")):
        cls([4, 5, 5, 3], ["relu", act])


def test_mlp_activation_parameters(cls):
    with pytest.raises(
        TypeError,
        match=esc(
            "MLP: unexpected parameter(s) alpha for activation "
            "'leaky_relu'; it takes negative_slope."
        ),
    ):
        cls([4, 5, 3], ("leaky_relu", {"alpha": 0.1}))
    with pytest.raises(
        ValueError,
        match=esc("negative_slope=-0.1 < 0 cannot be differentiated from the saved output"),
    ):
        cls([4, 5, 3], ("leaky_relu", {"negative_slope": -0.1}))
    with pytest.raises(ValueError, match=esc("alpha=-1.0 < 0 cannot be differentiated")):
        cls([4, 5, 5, 3], ["tanh", ("elu", {"alpha": -1.0})])
    net = cls([4, 5, 5, 3], [fastact.ACTIVATIONS["tanh"], ("elu", {"alpha": 0.5})])
    assert net.activations == [("tanh", {}), ("elu", {"alpha": 0.5})]


@pytest.mark.parametrize("bad", ["kaiming", "", None, "Xavier_uniform"])
def test_mlp_unknown_init(cls, bad):
    with pytest.raises(
        ValueError, match=esc(f"MLP: unknown init {bad!r}; valid: {', '.join(INITS)}.")
    ):
        cls([4, 5, 3], init=bad)


@pytest.mark.parametrize("bad", ["cross_entropy", "bce", None, 0])
def test_mlp_unknown_loss(cls, bad):
    with pytest.raises(
        ValueError, match=esc(f"MLP: unknown loss {bad!r}; valid: {', '.join(LOSSES)}.")
    ):
        cls([4, 5, 3], loss=bad)


def test_mlp_softmax_needs_two_outputs(cls):
    with pytest.raises(
        ValueError,
        match=esc(
            "MLP: softmax_cross_entropy needs at least 2 outputs "
            "(classes); for one output use "
            "loss='binary_cross_entropy_with_logits'."
        ),
    ):
        cls([4, 5, 1])
    assert cls([4, 5, 1], loss="binary_cross_entropy_with_logits").layer_sizes == (4, 5, 1)


@pytest.mark.parametrize("bad", [np.float16, np.int64, int, np.longdouble, np.complex128, "i4"])
def test_mlp_bad_dtype(cls, bad):
    with pytest.raises(
        TypeError, match=esc(f"MLP: dtype must be float32 or float64; got {np.dtype(bad)}.")
    ):
        cls([4, 5, 3], dtype=bad)


@pytest.mark.parametrize("bad", [None, "float99"])
def test_mlp_dtype_that_is_not_a_dtype(cls, bad):
    with pytest.raises(
        TypeError, match=esc(f"MLP: dtype must be float32 or float64; got {bad!r}.")
    ):
        cls([4, 5, 3], dtype=bad)


@pytest.mark.parametrize("bad", [-1, 1.5, True, "0", None, np.float64(1.0), 2**63])
def test_mlp_bad_seed(cls, bad):
    with pytest.raises(
        ValueError, match=esc(f"MLP: seed must be an integer in [0, 2**63); got {bad!r}.")
    ):
        cls([4, 5, 3], seed=bad)


def test_mlp_seed_numpy_int_same_weights(cls):
    a, b = cls([4, 5, 3], seed=np.int64(7)), cls([4, 5, 3], seed=7)
    assert a.seed == 7 and type(a.seed) is int
    np.testing.assert_array_equal(a.theta, b.theta)
    assert not np.array_equal(a.theta, cls([4, 5, 3], seed=8).theta)


# =====================================================================================
# X and y checks
# =====================================================================================


def _calls(net, y):
    """(method call taking X, the prefix of its messages)"""
    return [
        (lambda X: net.forward(X), "forward"),
        (lambda X: net.predict(X), "predict"),  # (the method called is named)
        (lambda X: net.compute_gradients(X, y), "compute_gradients"),
        (lambda X: net.train_step(X, y, SGD(0.1)), "train_step"),
        (lambda X: net.evaluate(X, y), "evaluate"),
        (lambda X: net.fit(X, y, verbose=0), "fit"),
    ]


@pytest.mark.parametrize("which", range(6))
def test_X_wrong_float_dtype(cls, which):
    net = cls([4, 5, 3])
    X, y = clf_data()
    call, where = _calls(net, y)[which]
    with pytest.raises(
        TypeError,
        match=esc(
            f"{where}: X has dtype float64 but the network is "
            "float32; convert with X.astype(np.float32)."
        ),
    ):
        call(X.astype(np.float64))
    with pytest.raises(
        TypeError,
        match=esc(
            f"{where}: X has dtype int64 but the network is "
            "float32; convert with X.astype(np.float32)."
        ),
    ):
        call(np.ones((10, 4), np.int64))
    with pytest.raises(
        TypeError, match=esc(f"{where}: X has dtype float16 but the network is float32")
    ):
        call(X.astype(np.float16))


def test_X_float32_into_float64_net(cls):
    net = cls([4, 5, 3], dtype=np.float64)
    with pytest.raises(
        TypeError,
        match=esc(
            "forward: X has dtype float32 but the network is "
            "float64; convert with X.astype(np.float64)."
        ),
    ):
        net.forward(np.ones((2, 4), np.float32))
    # a nested list becomes float64, which this network takes
    assert net.forward([[0.0] * 4]).shape == (1, 3)


@pytest.mark.parametrize("bad", [np.complex64, object, "U3"], ids=["complex", "object", "str"])
def test_X_not_real(cls, bad):
    net = cls([4, 5, 3])
    with pytest.raises(
        TypeError,
        match=esc(f"forward: X must be a real array of dtype float32; got dtype {np.dtype(bad)}."),
    ):
        net.forward(np.ones((2, 4)).astype(bad))


@pytest.mark.parametrize("which", range(6))
@pytest.mark.parametrize("shape", [(10,), (10, 3), (10, 5), (10, 4, 1), (4, 10)])
def test_X_wrong_shape(cls, which, shape):
    net = cls([4, 5, 3])
    _, y = clf_data()
    call, where = _calls(net, y)[which]
    with pytest.raises(
        ValueError, match=esc(f"{where}: X must have shape (rows, 4); got {shape}.")
    ):
        call(np.ones(shape, np.float32))


@pytest.mark.parametrize("which", range(6))
def test_X_no_rows(cls, which):
    net = cls([4, 5, 3])
    call, where = _calls(net, np.zeros(0, np.int64))[which]
    with pytest.raises(ValueError, match=esc(f"{where}: X has no rows.")):
        call(np.ones((0, 4), np.float32))


@pytest.mark.parametrize("which", range(6))
@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_X_not_finite(cls, which, value):
    net = cls([4, 5, 3])
    X, y = clf_data()
    X[7, 2] = value
    call, where = _calls(net, y)[which]
    with pytest.raises(
        ValueError,
        match=esc(
            f"{where}: X contains NaN or inf; clean the data "
            "first (e.g. X[~np.isfinite(X)] = 0 or drop those "
            "rows)."
        ),
    ):
        call(X)


def test_X_rows_beyond_blas(cls):
    net = cls([4, 5, 3])
    X = np.broadcast_to(np.zeros(4, np.float32), (BIG, 4))
    with pytest.raises(
        ValueError, match=esc(f"rows = {BIG} is beyond the BLAS integer range (2**31 - 1).")
    ):
        net.compute_gradients(X, np.broadcast_to(np.int64(0), (BIG,)))  # one batch: BLAS int
    # (inference runs in blocks of `capacity` rows: no such limit; not run here, 32 GB)


def test_X_non_contiguous_accepted(cls):
    net = cls([4, 5, 3], dtype=np.float64)
    X = rng().standard_normal((10, 8))[:, ::2]
    np.testing.assert_array_equal(net.forward(X), net.forward(np.ascontiguousarray(X)))


# -- y, softmax cross-entropy --


def _ycalls(net, X):
    return [
        (lambda y: net.compute_gradients(X, y), "compute_gradients"),
        (lambda y: net.train_step(X, y, SGD(0.1)), "train_step"),
        (lambda y: net.evaluate(X, y), "evaluate"),
        (lambda y: net.fit(X, y, verbose=0), "fit"),
        (
            lambda y: net.fit(
                X,
                np.zeros(len(X), np.int64)
                if net.loss == "softmax_cross_entropy"
                else np.zeros((len(X), net.layer_sizes[-1]), net.dtype),
                validation_data=(X, y),
                verbose=0,
            ),
            "fit (validation_data)",
        ),
    ]


@pytest.mark.parametrize("which", range(5))
@pytest.mark.parametrize(
    "bad", [np.float64, np.float32, np.bool_, object], ids=["f64", "f32", "bool", "object"]
)
def test_y_labels_not_integers(cls, which, bad):
    net = cls([4, 5, 3])
    X, y = clf_data()
    call, where = _ycalls(net, X)[which]
    with pytest.raises(
        TypeError,
        match=esc(
            f"{where}: y must hold integer class indices for "
            f"softmax_cross_entropy; got dtype {np.dtype(bad)}. "
            "Convert with y.astype(np.int64)."
        ),
    ):
        call(y.astype(bad))


@pytest.mark.parametrize("which", range(5))
@pytest.mark.parametrize("shape", [(10, 1), (9,), (11,), (10, 3), ()])
def test_y_labels_wrong_shape(cls, which, shape):
    net = cls([4, 5, 3])
    X, _ = clf_data()
    call, where = _ycalls(net, X)[which]
    with pytest.raises(
        ValueError,
        match=esc(f"{where}: y must have shape (10,), one class index per row of X; got {shape}."),
    ):
        call(np.zeros(shape, np.int64))


@pytest.mark.parametrize("which", range(5))
@pytest.mark.parametrize("bad", [-1, 3, 100, -5])
def test_y_label_out_of_range(cls, which, bad):
    net = cls([4, 5, 3])
    X, y = clf_data()
    y = y.copy()
    y[4] = bad
    call, where = _ycalls(net, X)[which]
    with pytest.raises(
        ValueError,
        match=esc(
            f"{where}: label {bad} is out of range; the network "
            "has 3 classes, so labels must be in [0, 2]."
        ),
    ):
        call(y)


def test_y_huge_unsigned_label_reported_as_given(cls):
    net = cls([4, 5, 3])
    X, y = clf_data()
    y = y.astype(np.uint64)
    y[2] = 2**63 + 5  # would wrap to a negative int64
    with pytest.raises(
        ValueError,
        match=esc(
            f"compute_gradients: label {2**63 + 5} is out of range; the network has 3 classes"
        ),
    ):
        net.compute_gradients(X, y)


def test_y_labels_any_integer_dtype(cls):
    net = cls([4, 5, 3], dtype=np.float64)
    X, y = clf_data(dtype=np.float64)
    want = net.compute_gradients(X, y)
    for dt in (np.int8, np.uint8, np.int32, np.uint64):
        assert net.compute_gradients(X, y.astype(dt)) == want
    assert net.compute_gradients(X, list(y)) == want


# -- y, mse and binary cross-entropy --

REGRESSION = ["mse", "binary_cross_entropy_with_logits"]


@pytest.mark.parametrize("loss", REGRESSION)
@pytest.mark.parametrize("which", range(5))
def test_y_float64_targets_into_float32_net(cls, loss, which):
    net = cls([4, 5, 2], loss=loss)
    X, _ = clf_data()
    call, where = _ycalls(net, X)[which]
    with pytest.raises(
        TypeError,
        match=esc(
            f"{where}: y has dtype float64 but the network is "
            "float32; convert with y.astype(np.float32)."
        ),
    ):
        call(np.zeros((10, 2)))
    # a list: NumPy's float64, which the user did not choose, is named as such
    with pytest.raises(
        TypeError,
        match=esc(
            f"{where}: y has dtype float64 (NumPy reads the list as float64) but the "
            "network is float32; convert with np.asarray(y, dtype=np.float32)."
        ),
    ):
        call(np.zeros((10, 2)).tolist())


def test_X_as_a_list_of_floats_names_numpys_float64(cls):
    net = cls([4, 5, 3])
    with pytest.raises(
        TypeError,
        match=esc(
            "predict: X has dtype float64 (NumPy reads the tuple as float64) but the "
            "network is float32; convert with np.asarray(X, dtype=np.float32)."
        ),
    ):
        net.predict(((0.0, 1.0, 2.0, 3.0),))
    # what the message says works
    X = np.asarray(((0.0, 1.0, 2.0, 3.0),), dtype=np.float32)
    assert net.predict(X).shape == (1,)


@pytest.mark.parametrize("loss", REGRESSION)
def test_y_targets_not_real(cls, loss):
    net = cls([4, 5, 2], loss=loss)
    X, _ = clf_data()
    with pytest.raises(
        TypeError, match=esc("compute_gradients: y must be real numbers; got dtype complex128.")
    ):
        net.compute_gradients(X, np.zeros((10, 2), complex))


@pytest.mark.parametrize("loss", REGRESSION)
@pytest.mark.parametrize("which", range(5))
@pytest.mark.parametrize("shape", [(10,), (10, 3), (9, 2), (2, 10), (10, 2, 1)])
def test_y_targets_wrong_shape(cls, loss, which, shape):
    net = cls([4, 5, 2], loss=loss)
    X, _ = clf_data()
    call, where = _ycalls(net, X)[which]
    with pytest.raises(ValueError, match=esc(f"{where}: y must have shape (10, 2); got {shape}.")):
        call(np.zeros(shape, np.float32))


@pytest.mark.parametrize("loss", REGRESSION)
@pytest.mark.parametrize("shape", [(10, 2), (9,), (1, 10)])
def test_y_targets_wrong_shape_one_output(cls, loss, shape):
    net = cls([4, 5, 1], loss=loss)
    X, _ = clf_data()
    with pytest.raises(
        ValueError, match=esc(f"evaluate: y must have shape (10, 1) or (10,); got {shape}.")
    ):
        net.evaluate(X, np.zeros(shape, np.float32))


@pytest.mark.parametrize("loss", REGRESSION)
def test_y_one_output_vector_or_column(cls, loss):
    net = cls([4, 5, 1], loss=loss, dtype=np.float64)
    X, _ = clf_data(dtype=np.float64)
    t = (rng(2).random(10) > 0.5).astype(np.float64)
    a = net.compute_gradients(X, t)
    assert net.compute_gradients(X, t[:, None]) == a
    assert net.compute_gradients(X, t.astype(np.int64)) == a  # integers are converted
    assert net.compute_gradients(X, t.astype(bool)) == a


@pytest.mark.parametrize("loss", REGRESSION)
@pytest.mark.parametrize("which", range(5))
@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_y_targets_not_finite(cls, loss, which, value):
    net = cls([4, 5, 2], loss=loss)
    X, _ = clf_data()
    t = np.zeros((10, 2), np.float32)
    t[3, 1] = value
    call, where = _ycalls(net, X)[which]
    with pytest.raises(ValueError, match=esc(f"{where}: y contains NaN or inf.")):
        call(t)


# =====================================================================================
# train_step, fit, predict_proba, diagnostics
# =====================================================================================


@pytest.mark.parametrize("bad", ["sgd", None, SGD, 0.1], ids=["str", "None", "class", "float"])
def test_train_step_not_an_optimizer(cls, bad):
    net = cls([4, 5, 3])
    X, y = clf_data()
    theta = net.theta.copy()
    with pytest.raises(
        TypeError,
        match=esc(
            "train_step: optimizer must be a fastact.optim "
            "optimizer (SGD, Adam, AdamW); got "
            f"{type(bad).__name__}."
        ),
    ):
        net.train_step(X, y, bad)
    np.testing.assert_array_equal(net.theta, theta)


@pytest.mark.parametrize("name", ["epochs", "batch_size"])
@pytest.mark.parametrize("bad", [0, -1, 1.5, 2.0, True, "2", None])
def test_fit_bad_counts(cls, name, bad):
    net = cls([4, 5, 3])
    X, y = clf_data()
    with pytest.raises(
        ValueError, match=esc(f"fit: {name} must be a positive integer; got {bad!r}.")
    ):
        net.fit(X, y, **{name: bad}, verbose=0)


@pytest.mark.parametrize("bad", ["adam", Adam, 1e-3], ids=["str", "class", "float"])
def test_fit_not_an_optimizer(cls, bad):
    net = cls([4, 5, 3])
    X, y = clf_data()
    with pytest.raises(
        TypeError,
        match=esc(f"fit: optimizer must be a fastact.optim optimizer; got {type(bad).__name__}."),
    ):
        net.fit(X, y, optimizer=bad, verbose=0)


@pytest.mark.parametrize(
    "make",
    [
        lambda X, y: 5,
        lambda X, y: "abc",
        lambda X, y: (X,),
        lambda X, y: (X, y, y),
        lambda X, y: [X],
    ],
    ids=["int", "str", "one", "three", "list-of-one"],
)
def test_fit_validation_data_not_a_pair(cls, make):
    net = cls([4, 5, 3])
    X, y = clf_data()
    with pytest.raises(
        ValueError, match=esc("fit: validation_data must be a pair (X_val, y_val).")
    ):
        net.fit(X, y, validation_data=make(X, y), verbose=0)


def test_fit_validation_data_checked_before_training(cls):
    net = cls([4, 5, 3])
    X, y = clf_data()
    theta = net.theta.copy()
    with pytest.raises(
        ValueError, match=esc("fit (validation_data): X must have shape (rows, 4); got (10, 3).")
    ):
        net.fit(X, y, validation_data=(X[:, :3], y), verbose=0)
    with pytest.raises(TypeError, match=esc("fit (validation_data): X has dtype float64")):
        net.fit(X, y, validation_data=(X.astype(np.float64), y), verbose=0)
    np.testing.assert_array_equal(net.theta, theta)


@pytest.mark.parametrize(
    "bad", [[1], [lambda *a: None, "stop"], (None,)], ids=["int", "str-after-callable", "None"]
)
def test_fit_callbacks_not_callable(cls, bad):
    net = cls([4, 5, 3])
    X, y = clf_data()
    theta = net.theta.copy()
    with pytest.raises(
        TypeError,
        match=esc(f"fit: callbacks must be callables cb(net, epoch, logs); got {bad[-1]!r}."),
    ):
        net.fit(X, y, callbacks=bad, verbose=0)
    np.testing.assert_array_equal(net.theta, theta)


@pytest.mark.parametrize("bad", [lambda net, epoch, logs: None, 5], ids=["bare-callable", "int"])
def test_fit_callbacks_not_a_list(cls, bad):
    """A single callable (or a non-iterable) gets fit's own message, not a bare
    "'function' object is not iterable" from list()."""
    net = cls([4, 5, 3])
    X, y = clf_data()
    with pytest.raises(TypeError, match=esc("fit: callbacks must be")):
        net.fit(X, y, callbacks=bad, verbose=0)


def test_predict_proba_on_regressor(cls):
    net = cls([4, 5, 2], loss="mse")
    X, _ = clf_data()
    with pytest.raises(
        ValueError,
        match=esc(
            "predict_proba: the network is a regressor (loss='mse'); use predict or forward."
        ),
    ):
        net.predict_proba(X)


DIAG_MSG = esc(
    "diagnostics: nothing recorded yet; call compute_gradients(X, y) first (or "
    "train_step on a network made with diagnostics=True)."
)


def test_diagnostics_before_compute_gradients(cls):
    net = cls([4, 5, 3])
    X, y = clf_data()
    with pytest.raises(RuntimeError, match=DIAG_MSG):
        net.diagnostics()
    net.forward(X)
    net.evaluate(X, y)
    net.train_step(X, y, SGD(0.1))  # diagnostics=False: train_step records nothing
    with pytest.raises(RuntimeError, match=DIAG_MSG):
        net.diagnostics()


@pytest.mark.parametrize("record", ["compute_gradients", "train_step"])
def test_diagnostics_values(cls, record):
    net = cls([4, 6, 5, 3], ["tanh", "relu"], dtype=np.float64, diagnostics=True)
    X, y = clf_data(rows=12, dtype=np.float64)
    if record == "compute_gradients":
        net.compute_gradients(X, y)
    else:
        net.train_step(X, y, SGD(0.0))  # lr 0: the grads stay those of these weights
    d = net.diagnostics()
    assert [e["layer"] for e in d] == [0, 1, 2]
    assert [e["activation"] for e in d] == ["tanh", "relu", "identity"]
    assert [e["shape"] for e in d] == [(4, 6), (6, 5), (5, 3)]
    for e, (gW, gb) in zip(d, net.grads):
        assert e["grad_W_norm"] == pytest.approx(np.linalg.norm(gW), rel=1e-12)
        assert e["grad_b_norm"] == pytest.approx(np.linalg.norm(gb), rel=1e-12)
        assert 0.0 <= e["saturated_fraction"] <= 1.0 and 0.0 <= e["dead_fraction"] <= 1.0
    h = np.tanh(X @ net.params[0][0] + net.params[0][1])
    assert d[0]["act_mean"] == pytest.approx(h.mean(), rel=1e-12)
    assert d[0]["act_std"] == pytest.approx(h.std(), rel=1e-12)


# =====================================================================================
# load
# =====================================================================================


def _config(net, **change):
    meta = {"format": "fastact.MLP/1", **net.config(), **change}
    return np.array(json.dumps(meta))


@pytest.mark.parametrize("keys", [("theta",), ("config",), ("weights", "meta")])
def test_load_missing_keys(cls, tmp_path, keys):
    net = cls([4, 5, 3])
    p = str(tmp_path / "net.npz")
    arrays = {
        "theta": net.theta,
        "config": _config(net),
        "weights": net.theta,
        "meta": _config(net),
    }
    np.savez(p, **{k: arrays[k] for k in keys})
    with pytest.raises(
        ValueError,
        match=esc(f"MLP.load: {p!r} is not a fastact MLP file (it lacks 'config' or 'theta')."),
    ):
        cls.load(p)


@pytest.mark.parametrize(
    "fmt", ["fastact.MLP/0", "fastact.MLP/3", "fastact.Sequential/1", "", None, "keras"]
)
def test_load_wrong_format(cls, tmp_path, fmt):
    net = cls([4, 5, 3])
    p = str(tmp_path / "net.npz")
    np.savez(p, config=_config(net, format=fmt), theta=net.theta)
    msg = f"MLP.load: {p!r} has format {fmt!r}; this version reads 'fastact.MLP/2'."
    if fmt == "fastact.Sequential/1":  # another class's file says which load reads it
        msg = (
            f"MLP.load: {p!r} holds a fastact.Sequential (format 'fastact.Sequential/1'); "
            "load it with fastact.Sequential.load."
        )
    with pytest.raises(ValueError, match=esc(msg)):
        cls.load(p)


def test_load_missing_format(cls, tmp_path):
    net = cls([4, 5, 3])
    p = str(tmp_path / "net.npz")
    np.savez(p, config=np.array(json.dumps(net.config())), theta=net.theta)
    with pytest.raises(
        ValueError,
        match=esc(f"MLP.load: {p!r} has format None; this version reads 'fastact.MLP/2'."),
    ):
        cls.load(p)


@pytest.mark.parametrize("config", [{"layers": []}, [1, 2], "x"], ids=["no-format", "list", "str"])
def test_sequential_load_refuses_a_file_without_its_format(tmp_path, config):
    """Sequential reads no older format: a configuration without one is refused, not fed
    to the constructor (which failed with KeyError / AttributeError)."""
    for seq in (fastact.Sequential, ref.Sequential):
        p = str(tmp_path / "seq.npz")
        np.savez(p, config=np.array(json.dumps(config)), theta=np.zeros(3))
        with pytest.raises(
            ValueError,
            match=esc(
                f"Sequential.load: {p!r} has format None; "
                "this version reads 'fastact.Sequential/1'."
            ),
        ):
            seq.load(p)


def test_load_of_a_npz_with_an_object_member_is_not_called_a_non_npz(cls, tmp_path):
    net = cls([4, 5, 3])
    p = str(tmp_path / "net.npz")
    meta = {"format": "fastact.MLP/2", **net.config()}
    np.savez(p, config=np.array(json.dumps(meta)), theta=np.array([None] * 3, dtype=object))
    with pytest.raises(
        ValueError,
        match=esc(
            f"MLP.load: {p!r} is not a readable fastact MLP file: Object arrays cannot be "
            "loaded when allow_pickle=False"
        ),
    ):
        cls.load(p)


def test_load_refuses_a_npy_or_text_file(cls, tmp_path):
    p = str(tmp_path / "weights.npy")
    np.save(p, np.zeros(3))
    with pytest.raises(
        ValueError,
        match=esc(
            f"MLP.load: {p!r} is a single .npy array, not a fastact MLP file "
            "(write one with net.save(), read it with MLP.load())."
        ),
    ):
        cls.load(p)
    p = str(tmp_path / "net.txt")
    with open(p, "w") as f:
        f.write("layer_sizes: 4 5 3\n")
    with pytest.raises(
        ValueError,
        match=esc(
            f"MLP.load: {p!r} is not a .npz file (fastact networks are written by net.save())."
        ),
    ):
        cls.load(p)


@pytest.mark.parametrize(
    "change, error",
    [
        ({"layer_sizes": None}, "KeyError: 'layer_sizes'"),
        ({"counter": "x"}, "ValueError: invalid literal for int() with base 10: 'x'"),
        ({"activation": 5}, "TypeError: "),
        ({"counter": -1}, "ValueError: dropout's step counter -1 is not a uint64"),
        (
            {"counter": 2**64},
            "ValueError: dropout's step counter 18446744073709551616 is not a uint64",
        ),
    ],
    ids=["no-sizes", "counter", "activation", "negative-counter", "counter-2**64"],
)
def test_load_damaged_configuration(cls, tmp_path, change, error):
    net = cls([4, 5, 3])
    meta = {"format": "fastact.MLP/2", **net.config()}
    for k, v in change.items():
        if v is None:
            del meta[k]
        else:
            meta[k] = v
    p = str(tmp_path / "net.npz")
    np.savez(p, config=np.array(json.dumps(meta)), theta=net.theta)
    with pytest.raises(
        ValueError, match=esc(f"MLP.load: {p!r} holds a damaged configuration: {error}")
    ):
        cls.load(p)


def test_load_takes_the_largest_uint64_counter(cls, tmp_path):
    """The counter's range is uint64's: 2**64 - 1 loads (2**64 is refused, above)."""
    net = cls([4, 5, 3])
    meta = {"format": "fastact.MLP/2", **net.config(), "counter": 2**64 - 1}
    p = str(tmp_path / "net.npz")
    np.savez(p, config=np.array(json.dumps(meta)), theta=net.theta)
    assert cls.load(p)._counter == 2**64 - 1


@pytest.mark.parametrize(
    "theta, desc",
    [
        (np.zeros(42, np.float32), "42 float32"),
        (np.zeros(44, np.float32), "44 float32"),
        (np.zeros(43, np.float64), "43 float64"),
        (np.zeros((43, 1), np.float32), "43 float32"),
    ],
    ids=["short", "long", "dtype", "2-D"],
)
def test_load_theta_mismatch(cls, tmp_path, theta, desc):
    net = cls([4, 5, 3])
    assert net.n_params == 43
    p = str(tmp_path / "net.npz")
    np.savez(p, config=_config(net), theta=theta)
    with pytest.raises(
        ValueError,
        match=esc(
            f"MLP.load: {p!r} holds {desc} parameters; the configuration needs 43 float32 "
            f"({net.theta.size} with the alignment gaps this version writes)."
        ),
    ):
        cls.load(p)
    assert net.theta.size != 43  # (so the message names both counts)


def test_load_refuses_a_batchnorm_file_without_its_running_statistics(tmp_path):
    """A file of the current format with BatchNorm but no 'state' member loaded with fresh
    running statistics (0 and 1), silently changing evaluation's output."""
    for mod in (fastact, ref):
        net = mod.MLP([4, 6, 3], "relu", batchnorm="before", seed=0)
        path = tmp_path / "bn.npz"
        net.save(path)
        with np.load(path) as f:
            arrays = {k: f[k] for k in f.files if k != "state"}
        bad = tmp_path / "bad.npz"
        np.savez(bad, **arrays)
        with pytest.raises(
            ValueError,
            match=esc(
                f"MLP.load: {bad!r} has no running statistics (member 'state') but its "
                "configuration has BatchNorm: the file is damaged."
            ),
        ):
            mod.MLP.load(bad)
        plain = mod.MLP([4, 6, 3], "relu", seed=0)  # nothing to miss without BatchNorm
        plain.save(path)
        with np.load(path) as f:
            arrays = {k: f[k] for k in f.files if k != "state"}
        np.savez(bad, **arrays)
        assert np.array_equal(mod.MLP.load(bad).theta, plain.theta)


def test_load_bad_config_values(cls, tmp_path):
    """The configuration goes through the constructor's checks."""
    net = cls([4, 5, 3])
    p = str(tmp_path / "net.npz")
    np.savez(p, config=_config(net, loss="hinge"), theta=net.theta)
    with pytest.raises(ValueError, match=esc("MLP: unknown loss 'hinge'")):
        cls.load(p)
    np.savez(p, config=_config(net, activation=[["softmax", {}]]), theta=net.theta)
    with pytest.raises(ValueError, match=esc("MLP: unknown activation 'softmax' (row-wise")):
        cls.load(p)
    np.savez(p, config=_config(net, batchnorm="middle"), theta=net.theta)
    with pytest.raises(
        ValueError,
        match=esc(
            "MLP: batchnorm must be None, 'before' or "
            "'after' (relative to the activation); got "
            "'middle'."
        ),
    ):
        cls.load(p)


# =====================================================================================
# API behaviour
# =====================================================================================


def numpy_forward(net, X):
    a = X.astype(np.float64)
    acts = [a_[0] for a_ in net.activations] + ["identity"]
    for (W, b), act in zip(net.params, acts):
        z = a @ W.astype(np.float64) + b.astype(np.float64)
        a = ref.ACTIVATIONS[act].forward(z)
    return a


@pytest.mark.parametrize("dtype", DTYPES)
def test_params_are_views(cls, dtype):
    net = cls([4, 6, 3], "tanh", dtype=dtype)
    X, _ = clf_data(dtype=dtype)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    before = net.forward(X)
    np.testing.assert_allclose(before, numpy_forward(net, X), rtol=tol, atol=tol)
    for l, (W, b) in enumerate(net.params):
        assert np.shares_memory(W, net.theta) and np.shares_memory(b, net.theta)
        assert W.shape == (net.layer_sizes[l], net.layer_sizes[l + 1])
        assert np.shares_memory(net.grads[l][0], net.grad_flat)
    W0, b0 = net.params[0]
    W0 *= 2.0
    b0[...] = 0.5
    net.params[1][1][1] = 3.0
    after = net.forward(X)
    assert not np.allclose(after, before)
    np.testing.assert_allclose(after, numpy_forward(net, X), rtol=tol, atol=tol)
    assert net.theta[W0.size] == 0.5  # b0 follows W0 in theta
    # writing theta is seen through params and by the network
    net.theta[...] = 0
    assert not net.params[0][0].any()
    np.testing.assert_array_equal(net.forward(X), np.zeros((10, 3), dtype))


def test_grads_are_views(cls):
    """net.grads are views of grad_flat, each weight matrix starting on a multiple of 16
    elements (the gap before it zero, in theta too), the parameters counted without
    the gaps"""
    net = cls([4, 6, 3], "tanh", dtype=np.float64)
    X, y = clf_data(dtype=np.float64)
    net.compute_gradients(X, y)
    seen = np.zeros(net.grad_flat.size, bool)
    n = 0
    for gW, gb in net.grads:
        for g in (gW, gb):
            o = (g.__array_interface__["data"][0] - net.grad_flat.ctypes.data) // 8
            np.testing.assert_array_equal(net.grad_flat[o : o + g.size], g.ravel())
            seen[o : o + g.size] = True
            n += g.size
        assert (gW.ctypes.data - net.grad_flat.ctypes.data) % (16 * 8) == 0
        assert np.abs(gW).max() > 0
    assert n == net.n_params == 4 * 6 + 6 + 6 * 3 + 3
    assert net.grad_flat.size == 4 * 6 + 6 + 2 + 6 * 3 + 3  # the second W after a gap of 2
    assert not np.any(net.grad_flat[~seen]) and not np.any(net.theta[~seen])


SAVE_ACTS = [
    pytest.param(("leaky_relu", {"negative_slope": 0.2}), id="leaky0.2"),
    pytest.param(["tanh", ("elu", {"alpha": 0.5})], id="tanh-elu0.5"),
    pytest.param(("softplus", {"beta": 2.0, "threshold": 10.0}), id="softplus"),
    pytest.param(("gelu", {"approximate": "tanh"}), id="gelu-tanh"),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("act", SAVE_ACTS)
def test_save_load_round_trip(cls, tmp_path, dtype, act):
    sizes = [4, 6, 5, 3] if isinstance(act, list) else [4, 6, 3]
    net = cls(sizes, act, init="xavier_normal", dtype=dtype, seed=3)
    X, y = clf_data(dtype=dtype)
    net.train_step(X, y, Adam(lr=0.01))  # weights that are not the seed's
    p = tmp_path / "net.npz"
    net.save(p)
    for loader in (fastact.MLP, ref.MLP):
        back = loader.load(p)
        assert type(back) is loader
        assert back.theta.dtype == np.dtype(dtype)
        np.testing.assert_array_equal(back.theta.view(np.uint8), net.theta.view(np.uint8))
        assert back.activations == net.activations
        assert (back.layer_sizes, back.loss, back.init, back.seed, back.dtype) == (
            net.layer_sizes,
            net.loss,
            net.init,
            net.seed,
            net.dtype,
        )
        assert back.config() == net.config()
        if loader is cls:
            np.testing.assert_array_equal(back.forward(X), net.forward(X))
    slope = net.activations[0][1]
    assert slope == dict(act[1]) if isinstance(act, tuple) else slope == {}


def _packed(net):
    """theta as fastact laid it out before the weights were aligned: no gaps"""
    return np.concatenate([net.theta[p.offset : p.offset + p.size] for p in net._program.params])


@pytest.mark.parametrize("act", ["tanh", "prelu"])
def test_weights_start_on_a_cache_line_and_old_files_still_load(cls, tmp_path, act):
    """Every weight matrix starts on a multiple of 16 elements of theta (after a
    one-slope PReLU layer and an odd width, a gap of zeros that no step changes); a file
    or a pickle written before, with the parameters packed, loads into the same network."""
    net = cls([5, 7, 7, 3], act, seed=2)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((16, 5)).astype(np.float32)
    y = rng.integers(0, 3, 16)
    net.train_step(X, y, Adam(lr=0.01))
    offs = [p.offset for p in net._program.params if p.name.endswith(".W")]
    assert offs[0] == 0 and all(o % 16 == 0 for o in offs[1:]) and len(offs) == 3
    assert net.theta.size > net.n_params == sum(p.size for p in net._program.params)
    gaps = np.ones(net.theta.size, bool)
    for p in net._program.params:
        gaps[p.offset : p.offset + p.size] = False
    assert not np.any(net.theta[gaps]) and not np.any(net.grad_flat[gaps])
    old = _packed(net)
    assert old.size == net.n_params
    p = tmp_path / "old.npz"
    np.savez(p, config=_config(net), theta=old, state=net.state)
    back = cls.load(p)
    np.testing.assert_array_equal(back.theta.view(np.uint8), net.theta.view(np.uint8))
    np.testing.assert_array_equal(back.forward(X), net.forward(X))
    fn, args = net.__reduce__()
    again = fn(*(args[:2] + (old,) + args[3:]))
    np.testing.assert_array_equal(again.theta.view(np.uint8), net.theta.view(np.uint8))


def test_save_load_no_hidden_layer(cls, tmp_path):
    net = cls([4, 2], loss="mse", dtype=np.float64, seed=1)
    p = str(tmp_path / "lin.npz")
    net.save(p)
    back = cls.load(p)
    assert back.layer_sizes == (4, 2) and back.activations == []
    np.testing.assert_array_equal(back.theta, net.theta)


def test_save_load_numpy_parameter(cls, tmp_path):
    """Activation parameters given as NumPy scalars survive save (JSON) and load."""
    net = cls([4, 6, 3], ("leaky_relu", {"negative_slope": np.float32(0.25)}))
    p = tmp_path / "net.npz"
    net.save(p)
    back = cls.load(p)
    assert back.activations == [("leaky_relu", {"negative_slope": 0.25})]
    np.testing.assert_array_equal(back.theta, net.theta)


def test_save_load_same_path_without_suffix(cls, tmp_path):
    """save(path) writes to path itself, so load(path) finds it (np.savez alone would add
    '.npz' to a name without it)."""
    net = cls([4, 6, 3])
    p = tmp_path / "model"
    net.save(p)
    np.testing.assert_array_equal(cls.load(p).theta, net.theta)


class _TTY(io.StringIO):
    def isatty(self):
        return True


def test_fit_verbose_silent_when_not_a_tty(cls, capsys):
    net = cls([4, 5, 3])
    X, y = clf_data()
    h = net.fit(X, y, epochs=2, batch_size=4, verbose=1)
    out, err = capsys.readouterr()
    assert (out, err) == ("", "")
    assert len(h["loss"]) == 2


def test_fit_verbose_draws_on_a_tty(cls, monkeypatch):
    net = cls([4, 5, 3])
    X, y = clf_data()
    tty = _TTY()
    monkeypatch.setattr(sys, "stderr", tty)
    net.fit(X, y, epochs=2, batch_size=4, verbose=1)
    text = tty.getvalue()
    assert "Epoch 1/2" in text and "Epoch 2/2" in text and "3/3" in text
    assert text.endswith("\n") and text.count("\n") == 2
    tty2 = _TTY()
    monkeypatch.setattr(sys, "stderr", tty2)
    net.fit(X, y, epochs=2, batch_size=4, verbose=0)
    assert tty2.getvalue() == ""


@pytest.mark.parametrize("stop_at", [0, 2])
def test_fit_callback_true_stops_after_that_epoch(cls, stop_at):
    net = cls([4, 5, 3])
    X, y = clf_data()
    seen = []

    def cb(n, epoch, logs):
        assert n is net
        seen.append((epoch, sorted(logs)))
        return epoch == stop_at

    h = net.fit(X, y, epochs=5, batch_size=4, callbacks=[cb], verbose=0)
    assert len(h["loss"]) == stop_at + 1 == len(seen)
    assert seen[-1] == (stop_at, ["accuracy", "loss", "time"])
    assert net.optimizer.t == 3 * (stop_at + 1)  # 3 batches per epoch


def test_fit_callback_truthy_but_not_true_continues(cls):
    net = cls([4, 5, 3])
    X, y = clf_data()
    h = net.fit(X, y, epochs=3, callbacks=[lambda n, e, l: 1, lambda n, e, l: "stop"], verbose=0)
    assert len(h["loss"]) == 3
    h = net.fit(X, y, epochs=3, callbacks=None, verbose=0)
    assert len(h["loss"]) == 3


def test_fit_callback_numpy_true_stops(cls):
    """A callback returning np.True_ (e.g. np.isnan(logs["loss"]) or a comparison of NumPy
    values) stops training like True."""
    net = cls([4, 5, 3])
    X, y = clf_data()
    h = net.fit(X, y, epochs=4, callbacks=[lambda n, e, l: np.bool_(e == 1)], verbose=0)
    assert len(h["loss"]) == 2


def test_fit_every_callback_runs_in_the_stopping_epoch(cls):
    net = cls([4, 5, 3])
    X, y = clf_data()
    log = []
    h = net.fit(
        X, y, epochs=5, verbose=0, callbacks=[lambda n, e, l: e == 1, lambda n, e, l: log.append(e)]
    )
    assert len(h["loss"]) == 2
    assert log == [0, 1]


@pytest.mark.parametrize(
    "loss, n_out, keys",
    [
        ("softmax_cross_entropy", 3, {"loss", "accuracy", "time"}),
        ("binary_cross_entropy_with_logits", 2, {"loss", "accuracy", "time"}),
        ("mse", 2, {"loss", "time"}),
    ],
)
@pytest.mark.parametrize("validation", [False, True])
def test_fit_history_keys(cls, loss, n_out, keys, validation):
    net = cls([4, 5, n_out], loss=loss)
    X, _ = clf_data()
    y = (
        np.arange(10) % n_out
        if loss == "softmax_cross_entropy"
        else (rng(3).random((10, n_out)) > 0.5).astype(np.float32)
    )
    kw = {"validation_data": (X[:6], y[:6])} if validation else {}
    h = net.fit(X, y, epochs=3, batch_size=4, verbose=0, **kw)
    want = set(keys)
    if validation:
        want |= {"val_loss"} | ({"val_accuracy"} if loss != "mse" else set())
    assert set(h) == want
    for k in want:
        assert len(h[k]) == 3 and all(isinstance(v, float) for v in h[k])
    for k in want & {"accuracy", "val_accuracy"}:
        assert all(0.0 <= v <= 1.0 for v in h[k])
    if validation:
        assert h["val_loss"][-1] == pytest.approx(net.evaluate(X[:6], y[:6])["loss"], rel=1e-6)


def test_fit_default_optimizer_is_kept(cls):
    net = cls([4, 5, 3])
    X, y = clf_data()
    net.fit(X, y, epochs=2, batch_size=4, verbose=0)
    opt = net.optimizer
    assert type(opt) is Adam and opt.lr == 1e-3 and opt.t == 6
    net.fit(X, y, epochs=1, batch_size=4, verbose=0)
    assert net.optimizer is opt and opt.t == 9


@pytest.mark.parametrize(
    "loss, n_out, shape, kind",
    [
        ("softmax_cross_entropy", 3, (10,), "i"),
        ("softmax_cross_entropy", 2, (10,), "i"),
        ("binary_cross_entropy_with_logits", 2, (10, 2), "i"),
        ("binary_cross_entropy_with_logits", 1, (10,), "i"),
        ("mse", 2, (10, 2), "f"),
        ("mse", 1, (10,), "f"),
    ],
)
def test_predict_shapes(cls, loss, n_out, shape, kind):
    net = cls([4, 5, n_out], loss=loss, dtype=np.float64)
    X, _ = clf_data(dtype=np.float64)
    z = net.forward(X)
    assert z.shape == (10, n_out) and z.dtype == np.float64
    p = net.predict(X)
    assert p.shape == shape and p.dtype.kind == kind
    if loss == "softmax_cross_entropy":
        np.testing.assert_array_equal(p, z.argmax(axis=1))
        pr = net.predict_proba(X)
        assert pr.shape == (10, n_out)
        np.testing.assert_allclose(pr.sum(axis=1), 1.0, rtol=1e-12)
        np.testing.assert_array_equal(pr.argmax(axis=1), p)
    elif loss == "binary_cross_entropy_with_logits":
        np.testing.assert_array_equal(p, (z > 0).astype(np.int64).reshape(shape))
        pr = net.predict_proba(X)
        np.testing.assert_allclose(pr, 1 / (1 + np.exp(-z)), rtol=1e-12)
    else:
        np.testing.assert_array_equal(p, z.reshape(shape))


def test_fit_same_in_both_classes():
    """Same seed: same initial weights, same shuffling, same steps (float64)."""
    r = rng(5)
    X, y = r.standard_normal((50, 5)), r.integers(0, 3, 50)
    runs = []
    for c in (fastact.MLP, ref.MLP):
        net = c([5, 8, 3], "gelu", dtype=np.float64, seed=2)
        h = net.fit(
            X,
            y,
            epochs=3,
            batch_size=16,
            optimizer=Adam(lr=0.01),
            verbose=0,
            validation_data=(X[:10], y[:10]),
        )
        runs.append((h, net.theta.copy()))
    (h0, t0), (h1, t1) = runs
    assert not np.allclose(t0, fastact.MLP([5, 8, 3], "gelu", dtype=np.float64, seed=2).theta)
    np.testing.assert_allclose(t0, t1, rtol=1e-10, atol=1e-12)
    for k in ("loss", "accuracy", "val_loss", "val_accuracy"):
        np.testing.assert_allclose(h0[k], h1[k], rtol=1e-10)


def test_load_refuses_running_statistics_of_another_shape(tmp_path):
    """A file whose running statistics do not fit its configuration (edited or damaged)
    is refused with the count it holds and the count the configuration needs."""
    net = fastact.MLP([4, 6, 3], "relu", batchnorm="before", seed=0)
    path = tmp_path / "bn.npz"
    net.save(path)
    with np.load(path) as f:
        arrays = {k: f[k] for k in f.files}
    arrays["state"] = arrays["state"][:-1]
    bad = tmp_path / "bad.npz"
    with open(bad, "wb") as f:
        np.savez(f, **arrays)
    n = net.state.size
    with pytest.raises(
        ValueError,
        match=esc(
            f"MLP.load: {bad!r} holds {n - 1} float32 running statistics; "
            f"the configuration needs {n} float32."
        ),
    ):
        fastact.MLP.load(bad)


def test_bench_peers_refuse_an_unknown_candidate():
    from fastact.nn import peers

    with pytest.raises(ValueError, match="unknown candidate 'jax'; choose from fastact, gemm"):
        peers.candidates(2, 8, 4, "relu", "plain", ["jax"])


def test_activation_parameter_errors_name_the_caller(cls):
    """A bad activation parameter's error starts with the caller, as every other MLP
    error does (it read "elu: alpha must be finite; got nan.")."""
    with pytest.raises(ValueError, match=esc("MLP: elu: alpha must be finite; got nan.")):
        cls([3, 4, 2], ("elu", {"alpha": float("nan")}))
    with pytest.raises(ValueError, match=esc("MLP: softplus: beta must be > 0; got -1.0.")):
        cls([3, 4, 2], ("softplus", {"beta": -1.0}))
    with pytest.raises(ValueError, match=r"^Dense: hardtanh: min_val must be less than max_val"):
        fastact.nn.Dense(4, ("hardtanh", {"min_val": 2.0, "max_val": 1.0}))
