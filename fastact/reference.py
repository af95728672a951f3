"""fastact.reference: every public function of fastact in plain NumPy (and scipy.special).

Same names, signatures, checks and errors as the native API (both are built
from fastact/_api.py); only the arithmetic below differs.  It is three things
at once: the test oracle, the "pure NumPy" benchmark baseline, and the whole
package under FASTACT_PUREPYTHON=1.

The math is written for obviousness, in float64 whatever the input dtype
(a float32 result is the float64 value rounded once), using the stable form
of each formula where the textbook one overflows or cancels.  One exception:
a float32 network's optimizer update computes in float32, operation by
operation as the native loop and PyTorch's float32 update do (_update_f32).  It runs under
np.errstate(all="ignore"): where a formula meets inf * 0 or an overflow in a
branch that np.where then discards, the selects give the limit, and the
tests check those limits.  Each entry of
_MATH holds an activation's forward and its derivative side by side; the
backward is always grad_out * derivative(saved).  Where a formula would
compute inf * 0 at +-inf (x * sigmoid(x) at x = -inf, say), x is clipped to
a bound beyond which the double result no longer changes.
"""

from __future__ import annotations

import numpy as np
from scipy import special

from ._api import KernelsBase, make_api

SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946
_SQRT_2PI = np.sqrt(2.0 * np.pi)
_GELU_K0 = np.sqrt(2.0 / np.pi)
_GELU_K1 = 0.044715


def _sigmoid(x):
    """1 / (1 + e^-x) without overflow, keeping subnormal results (expit flushes them)."""
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0, e) / (1.0 + e)


def _nan_from(d, s):
    """A NaN in the saved array gives a NaN derivative (as g * f'(NaN) would)."""
    return np.where(np.isnan(s), np.nan, d)


def _gelu(x, p):
    y = x * special.ndtr(np.clip(x, -40, 40))  # ndtr = Phi, accurate in both tails
    return np.where(x > 40, x, np.where(x < -40, -0.0, y))


def _gelu_d(x, p):
    xc = np.clip(x, -40, 40)
    return special.ndtr(xc) + xc * np.exp(-0.5 * xc * xc) / _SQRT_2PI


def _gelu_tanh(x, p):
    # 0.5 x (1 + tanh(u)) == x * sigmoid(2u): the same function without cancellation
    xc = np.clip(x, -40, 40)
    u = _GELU_K0 * (xc + _GELU_K1 * xc**3)
    return np.where(x > 40, x, xc * _sigmoid(2 * u))


def _gelu_tanh_d(x, p):
    xc = np.clip(x, -40, 40)
    u = _GELU_K0 * (xc + _GELU_K1 * xc**3)
    du = _GELU_K0 * (1 + 3 * _GELU_K1 * xc**2)
    s = _sigmoid(2 * u)
    return s + xc * s * _sigmoid(-2 * u) * 2 * du


def _silu(x, p):
    xc = np.clip(x, -1000, 1000)
    return np.where(x > 1000, x, xc * _sigmoid(xc))


def _silu_d(x, p):
    xc = np.clip(x, -1000, 1000)
    s = _sigmoid(xc)
    return s * (1 + xc * _sigmoid(-xc))


def _mish(x, p):
    xc = np.clip(x, -1000, 40)
    return np.where(x > 40, x, xc * np.tanh(np.logaddexp(0, xc)))


def _mish_d(x, p):
    xc = np.clip(x, -1000, 40)
    t = np.tanh(np.logaddexp(0, xc))
    return t + xc * _sigmoid(xc) * (1 - t * t)


_E_M700 = float.fromhex("0x1.14f2b0fb9307fp-1010")  # e^-700, correctly rounded


def _softplus(x, p):
    """Below z = beta x = -700, e^z (subnormal or 0 below -708) is taken as
    e^(z + 700) e^-700: e^z / beta is a normal number down to z = -1400 for a small beta."""
    beta, threshold = p[0], p[1]
    z = beta * x
    far = np.exp(np.minimum(z + 700, 0.0)) * (_E_M700 / beta)
    y = np.where(z < -700, far, np.logaddexp(0, z) / beta)
    return np.where(z > threshold, x, y)


def _softplus_d(x, p):
    beta, threshold = p[0], p[1]
    return np.where(beta * x > threshold, 1.0, _sigmoid(beta * x))


def _softsign(x, p):
    with np.errstate(invalid="ignore"):  # inf / inf, replaced below
        y = x / (1 + np.abs(x))
    return np.where(np.isinf(x), np.sign(x), y)


# kernel name -> (forward(x, p), derivative(saved, p)); p = (a, b, c, d) of _registry


def _nonpos(x):
    """x where x <= 0 (its sign of zero kept: np.minimum(-0.0, 0) is +0.0), else 0"""
    return np.where(x > 0, 0.0, x)


def _celu(x, p):
    """x where |x / alpha| < 2^-54 (alpha expm1(t) = x (1 + t/2 + ...) rounds to x there):
    with a large alpha t is subnormal near 0 and alpha expm1(t) would carry its lost
    digits (alpha = 2^126, x = -2.5e-297: -0.0)."""
    t = _nonpos(x) / p[0]
    return np.where(x > 0, x, np.where(np.abs(t) < 2.0**-54, x, p[0] * np.expm1(t)))


_MATH = {
    "identity": (lambda x, p: x.copy(), lambda s, p: np.ones_like(s)),
    "sigmoid": (lambda x, p: _sigmoid(x), lambda y, p: y * (1 - y)),
    "tanh": (lambda x, p: np.tanh(x), lambda y, p: (1 - y) * (1 + y)),
    "relu": (lambda x, p: np.maximum(x, 0.0), lambda y, p: np.heaviside(y, 0.0)),
    "leaky_relu": (
        lambda x, p: np.where(x > 0, x, _slope_times(p[0], x)),
        lambda y, p: _nan_from(np.where(y > 0, 1.0, p[0]), y),
    ),
    "elu": (
        lambda x, p: np.where(x > 0, x, p[0] * np.expm1(_nonpos(x))),
        lambda y, p: np.where(y > 0, 1.0, y + p[0]),
    ),
    "selu": (
        lambda x, p: SELU_SCALE * np.where(x > 0, x, SELU_ALPHA * np.expm1(_nonpos(x))),
        lambda y, p: np.where(y > 0, SELU_SCALE, y + SELU_SCALE * SELU_ALPHA),
    ),
    "celu": (
        _celu,
        lambda y, p: np.where(y > 0, 1.0, y / p[0] + 1),
    ),
    "gelu": (_gelu, _gelu_d),
    "gelu_tanh": (_gelu_tanh, _gelu_tanh_d),
    "silu": (_silu, _silu_d),
    "mish": (_mish, _mish_d),
    "softplus": (_softplus, _softplus_d),
    "softsign": (_softsign, lambda x, p: 1 / (1 + np.abs(x)) ** 2),
    "hardtanh": (
        lambda x, p: np.clip(x, p[0], p[1]),
        lambda y, p: _nan_from(((y > p[0]) & (y < p[1])).astype(float), y),
    ),
    "hardsigmoid": (
        lambda x, p: np.clip((x + 3) / 6, 0, 1),
        lambda x, p: _nan_from(np.where((x > -3) & (x < 3), 1 / 6, 0.0), x),
    ),
    "hardswish": (
        lambda x, p: np.where(x <= -3, 0.0, np.where(x >= 3, x, x * (x + 3) / 6)),
        lambda x, p: _nan_from(np.where(x <= -3, 0.0, np.where(x < 3, x / 3 + 0.5, 1.0)), x),
    ),
    "log_sigmoid": (lambda x, p: -np.logaddexp(0, -x), lambda x, p: _sigmoid(-x)),
}
# the native kernel ids of softplus (fastact/_validate.py softplus_kernel); same math: the
# twin takes the far tail (below z = -700) for every beta
_MATH["softplus_pow2"] = _MATH["softplus_far"] = _MATH["softplus"]


def _slope_times(w, x):
    """w * x, with 0 (not NaN) for a zero slope at -inf; NaN stays NaN."""
    return np.where((w == 0) & ~np.isnan(x), 0.0, w * x)


def _saved_params(kname, p, dtype):
    """hardtanh's backward compares the saved output with the bounds as that output holds
    them: rounded to its dtype (clip(x, 0.1, 0.7) in float32 saturates at float32(0.1));
    elu's y + alpha adds alpha as the output holds it (y = alpha expm1(x) saturates at
    -alpha rounded: with the exact alpha the derivative far left would be alpha's rounding
    error, not about 0)."""
    if kname == "hardtanh":
        return (float(dtype.type(p[0])), float(dtype.type(p[1]))) + tuple(p[2:])
    if kname == "elu":
        return (float(dtype.type(p[0])),) + tuple(p[1:])
    return p


def _f64(a):
    return np.asarray(a).astype(np.float64, copy=False)


def _softmax_rows(x):
    with np.errstate(invalid="ignore"):  # rows of -inf or +inf: NaN, as documented
        e = np.exp(x - x.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)


def _log_softmax_rows(x):
    """(x - m) - log1p(s), s the sum of exp(x - m) without the first maximum's term
    (exactly 1): log of the rounded 1 + s would lose a tiny s's digits."""
    with np.errstate(invalid="ignore", divide="ignore"):
        shifted = x - x.max(axis=-1, keepdims=True)
        e = np.exp(shifted)
        top = shifted == 0
        first = top.argmax(axis=-1)[..., None]
        keep = ~np.take_along_axis(top, first, axis=-1)  # rows without one: NaN anyway
        np.put_along_axis(e, first, np.take_along_axis(e, first, axis=-1) * keep, axis=-1)
        return shifted - np.log1p(e.sum(axis=-1, keepdims=True))


class NumpyKernels(KernelsBase):
    """Kernel provider for fastact._api.make_api: plain NumPy, computed in float64."""

    @staticmethod
    def fwd(kname, p=(0.0, 0.0, 0.0, 0.0)):
        f = _MATH[kname][0]

        def kernel(x, y, nt):
            with np.errstate(all="ignore"):
                y[...] = f(_f64(x), p)

        return kernel

    @staticmethod
    def bwd(kname, p=(0.0, 0.0, 0.0, 0.0)):
        d = _MATH[kname][1]

        def kernel(g, s, o, nt):
            with np.errstate(all="ignore"):
                o[...] = _f64(g) * d(_f64(s), _saved_params(kname, p, s.dtype))

        return kernel

    @staticmethod
    def bias_fwd(kname, p=(0.0, 0.0, 0.0, 0.0)):
        f = _MATH[kname][0]

        def kernel(z, b, y, rows, cols, nt):
            with np.errstate(all="ignore"):
                y[...] = f(_f64(z + b), p)  # z + b in the arrays' dtype, as written

        return kernel

    @staticmethod
    def bias_bwd(kname, p=(0.0, 0.0, 0.0, 0.0)):
        d = _MATH[kname][1]

        def kernel(g, s, b, dz, db, rows, cols, nt):
            with np.errstate(all="ignore"):
                pre = _f64(s if b is None else s + b)
                dz[...] = _f64(g) * d(pre, _saved_params(kname, p, s.dtype))
                db[...] = _f64(dz).reshape(rows, cols).sum(axis=0)  # of dz as returned, in double

        return kernel

    @staticmethod
    def prelu_fwd(x, w, y, rows, cols, nt):
        x64 = _f64(x).reshape(rows, cols)
        with np.errstate(all="ignore"):
            y.reshape(rows, cols)[...] = np.where(x64 > 0, x64, _slope_times(_f64(w), x64))

    @staticmethod
    def prelu_bwd(g, x, w, gx, gw, rows, cols, nt):
        x64, g64 = _f64(x).reshape(rows, cols), _f64(g).reshape(rows, cols)
        with np.errstate(all="ignore"):
            # grad_weight first: gx may be x or g itself (in-place)
            gw[...] = np.where(x64 > 0, 0.0, x64 * g64).sum(axis=0)
            gx.reshape(rows, cols)[...] = g64 * _nan_from(np.where(x64 > 0, 1.0, _f64(w)), x64)

    @staticmethod
    def softmax_fwd(log_):
        def kernel(x, y, rows, cols, nt):
            x64 = _f64(x).reshape(rows, cols)
            with np.errstate(all="ignore"):
                y.reshape(rows, cols)[...] = _log_softmax_rows(x64) if log_ else _softmax_rows(x64)

        return kernel

    @staticmethod
    def softmax_bwd(log_):
        def kernel(g, y, gx, rows, cols, nt):
            g64, y64 = _f64(g).reshape(rows, cols), _f64(y).reshape(rows, cols)
            with np.errstate(all="ignore"):
                if log_:
                    r = g64 - np.exp(y64) * g64.sum(axis=1, keepdims=True)
                else:
                    r = y64 * (g64 - (g64 * y64).sum(axis=1, keepdims=True))
                gx.reshape(rows, cols)[...] = r

        return kernel

    @staticmethod
    def xent(x, labels, target, grad, loss, rows, cols, scale, nt):
        x64 = _f64(x)
        with np.errstate(all="ignore"):
            logp = _log_softmax_rows(x64)
        if labels is not None:
            t = np.zeros_like(x64)
            t[np.arange(rows), labels] = 1.0
        else:
            t = _f64(target)
        with np.errstate(all="ignore"):
            # a zero target ignores its logit, even an infinite one
            loss[...] = -np.where(t == 0, 0.0, t * logp).sum(axis=1)
            grad[...] = scale * (np.exp(logp) * t.sum(axis=1, keepdims=True) - t)


_api = make_api(NumpyKernels(), __name__)
globals().update(_api)
__all__ = sorted(_api) + ["ACTIVATIONS"]


def _build_registry():
    import sys

    from ._registry import build

    return build(sys.modules[__name__])


ACTIVATIONS = _build_registry()


# ---- dense layers and the MLP, in plain NumPy -------------------------------------
# The same checks, initialisation, parameter layout and training loop as the native
# MLP (all in fastact/nn.py); only the step below is NumPy.

from . import _validate as _V  # noqa: E402
from ._registry import saves as _saves  # noqa: E402
from .nn import functional as _fn  # noqa: E402  (nn imports nothing native at module level)
from .nn import network as _net  # noqa: E402

DenseCache = _fn.DenseCache
BatchNormCache = _fn.BatchNormCache
DropoutCache = _fn.DropoutCache


def dense_forward(x, W, b, activation, *, out=None, **params):
    """Compute a dense layer in NumPy: the NumPy twin of fastact.nn.dense_forward.

    (y, cache): y = act(x @ W + b), W of shape (n_in, n_out).  The same parameters,
    returns and errors (the checks are shared); see there.
    """
    x, W, b, name, params, kname, p, out = _fn.check_dense(x, W, b, activation, params, out)
    with np.errstate(all="ignore"):  # overflow to inf is the documented result
        z = x @ W
        y = _MATH[kname][0](_f64(z + b), p).astype(x.dtype)
    if out is not None:
        out[...] = y
        y = out
    saves = _saves(name)
    return y, DenseCache(x, W, b, z if saves == "input" else y, name, params, kname, p, saves)


def dense_backward(grad_y, cache):
    """Backpropagate a dense layer in NumPy: the NumPy twin of fastact.nn.dense_backward.

    (grad_x, grad_W, grad_b): dz = grad_y * act'(saved), dW = x.T @ dz, dx = dz @ W.T.
    The same parameters, returns and errors; see there.
    """
    g = _fn.check_dense_grad(grad_y, cache)
    pre = cache.saved + cache.b if cache.saves == "input" else cache.saved
    with np.errstate(all="ignore"):
        dz = (
            _f64(g)
            * _MATH[cache.kname][1](_f64(pre), _saved_params(cache.kname, cache.p, pre.dtype))
        ).astype(g.dtype)
        gb = _f64(dz).sum(axis=0).astype(g.dtype)
        return dz @ cache.W.T, cache.x.T @ dz, gb


def batchnorm_forward(
    x,
    gamma,
    beta,
    *,
    training,
    running_mean=None,
    running_var=None,
    momentum=0.1,
    eps=1e-5,
    n_threads=None,
):
    """Normalise over the batch in NumPy: the NumPy twin of fastact.nn.batchnorm_forward.

    (y, cache): y = gamma (x - mean) / sqrt(var + eps) + beta over the rows of x
    (PyTorch BatchNorm1d; training: batch statistics, running ones updated in place).
    The same parameters, returns and errors; see there.
    """
    x, gamma, beta, rm, rv, momentum, eps = _fn.check_batchnorm(
        x, gamma, beta, training, running_mean, running_var, momentum, eps
    )
    _V.check_threads(n_threads)
    with np.errstate(all="ignore"):
        mean, invstd = _bn_stats(x, rm, rv, momentum, eps, training)
        y = ((_f64(x) - mean) * (invstd * _f64(gamma)) + _f64(beta)).astype(x.dtype)
    return y, BatchNormCache(x, gamma, mean, invstd, bool(training))


def _bn_stats(x, rm, rv, momentum, eps, training, shift=0.0):
    """(mean, 1 / sqrt(var + eps)) in float64 of x, whose layer's values are x + shift (a
    dense bias folded in: the running mean is x + shift's); in training the batch's
    (biased variance), with the running statistics moved towards the batch's (unbiased
    variance)."""
    if not training:
        return _f64(rm) - shift, 1.0 / np.sqrt(_f64(rv) + eps)
    x64 = _f64(x)
    rows = x64.shape[0]
    mean = x64.sum(axis=0) / rows
    var = ((x64 - mean) ** 2).sum(axis=0) / rows
    if rm is not None:
        unbias = rows / (rows - 1) if rows > 1 else 1.0
        rm[...] = (1.0 - momentum) * _f64(rm) + momentum * (mean + shift)
        rv[...] = (1.0 - momentum) * _f64(rv) + momentum * var * unbias
    return mean, 1.0 / np.sqrt(var + eps)


def _bn_backward(du, x, gamma, mean, invstd, training):
    """(dx, dgamma, dbeta) in float64 from du = dL/d(normalised-and-scaled output)"""
    du64 = _f64(du)
    xhat = (_f64(x) - mean) * invstd
    dbeta = du64.sum(axis=0)
    dgamma = (du64 * xhat).sum(axis=0)
    c1 = invstd * _f64(gamma)
    rows = du64.shape[0]
    if training:
        dx = c1 * (du64 - dbeta / rows - xhat * (dgamma / rows))
    else:
        dx = du64 * c1
    return dx, dgamma, dbeta


def batchnorm_backward(grad_y, cache, *, n_threads=None):
    """Backpropagate BatchNorm in NumPy: the NumPy twin of fastact.nn.batchnorm_backward.

    (grad_x, grad_gamma, grad_beta) of batchnorm_forward.  The same parameters, returns
    and errors; see there.
    """
    g = _fn.check_batchnorm_grad(grad_y, cache)
    _V.check_threads(n_threads)
    with np.errstate(all="ignore"):
        dx, dgamma, dbeta = _bn_backward(
            g, cache.x, cache.gamma, cache.mean, cache.invstd, cache.training
        )
        return dx.astype(g.dtype), dgamma.astype(g.dtype), dbeta.astype(g.dtype)


_U64 = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15


def _mix64(z):
    """SplitMix64's finaliser on a Python int (mod 2**64) or a uint64 array (wrapping)."""
    if isinstance(z, int):
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _U64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _U64
        return z ^ (z >> 31)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def dropout_keep(n, p, seed, step=0, layer=0):
    """Return dropout's mask of n elements (True = kept): the native engine's rule.

    One hash ``h_k = mix64(key + (k + 1) G)`` decides two elements: element 2k is kept
    when the low 32 bits of h_k are >= ``thr = min(round(p 2^32), 2^32 - 1)``, element
    2k + 1 when its high 32 bits are; ``key = mix64(mix64(mix64(seed + G) + step + G) +
    layer + G)``, G the golden-ratio constant and mix64 SplitMix64's finaliser.  This is
    the mask of fastact.nn.dropout_forward and of the networks' Dropout layers, bit for
    bit.

    Parameters
    ----------
    n : int
        The number of elements (in C order).
    p : float
        The drop probability, in [0, 1).
    seed : int
        The seed, in [0, 2**64).
    step : int, default 0
        The training step.
    layer : int, default 0
        The dropout layer's number.

    Returns
    -------
    ndarray of bool, shape (n,)
        True where the element is kept.

    See Also
    --------
    fastact.nn.dropout_forward : Applies the mask (scaled by 1 / (1 - p)).

    Examples
    --------
    >>> import numpy as np
    >>> import fastact
    >>> keep = fastact.reference.dropout_keep(8, 0.5, seed=0)
    >>> keep.astype(int)
    array([1, 0, 0, 0, 1, 1, 0, 1])
    >>> y, _ = fastact.nn.dropout_forward(np.ones(8), 0.5, seed=0)
    >>> bool(np.array_equal(y != 0, keep))
    True
    """
    key = _mix64(
        (_mix64((_mix64((seed + _GOLDEN) & _U64) + step + _GOLDEN) & _U64) + layer + _GOLDEN) & _U64
    )
    thr = min(int(p * 4294967296.0 + 0.5), 4294967295)
    k = np.arange(1, (n + 1) // 2 + 1, dtype=np.uint64)
    h = _mix64(np.uint64(key) + k * np.uint64(_GOLDEN))
    words = np.empty(2 * h.size, dtype=np.uint64)
    words[0::2] = h & np.uint64(0xFFFFFFFF)
    words[1::2] = h >> np.uint64(32)
    return words[:n] >= np.uint64(thr)


def _dropout_apply(x, p, seed, step, layer):
    keep = dropout_keep(x.size, p, seed, step, layer).reshape(x.shape)
    scale = x.dtype.type(1.0 / (1.0 - p))
    with np.errstate(all="ignore"):
        return np.where(keep, x * scale, x.dtype.type(0))


def dropout_forward(x, p, *, seed, training=True, step=0, layer=0, n_threads=None):
    """Apply inverted dropout in NumPy: the NumPy twin of fastact.nn.dropout_forward.

    (y, cache), with fastact's counter-based mask (dropout_keep), bit for bit.  The same
    parameters, returns and errors; see there.
    """
    x, p, seed, step, layer, training = _fn.check_dropout(x, p, seed, step, layer, training)
    _V.check_threads(n_threads)
    y = _dropout_apply(x, p, seed, step, layer) if training and p > 0 else x.copy()
    return y, DropoutCache(p, seed, step, layer, x.shape, x.dtype, training)


def dropout_backward(grad_y, cache, *, n_threads=None):
    """Backpropagate dropout in NumPy: the NumPy twin of fastact.nn.dropout_backward.

    grad_x of dropout_forward (the same mask, regenerated).  The same parameters,
    returns and errors; see there.
    """
    g = _fn.check_dropout_grad(grad_y, cache)
    _V.check_threads(n_threads)
    if cache.training and cache.p > 0:
        return _dropout_apply(g, cache.p, cache.seed, cache.step, cache.layer)
    return g.copy()


def _correct(loss, out, labels, target):
    if loss == "softmax_cross_entropy":
        return int((out.argmax(axis=1) == labels).sum())
    if loss == "binary_cross_entropy_with_logits":
        return int(((out > 0) == (target > 0.5)).sum())
    return 0


class NumpyEngine:
    """Run a network's program in NumPy: the NumPy twin of fastact.nn.network.NativeEngine.

    What fastact.reference.Sequential and fastact.reference.MLP train with (and what
    the native networks rerun to name the layer where a non-finite value appeared):
    the same interface, op by op: one NumPy twin per op kind of the network program
    (fastact/nn/program.py), _fwd_<kind> / _bwd_<kind>.
    """

    def __init__(self, dtype, program, loss, theta, grad, state):
        self.dtype, self.prog, self.loss = dtype, program, loss
        self.theta, self.grad, self.state = theta, grad, state
        self.capacity = 1 << 62  # NumPy allocates per call anyway
        self.flush_subnormals = True  # kept for the interface: NumPy keeps subnormals
        self.diagnostics = None
        self._out = None

    def _P(self, off, size):
        return self.theta[off : off + size]

    @staticmethod
    def all_finite(a):
        return bool(np.isfinite(a).all())

    @staticmethod
    def try_step(*args):
        return None  # (the native engine's fast path: here the Python checks do it all)

    @staticmethod
    def bad_label(labels, n_classes):
        bad = labels[(labels < 0) | (labels >= n_classes)]
        return int(bad[0]) if bad.size else None

    def reserve(self, rows):
        pass

    def output(self, rows):
        return self._out[:rows]

    # -- forward, op by op: returns the tensors and what each backward needs --
    def _forward(self, X, training, seed=0, counter=0):
        T = {0: X}
        saved = {}
        for i, o in enumerate(self.prog.ops):
            T[o.out], saved[i] = getattr(self, "_fwd_" + o.kind)(o, T, training, seed, counter)
        return T, saved

    def _act(self, o, u):
        return _MATH[o.kname][0](_f64(u), o.p).astype(self.dtype)

    def _deriv(self, o, s):
        return _MATH[o.kname][1](_f64(s), _saved_params(o.kname, o.p, s.dtype))

    def _fwd_gemm(self, o, T, training, seed, counter):
        return T[o.in_] @ self._P(o.w, o.k * o.n).reshape(o.k, o.n), None

    def _fwd_bias_act(self, o, T, training, seed, counter):
        u = T[o.in_] + self._P(o.b, o.n) if o.b >= 0 else T[o.in_]
        return self._act(o, u), u

    def _fwd_batchnorm(self, o, T, training, seed, counter):
        x = T[o.in_]
        rm = self.state[o.rm : o.rm + o.n]
        rv = self.state[o.rv : o.rv + o.n]
        shift = _f64(self._P(o.b, o.n)) if o.b >= 0 else 0.0
        mean, invstd = _bn_stats(x, rm, rv, o.momentum, o.eps, training, shift)
        u = (
            (_f64(x) - mean) * (invstd * _f64(self._P(o.gamma, o.n))) + _f64(self._P(o.beta, o.n))
        ).astype(self.dtype)
        return self._act(o, u), (mean, invstd, u)

    def _fwd_dropout(self, o, T, training, seed, counter):
        x = T[o.in_]
        if training and o.prob > 0:
            return _dropout_apply(x, o.prob, seed, counter, o.layer), None
        return x.copy(), None

    def _fwd_add(self, o, T, training, seed, counter):
        return T[o.in_] + T[o.in2], None

    def _fwd_bias_act_add(self, o, T, training, seed, counter):
        y, u = self._fwd_bias_act(o, T, training, seed, counter)
        return y + T[o.in2], (u, y)

    def _slopes(self, o):
        return self._P(o.slope, o.n if o.per_unit else 1)

    def _fwd_prelu(self, o, T, training, seed, counter):
        u = T[o.in_] + self._P(o.b, o.n) if o.b >= 0 else T[o.in_]
        return np.where(u > 0, u, self._slopes(o) * u), u

    # -- backward, op by op: the gradient of the input(s) from the output's --
    def _bwd_gemm(self, o, T, s, g, rec):
        x = T[o.in_]
        gW = self.grad[o.w : o.w + o.k * o.n].reshape(o.k, o.n)
        gW[...] = x.T @ g
        if rec is not None:
            rec[0] = np.linalg.norm(_f64(gW))
        return g @ self._P(o.w, o.k * o.n).reshape(o.k, o.n).T, None

    def _grad_b(self, o, dz, rec):
        if o.b >= 0:
            gb = self.grad[o.b : o.b + o.n]
            gb[...] = _f64(dz).sum(axis=0)
            if rec is not None:
                rec[1] = np.linalg.norm(_f64(gb))

    def _act_rec(self, o, rec, y, dz, deriv):
        if rec is None or not o.act_op:
            return
        rec[2] = np.linalg.norm(_f64(dz))
        rec[3], rec[4] = _f64(y).mean(), _f64(y).std()
        rec[5] = np.mean(np.abs(np.asarray(deriv).astype(self.dtype)) < o.thr)
        rec[6] = np.mean(np.all(dz == 0, axis=0))

    def _bwd_bias_act(self, o, T, u, g, rec, y=None):
        y = T[o.out] if y is None else y
        deriv = self._deriv(o, u if o.saves_in else y)
        dz = (_f64(g) * deriv).astype(self.dtype)
        self._grad_b(o, dz, rec)
        self._act_rec(o, rec, y, dz, deriv)
        return dz, None

    def _bwd_batchnorm(self, o, T, saved, g, rec):
        mean, invstd, u = saved
        y = T[o.out]
        deriv = self._deriv(o, u if o.saves_in else y)
        du = (_f64(g) * deriv).astype(self.dtype) if o.kname != "identity" else g
        gamma = self._P(o.gamma, o.n)
        training = self._training
        dx, dgamma, dbeta = _bn_backward(du, T[o.in_], gamma, mean, invstd, training)
        self.grad[o.gamma : o.gamma + o.n] = dgamma
        self.grad[o.beta : o.beta + o.n] = dbeta
        if o.b >= 0:  # a folded dense bias: sum_r dx, exactly 0 in training
            gb = self.grad[o.b : o.b + o.n]
            gb[...] = 0.0 if training else invstd * _f64(gamma) * dbeta
            if rec is not None:
                rec[1] = np.linalg.norm(_f64(gb))
        if rec is not None:
            rec[7] = np.linalg.norm(_f64(self.grad[o.gamma : o.gamma + o.n]))
            rec[8] = np.linalg.norm(_f64(self.grad[o.beta : o.beta + o.n]))
        self._act_rec(o, rec, y, du, deriv)
        return dx.astype(self.dtype), None

    def _bwd_dropout(self, o, T, saved, g, rec):
        if self._training and o.prob > 0:
            return _dropout_apply(g, o.prob, self._seed, self._counter, o.layer), None
        return g, None

    def _bwd_add(self, o, T, saved, g, rec):
        return g, g

    def _bwd_bias_act_add(self, o, T, saved, g, rec):
        u, y = saved
        return self._bwd_bias_act(o, T, u, g, rec, y)[0], g

    def _bwd_prelu(self, o, T, u, g, rec):
        a = self._slopes(o)
        dz = np.where(u > 0, g, a * g)
        self._grad_b(o, dz, rec)
        neg = np.where(u <= 0, _f64(g) * _f64(u), 0.0)
        gs = self.grad[o.slope : o.slope + (o.n if o.per_unit else 1)]
        gs[...] = neg.sum(axis=0) if o.per_unit else neg.sum()
        self._act_rec(
            o, rec, T[o.out], dz, np.where(u > 0, self.dtype.type(1), a * np.ones_like(u))
        )
        return dz, None

    # -- the loss and the step --
    def _loss(self, out, labels, target):
        """(loss, d loss / d out)"""
        if self.loss == "softmax_cross_entropy":  # mean over rows
            loss, g = softmax_cross_entropy(out, labels)  # noqa: F821  (made by make_api above)
            return loss, g
        x, t = _f64(out), _f64(target)
        if self.loss == "mse":  # mean over all elements
            d = x - t
            return float(np.mean(d * d)), (2 * d / d.size).astype(self.dtype)
        with np.errstate(all="ignore"):  # bce with logits, mean over all elements
            loss = np.mean(np.logaddexp(0, x) - t * x)
            return float(loss), ((_sigmoid(x) - t) / x.size).astype(self.dtype)

    def forward(self, X, out):
        with np.errstate(all="ignore"):
            out[...] = self._forward(X, False)[0][self.prog.out_t]

    def loss_of(self, X, labels, target):
        with np.errstate(all="ignore"):  # overflow to inf, as the native engine gives
            return self._loss(self._forward(X, False)[0][self.prog.out_t], labels, target)[0]

    last_ok = True

    def gemms_only(self, X):
        raise NotImplementedError("gemms_only is the native engine's benchmark limit")

    def step(
        self,
        X,
        labels,
        target,
        diag,
        kind="",
        hyper=None,
        s1=None,
        s2=None,
        t=0,
        training=True,
        seed=0,
        counter=0,
        check=False,
    ):
        with np.errstate(all="ignore"):  # overflow to inf, as the native engine gives
            return self._step(
                X, labels, target, diag, kind, hyper, s1, s2, t, training, seed, counter, check
            )

    def epoch(
        self,
        X,
        labels,
        target,
        order,
        bs,
        kind,
        hyper,
        s1,
        s2,
        t0,
        *,
        training,
        seed,
        counter,
        check,
        skip_single,
        losses,
        correct,
        diag=False,
    ):
        """One pass in batches, a training step each (the native Engine.epoch's contract)."""
        rows, done, b = X.shape[0], 0, 0
        for r0 in range(0, rows, bs):
            n = min(bs, rows - r0)
            if n == 1 and skip_single and r0 > 0:
                correct[b], losses[b] = -1, 0.0
                break
            idx = slice(r0, r0 + n) if order is None else order[r0 : r0 + n]
            xb = X[idx]
            lb = None if labels is None else labels[idx]
            tb = None if target is None else target[idx]
            loss = self.step(
                xb,
                lb,
                tb,
                diag,
                kind,
                hyper,
                s1,
                s2,
                t0 + done + 1,
                training=training,
                seed=seed,
                counter=counter + b,
                check=check,
            )
            losses[b] = loss
            correct[b] = _correct(self.loss, self._out, lb, tb)
            b += 1
            if not self.last_ok:
                return done
            done += 1
        return done

    def _step(
        self, X, labels, target, diag, kind, hyper, s1, s2, t, training, seed, counter, check
    ):
        self._training, self._seed, self._counter = training, seed, counter
        state_prev = self.state.copy() if check and training else None
        T, saved = self._forward(X, training, seed, counter)
        self._out = T[self.prog.out_t]
        loss, g = self._loss(self._out, labels, target)
        self._backprop(T, saved, g, diag)
        self.last_ok = not check or bool(np.isfinite(loss) and np.all(np.isfinite(self.grad)))
        if not self.last_ok and state_prev is not None:
            self.state[...] = state_prev  # the running statistics as they were
        if kind and self.last_ok:
            self._update(kind, hyper, s1, s2, t)
        return float(loss)

    def _backprop(self, T, saved, g, diag):
        """the backward pass from the output's gradient g (into self.grad)"""
        G = {self.prog.out_t: g}
        rows = np.zeros((len(self.prog.diag_rows), 9))
        for i in range(len(self.prog.ops) - 1, -1, -1):
            o = self.prog.ops[i]
            rec = rows[o.diag] if diag and o.diag >= 0 else None
            g_in, g_in2 = getattr(self, "_bwd_" + o.kind)(o, T, saved[i], G.pop(o.out), rec)
            for tt, gg in ((o.in_, g_in), (o.in2, g_in2)):
                if tt > 0 and gg is not None:
                    G[tt] = G[tt] + gg if tt in G else gg
        if diag:
            self.diagnostics = rows

    # -- scikit-learn's minibatch epoch (fastact.sklearn): the twin of Engine.sk_epoch --
    SK_OUTPUTS = {"softmax": 0, "logistic": 1, "identity": 2, "exp": 3}
    SK_SOLVERS = {"sgd": 1, "adam": 2}

    def sk_epoch(
        self,
        X,
        labels,
        target,
        weights,
        order,
        bs,
        out_kind,
        solver,
        hyper,
        state1,
        state2,
        t0,
        alpha,
        seed,
        counter,
        skip_single,
        losses,
    ):
        """One epoch of scikit-learn's minibatch loop (the native Engine.sk_epoch's
        contract; src/_nn_sk.pxi has the formulas)."""
        rows, done, b = X.shape[0], 0, 0
        self._training, self._seed = True, seed
        with np.errstate(all="ignore"):
            for r0 in range(0, rows, bs):
                n = min(bs, rows - r0)
                if n == 1 and skip_single and r0 > 0:
                    losses[b] = 0.0
                    break
                idx = slice(r0, r0 + n) if order is None else order[r0 : r0 + n]
                lb = None if labels is None else labels[idx]
                tb = None if target is None else target[idx]
                wb = None if weights is None else _f64(weights[idx])
                sw_sum = float(n) if wb is None else float(wb.sum())
                state_prev = self.state.copy()
                self._counter = counter + b
                T, saved = self._forward(X[idx], True, seed, counter + b)
                loss, g = sk_output_loss(
                    out_kind, T[self.prog.out_t], lb, tb, wb, sw_sum, np.finfo(self.dtype).eps
                )
                self._backprop(T, saved, g.astype(self.dtype), False)
                dense = [slice(o.w, o.w + o.k * o.n) for o in self.prog.ops if o.kind == "gemm"]
                if alpha > 0:
                    loss += (
                        0.5
                        * alpha
                        * sum(_f64(self.theta[w]) @ _f64(self.theta[w]) for w in dense)
                        / sw_sum
                    )
                losses[b] = loss
                b += 1
                self.last_ok = bool(np.isfinite(loss) and np.all(np.isfinite(self.grad)))
                if not self.last_ok:
                    self.state[...] = state_prev
                    return done
                g = self.grad.copy()  # with the L2 term on the dense weights (grad keeps none)
                for w in dense:
                    g[w] += self.dtype.type(alpha / sw_sum) * self.theta[w]
                sk_update(solver, hyper, self.theta, g, state1, state2, t0 + done + 1)
                done += 1
        self.last_ok = True
        return done

    def _update(self, kind, h, s1, s2, t):
        p, g = self.theta, self.grad
        if h[5] > 0:  # clip by the global norm
            norm = np.sqrt(np.sum(_f64(g) ** 2))
            coef = h[5] / (norm + 1e-6)
            if coef < 1:
                g[...] = _f64(g) * coef
        if p.dtype == np.float32:
            _update_f32(kind, h, p, g, s1, s2, t)
            return
        p64, g64 = _f64(p), _f64(g)
        if kind == "sgd":
            lr, momentum, wd, nesterov = h[0], h[1], h[2], h[3] != 0
            d = g64 + wd * p64
            if momentum:
                s1[...] = d if t == 1 else momentum * _f64(s1) + d
                d = d + momentum * _f64(s1) if nesterov else _f64(s1)
            p[...] = p64 - lr * d
            return
        lr, b1, b2, eps, wd = h[0], h[1], h[2], h[3], h[4]
        if kind == "adamw":
            p[...] = p64 * (1 - lr * wd)
            p64, d = _f64(p), g64
        else:
            d = g64 + wd * p64
        s1[...] = b1 * _f64(s1) + (1 - b1) * d
        s2[...] = b2 * _f64(s2) + (1 - b2) * d * d
        denom = np.sqrt(_f64(s2)) / np.sqrt(1 - b2**t) + eps
        p[...] = p64 - lr / (1 - b1**t) * _f64(s1) / denom


def _update_f32(kind, h, p, g, s1, s2, t):
    """The float32 update in place: the operations of src/fa_nn_loops.h's fa_sgd_f32 /
    fa_adam_f32 (torch.optim's single-tensor CPU steps), each in float32 and rounded, in
    their order, every hyperparameter rounded to float32 once: the native result bit for
    bit (the native loops are built without FMA contraction)."""
    f = np.float32
    if kind == "sgd":
        lr, momentum, wd, nesterov = float(h[0]), float(h[1]), float(h[2]), h[3] != 0
        nlr, fm = f(-lr), f(momentum)
        d = g + f(wd) * p if (wd != 0 or momentum) else g  # (as the native loop skips it)
        if momentum:
            s1[...] = d if t == 1 else s1 * fm + d
            d = d + fm * s1 if nesterov else s1
        p[...] = p + nlr * d
        return
    lr, b1, b2, eps, wd = (float(v) for v in h[:5])
    w = f(1 - b1)
    small = w < 0.5  # ATen's lerp: m + w (g - m), or g + (w - 1) (g - m) when w >= 0.5
    cw = w if small else w - f(1)
    if kind == "adamw":
        p[...] = p * f(1 - lr * wd)
        d = g
    else:
        d = g + f(wd) * p if wd != 0 else g
    s1[...] = (s1 if small else d) + cw * (d - s1)
    s2[...] = s2 * f(b2) + f(1 - b2) * d * d
    denom = np.sqrt(s2) / f(np.sqrt(1 - b2**t)) + f(eps)
    p[...] = p + f(-(lr / (1 - b1**t))) * s1 / denom


def sk_output_loss(out_kind, z, labels, target, sw, sw_sum, eps):
    """scikit-learn's loss of a batch's output z and its delta (link(z) - y) s / S in
    float64 (src/_nn_sk.pxi's formulas); out_kind: NumpyEngine.SK_OUTPUTS; eps: the
    dtype's, log_loss's clip"""
    z = _f64(z)
    w = np.ones(z.shape[0]) if sw is None else _f64(sw)
    if out_kind == 0:  # softmax, as scikit-learn's
        p = np.exp(z - z.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        y = np.zeros_like(z)
        y[np.arange(z.shape[0]), labels] = 1.0
        rl = -np.log(np.clip(p[np.arange(z.shape[0]), labels], eps, 1 - eps))
    else:
        y = _f64(target)
        if out_kind == 1:  # logistic
            p = _sigmoid(z)
            q = np.clip(p, eps, 1 - eps)
            rl = -(special.xlogy(y, q) + special.xlogy(1 - y, 1 - q)).sum(axis=1)
        elif out_kind == 2:  # identity
            p = z
            rl = 0.5 * ((z - y) ** 2).mean(axis=1)
        else:  # exp
            p = np.exp(z)
            rl = (special.xlogy(y, y / p) - y + p).sum(axis=1)
    return float(np.dot(w, rl)) / sw_sum, (p - y) * w[:, None] / sw_sum


def sk_update(solver, h, p, g, s1, s2, t):
    """scikit-learn's AdamOptimizer (solver 2; h: lr, beta_1, beta_2, epsilon) or
    SGDOptimizer (1; h: lr, momentum, nesterov) on the flat parameters p, in their dtype"""
    if solver == 2:
        lr, b1, b2, eps = (float(v) for v in h[:4])
        s1[...] = b1 * s1 + (1 - b1) * g
        s2[...] = b2 * s2 + (1 - b2) * (g * g)
        lr_t = lr * np.sqrt(1 - b2**t) / (1 - b1**t)
        p += (-lr_t * s1 / (np.sqrt(s2) + eps)).astype(p.dtype)
        return
    lr, momentum, nesterov = float(h[0]), float(h[1]), h[2] != 0
    s1[...] = momentum * s1 - lr * g
    p += momentum * s1 - lr * g if nesterov else s1


class Sequential(_net.Sequential):
    __doc__ = _net.Sequential.__doc__
    _engine_class = NumpyEngine


class MLP(_net.MLP):
    __doc__ = _net.MLP.__doc__
    _engine_class = NumpyEngine


__all__ += [
    "dense_forward",
    "dense_backward",
    "DenseCache",
    "batchnorm_forward",
    "batchnorm_backward",
    "BatchNormCache",
    "dropout_forward",
    "dropout_backward",
    "DropoutCache",
    "dropout_keep",
    "MLP",
    "Sequential",
    "NumpyEngine",
]
