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
from .layers import check_bn_hyper, check_probability

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
    name, params, kname, p = _layer_check_activation(activation, where, functional=True)
    if name == "prelu":
        raise ValueError(
            f"{where}: prelu's learnable slope is a network option (Dense(n, "
            "'prelu')); for a fixed slope use fastact.prelu or 'leaky_relu'."
        )
    return name, params, kname, p


class DenseCache:
    """What dense_backward needs from dense_forward: made by dense_forward, not by hand.

    The arrays are references, not copies: do not modify them before the backward.

    Parameters
    ----------
    x, W, b : ndarray
        The layer's input, weights and bias.
    saved : ndarray
        The output y, or the pre-bias product x @ W for input-saving activations.
    activation : str
        The activation's name.
    params : dict
        The activation's parameters.
    kname : str
        The kernel's name (e.g. "gelu_tanh").
    p : tuple of float
        The kernel's (a, b, c, d) parameters.
    saves : {"input", "output"}
        What `saved` holds.

    See Also
    --------
    fastact.nn.dense_forward : Returns (y, DenseCache).

    Examples
    --------
    >>> import numpy as np
    >>> import fastact
    >>> x, W, b = np.ones((2, 3)), np.ones((3, 4)), np.zeros(4)
    >>> y, cache = fastact.nn.dense_forward(x, W, b, "gelu")
    >>> cache
    DenseCache(activation='gelu', x=(2, 3), W=(3, 4), saves='input')
    """

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
    if x.shape[1] != W.shape[0]:  # (before b's: a W given as (n_out, n_in) is named)
        raise ValueError(
            f"dense_forward: x has {x.shape[1]} features but W has "
            f"{W.shape[0]} rows; W must be (n_in, n_out) = ({x.shape[1]}, n_out)."
        )
    if b.ndim != 1 or b.shape[0] != W.shape[1]:
        raise ValueError(
            f"dense_forward: b must be 1-D with W.shape[1] = {W.shape[1]} values; "
            f"got shape {b.shape}."
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
    """Compute a dense layer, ``y = act(x @ W + b)``, and the cache of its backward.

    One GEMM (the BLAS of SciPy), then one fused bias + activation pass.

    Parameters
    ----------
    x : array_like of shape (rows, n_in)
        The input; float32 or float64 (integers in float64).
    W : array_like of shape (n_in, n_out)
        The weights, of x's dtype.
    b : array_like of shape (n_out,)
        The bias, of x's dtype.
    activation : str, Activation or (str, dict)
        A name of fastact.nn.MLP_ACTIVATIONS but "prelu" (e.g. "relu", "gelu",
        "identity"), its ACTIVATIONS entry, or (name, {parameters}).
    out : ndarray of shape (rows, n_out), optional
        C-contiguous, of x's dtype, not overlapping x, W or b: where to write y (it is
        kept in the cache as the saved output).
    **params
        The activation's parameters, e.g. ``negative_slope=0.2`` for "leaky_relu".

    Returns
    -------
    y : ndarray of shape (rows, n_out)
        The layer's output; out when given.
    cache : DenseCache
        What dense_backward needs (references to x, W, b and the saved array).

    Raises
    ------
    TypeError
        If an array is not float32, float64 or integer, or the arrays differ in dtype.
    ValueError
        If the activation is unknown, row-wise or "prelu" (a learnable slope is a
        network option: Dense(n, "prelu")); x or W is not 2-D; b does not have
        W.shape[1] values; x.shape[1] != W.shape[0]; a dimension is beyond the BLAS's
        32-bit range; or out does not fit.

    See Also
    --------
    fastact.nn.dense_backward : The backward.
    fastact.bias_act : The fused bias + activation pass alone.
    fastact.nn.Dense : The layer in a network.
    fastact.reference.dense_forward : The NumPy twin.

    Examples
    --------
    >>> import numpy as np
    >>> import fastact
    >>> x = np.array([[1.0, -1.0], [0.5, 2.0]])
    >>> W = np.array([[0.5, -1.0, 0.0], [1.0, 0.5, -0.5]])
    >>> b = np.array([0.0, 0.5, 1.0])
    >>> y, cache = fastact.nn.dense_forward(x, W, b, "relu")
    >>> y
    array([[0.  , 0.  , 1.5 ],
           [2.25, 1.  , 0.  ]])
    >>> y, cache = fastact.nn.dense_forward(x, W, b, "leaky_relu", negative_slope=0.1)
    >>> np.round(y, 4)
    array([[-0.05, -0.1 ,  1.5 ],
           [ 2.25,  1.  ,  0.  ]])
    """
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
    """Backpropagate grad_y through a dense layer: the gradients of x, W and b.

    One fused pass ``dz = grad_y * act'(saved)`` that also sums grad_b (in double), then
    two GEMMs: ``grad_W = x.T @ dz`` and ``grad_x = dz @ W.T``.

    Parameters
    ----------
    grad_y : array_like of shape (rows, n_out)
        The gradient of the loss with respect to the layer's output, of its dtype.
    cache : DenseCache
        The cache dense_forward returned.

    Returns
    -------
    grad_x : ndarray of shape (rows, n_in)
        The gradient with respect to x.
    grad_W : ndarray of shape (n_in, n_out)
        The gradient with respect to W.
    grad_b : ndarray of shape (n_out,)
        The gradient with respect to b.

    Raises
    ------
    TypeError
        If cache is not a DenseCache, or grad_y's dtype is not the layer's.
    ValueError
        If grad_y's shape is not the layer output's.

    See Also
    --------
    fastact.nn.dense_forward : The forward.
    fastact.bias_act_backward : The fused activation-backward + bias-gradient pass alone.

    Examples
    --------
    >>> import numpy as np
    >>> import fastact
    >>> x = np.array([[1.0, -1.0], [0.5, 2.0]])
    >>> W = np.array([[0.5, -1.0, 0.0], [1.0, 0.5, -0.5]])
    >>> b = np.array([0.0, 0.5, 1.0])
    >>> y, cache = fastact.nn.dense_forward(x, W, b, "relu")
    >>> grad_x, grad_W, grad_b = fastact.nn.dense_backward(np.ones_like(y), cache)
    >>> grad_x
    array([[ 0. , -0.5],
           [-0.5,  1.5]])
    >>> grad_b
    array([1., 1., 1.])
    """
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
    """What batchnorm_backward needs from batchnorm_forward: made by it, not by hand.

    The arrays are references, not copies: do not modify them before the backward.

    Parameters
    ----------
    x : ndarray
        The layer's input.
    gamma : ndarray
        The scale.
    mean, invstd : ndarray of float64
        The statistics used: the mean and 1 / sqrt(var + eps) per feature.
    training : bool
        Whether the batch statistics were used (else the running ones).

    See Also
    --------
    fastact.nn.batchnorm_forward : Returns (y, BatchNormCache).

    Examples
    --------
    >>> import numpy as np
    >>> import fastact
    >>> x = np.array([[1.0, 2.0], [3.0, 6.0]])
    >>> y, cache = fastact.nn.batchnorm_forward(x, np.ones(2), np.zeros(2), training=True)
    >>> cache
    BatchNormCache(x=(2, 2), training=True)
    >>> cache.mean
    array([2., 4.])
    """

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
    momentum, eps = check_bn_hyper(momentum, eps, where)
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
        if training:  # written in place: no other argument may share their memory
            pairs = [
                (a, nm, b, other)
                for a, nm in ((running_mean, "running_mean"), (running_var, "running_var"))
                for b, other in ((x, "x"), (gamma, "gamma"), (beta, "beta"))
            ]
            pairs.insert(0, (running_mean, "running_mean", running_var, "running_var"))
            for a, nm, b, other in pairs:
                try:
                    shared = np.shares_memory(a, b, max_work=10**6)
                except np.exceptions.TooHardError:  # (strides too tangled to tell)
                    shared = True
                if shared:
                    raise ValueError(
                        f"{where}: {nm} shares memory with {other}; training updates "
                        f"{nm} in place: give it an array of its own."
                    )
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
    """Normalise the rows of x over the batch (PyTorch BatchNorm1d) and return the cache.

    ``y = gamma (x - mean) / sqrt(var + eps) + beta`` per feature; the statistics
    accumulate in double.  training=True normalises with the batch mean and biased
    variance (at least 2 rows) and, when running_mean and running_var are given, updates
    them in place: ``running = (1 - momentum) running + momentum batch`` (the variance
    unbiased).  training=False normalises with the running statistics.

    Parameters
    ----------
    x : array_like of shape (rows, features)
        The input; float32 or float64 (integers in float64).
    gamma : array_like of shape (features,)
        The scale, of x's dtype.
    beta : array_like of shape (features,)
        The shift, of x's dtype.
    training : bool
        Batch statistics (True) or the running ones (False).
    running_mean : ndarray of shape (features,), optional
        The running mean, of x's dtype; updated in place in training.  Required (with
        running_var) when training is False.
    running_var : ndarray of shape (features,), optional
        The running variance, as running_mean.
    momentum : float, default 0.1
        How far the running statistics move towards the batch's, in [0, 1].
    eps : float, default 1e-5
        Added to the variance; > 0 and not subnormal (at least 2.2e-308).
    n_threads : int, optional
        As the activation functions' (threads split the columns from 65,536 elements
        up); the results do not depend on it.

    Returns
    -------
    y : ndarray of shape (rows, features)
        The normalised, scaled and shifted x.
    cache : BatchNormCache
        What batchnorm_backward needs.

    Raises
    ------
    TypeError
        If training is not a bool, an array is not float32, float64 or integer, the
        arrays differ in dtype, or a running statistic is not a NumPy array.
    ValueError
        If x is not 2-D; gamma, beta or a running statistic does not have one value per
        feature; momentum or eps is out of range; only one running statistic is given,
        or none in evaluation; a running statistic is read-only in training; training
        has fewer than 2 rows; or n_threads is 0.

    See Also
    --------
    fastact.nn.batchnorm_backward : The backward.
    fastact.nn.BatchNorm : The layer in a network.
    fastact.reference.batchnorm_forward : The NumPy twin.

    Examples
    --------
    >>> import numpy as np
    >>> import fastact
    >>> x = np.array([[1.0, 2.0], [3.0, 6.0]])
    >>> rm, rv = np.zeros(2), np.ones(2)
    >>> y, cache = fastact.nn.batchnorm_forward(
    ...     x, np.ones(2), np.zeros(2), training=True, running_mean=rm, running_var=rv
    ... )
    >>> np.round(y, 4)
    array([[-1., -1.],
           [ 1.,  1.]])
    >>> rm, rv
    (array([0.2, 0.4]), array([1.1, 1.7]))
    """
    from .. import _nn

    x, gamma, beta, rm, rv, momentum, eps = check_batchnorm(
        x, gamma, beta, training, running_mean, running_var, momentum, eps
    )
    nt = V.check_threads(n_threads)  # (after the arguments, as the NumPy twin)
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
    if rm2 is not rm and training:  # (evaluation writes nothing: read-only stats work)
        rm[...], rv[...] = rm2, rv2
    return y, BatchNormCache(x, gamma, mean, invstd, bool(training))


def batchnorm_backward(grad_y, cache, *, n_threads=None):
    """Backpropagate grad_y through batchnorm_forward: the gradients of x, gamma, beta.

    The two column sums (``grad_beta = sum grad_y``, ``grad_gamma = sum grad_y xhat``,
    in double), then one pass for grad_x: through the batch statistics in training, a
    per-feature scale in evaluation.

    Parameters
    ----------
    grad_y : array_like of shape (rows, features)
        The gradient of the loss with respect to y, of the layer's dtype.
    cache : BatchNormCache
        The cache batchnorm_forward returned.
    n_threads : int, optional
        As the activation functions'; the results do not depend on it.

    Returns
    -------
    grad_x : ndarray of shape (rows, features)
        The gradient with respect to x.
    grad_gamma : ndarray of shape (features,)
        The gradient with respect to gamma.
    grad_beta : ndarray of shape (features,)
        The gradient with respect to beta.

    Raises
    ------
    TypeError
        If cache is not a BatchNormCache, or grad_y's dtype is not the layer's.
    ValueError
        If grad_y's shape is not x's, or n_threads is 0.

    See Also
    --------
    fastact.nn.batchnorm_forward : The forward.

    Examples
    --------
    >>> import numpy as np
    >>> import fastact
    >>> x = np.array([[1.0, 2.0], [3.0, 6.0], [2.0, 1.0]])
    >>> y, cache = fastact.nn.batchnorm_forward(x, np.ones(2), np.zeros(2), training=True)
    >>> g = np.array([[1.0, 0.0], [0.0, 0.0], [0.0, 1.0]])
    >>> grad_x, grad_gamma, grad_beta = fastact.nn.batchnorm_backward(g, cache)
    >>> np.round(grad_x, 4)
    array([[ 0.2041, -0.2204],
           [ 0.2041,  0.0441],
           [-0.4082,  0.1763]])
    >>> np.round(grad_gamma, 4), grad_beta
    (array([-1.2247, -0.9258]), array([1., 1.]))
    """
    from .. import _nn

    g = check_batchnorm_grad(grad_y, cache)
    nt = V.check_threads(n_threads)
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
    """What dropout_backward needs to regenerate the mask: made by dropout_forward.

    No mask is stored: the backward regenerates it from (seed, step, layer).

    Parameters
    ----------
    p : float
        The drop probability.
    seed, step, layer : int
        The mask's key.
    shape : tuple of int
        The layer's shape.
    dtype : numpy.dtype
        The layer's dtype.
    training : bool
        Whether the mask was applied.

    See Also
    --------
    fastact.nn.dropout_forward : Returns (y, DropoutCache).

    Examples
    --------
    >>> import numpy as np
    >>> import fastact
    >>> y, cache = fastact.nn.dropout_forward(np.ones((2, 3)), 0.5, seed=7)
    >>> cache
    DropoutCache(p=0.5, seed=7, step=0, layer=0, shape=(2, 3), training=True)
    """

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
    """Apply inverted dropout to x and return the cache of its backward.

    In training each element (in C order) is kept with probability 1 - p and scaled by
    1 / (1 - p) (the scale rounded to x's dtype), else set to 0.  The mask is a pure
    function of (seed, step, layer, element index) (SplitMix64): the same on every
    machine and thread count, and in fastact.reference.  training=False returns a copy.

    Parameters
    ----------
    x : array_like
        The input, any shape; float32 or float64 (integers in float64).
    p : float
        The probability of dropping an element, in [0, 1).
    seed : int
        The mask's seed, in [0, 2**64).
    training : bool, default True
        Apply the mask (True) or copy x (False).
    step : int, default 0
        The training step, in [0, 2**64): a new mask for each step.
    layer : int, default 0
        The layer's number, in [0, 2**64): a new mask for each layer.
    n_threads : int, optional
        As the activation functions'; the results do not depend on it.

    Returns
    -------
    y : ndarray
        x with the mask and scale applied, x's shape and dtype.
    cache : DropoutCache
        What dropout_backward needs (no mask: it is regenerated).

    Raises
    ------
    TypeError
        If x is not float32, float64 or integer, or training is not a bool.
    ValueError
        If p is not in [0, 1), seed, step or layer is not an integer in [0, 2**64), or
        n_threads is 0.

    See Also
    --------
    fastact.nn.dropout_backward : The backward.
    fastact.nn.Dropout : The layer in a network.
    fastact.reference.dropout_keep : The mask, in NumPy.

    Examples
    --------
    >>> import numpy as np
    >>> import fastact
    >>> x = np.ones((2, 4))
    >>> y, cache = fastact.nn.dropout_forward(x, 0.5, seed=0)
    >>> y
    array([[2., 0., 0., 0.],
           [2., 2., 0., 2.]])
    >>> y_eval, _ = fastact.nn.dropout_forward(x, 0.5, seed=0, training=False)
    >>> bool((y_eval == x).all())
    True
    """
    from .. import _nn

    x, p, seed, step, layer, training = check_dropout(x, p, seed, step, layer, training)
    nt = V.check_threads(n_threads)
    y = np.empty_like(x)
    if training and p > 0:
        _nn.dropout(x, y, p, seed, step, layer, nt)
    else:
        y[...] = x
    return y, DropoutCache(p, seed, step, layer, x.shape, x.dtype, training)


def dropout_backward(grad_y, cache, *, n_threads=None):
    """Backpropagate grad_y through dropout_forward: the same mask and scale, regenerated.

    Parameters
    ----------
    grad_y : array_like
        The gradient of the loss with respect to y, of the layer's shape and dtype.
    cache : DropoutCache
        The cache dropout_forward returned.
    n_threads : int, optional
        As the activation functions'; the results do not depend on it.

    Returns
    -------
    ndarray
        The gradient with respect to x.

    Raises
    ------
    TypeError
        If cache is not a DropoutCache, or grad_y's dtype is not the layer's.
    ValueError
        If grad_y's shape is not the layer's, or n_threads is 0.

    See Also
    --------
    fastact.nn.dropout_forward : The forward.

    Examples
    --------
    >>> import numpy as np
    >>> import fastact
    >>> y, cache = fastact.nn.dropout_forward(np.ones((2, 4)), 0.5, seed=0)
    >>> grad_x = fastact.nn.dropout_backward(np.full((2, 4), 0.5), cache)
    >>> grad_x
    array([[1., 0., 0., 0.],
           [1., 1., 0., 1.]])
    """
    from .. import _nn

    g = check_dropout_grad(grad_y, cache)
    nt = V.check_threads(n_threads)
    gx = np.empty_like(g)
    if cache.training and cache.p > 0:
        _nn.dropout(g, gx, cache.p, cache.seed, cache.step, cache.layer, nt)
    else:
        gx[...] = g
    return gx
