"""The functional layers: dense, BatchNorm and dropout as (forward, backward) pairs.

    y, cache = fastact.dense_forward(x, W, b, "tanh")      # y = tanh(x @ W + b)
    gx, gW, gb = fastact.dense_backward(grad_y, cache)
    y, cache = fastact.batchnorm_forward(x, gamma, beta, training=True,
                                         running_mean=rm, running_var=rv)
    gx, ggamma, gbeta = fastact.batchnorm_backward(grad_y, cache)
    y, cache = fastact.dropout_forward(x, 0.5, seed=0)
    gx = fastact.dropout_backward(grad_y, cache)

The checks and caches here are shared with the NumPy twins in fastact.reference;
the native arithmetic is src/_nn.pyx's (the same loops the network engine runs).
"""

from __future__ import annotations

import numbers

import numpy as np

from .. import _registry as R
from .. import _validate as V
from ._engine_support import blas_dim as _blas_dim
from .layers import check_activation as _layer_check_activation
from .layers import check_probability

__all__ = [
    "DenseCache",
    "dense_forward",
    "dense_backward",
    "BatchNormCache",
    "batchnorm_forward",
    "batchnorm_backward",
    "DropoutCache",
    "dropout_forward",
    "dropout_backward",
]


def _check_activation(activation, where):
    name, params, kname, p = _layer_check_activation(activation, where)
    if name == "prelu":
        raise ValueError(
            f"{where}: prelu's learnable slope is a network option (Dense(n, "
            "'prelu')); for a fixed slope use fastact.prelu or 'leaky_relu'."
        )
    return name, params, kname, p


class DenseCache:
    """What dense_backward needs: the layer's input, weights, bias, the saved array
    (the output, or the pre-bias product x @ W for input-saving activations) and the
    activation.  The arrays are references: do not modify them before the backward."""

    __slots__ = ("x", "W", "b", "saved", "activation", "params", "kname", "p", "saves")

    def __init__(self, x, W, b, saved, activation, params, kname, p, saves):
        self.x, self.W, self.b, self.saved = x, W, b, saved
        self.activation, self.params, self.kname, self.p, self.saves = (
            activation,
            params,
            kname,
            p,
            saves,
        )

    def __repr__(self):
        return (
            f"DenseCache(activation={self.activation!r}, x={self.x.shape}, "
            f"W={self.W.shape}, saves={self.saves!r})"
        )


def check_dense(x_in, W_in, b_in, activation, params, out):
    """Validated (x, W, b, name, params, kname, p, out) for dense_forward."""
    if params:  # keyword parameters: dense_forward(x, W, b, "leaky_relu", negative_slope=0.2)
        if (
            isinstance(activation, tuple)
            and len(activation) == 2
            and isinstance(activation[1], dict)
        ):
            activation = (activation[0], {**activation[1], **params})
        else:
            activation = (activation, dict(params))
    name, params, kname, p = _check_activation(activation, "dense_forward")
    x = V.as_float_array(x_in, "x")
    W = V.as_float_array(W_in, "W")
    b = V.as_float_array(b_in, "b")
    if x.ndim != 2:
        raise ValueError(
            f"dense_forward: x must be 2-D (rows x n_in); got shape {x.shape}. "
            "Reshape a single sample with x.reshape(1, -1)."
        )
    if W.ndim != 2:
        raise ValueError(f"dense_forward: W must be 2-D (n_in x n_out); got shape {W.shape}.")
    if b.ndim != 1 or b.shape[0] != W.shape[1]:
        raise ValueError(
            f"dense_forward: b must be 1-D with W.shape[1] = {W.shape[1]} values; "
            f"got shape {b.shape}."
        )
    if x.shape[1] != W.shape[0]:
        raise ValueError(
            f"dense_forward: x has {x.shape[1]} features but W has "
            f"{W.shape[0]} rows; W must be (n_in, n_out) = ({x.shape[1]}, n_out)."
        )
    V.check_same_dtype(x, W, "x", "W")
    V.check_same_dtype(x, b, "x", "b")
    for n, what in ((x.shape[0], "rows"), (x.shape[1], "n_in"), (W.shape[1], "n_out")):
        _blas_dim(n, what, "dense_forward")
    x = V.contiguous(x, "C")
    W = V.contiguous(W, "C")
    b = V.contiguous(b, "C")
    shape = (x.shape[0], W.shape[1])
    if out is not None:
        V.check_out(out, shape, x.dtype)
        if not (out.flags.c_contiguous and out.flags.aligned):
            raise ValueError(
                "dense_forward: out must be C-contiguous (it is kept as the "
                "saved output for dense_backward); pass out=None."
            )
        for arr, nm in ((x, "x"), (W, "W"), (b, "b")):
            V.check_overlap(out, arr, "out", nm, identical_ok=False)
    return x, W, b, name, params, kname, p, out


def check_dense_grad(grad_y, cache) -> np.ndarray:
    if not isinstance(cache, DenseCache):
        raise TypeError(
            "dense_backward: cache must be the DenseCache returned by "
            f"dense_forward; got {type(cache).__name__}."
        )
    g = V.as_float_array(grad_y, "grad_y")
    shape = (cache.x.shape[0], cache.W.shape[1])
    if g.shape != shape:
        raise ValueError(
            f"dense_backward: grad_y has shape {g.shape}; the layer's output has shape {shape}."
        )
    if g.dtype != cache.x.dtype:
        raise TypeError(
            f"dense_backward: grad_y has dtype {g.dtype} but the layer is "
            f"{cache.x.dtype}; convert with grad_y.astype(np.{cache.x.dtype})."
        )
    return V.contiguous(g, "C")


# ---- the functional dense layer (native) -------------------------------------------


def dense_forward(x, W, b, activation, *, out=None, **params):
    """(y, cache): y = act(x @ W + b) with W of shape (n_in, n_out): one GEMM, then one
    fused bias + activation pass.  x, W, b share one dtype (float32 or float64)."""
    from .. import _nn
    from .._activations import ACT_IDS

    x, W, b, name, params, kname, p, out = check_dense(x, W, b, activation, params, out)
    y = np.empty((x.shape[0], W.shape[1]), x.dtype) if out is None else out
    saves = R.saves(name)
    z = np.empty_like(y) if saves == "input" else y
    if y.size:
        _nn.dense_forward(ACT_IDS[kname], x, W, b, z, y, *p)
    return y, DenseCache(x, W, b, z, name, params, kname, p, saves)


def dense_backward(grad_y, cache):
    """(grad_x, grad_W, grad_b) of dense_forward: one fused activation-backward +
    bias-gradient pass (grad_b summed in double), then dW = x.T @ dz and dx = dz @ W.T."""
    from .. import _nn
    from .._activations import ACT_IDS

    g = check_dense_grad(grad_y, cache)
    x, W = cache.x, cache.W
    dz = np.empty_like(g)
    dW = np.empty_like(W)
    dx = np.empty_like(x)
    db = np.zeros(W.shape[1], np.float64)
    bias = cache.b if cache.saves == "input" else None
    _nn.dense_backward(ACT_IDS[cache.kname], g, cache.saved, bias, x, W, dz, dx, dW, db, *cache.p)
    with np.errstate(over="ignore"):
        gb = db.astype(x.dtype)
    return dx, dW, gb


# ---- the network ------------------------------------------------------------------
# ---- BatchNorm ----------------------------------------------------------------------


class BatchNormCache:
    """What batchnorm_backward needs: the input, gamma, the statistics used (float64 mean
    and 1 / sqrt(var + eps)) and the mode.  The arrays are references: do not modify them
    before the backward."""

    __slots__ = ("x", "gamma", "mean", "invstd", "training")

    def __init__(self, x, gamma, mean, invstd, training):
        self.x, self.gamma, self.mean, self.invstd, self.training = x, gamma, mean, invstd, training

    def __repr__(self):
        return f"BatchNormCache(x={self.x.shape}, training={self.training})"


def check_batchnorm(x_in, gamma_in, beta_in, training, running_mean, running_var, momentum, eps):
    """Validated (x, gamma, beta, running_mean, running_var, momentum, eps)."""
    where = "batchnorm_forward"
    if not isinstance(training, (bool, np.bool_)):
        raise TypeError(f"{where}: training must be True or False; got {training!r}.")
    x = V.as_float_array(x_in, "x")
    gamma = V.as_float_array(gamma_in, "gamma")
    beta = V.as_float_array(beta_in, "beta")
    if x.ndim != 2:
        raise ValueError(f"{where}: x must be 2-D (rows x features); got shape {x.shape}.")
    n = x.shape[1]
    for a, nm in ((gamma, "gamma"), (beta, "beta")):
        if a.shape != (n,):
            raise ValueError(
                f"{where}: {nm} must have shape ({n},), one value per feature; got {a.shape}."
            )
        V.check_same_dtype(x, a, "x", nm)
    for v, nm in ((momentum, "momentum"), (eps, "eps")):
        if isinstance(v, bool) or not isinstance(v, numbers.Real) or not np.isfinite(v):
            raise ValueError(f"{where}: {nm} must be a finite number; got {v!r}.")
    if not 0.0 <= momentum <= 1.0:
        raise ValueError(f"{where}: momentum must be in [0, 1]; got {momentum!r}.")
    if not eps > 0:
        raise ValueError(f"{where}: eps must be > 0; got {eps!r}.")
    if (running_mean is None) != (running_var is None):
        raise ValueError(f"{where}: give both running_mean and running_var, or neither.")
    if running_mean is not None:
        for a, nm in ((running_mean, "running_mean"), (running_var, "running_var")):
            if not isinstance(a, np.ndarray):
                raise TypeError(
                    f"{where}: {nm} must be a NumPy array (updated in place in "
                    f"training); got {type(a).__name__}."
                )
            if a.shape != (n,):
                raise ValueError(f"{where}: {nm} must have shape ({n},); got {a.shape}.")
            if a.dtype != x.dtype:
                raise TypeError(
                    f"{where}: {nm} has dtype {a.dtype} but x is {x.dtype}; "
                    f"use {nm}.astype(np.{x.dtype})."
                )
            if training and not a.flags.writeable:
                raise ValueError(f"{where}: {nm} is read-only; training updates it in place.")
    if training and x.shape[0] < 2:
        raise ValueError(
            f"{where}: training needs at least 2 rows to estimate the batch "
            f"variance; got {x.shape[0]} (use training=False with running "
            "statistics for a single sample)."
        )
    if not training and running_mean is None:
        raise ValueError(
            f"{where}: evaluation (training=False) normalises with the running "
            "statistics: pass running_mean and running_var."
        )
    return (
        V.contiguous(x, "C"),
        V.contiguous(gamma, "C"),
        V.contiguous(beta, "C"),
        running_mean,
        running_var,
        float(momentum),
        float(eps),
    )


def check_batchnorm_grad(grad_y, cache):
    if not isinstance(cache, BatchNormCache):
        raise TypeError(
            "batchnorm_backward: cache must be the BatchNormCache returned by "
            f"batchnorm_forward; got {type(cache).__name__}."
        )
    g = V.as_float_array(grad_y, "grad_y")
    if g.shape != cache.x.shape:
        raise ValueError(
            f"batchnorm_backward: grad_y has shape {g.shape}; the layer's output "
            f"has shape {cache.x.shape}."
        )
    if g.dtype != cache.x.dtype:
        raise TypeError(
            f"batchnorm_backward: grad_y has dtype {g.dtype} but the layer is "
            f"{cache.x.dtype}; convert with grad_y.astype(np.{cache.x.dtype})."
        )
    return V.contiguous(g, "C")


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
    """(y, cache): batch normalisation over the rows of x (rows x features), PyTorch
    BatchNorm1d's semantics.

    training=True normalises with the batch mean and biased variance (at least 2 rows) and,
    when running_mean/running_var are given, updates them in place:
    running = (1 - momentum) running + momentum batch (the variance unbiased).
    training=False normalises with the running statistics (required).
    y = gamma (x - mean) / sqrt(var + eps) + beta; statistics accumulate in double.
    n_threads: as the activation kernels (threads split the columns from 65,536 elements
    up; the results do not depend on the count)."""
    from .. import _nn

    nt = V.check_threads(n_threads)
    x, gamma, beta, rm, rv, momentum, eps = check_batchnorm(
        x, gamma, beta, training, running_mean, running_var, momentum, eps
    )
    n = x.shape[1]
    y = np.empty_like(x)
    mean = np.empty(n, np.float64)
    invstd = np.empty(n, np.float64)
    if rm is not None and not (
        rm.flags.c_contiguous and rm.flags.aligned and rv.flags.c_contiguous and rv.flags.aligned
    ):
        rm2, rv2 = V.contiguous(rm, "C"), V.contiguous(rv, "C")  # updated, then copied back
    else:
        rm2, rv2 = rm, rv
    with np.errstate(over="ignore", invalid="ignore"):
        _nn.batchnorm_forward(
            x, gamma, beta, y, mean, invstd, rm2, rv2, momentum, eps, bool(training), nt
        )
    if rm2 is not rm:
        rm[...], rv[...] = rm2, rv2
    return y, BatchNormCache(x, gamma, mean, invstd, bool(training))


def batchnorm_backward(grad_y, cache, *, n_threads=None):
    """(grad_x, grad_gamma, grad_beta) of batchnorm_forward: the two column sums
    (grad_beta = sum grad_y, grad_gamma = sum grad_y xhat, in double), then one pass for
    grad_x (through the batch statistics in training, a per-feature scale in evaluation)."""
    from .. import _nn

    nt = V.check_threads(n_threads)
    g = check_batchnorm_grad(grad_y, cache)
    n = cache.x.shape[1]
    dx = np.empty_like(g)
    dgamma = np.empty(n, np.float64)
    dbeta = np.empty(n, np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        _nn.batchnorm_backward(
            g, cache.x, cache.gamma, cache.mean, cache.invstd, dx, dgamma, dbeta, cache.training, nt
        )
        return dx, dgamma.astype(g.dtype), dbeta.astype(g.dtype)


# ---- dropout --------------------------------------------------------------------------


class DropoutCache:
    """What dropout_backward needs to regenerate the mask: p, seed, step, layer, the
    shape and dtype, the mode.  No mask is stored."""

    __slots__ = ("p", "seed", "step", "layer", "shape", "dtype", "training")

    def __init__(self, p, seed, step, layer, shape, dtype, training):
        self.p, self.seed, self.step, self.layer = p, seed, step, layer
        self.shape, self.dtype, self.training = shape, dtype, training

    def __repr__(self):
        return (
            f"DropoutCache(p={self.p}, seed={self.seed}, step={self.step}, "
            f"layer={self.layer}, shape={self.shape}, training={self.training})"
        )


def _check_u64(v, name, where):
    if isinstance(v, bool) or not isinstance(v, numbers.Integral) or not 0 <= v < 2**64:
        raise ValueError(f"{where}: {name} must be an integer in [0, 2**64); got {v!r}.")
    return int(v)


def check_dropout(x_in, p, seed, step, layer, training):
    where = "dropout_forward"
    check_probability(p, where)
    seed = _check_u64(seed, "seed", where)
    step = _check_u64(step, "step", where)
    layer = _check_u64(layer, "layer", where)
    if not isinstance(training, (bool, np.bool_)):
        raise TypeError(f"{where}: training must be True or False; got {training!r}.")
    x = V.as_float_array(x_in, "x")
    return V.contiguous(x, "C"), float(p), seed, step, layer, bool(training)


def check_dropout_grad(grad_y, cache):
    if not isinstance(cache, DropoutCache):
        raise TypeError(
            "dropout_backward: cache must be the DropoutCache returned by "
            f"dropout_forward; got {type(cache).__name__}."
        )
    g = V.as_float_array(grad_y, "grad_y")
    if g.shape != cache.shape:
        raise ValueError(
            f"dropout_backward: grad_y has shape {g.shape}; the layer's output has "
            f"shape {cache.shape}."
        )
    if g.dtype != cache.dtype:
        raise TypeError(
            f"dropout_backward: grad_y has dtype {g.dtype} but the layer is "
            f"{cache.dtype}; convert with grad_y.astype(np.{cache.dtype})."
        )
    return V.contiguous(g, "C")


def dropout_forward(x, p, *, seed, training=True, step=0, layer=0, n_threads=None):
    """(y, cache): inverted dropout.  In training each element (in C order) is kept with
    probability 1 - p and scaled by 1 / (1 - p) (the scale rounded to x's dtype), else 0;
    the mask is a pure function of (seed, step, layer, element index) (SplitMix64), the
    same on every machine and thread count.  training=False returns a copy of x."""
    from .. import _nn

    nt = V.check_threads(n_threads)
    x, p, seed, step, layer, training = check_dropout(x, p, seed, step, layer, training)
    y = np.empty_like(x)
    if training and p > 0:
        _nn.dropout(x, y, p, seed, step, layer, nt)
    else:
        y[...] = x
    return y, DropoutCache(p, seed, step, layer, x.shape, x.dtype, training)


def dropout_backward(grad_y, cache, *, n_threads=None):
    """grad_x of dropout_forward: grad_y times the same mask and scale (regenerated)."""
    from .. import _nn

    nt = V.check_threads(n_threads)
    g = check_dropout_grad(grad_y, cache)
    gx = np.empty_like(g)
    if cache.training and cache.p > 0:
        _nn.dropout(g, gx, cache.p, cache.seed, cache.step, cache.layer, nt)
    else:
        gx[...] = g
    return gx
