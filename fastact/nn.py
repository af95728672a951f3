"""Dense layers and the MLP: the Python side of src/_nn.pyx.

    y, cache = fastact.dense_forward(x, W, b, "tanh")      # y = tanh(x @ W + b)
    gx, gW, gb = fastact.dense_backward(grad_y, cache)

    net = fastact.MLP([64, 128, 128, 10], "relu", seed=0)
    opt = fastact.optim.SGD(lr=0.1, momentum=0.9)
    loss = net.train_step(X, y, opt)                        # one native call, no allocation
    history = net.fit(X, y, epochs=10, batch_size=64, optimizer=opt)

Everything that is not arithmetic lives here and is shared by the native MLP
(`fastact.MLP`, engine `fastact._nn.Engine`) and its NumPy twin
(`fastact.reference.MLP`, engine `fastact.reference.NumpyEngine`): argument
checks, initialisation, the parameter layout, fit/evaluate/predict and
save/load.  So the two classes accept the same arguments, start from the
same weights for the same seed, and differ only in how a step is computed.

Parameter layout: one flat array `theta` holds, per dense layer, W
(n_in x n_out, row-major) then b (n_out); `net.params[l] = (W, b)` are views
into it (writing into them changes the network), `net.grads` the same for
the flat gradient array.
"""
from __future__ import annotations

import functools
import json
import math
import numbers
import os
import sys
import time

import numpy as np

from . import _registry as R
from . import _validate as V
from .optim import Optimizer

__all__ = ["MLP", "DenseCache", "dense_forward", "dense_backward", "INITS", "LOSSES",
           "MLP_ACTIVATIONS", "gain"]

INITS = ("auto", "standard", "xavier_uniform", "xavier_normal", "he_uniform", "he_normal",
         "lecun_normal", "orthogonal")
LOSSES = ("softmax_cross_entropy", "mse", "binary_cross_entropy_with_logits")
# hidden-layer activations of an MLP: the elementwise ones with scalar parameters
MLP_ACTIVATIONS = R.BIAS_ACT_NAMES
_RELU_LIKE = ("relu", "leaky_relu", "relu6", "elu", "celu", "gelu", "silu", "mish", "softplus",
              "hardswish")
_FORMAT = "fastact.MLP/1"
# net.diagnostics() per layer, in the order the engines fill their rows
DIAG_COLUMNS = ("grad_W_norm", "grad_b_norm", "grad_z_norm", "act_mean", "act_std",
                "saturated_fraction", "dead_fraction")
_BLAS_INT_MAX = 2**31 - 1


def gain(name: str, params: dict | None = None) -> float:
    """The initialisation gain of an activation: torch.nn.init.calculate_gain where it
    defines one (identity/sigmoid 1, tanh 5/3, relu sqrt 2, leaky_relu sqrt(2 / (1 + slope^2)),
    selu 3/4); sqrt 2 for the other ReLU-like activations and 1 for the other bounded ones."""
    if name == "tanh":
        return 5.0 / 3.0
    if name == "selu":
        return 0.75
    if name == "leaky_relu":
        slope = (params or {}).get("negative_slope", 0.01)
        return math.sqrt(2.0 / (1.0 + slope * slope))
    if name in _RELU_LIKE:
        return math.sqrt(2.0)
    return 1.0


def _auto_scheme(name: str) -> str:
    if name in _RELU_LIKE:
        return "he_normal"
    if name == "selu":
        return "lecun_normal"
    return "xavier_uniform"


def _init_weight(rng, scheme: str, n_in: int, n_out: int, g: float) -> np.ndarray:
    """One W (n_in x n_out) in float64: the layer computes x @ W, so fan_in = n_in."""
    if scheme == "standard":                       # Glorot & Bengio (2010), eq. 15's "standard"
        a = 1.0 / math.sqrt(n_in)
        return rng.uniform(-a, a, (n_in, n_out))
    if scheme == "xavier_uniform":
        a = g * math.sqrt(6.0 / (n_in + n_out))
        return rng.uniform(-a, a, (n_in, n_out))
    if scheme == "xavier_normal":
        return rng.normal(0.0, g * math.sqrt(2.0 / (n_in + n_out)), (n_in, n_out))
    if scheme == "he_uniform":
        a = g * math.sqrt(3.0 / n_in)
        return rng.uniform(-a, a, (n_in, n_out))
    if scheme == "he_normal":
        return rng.normal(0.0, g / math.sqrt(n_in), (n_in, n_out))
    if scheme == "lecun_normal":
        return rng.normal(0.0, 1.0 / math.sqrt(n_in), (n_in, n_out))
    # orthogonal (Saxe et al.; torch.nn.init.orthogonal_): Q of a Gaussian matrix's QR,
    # signs fixed by R's diagonal, times the gain
    big, small = max(n_in, n_out), min(n_in, n_out)
    q, r = np.linalg.qr(rng.standard_normal((big, small)))
    q *= np.sign(np.diag(r))
    return g * (q if n_in >= n_out else q.T)


# ---- argument checks -------------------------------------------------------------

def _check_activation(activation, where: str):
    """(name, params dict) from a name, an Activation, or (name, {params})."""
    params = {}
    if isinstance(activation, tuple) and len(activation) == 2 and isinstance(activation[1], dict):
        activation, params = activation
    if isinstance(activation, R.Activation):
        activation = activation.name
    if not isinstance(activation, str) or activation not in MLP_ACTIVATIONS:
        hint = ""
        if activation == "prelu":
            hint = " (prelu's learnable slopes are not an MLP option yet)"
        elif activation in ("softmax", "log_softmax"):
            hint = " (row-wise: use loss='softmax_cross_entropy' for a softmax output)"
        raise ValueError(f"{where}: unknown activation {activation!r}{hint}; valid names: "
                         + ", ".join(MLP_ACTIVATIONS) + ".")
    kname, p = R.kernel_params(activation, dict(params), where)
    if activation in ("leaky_relu", "elu") and p[0] < 0:
        pname = "negative_slope" if activation == "leaky_relu" else "alpha"
        raise ValueError(
            f"{where}: {activation} with {pname}={p[0]} < 0 cannot be differentiated from the "
            "saved output (the sign of the output no longer tells the side of the kink), and "
            f"the layer's backward reads the output; use {pname} >= 0.")
    return activation, dict(params), kname, p


def _blas_dim(n: int, what: str, where: str) -> None:
    if n > _BLAS_INT_MAX:
        raise ValueError(f"{where}: {what} = {n} is beyond the BLAS integer range (2**31 - 1).")


class DenseCache:
    """What dense_backward needs: the layer's input, weights, bias, the saved array
    (the output, or the pre-bias product x @ W for input-saving activations) and the
    activation.  The arrays are references: do not modify them before the backward."""

    __slots__ = ("x", "W", "b", "saved", "activation", "params", "kname", "p", "saves")

    def __init__(self, x, W, b, saved, activation, params, kname, p, saves):
        self.x, self.W, self.b, self.saved = x, W, b, saved
        self.activation, self.params, self.kname, self.p, self.saves = (
            activation, params, kname, p, saves)

    def __repr__(self):
        return (f"DenseCache(activation={self.activation!r}, x={self.x.shape}, "
                f"W={self.W.shape}, saves={self.saves!r})")


def check_dense(x_in, W_in, b_in, activation, params, out):
    """Validated (x, W, b, name, params, kname, p, out) for dense_forward."""
    if params:          # keyword parameters: dense_forward(x, W, b, "leaky_relu", negative_slope=0.2)
        if isinstance(activation, tuple) and len(activation) == 2 and isinstance(activation[1], dict):
            activation = (activation[0], {**activation[1], **params})
        else:
            activation = (activation, dict(params))
    name, params, kname, p = _check_activation(activation, "dense_forward")
    x = V.as_float_array(x_in, "x")
    W = V.as_float_array(W_in, "W")
    b = V.as_float_array(b_in, "b")
    if x.ndim != 2:
        raise ValueError(f"dense_forward: x must be 2-D (rows x n_in); got shape {x.shape}. "
                         "Reshape a single sample with x.reshape(1, -1).")
    if W.ndim != 2:
        raise ValueError(f"dense_forward: W must be 2-D (n_in x n_out); got shape {W.shape}.")
    if b.ndim != 1 or b.shape[0] != W.shape[1]:
        raise ValueError(f"dense_forward: b must be 1-D with W.shape[1] = {W.shape[1]} values; "
                         f"got shape {b.shape}.")
    if x.shape[1] != W.shape[0]:
        raise ValueError(f"dense_forward: x has {x.shape[1]} features but W has "
                         f"{W.shape[0]} rows; W must be (n_in, n_out) = ({x.shape[1]}, n_out).")
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
            raise ValueError("dense_forward: out must be C-contiguous (it is kept as the "
                             "saved output for dense_backward); pass out=None.")
        for arr, nm in ((x, "x"), (W, "W"), (b, "b")):
            V.check_overlap(out, arr, "out", nm, identical_ok=False)
    return x, W, b, name, params, kname, p, out


def check_dense_grad(grad_y, cache) -> np.ndarray:
    if not isinstance(cache, DenseCache):
        raise TypeError("dense_backward: cache must be the DenseCache returned by "
                        f"dense_forward; got {type(cache).__name__}.")
    g = V.as_float_array(grad_y, "grad_y")
    shape = (cache.x.shape[0], cache.W.shape[1])
    if g.shape != shape:
        raise ValueError(f"dense_backward: grad_y has shape {g.shape}; the layer's output has "
                         f"shape {shape}.")
    if g.dtype != cache.x.dtype:
        raise TypeError(f"dense_backward: grad_y has dtype {g.dtype} but the layer is "
                        f"{cache.x.dtype}; convert with grad_y.astype(np.{cache.x.dtype}).")
    return V.contiguous(g, "C")


# ---- the functional dense layer (native) -------------------------------------------

def dense_forward(x, W, b, activation, *, out=None, **params):
    """(y, cache): y = act(x @ W + b) with W of shape (n_in, n_out): one GEMM, then one
    fused bias + activation pass.  x, W, b share one dtype (float32 or float64)."""
    from . import _nn
    from ._activations import ACT_IDS
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
    from . import _nn
    from ._activations import ACT_IDS
    g = check_dense_grad(grad_y, cache)
    x, W = cache.x, cache.W
    dz = np.empty_like(g)
    dW = np.empty_like(W)
    dx = np.empty_like(x)
    db = np.zeros(W.shape[1], np.float64)
    bias = cache.b if cache.saves == "input" else None
    _nn.dense_backward(ACT_IDS[cache.kname], g, cache.saved, bias, x, W, dz, dx, dW, db,
                       *cache.p)
    with np.errstate(over="ignore"):
        gb = db.astype(x.dtype)
    return dx, dW, gb


# ---- the network ------------------------------------------------------------------

@functools.lru_cache(maxsize=256)
def _max_derivative(kname: str, p: tuple, saves: str) -> float:
    """max |f'| of an activation, on a dense grid (for the saturation threshold)."""
    from .reference import _MATH
    f, d = _MATH[kname]
    x = np.linspace(-30.0, 30.0, 120001)
    with np.errstate(all="ignore"):
        s = x if saves == "input" else f(x, p)
        v = np.abs(d(s, p))
    return float(np.nanmax(v))


class MLP:
    """A multi-layer perceptron trained by one native call per step.

    layer_sizes: [n_in, hidden..., n_out]; every hidden layer is dense + activation, the
    last layer is dense and linear (the loss applies its link: softmax, sigmoid).
    activation: one name for all hidden layers, or one per hidden layer; a name, an
    ACTIVATIONS entry, or (name, {parameters}) such as ("leaky_relu", {"negative_slope": 0.2}).
    init: "auto" (the matched scheme per layer: he_normal for ReLU-like, xavier_uniform for
    sigmoid/tanh-like, lecun_normal for selu, xavier_uniform for the output layer), or one
    of "standard", "xavier_uniform", "xavier_normal", "he_uniform", "he_normal",
    "lecun_normal", "orthogonal" for every layer.  xavier, he and orthogonal multiply by the
    layer activation's gain (fastact.nn.gain; 1 for the linear output layer).  Biases start
    at zero.  The same seed gives the same weights in fastact.MLP and fastact.reference.MLP.
    loss: "softmax_cross_entropy" (y: class indices), "mse" or
    "binary_cross_entropy_with_logits" (y: rows x n_out, or n_rows values when n_out is 1);
    means over the batch (mse and bce: over all elements, as PyTorch's reduction="mean").
    diagnostics: when True, train_step records net.diagnostics() too (compute_gradients
    always does).
    """

    _engine_class = None        # set by the backend: fastact.MLP or fastact.reference.MLP

    def __init__(self, layer_sizes, activation="relu", *, init="auto",
                 loss="softmax_cross_entropy", dtype=np.float32, seed=0, diagnostics=False):
        sizes = self._check_sizes(layer_sizes)
        n_hidden = len(sizes) - 2
        if isinstance(activation, list):
            if len(activation) != n_hidden:
                raise ValueError(
                    f"MLP: activation is a list of {len(activation)} but the network has "
                    f"{n_hidden} hidden layer(s); give one per hidden layer or a single name.")
            acts = [_check_activation(a, "MLP") for a in activation]
        else:
            acts = [_check_activation(activation, "MLP")] * n_hidden
        if not isinstance(init, str) or init not in INITS:
            raise ValueError(f"MLP: unknown init {init!r}; valid: {', '.join(INITS)}.")
        if not isinstance(loss, str) or loss not in LOSSES:
            raise ValueError(f"MLP: unknown loss {loss!r}; valid: {', '.join(LOSSES)}.")
        if loss == "softmax_cross_entropy" and sizes[-1] < 2:
            raise ValueError("MLP: softmax_cross_entropy needs at least 2 outputs (classes); "
                             "for one output use loss='binary_cross_entropy_with_logits'.")
        try:
            dt = None if dtype is None else np.dtype(dtype)
        except TypeError:
            dt = None
        if dt is None or dt not in (V.F32, V.F64):     # (np.dtype("float64") == None is True)
            shown = repr(dtype) if dt is None else str(dt)
            raise TypeError(f"MLP: dtype must be float32 or float64; got {shown}.")
        if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
            raise ValueError(f"MLP: seed must be a non-negative integer; got {seed!r}.")
        self.layer_sizes = tuple(sizes)
        self.activations = [(a[0], a[1]) for a in acts]
        self.init = init
        self.loss = loss
        self.dtype = dt
        self.seed = int(seed)
        self.record_diagnostics = bool(diagnostics)
        self._rng = np.random.default_rng((self.seed, 1))       # shuffling in fit
        # per dense layer: kernel name, (a, b, c, d), saves; the output layer is identity
        layers = [(a[2], a[3], R.saves(a[0])) for a in acts] + [("identity", (0.0,) * 4, "output")]
        self._layers = layers
        n_params = sum(k * n + n for k, n in zip(sizes[:-1], sizes[1:]))
        self.theta = np.zeros(n_params, dt)
        self.grad_flat = np.zeros(n_params, dt)
        self.params, self.grads = [], []
        o = 0
        for k, n in zip(sizes[:-1], sizes[1:]):
            self.params.append((self.theta[o:o + k * n].reshape(k, n), self.theta[o + k * n:o + k * n + n]))
            self.grads.append((self.grad_flat[o:o + k * n].reshape(k, n),
                               self.grad_flat[o + k * n:o + k * n + n]))
            o += k * n + n
        self._initialise()
        thresholds = [1e-3 * _max_derivative(kn, tuple(p), sv) for kn, p, sv in layers]
        self._engine = self._engine_class(
            dt, list(sizes), [kn for kn, _, _ in layers], [list(p) for _, p, _ in layers],
            [sv == "input" for _, _, sv in layers], thresholds, loss,
            self.theta, self.grad_flat)
        self._diag_names = None

    # -- construction helpers --
    @staticmethod
    def _check_sizes(layer_sizes):
        try:
            sizes = list(layer_sizes)
        except TypeError:
            raise TypeError(f"MLP: layer_sizes must be a list of ints [n_in, hidden..., n_out]; "
                            f"got {layer_sizes!r}.") from None
        if len(sizes) < 2:
            raise ValueError(f"MLP: layer_sizes needs at least [n_in, n_out]; got {sizes}.")
        for s in sizes:
            if isinstance(s, bool) or not isinstance(s, numbers.Integral) or s < 1:
                raise ValueError(f"MLP: layer sizes must be positive integers; got {sizes}.")
            _blas_dim(int(s), "a layer size", "MLP")
        return [int(s) for s in sizes]

    def _initialise(self):
        rng = np.random.default_rng(self.seed)
        names = [a[0] for a in self.activations] + ["identity"]
        hp = [a[1] for a in self.activations] + [{}]
        for (W, b), name, params in zip(self.params, names, hp):
            scheme = self.init if self.init != "auto" else _auto_scheme(name)
            W[...] = _init_weight(rng, scheme, W.shape[0], W.shape[1], gain(name, params))
            b[...] = 0

    def __repr__(self):
        acts = sorted({a[0] for a in self.activations})
        return (f"{type(self).__module__}.MLP({list(self.layer_sizes)}, activation="
                f"{acts[0] if len(acts) == 1 else [a[0] for a in self.activations]!r}, "
                f"init={self.init!r}, loss={self.loss!r}, dtype=np.{self.dtype}, seed={self.seed})")

    @property
    def n_params(self) -> int:
        return int(self.theta.size)

    # -- input checks (no allocation when the inputs are already right) --
    def _X(self, X, where):
        if not isinstance(X, np.ndarray):
            X = np.asarray(X)
        if X.dtype != self.dtype:
            if X.dtype.kind not in "fiub":
                raise TypeError(f"{where}: X must be a real array of dtype {self.dtype}; got "
                                f"dtype {X.dtype}.")
            raise TypeError(f"{where}: X has dtype {X.dtype} but the network is {self.dtype}; "
                            f"convert with X.astype(np.{self.dtype}).")
        if X.ndim != 2 or X.shape[1] != self.layer_sizes[0]:
            raise ValueError(f"{where}: X must have shape (rows, {self.layer_sizes[0]}); got "
                             f"{X.shape}.")
        if X.shape[0] == 0:
            raise ValueError(f"{where}: X has no rows.")
        _blas_dim(X.shape[0], "rows", where)
        if not (X.flags.c_contiguous and X.flags.aligned):
            X = np.ascontiguousarray(X)
        if not self._engine.all_finite(X):
            raise ValueError(f"{where}: X contains NaN or inf; clean the data first "
                             "(e.g. X[~np.isfinite(X)] = 0 or drop those rows).")
        return X

    def _y(self, y, rows, where):
        """(labels int64 or None, target array or None)"""
        C = self.layer_sizes[-1]
        if not isinstance(y, np.ndarray):
            y = np.asarray(y)
        if self.loss == "softmax_cross_entropy":
            if y.dtype.kind not in "iu":
                raise TypeError(f"{where}: y must hold integer class indices for "
                                f"softmax_cross_entropy; got dtype {y.dtype}. Convert with "
                                "y.astype(np.int64).")
            if y.shape != (rows,):
                raise ValueError(f"{where}: y must have shape ({rows},), one class index per "
                                 f"row of X; got {y.shape}.")
            if y.dtype.kind == "u" and y.size and int(y.max()) >= C:     # before int64 wraps it
                raise ValueError(f"{where}: label {int(y.max())} is out of range; the network "
                                 f"has {C} classes, so labels must be in [0, {C - 1}].")
            if y.dtype != np.int64 or not y.flags.c_contiguous:
                y = np.ascontiguousarray(y, dtype=np.int64)
            bad = self._engine.bad_label(y, C)
            if bad is not None:
                raise ValueError(f"{where}: label {bad} is out of range; the network has {C} "
                                 f"classes, so labels must be in [0, {C - 1}].")
            return y, None
        if y.dtype.kind not in "fiub":
            raise TypeError(f"{where}: y must be real numbers; got dtype {y.dtype}.")
        given = y.shape
        if y.ndim == 1 and C == 1:
            y = y.reshape(-1, 1)
        if y.shape != (rows, C):
            raise ValueError(f"{where}: y must have shape ({rows}, {C})"
                             + (f" or ({rows},)" if C == 1 else "") + f"; got {given}.")
        if y.dtype != self.dtype or not (y.flags.c_contiguous and y.flags.aligned):
            if y.dtype.kind == "f" and y.dtype != self.dtype:
                raise TypeError(f"{where}: y has dtype {y.dtype} but the network is "
                                f"{self.dtype}; convert with y.astype(np.{self.dtype}).")
            y = np.ascontiguousarray(y, dtype=self.dtype)
        if not self._engine.all_finite(y):
            raise ValueError(f"{where}: y contains NaN or inf.")
        return None, y

    # -- the native steps --
    def compute_gradients(self, X, y) -> float:
        """Forward, loss and backward on (X, y): fills net.grads and net.diagnostics();
        the weights are not changed.  Returns the loss."""
        X = self._X(X, "compute_gradients")
        labels, target = self._y(y, X.shape[0], "compute_gradients")
        self._engine.reserve(X.shape[0])
        return self._engine.step(X, labels, target, True)

    def train_step(self, X, y, optimizer) -> float:
        """One training step in one native call: forward, loss, backward and the
        optimizer's update of every layer.  Allocates nothing once the buffers fit the
        batch size.  Returns the loss (before the update)."""
        if not isinstance(optimizer, Optimizer):
            raise TypeError("train_step: optimizer must be a fastact.optim optimizer "
                            f"(SGD, Adam, AdamW); got {type(optimizer).__name__}.")
        X = self._X(X, "train_step")
        labels, target = self._y(y, X.shape[0], "train_step")
        optimizer._bind(self.theta)
        if X.shape[0] > self._engine.capacity:
            self._engine.reserve(X.shape[0])
        st = optimizer.state
        t = optimizer.t + 1
        loss = self._engine.step(X, labels, target, self.record_diagnostics, optimizer.kind,
                                 optimizer._hyper, st[0] if st else None,
                                 st[1] if len(st) > 1 else None, t)
        optimizer.t = t
        return loss

    # -- inference --
    def forward(self, X) -> np.ndarray:
        """The network's raw outputs (logits for the classification losses), rows x n_out."""
        X = self._X(X, "forward")
        out = np.empty((X.shape[0], self.layer_sizes[-1]), self.dtype)
        self._engine.reserve(min(X.shape[0], max(self._engine.capacity, 1024)))
        self._engine.forward(X, out)
        return out

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities: softmax of the outputs (softmax_cross_entropy) or their
        sigmoid (binary_cross_entropy_with_logits)."""
        if self.loss == "mse":
            raise ValueError("predict_proba: the network is a regressor (loss='mse'); "
                             "use predict or forward.")
        from . import reference
        z = self.forward(X)
        if self.loss == "softmax_cross_entropy":
            return reference.softmax(z)
        return reference.sigmoid(z)

    def predict(self, X) -> np.ndarray:
        """Class indices (softmax_cross_entropy), 0/1 per output (binary: output > 0, i.e.
        probability > 1/2; a vector when n_out is 1), or the outputs (mse; a vector when
        n_out is 1)."""
        z = self.forward(X)
        if self.loss == "softmax_cross_entropy":
            return z.argmax(axis=1)
        if self.loss == "binary_cross_entropy_with_logits":
            z = (z > 0).astype(np.int64)
        return z[:, 0] if z.shape[1] == 1 else z

    def _accuracy(self, out, labels, target):
        if self.loss == "softmax_cross_entropy":
            return int((out.argmax(axis=1) == labels).sum()), out.shape[0]
        if self.loss == "binary_cross_entropy_with_logits":
            return int(((out > 0) == (target > 0.5)).sum()), out.size
        return None

    def evaluate(self, X, y) -> dict:
        """{"loss": mean loss, "accuracy": fraction correct (classification losses)}."""
        X = self._X(X, "evaluate")
        labels, target = self._y(y, X.shape[0], "evaluate")
        self._engine.reserve(min(X.shape[0], max(self._engine.capacity, 1024)))
        res = {"loss": float(self._engine.loss_of(X, labels, target))}
        if self.loss != "mse":
            out = np.empty((X.shape[0], self.layer_sizes[-1]), self.dtype)
            self._engine.forward(X, out)
            good, n = self._accuracy(out, labels, target)
            res["accuracy"] = good / n
        return res

    # -- training loop --
    def fit(self, X, y, epochs=1, batch_size=32, *, optimizer=None, shuffle=True,
            validation_data=None, callbacks=(), verbose=1) -> dict:
        """Train for `epochs` passes over (X, y) in mini-batches (the last may be smaller).

        optimizer: a fastact.optim optimizer (default Adam(lr=1e-3), kept on net.optimizer
        between calls).  validation_data: (X_val, y_val), evaluated after each epoch.
        callbacks: callables cb(net, epoch, logs) run after each epoch; one returning True
        stops training.  verbose: 1 draws a progress bar when stderr is a terminal (nothing
        otherwise), 0 is silent.  Returns the history: lists per epoch of "loss" (mean
        training loss over the epoch's batches, before each update), "accuracy" (for the
        classification losses, of those same forward passes), "val_loss",
        "val_accuracy", "time" (seconds).
        """
        X = self._X(X, "fit")
        labels, target = self._y(y, X.shape[0], "fit")
        for v, nm in ((epochs, "epochs"), (batch_size, "batch_size")):
            if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 1:
                raise ValueError(f"fit: {nm} must be a positive integer; got {v!r}.")
        if optimizer is None:
            optimizer = getattr(self, "optimizer", None)
            if optimizer is None:
                from .optim import Adam
                optimizer = Adam()
        if not isinstance(optimizer, Optimizer):
            raise TypeError("fit: optimizer must be a fastact.optim optimizer; got "
                            f"{type(optimizer).__name__}.")
        self.optimizer = optimizer
        if validation_data is not None:
            try:
                Xv, yv = validation_data
            except (TypeError, ValueError):
                raise ValueError("fit: validation_data must be a pair (X_val, y_val).") from None
            Xv = self._X(Xv, "fit (validation_data)")
            self._y(yv, Xv.shape[0], "fit (validation_data)")
        if callbacks is None:
            callbacks = []
        elif callable(callbacks):
            raise TypeError("fit: callbacks must be a list of callables cb(net, epoch, logs); "
                            "got a single callable: pass callbacks=[cb].")
        else:
            try:
                callbacks = list(callbacks)
            except TypeError:
                raise TypeError("fit: callbacks must be a list of callables cb(net, epoch, "
                                f"logs); got {callbacks!r}.") from None
        for cb in callbacks:
            if not callable(cb):
                raise TypeError(f"fit: callbacks must be callables cb(net, epoch, logs); got "
                                f"{cb!r}.")
        rows = X.shape[0]
        bs = min(int(batch_size), rows)
        self._engine.reserve(bs)
        bar = _Progress(verbose and _isatty(sys.stderr), epochs, -(-rows // bs))
        history = {"loss": [], "time": []}
        classify = self.loss != "mse"
        if classify:
            history["accuracy"] = []
        if validation_data is not None:
            history["val_loss"] = []
            if classify:
                history["val_accuracy"] = []
        Xb = np.empty((bs, X.shape[1]), self.dtype)
        lb = None if labels is None else np.empty(bs, np.int64)
        tb = None if target is None else np.empty((bs, target.shape[1]), self.dtype)
        for epoch in range(int(epochs)):
            t0 = time.perf_counter()
            order = self._rng.permutation(rows) if shuffle else None
            total, good, count = 0.0, 0, 0
            for i, r0 in enumerate(range(0, rows, bs)):
                n = min(bs, rows - r0)
                if order is None:
                    xb = X[r0:r0 + n]
                    yl = None if labels is None else labels[r0:r0 + n]
                    yt = None if target is None else target[r0:r0 + n]
                else:
                    idx = order[r0:r0 + n]
                    xb = np.take(X, idx, axis=0, out=Xb[:n])
                    yl = None if labels is None else np.take(labels, idx, out=lb[:n])
                    yt = None if target is None else np.take(target, idx, axis=0, out=tb[:n])
                loss = self.train_step(xb, yl if yl is not None else yt, optimizer)
                total += loss * n
                if classify:
                    g, c = self._accuracy(self._engine.output(n), yl, yt)
                    good += g
                    count += c
                bar.update(epoch, i + 1, total / (r0 + n))
            logs = {"loss": total / rows}
            if classify:
                logs["accuracy"] = good / count
            if validation_data is not None:
                ev = self.evaluate(Xv, yv)
                logs["val_loss"] = ev["loss"]
                if classify:
                    logs["val_accuracy"] = ev["accuracy"]
            logs["time"] = time.perf_counter() - t0
            for k, v in logs.items():
                history[k].append(v)
            bar.end_epoch(epoch, logs)
            stops = [cb(self, epoch, logs) for cb in callbacks]      # every callback runs
            if any(isinstance(r, (bool, np.bool_)) and r for r in stops):
                break
        return history

    # -- diagnostics --
    def diagnostics(self) -> list:
        """Per dense layer, from the last compute_gradients (or train_step with
        diagnostics=True), computed inside the native backward pass:
        grad_W_norm, grad_b_norm (L2/Frobenius norms of dW and db), grad_z_norm (of the
        gradient at the pre-activation, dz), act_mean and act_std (of the layer's output
        over the batch), saturated_fraction (entries with |f'(z)| < 1e-3 max|f'|) and
        dead_fraction (units whose dz is zero for the whole batch).  The last entry is the
        linear output layer."""
        d = self._engine.diagnostics
        if d is None:
            raise RuntimeError("diagnostics: nothing recorded yet; call compute_gradients(X, y) "
                               "first (or train_step on a network made with diagnostics=True).")
        names = [a[0] for a in self.activations] + ["identity"]
        out = []
        for l, row in enumerate(d):
            entry = {"layer": l, "activation": names[l],
                     "shape": (self.layer_sizes[l], self.layer_sizes[l + 1])}
            entry.update({k: float(v) for k, v in zip(DIAG_COLUMNS, row)})
            out.append(entry)
        return out

    # -- persistence --
    def config(self) -> dict:
        return {"layer_sizes": list(self.layer_sizes),
                "activation": [[a, {k: (v.item() if isinstance(v, np.generic) else v)
                                    for k, v in p.items()}] for a, p in self.activations],
                "init": self.init, "loss": self.loss, "dtype": str(self.dtype),
                "seed": self.seed}

    def save(self, path) -> None:
        """Write the network to `path` (.npz, no pickle): its configuration and weights."""
        meta = {"format": _FORMAT, **self.config()}
        arrays = {"config": np.array(json.dumps(meta)), "theta": self.theta}
        if isinstance(path, (str, os.PathLike)):
            with open(path, "wb") as f:      # np.savez(path) would append ".npz" to the name
                np.savez(f, **arrays)
        else:
            np.savez(path, **arrays)

    @classmethod
    def _from_config(cls, meta, **kwargs):
        acts = [(a, p) for a, p in meta["activation"]]
        return cls(meta["layer_sizes"], acts if acts else "relu", init=meta["init"],
                   loss=meta["loss"], dtype=np.dtype(meta["dtype"]), seed=meta["seed"], **kwargs)

    @classmethod
    def load(cls, path):
        """A network saved by save(), weights bit for bit."""
        with np.load(path, allow_pickle=False) as f:
            if "config" not in f.files or "theta" not in f.files:
                raise ValueError(f"MLP.load: {path!r} is not a fastact MLP file "
                                 "(it lacks 'config' or 'theta').")
            meta = json.loads(str(f["config"]))
            theta = f["theta"]
        if meta.get("format") != _FORMAT:
            raise ValueError(f"MLP.load: {path!r} has format {meta.get('format')!r}; this "
                             f"version reads {_FORMAT!r}.")
        net = cls._from_config(meta)
        if theta.shape != net.theta.shape or theta.dtype != net.theta.dtype:
            raise ValueError(f"MLP.load: {path!r} holds {theta.size} {theta.dtype} parameters; "
                             f"the configuration needs {net.theta.size} {net.theta.dtype}.")
        net.theta[...] = theta
        return net

    def __reduce__(self):
        """copy.deepcopy and pickle: the configuration, the weights and the shuffling state
        (not the gradients, diagnostics or buffers, which the next step recomputes)."""
        return (_rebuild, (type(self), self.config(), self.theta.copy(),
                           self._rng.bit_generator.state, self.record_diagnostics))


def _rebuild(cls, meta, theta, rng_state, diagnostics):
    net = cls._from_config(meta, diagnostics=diagnostics)
    net.theta[...] = theta
    net._rng.bit_generator.state = rng_state
    return net


def _isatty(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


class _Progress:
    """A one-line progress bar on stderr, redrawn at most 10 times a second."""

    def __init__(self, on, epochs, steps):
        self.on, self.epochs, self.steps, self.last = bool(on), epochs, steps, 0.0

    def update(self, epoch, step, loss):
        if not self.on:
            return
        now = time.perf_counter()
        if step != self.steps and now - self.last < 0.1:
            return
        self.last = now
        w = 30
        k = w * step // self.steps
        sys.stderr.write(f"\rEpoch {epoch + 1}/{self.epochs} [{'=' * k}{' ' * (w - k)}] "
                         f"{step}/{self.steps} loss {loss:.4f}")
        sys.stderr.flush()

    def end_epoch(self, epoch, logs):
        if not self.on:
            return
        extra = " ".join(f"{k} {v:.4f}" for k, v in logs.items() if k not in ("loss", "time"))
        sys.stderr.write(f"\rEpoch {epoch + 1}/{self.epochs} loss {logs['loss']:.4f} {extra} "
                         f"({logs['time']:.2f} s)" + " " * 20 + "\n")
        sys.stderr.flush()


class NativeEngine:
    """fastact._nn.Engine behind the interface MLP uses (kernel names -> ids)."""

    def __init__(self, dtype, sizes, knames, params, saves_in, thresholds, loss, theta, grad):
        from . import _nn
        from ._activations import ACT_IDS
        self._e = _nn.Engine(0 if dtype == V.F32 else 1, sizes, [ACT_IDS[k] for k in knames],
                             params, saves_in, thresholds, _nn.LOSSES[loss], theta, grad)
        self.all_finite = _nn.all_finite
        self.bad_label = _nn.bad_label
        self.reserve = self._e.reserve
        self.forward = self._e.forward
        self.loss_of = self._e.loss_of
        self._opt = {"": 0, **_nn.OPTIMIZERS}
        self._step = self._e.step

    @property
    def capacity(self):
        return self._e.capacity

    @property
    def diagnostics(self):
        return self._e.diagnostics

    def output(self, rows):
        return self._e.output(rows)

    def step(self, X, labels, target, diag, kind="", hyper=None, s1=None, s2=None, t=0):
        return self._step(X, labels, target, diag, self._opt[kind], hyper, s1, s2, t)


MLP._engine_class = NativeEngine
