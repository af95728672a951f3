"""fastact.reference: every public function of fastact in plain NumPy (and scipy.special).

Same names, signatures, checks and errors as the native API (both are built
from fastact/_api.py); only the arithmetic below differs.  It is three things
at once: the test oracle, the "pure NumPy" benchmark baseline, and the whole
package under FASTACT_PUREPYTHON=1.

The math is written for obviousness, in float64 whatever the input dtype
(a float32 result is the float64 value rounded once), using the stable form
of each formula where the textbook one overflows or cancels.  It runs under
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
    y = x * special.ndtr(np.clip(x, -40, 40))      # ndtr = Phi, accurate in both tails
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


def _softplus(x, p):
    beta, threshold = p[0], p[1]
    return np.where(beta * x > threshold, x, np.logaddexp(0, beta * x) / beta)


def _softplus_d(x, p):
    beta, threshold = p[0], p[1]
    return np.where(beta * x > threshold, 1.0, _sigmoid(beta * x))


def _softsign(x, p):
    with np.errstate(invalid="ignore"):                 # inf / inf, replaced below
        y = x / (1 + np.abs(x))
    return np.where(np.isinf(x), np.sign(x), y)


# kernel name -> (forward(x, p), derivative(saved, p)); p = (a, b, c, d) of _registry
_MATH = {
    "identity": (lambda x, p: x.copy(), lambda s, p: np.ones_like(s)),
    "sigmoid": (lambda x, p: _sigmoid(x), lambda y, p: y * (1 - y)),
    "tanh": (lambda x, p: np.tanh(x), lambda y, p: (1 - y) * (1 + y)),
    "relu": (lambda x, p: np.maximum(x, 0.0), lambda y, p: np.heaviside(y, 0.0)),
    "leaky_relu": (lambda x, p: np.where(x > 0, x, _slope_times(p[0], x)),
                   lambda y, p: _nan_from(np.where(y > 0, 1.0, p[0]), y)),
    "elu": (lambda x, p: np.where(x > 0, x, p[0] * np.expm1(np.minimum(x, 0))),
            lambda y, p: np.where(y > 0, 1.0, y + p[0])),
    "selu": (lambda x, p: SELU_SCALE * np.where(x > 0, x, SELU_ALPHA * np.expm1(np.minimum(x, 0))),
             lambda y, p: np.where(y > 0, SELU_SCALE, y + SELU_SCALE * SELU_ALPHA)),
    "celu": (lambda x, p: np.where(x > 0, x, p[0] * np.expm1(np.minimum(x, 0) / p[0])),
             lambda y, p: np.where(y > 0, 1.0, y / p[0] + 1)),
    "gelu": (_gelu, _gelu_d),
    "gelu_tanh": (_gelu_tanh, _gelu_tanh_d),
    "silu": (_silu, _silu_d),
    "mish": (_mish, _mish_d),
    "softplus": (_softplus, _softplus_d),
    "softsign": (_softsign, lambda x, p: 1 / (1 + np.abs(x)) ** 2),
    "hardtanh": (lambda x, p: np.clip(x, p[0], p[1]),
                 lambda y, p: _nan_from(((y > p[0]) & (y < p[1])).astype(float), y)),
    "hardsigmoid": (lambda x, p: np.clip((x + 3) / 6, 0, 1),
                    lambda x, p: _nan_from(np.where((x > -3) & (x < 3), 1 / 6, 0.0), x)),
    "hardswish": (lambda x, p: np.where(x <= -3, 0.0, np.where(x >= 3, x, x * (x + 3) / 6)),
                  lambda x, p: _nan_from(np.where(x < -3, 0.0, np.where(x <= 3, x / 3 + 0.5, 1.0)), x)),
    "log_sigmoid": (lambda x, p: -np.logaddexp(0, -x), lambda x, p: _sigmoid(-x)),
}
_MATH["softplus_pow2"] = _MATH["softplus"]      # the native fast-path split; same math


def _slope_times(w, x):
    """w * x, with 0 (not NaN) for a zero slope at -inf; NaN stays NaN."""
    return np.where((w == 0) & ~np.isnan(x), 0.0, w * x)


def _saved_params(kname, p, dtype):
    """hardtanh's backward compares the saved output with the bounds as that output holds
    them: rounded to its dtype (clip(x, 0.1, 0.7) in float32 saturates at float32(0.1))."""
    if kname == "hardtanh":
        return (float(dtype.type(p[0])), float(dtype.type(p[1]))) + tuple(p[2:])
    return p


def _f64(a):
    return np.asarray(a).astype(np.float64, copy=False)


def _softmax_rows(x):
    with np.errstate(invalid="ignore"):                 # rows of -inf or +inf: NaN, as documented
        e = np.exp(x - x.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)


def _log_softmax_rows(x):
    with np.errstate(invalid="ignore", divide="ignore"):
        shifted = x - x.max(axis=-1, keepdims=True)
        return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


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
                y[...] = f(_f64(z + b), p)          # z + b in the arrays' dtype, as written
        return kernel

    @staticmethod
    def bias_bwd(kname, p=(0.0, 0.0, 0.0, 0.0)):
        d = _MATH[kname][1]

        def kernel(g, s, b, dz, db, rows, cols, nt):
            with np.errstate(all="ignore"):
                pre = _f64(s if b is None else s + b)
                dz[...] = _f64(g) * d(pre, _saved_params(kname, p, s.dtype))
                db[...] = _f64(dz).reshape(rows, cols).sum(axis=0)   # of dz as returned, in double
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

from . import nn as _nn_py   # noqa: E402  (nn imports nothing native at module level)
from ._registry import saves as _saves   # noqa: E402

DenseCache = _nn_py.DenseCache


def dense_forward(x, W, b, activation, *, out=None, **params):
    """(y, cache): y = act(x @ W + b), W of shape (n_in, n_out)."""
    x, W, b, name, params, kname, p, out = _nn_py.check_dense(x, W, b, activation, params, out)
    with np.errstate(all="ignore"):        # overflow to inf is the documented result
        z = x @ W
        y = _MATH[kname][0](_f64(z + b), p).astype(x.dtype)
    if out is not None:
        out[...] = y
        y = out
    saves = _saves(name)
    return y, DenseCache(x, W, b, z if saves == "input" else y, name, params, kname, p, saves)


def dense_backward(grad_y, cache):
    """(grad_x, grad_W, grad_b): dz = grad_y * act'(saved), dW = x.T @ dz, dx = dz @ W.T."""
    g = _nn_py.check_dense_grad(grad_y, cache)
    pre = cache.saved + cache.b if cache.saves == "input" else cache.saved
    with np.errstate(all="ignore"):
        dz = (_f64(g) * _MATH[cache.kname][1](_f64(pre), _saved_params(cache.kname, cache.p, pre.dtype))
              ).astype(g.dtype)
        gb = _f64(dz).sum(axis=0).astype(g.dtype)
        return dz @ cache.W.T, cache.x.T @ dz, gb


class NumpyEngine:
    """The MLP step in NumPy, with the interface of fastact._nn.Engine (fastact/nn.py)."""

    def __init__(self, dtype, sizes, knames, params, saves_in, thresholds, loss, theta, grad):
        self.dtype, self.sizes, self.loss = dtype, sizes, loss
        self.layers = list(zip(knames, [tuple(p) for p in params], saves_in, thresholds))
        self.theta, self.grad = theta, grad
        self.capacity = 1 << 62                     # NumPy allocates per call anyway
        self.diagnostics = None
        self._out = None

    def _views(self, flat):
        o, views = 0, []
        for k, n in zip(self.sizes[:-1], self.sizes[1:]):
            views.append((flat[o:o + k * n].reshape(k, n), flat[o + k * n:o + k * n + n]))
            o += k * n + n
        return views

    @staticmethod
    def all_finite(a):
        return bool(np.isfinite(a).all())

    @staticmethod
    def bad_label(labels, n_classes):
        bad = labels[(labels < 0) | (labels >= n_classes)]
        return int(bad[0]) if bad.size else None

    def reserve(self, rows):
        pass

    def output(self, rows):
        return self._out[:rows]

    def _forward(self, X):
        """[(input, saved pre-activation z + b or output, output)] per layer"""
        trace, a = [], X
        for (W, b), (kname, p, _, _) in zip(self._views(self.theta), self.layers):
            with np.errstate(all="ignore"):
                z = a @ W + b
                y = _MATH[kname][0](_f64(z), p).astype(self.dtype)
            trace.append((a, z, y))
            a = y
        return trace

    def _loss(self, out, labels, target):
        """(loss, d loss / d out)"""
        if self.loss == "softmax_cross_entropy":        # mean over rows
            loss, g = softmax_cross_entropy(out, labels)
            return loss, g
        x, t = _f64(out), _f64(target)
        if self.loss == "mse":              # mean over all elements
            d = x - t
            return float(np.mean(d * d)), (2 * d / d.size).astype(self.dtype)
        with np.errstate(all="ignore"):     # bce with logits, mean over all elements
            loss = np.mean(np.logaddexp(0, x) - t * x)
            return float(loss), ((_sigmoid(x) - t) / x.size).astype(self.dtype)

    def forward(self, X, out):
        out[...] = self._forward(X)[-1][2]

    def loss_of(self, X, labels, target):
        with np.errstate(all="ignore"):     # overflow to inf, as the native engine gives
            return self._loss(self._forward(X)[-1][2], labels, target)[0]

    def step(self, X, labels, target, diag, kind="", hyper=None, s1=None, s2=None, t=0):
        with np.errstate(all="ignore"):     # overflow to inf, as the native engine gives
            return self._step(X, labels, target, diag, kind, hyper, s1, s2, t)

    def _step(self, X, labels, target, diag, kind, hyper, s1, s2, t):
        trace = self._forward(X)
        self._out = trace[-1][2]
        loss, g = self._loss(self._out, labels, target)
        grads = self._views(self.grad)
        params = self._views(self.theta)
        rows = []
        for l in range(len(self.layers) - 1, -1, -1):
            kname, p, saves_in, thr = self.layers[l]
            a, z, y = trace[l]
            saved = z if saves_in else y
            with np.errstate(all="ignore"):
                deriv = _MATH[kname][1](_f64(saved), _saved_params(kname, p, saved.dtype))
            gW, gb = grads[l]
            with np.errstate(all="ignore"):
                dz = (_f64(g) * deriv).astype(self.dtype)
                gb[...] = _f64(dz).sum(axis=0)
                gW[...] = a.T @ dz
            if diag:
                rows.append([np.linalg.norm(_f64(gW)), np.linalg.norm(_f64(gb)),
                             np.linalg.norm(_f64(dz)), _f64(y).mean(), _f64(y).std(),
                             np.mean(np.abs(deriv.astype(self.dtype)) < thr),
                             np.mean(np.all(dz == 0, axis=0))])
            with np.errstate(all="ignore"):
                g = dz @ params[l][0].T
        if diag:
            self.diagnostics = np.array(rows[::-1], dtype=np.float64)
        if kind:
            self._update(kind, hyper, s1, s2, t)
        return float(loss)

    def _update(self, kind, h, s1, s2, t):
        p, g = self.theta, self.grad
        if h[5] > 0:                                        # clip by the global norm
            norm = np.sqrt(np.sum(_f64(g) ** 2))
            coef = h[5] / (norm + 1e-6)
            if coef < 1:
                g[...] = _f64(g) * coef
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
        denom = np.sqrt(_f64(s2)) / np.sqrt(1 - b2 ** t) + eps
        p[...] = p64 - lr / (1 - b1 ** t) * _f64(s1) / denom


class MLP(_nn_py.MLP):
    __doc__ = _nn_py.MLP.__doc__
    _engine_class = NumpyEngine


__all__ += ["dense_forward", "dense_backward", "DenseCache", "MLP", "NumpyEngine"]
