"""Networks: `Sequential` (a stack of layer objects) and `MLP` (the usual stack, built
from layer sizes), both trained by one native call per step.

    net = fastact.MLP([64, 128, 128, 10], "relu", batchnorm="before", dropout=0.1,
                      residual=True, seed=0)
    opt = fastact.optim.SGD(lr=0.1, momentum=0.9)
    loss = net.train_step(X, y, opt)                        # one native call, no allocation
    history = net.fit(X, y, epochs=10, batch_size=64, optimizer=opt)

    net = fastact.Sequential([Dense(128, "relu"), BatchNorm(), Dropout(0.2),
                              Residual([Dense(128), BatchNorm("tanh")]), Dense(10)], n_in=64)

Everything that is not arithmetic lives here and is shared by the native networks
(engine: fastact._nn.Engine) and their NumPy twins (fastact.reference.MLP /
Sequential, engine fastact.reference.NumpyEngine): argument checks, the program of
ops, initialisation, the parameter layout, fit/evaluate/predict, save/load.

Parameter layout: one flat array `theta` holds every parameter in layer order (a
dense layer's W (n_in x n_out, row-major) then b, a BatchNorm's gamma then beta, a
prelu's slopes), each W starting on a multiple of 16 elements (a cache line of float32:
the gap before it, if any, stays zero; `n_params` does not count it; files and pickles
written before without the gaps still load); `net.params[l] = (W, b)` are views of the
dense layers' (writing into them changes the network), `net.grads` the same for the
flat gradient array, `net.state_dict()` every parameter and running statistic by name.
"""

from __future__ import annotations

import numbers

import numpy as np

from .. import _validate as V
from .._plumbing import aligned_zeros
from ..optim import Optimizer
from . import persistence as _persist
from . import training as _training
from ._engine_support import blas_dim as _blas_dim
from .init import INITS, auto_scheme, gain, init_weight
from .layers import BatchNorm, Dense, Dropout, Layer, Residual, check_activation, check_probability
from .program import Builder, Program

__all__ = ["Sequential", "MLP", "LOSSES", "DIAG_COLUMNS", "NativeEngine"]

LOSSES = ("softmax_cross_entropy", "mse", "binary_cross_entropy_with_logits")
# net.diagnostics() per dense layer, in the order the engines fill their rows; the last two
# are reported for layers with BatchNorm
DIAG_COLUMNS = (
    "grad_W_norm",
    "grad_b_norm",
    "grad_z_norm",
    "act_mean",
    "act_std",
    "saturated_fraction",
    "dead_fraction",
    "grad_gamma_norm",
    "grad_beta_norm",
)
_N_PLAIN_DIAG = 7


def _public_module(net):
    """where users import the network's class from: fastact or fastact.reference"""
    mod = type(net).__module__
    return "fastact" if mod == __name__ else mod


def _read_as(given, a):
    """' (NumPy reads the list as float64)' for data given as a list or tuple"""
    return "" if given is None else f" (NumPy reads the {given} as {a.dtype})"


def _convert(name, given, dtype):
    if given is None:
        return f"{name}.astype(np.{dtype})"
    return f"np.asarray({name}, dtype=np.{dtype})"


class Sequential:
    """A network of layer objects, run by one native call per training step.

    The layers only describe the network; it is compiled into a program of native ops
    that one call runs forward, backward and through the optimizer's update, with every
    buffer owned by the network (no allocation per step).

    Modes: net.train() (the default) and net.eval() set net.training, which
    compute_gradients and train_step follow (training: batch statistics, running
    statistics updated, dropout active; evaluation: running statistics, no dropout);
    forward, predict, predict_proba and evaluate always run in evaluation mode, and fit
    always trains in training mode.

    Parameters
    ----------
    layers : list of Layer
        Dense, BatchNorm, Dropout, ActivationLayer and Residual objects, in order.  The
        last layer's output is the network's output (the loss applies its link: softmax,
        sigmoid), so end with a linear Dense.
    n_in : int
        The input width.
    init : str, default "auto"
        The scheme of the dense layers that do not name one: "auto" (the matched scheme
        per layer, see MLP) or one of fastact.nn.INITS.
    loss : {"softmax_cross_entropy", "mse", "binary_cross_entropy_with_logits"}
        The training loss, as for MLP; default "softmax_cross_entropy".
    dtype : {numpy.float32, numpy.float64}, default numpy.float32
        The precision of the parameters and of the arithmetic.
    seed : int, default 0
        Seeds the weights, dropout's masks and fit's shuffling; non-negative.
    diagnostics : bool, default False
        Record net.diagnostics() in train_step too (compute_gradients always does).
    on_nonfinite : {"raise", "warn", "ignore"}, default "raise"
        What a training step does when its loss or a gradient is not finite (NaN or
        inf): "raise" a FloatingPointError that names the step and the first layer where
        it appeared, "warn" a RuntimeWarning; both leave the parameters, the running
        statistics and the optimizer state as they were after the last finite step.
        "ignore" checks nothing (the update goes ahead).  The check is one pass over the
        gradients.

    Attributes
    ----------
    params : list of (ndarray, ndarray)
        (W, b) of every dense layer, views into net.theta.
    grads : list of (ndarray, ndarray)
        Their gradients, views into net.grad_flat.
    theta : ndarray
        Every learned parameter, flat (each weight matrix starting on a multiple of 16
        elements: zeros in the gaps, if any; n_params counts the parameters alone).
    training : bool
        The mode of compute_gradients and train_step.

    Raises
    ------
    TypeError
        If layers is not a list of layers, or dtype is not float32 or float64.
    ValueError
        If there are no layers; n_in, init, loss, seed or on_nonfinite is invalid; the
        widths do not fit (a Residual branch that changes the width); or
        softmax_cross_entropy has fewer than 2 outputs.

    See Also
    --------
    fastact.MLP : The common case, from layer sizes.
    fastact.reference.Sequential : The NumPy twin (the same weights for a seed).

    Examples
    --------
    >>> import numpy as np
    >>> import fastact
    >>> from fastact.nn import BatchNorm, Dense, Dropout, Residual
    >>> net = fastact.Sequential(
    ...     [Dense(16, "gelu"), Residual([Dense(16), BatchNorm("relu")]), Dropout(0.1), Dense(3)],
    ...     n_in=4,
    ... )
    >>> net.n_params
    435
    >>> X = np.random.default_rng(0).normal(size=(8, 4)).astype(np.float32)
    >>> net.forward(X).shape
    (8, 3)
    >>> loss = net.train_step(X, np.arange(8) % 3, fastact.optim.SGD(lr=0.1))
    >>> bool(np.isfinite(loss))
    True
    """

    _engine_class = None  # set by the backend (fastact or fastact.reference)
    _format = "fastact.Sequential/1"

    def __init__(
        self,
        layers,
        n_in,
        *,
        init="auto",
        loss="softmax_cross_entropy",
        dtype=np.float32,
        seed=0,
        diagnostics=False,
        on_nonfinite="raise",
    ):
        try:
            layers = list(layers)
        except TypeError:
            raise TypeError(
                f"{type(self).__name__}: layers must be a list of layer objects; got {layers!r}."
            ) from None
        if not layers:
            raise ValueError(f"{type(self).__name__}: needs at least one layer.")
        for l in layers:
            if not isinstance(l, Layer):
                raise TypeError(
                    f"{type(self).__name__}: {l!r} is not a layer (Dense, "
                    "BatchNorm, Dropout, ActivationLayer, Residual)."
                )
        if isinstance(n_in, bool) or not isinstance(n_in, numbers.Integral) or n_in < 1:
            raise ValueError(
                f"{type(self).__name__}: n_in must be a positive integer; got {n_in!r}."
            )
        self._setup(layers, int(n_in), init, loss, dtype, seed, diagnostics, on_nonfinite)

    # -- construction --
    def _setup(self, layers, n_in, init, loss, dtype, seed, diagnostics, on_nonfinite):
        where = type(self).__name__
        if on_nonfinite not in ("raise", "warn", "ignore"):
            raise ValueError(
                f"{where}: on_nonfinite must be 'raise', 'warn' or 'ignore'; got {on_nonfinite!r}."
            )
        _blas_dim(n_in, "n_in", where)
        if not isinstance(init, str) or init not in INITS:
            raise ValueError(f"{where}: unknown init {init!r}; valid: {', '.join(INITS)}.")
        if not isinstance(loss, str) or loss not in LOSSES:
            raise ValueError(f"{where}: unknown loss {loss!r}; valid: {', '.join(LOSSES)}.")
        try:
            dt = None if dtype is None else np.dtype(dtype)
        except TypeError:
            dt = None
        if dt is None or dt not in (V.F32, V.F64):  # (np.dtype("float64") == None is True)
            shown = repr(dtype) if dt is None else str(dt)
            raise TypeError(f"{where}: dtype must be float32 or float64; got {shown}.")
        if (
            isinstance(seed, bool)
            or not isinstance(seed, numbers.Integral)
            or not 0 <= seed < 2**63
        ):
            raise ValueError(f"{where}: seed must be an integer in [0, 2**63); got {seed!r}.")
        b = Builder()
        h = b.tensor(n_in)
        ctx = {"init": init}
        for i, layer in enumerate(layers):
            h = layer._build(b, h, str(i), ctx)
        b.settle_pending()
        n_out = b.widths[h]
        if loss == "softmax_cross_entropy" and n_out < 2:
            raise ValueError(
                f"{where}: softmax_cross_entropy needs at least 2 outputs (classes); "
                "for one output use loss='binary_cross_entropy_with_logits'."
            )
        if b.alias[h] >= 0 and b.ops[-1].kind != "bias_act":  # pragma: no cover
            raise AssertionError("the output tensor must be its own buffer")
        self.layers = layers
        self.n_in, self.n_out = n_in, n_out
        self.init, self.loss, self.dtype, self.seed = init, loss, dt, int(seed)
        self.record_diagnostics = bool(diagnostics)
        self.on_nonfinite = on_nonfinite
        self.training = True
        self._counter = 0  # dropout's step number
        self._rng = np.random.default_rng((self.seed, 1))  # shuffling in fit
        prog = Program(b, h)
        self._program = prog
        self.theta = aligned_zeros(prog.n_theta, dt)
        self.grad_flat = aligned_zeros(prog.n_theta, dt)
        self.state = aligned_zeros(prog.n_state, dt)
        self._views = {}
        for p in prog.params:
            self._views[p.name] = (
                self.theta[p.offset : p.offset + p.size].reshape(p.shape),
                self.grad_flat[p.offset : p.offset + p.size].reshape(p.shape),
            )
        for p in prog.state:
            self._views[p.name] = (self.state[p.offset : p.offset + p.size], None)
            self._views[p.name][0][...] = p.init[1]
        self.params = [
            (self._views[W.name][0], self._views[bb.name][0]) for W, bb in prog.dense_params
        ]
        self.grads = [
            (self._views[W.name][1], self._views[bb.name][1]) for W, bb in prog.dense_params
        ]
        self._initialise()
        self._engine = self._engine_class(dt, prog, loss, self.theta, self.grad_flat, self.state)

    def _initialise(self):
        """Weights from the seed (dense layers in order, the same draws in both backends),
        biases and beta 0, gamma 1, prelu slopes their initial value; running statistics
        0 and 1."""
        rng = np.random.default_rng(self.seed)
        for p in self._program.params:
            view = self._views[p.name][0]
            if p.init[0] == "fill":
                view[...] = p.init[1]
                continue
            _, scheme, (act, params) = p.init
            if scheme == "auto":
                scheme = auto_scheme(act)
            view[...] = init_weight(rng, scheme, p.shape[0], p.shape[1], gain(act, params))
        for p in self._program.state:
            self._views[p.name][0][...] = p.init[1]

    def __repr__(self):
        inner = ",\n    ".join(repr(l) for l in self.layers)
        return (
            f"{_public_module(self)}.Sequential([\n    {inner}], n_in={self.n_in}, "
            f"init={self.init!r}, loss={self.loss!r}, dtype=np.{self.dtype}, "
            f"seed={self.seed})"
        )

    @property
    def n_params(self) -> int:
        """The number of learned parameters.

        Weights, biases, BatchNorm's gamma and beta, prelu slopes; not the running
        statistics.
        """
        return int(self._program.n_learned)

    def state_dict(self) -> dict:
        """Return every parameter and running statistic by name, as views.

        Writing into them changes the network.

        Returns
        -------
        dict
            "<layer>.W", "<layer>.b", "<layer>.gamma", "<layer>.beta",
            "<layer>.running_mean", "<layer>.running_var", "<layer>.slope" -> ndarray,
            with <layer> the layer's index in net.layers (and "<i>.<j>" inside a
            Residual).

        Examples
        --------
        >>> import fastact
        >>> net = fastact.MLP([3, 4, 2])
        >>> {k: v.shape for k, v in net.state_dict().items()}
        {'0.W': (3, 4), '0.b': (4,), '1.W': (4, 2), '1.b': (2,)}
        """
        return {k: v[0] for k, v in self._views.items()}

    def grad_dict(self) -> dict:
        """Return the gradient of every parameter by name.

        Returns
        -------
        dict
            The names of state_dict (the running statistics aside) -> views into
            net.grad_flat, filled by compute_gradients and train_step.
        """
        return {k: v[1] for k, v in self._views.items() if v[1] is not None}

    @property
    def flush_subnormals(self) -> bool:
        """Whether the engine flushes subnormal floats to zero (default True).

        True: the native engine runs each call (train_step, fit's epochs,
        compute_gradients, forward, predict, evaluate) with the CPU's flush-to-zero and
        denormals-are-zero modes on (x86-64 MXCSR FTZ and DAZ, on the calling thread,
        the caller's mode put back after the call): a value that would be subnormal
        (``|x|`` below 1.2e-38 in float32, 2.2e-308 in float64) counts as 0.  Subnormals
        take the CPU's slow path (~100 cycles an operation), in the activations and in
        the BLAS: gelu's tail behind residual connections made an 8 x 256 step 4.8x
        slower.  False: IEEE subnormals throughout, as NumPy computes.  The NumPy twin
        (fastact.reference) always computes with subnormals; results differ from it
        only where a value falls below those limits.  Saved and copied with the
        network; does nothing elsewhere than x86-64.

        Examples
        --------
        >>> import fastact
        >>> net = fastact.MLP([4, 8, 3])
        >>> net.flush_subnormals
        True
        >>> net.flush_subnormals = False
        """
        return self._engine.flush_subnormals

    @flush_subnormals.setter
    def flush_subnormals(self, on):
        if not isinstance(on, (bool, np.bool_)):
            raise TypeError(f"flush_subnormals must be True or False; got {on!r}.")
        self._engine.flush_subnormals = bool(on)

    # -- modes --
    def train(self, mode=True):
        """Set training mode (batch statistics, dropout) for compute_gradients and train_step.

        Parameters
        ----------
        mode : bool, default True
            True for training, False for evaluation (as eval()).

        Returns
        -------
        Sequential
            The network itself.

        Raises
        ------
        TypeError
            If mode is not a bool.
        """
        if not isinstance(mode, (bool, np.bool_)):
            raise TypeError(f"train: mode must be True or False; got {mode!r}.")
        self.training = bool(mode)
        return self

    def eval(self):
        """Set evaluation mode (running statistics, no dropout).

        It applies to compute_gradients and train_step; forward, predict and evaluate
        always run in evaluation mode.

        Returns
        -------
        Sequential
            The network itself.
        """
        self.training = False
        return self

    def _X(self, X, where, blocked=False):
        """X checked and made C-contiguous (blocked: inference, which runs in blocks of
        at most `capacity` rows, so any row count fits BLAS's int)"""
        given = None if isinstance(X, np.ndarray) else type(X).__name__
        if given is not None:
            X = np.asarray(X)
        if X.dtype != self.dtype:
            if X.dtype.kind not in "fiub":
                raise TypeError(
                    f"{where}: X must be a real array of dtype {self.dtype}; got dtype {X.dtype}."
                )
            raise TypeError(
                f"{where}: X has dtype {X.dtype}{_read_as(given, X)} but the network is "
                f"{self.dtype}; convert with {_convert('X', given, self.dtype)}."
            )
        if X.ndim != 2 or X.shape[1] != self.n_in:
            raise ValueError(f"{where}: X must have shape (rows, {self.n_in}); got {X.shape}.")
        if X.shape[0] == 0:
            raise ValueError(f"{where}: X has no rows.")
        if not blocked:
            _blas_dim(X.shape[0], "rows", where)
        if not (X.flags.c_contiguous and X.flags.aligned):
            X = V.contiguous(X, "C")  # (np.ascontiguousarray keeps a misaligned array)
        if not self._engine.all_finite(X):
            raise ValueError(
                f"{where}: X contains NaN or inf; clean the data first "
                "(e.g. X[~np.isfinite(X)] = 0 or drop those rows)."
            )
        return X

    def _y(self, y, rows, where):
        """(labels int64 or None, target array or None)"""
        C = self.n_out
        y_type = None if isinstance(y, np.ndarray) else type(y).__name__
        if y_type is not None:
            y = np.asarray(y)
        if self.loss == "softmax_cross_entropy":
            if y.dtype.kind not in "iu":
                raise TypeError(
                    f"{where}: y must hold integer class indices for "
                    f"softmax_cross_entropy; got dtype {y.dtype}. Convert with "
                    "y.astype(np.int64)."
                )
            if y.shape != (rows,):
                raise ValueError(
                    f"{where}: y must have shape ({rows},), one class index per "
                    f"row of X; got {y.shape}."
                )
            if y.dtype.kind == "u" and y.size and int(y.max()) >= C:  # before int64 wraps it
                raise ValueError(
                    f"{where}: label {int(y.max())} is out of range; the network "
                    f"has {C} classes, so labels must be in [0, {C - 1}]."
                )
            if y.dtype != np.int64 or not (y.flags.c_contiguous and y.flags.aligned):
                y = V.contiguous(y.astype(np.int64, copy=False), "C")
            bad = self._engine.bad_label(y, C)
            if bad is not None:
                raise ValueError(
                    f"{where}: label {bad} is out of range; the network has {C} "
                    f"classes, so labels must be in [0, {C - 1}]."
                )
            return y, None
        if y.dtype.kind not in "fiub":
            raise TypeError(f"{where}: y must be real numbers; got dtype {y.dtype}.")
        given = y.shape
        if y.ndim == 1 and C == 1:
            y = y.reshape(-1, 1)
        if y.shape != (rows, C):
            raise ValueError(
                f"{where}: y must have shape ({rows}, {C})"
                + (f" or ({rows},)" if C == 1 else "")
                + f"; got {given}."
            )
        if y.dtype != self.dtype or not (y.flags.c_contiguous and y.flags.aligned):
            if y.dtype.kind == "f" and y.dtype != self.dtype:
                raise TypeError(
                    f"{where}: y has dtype {y.dtype}{_read_as(y_type, y)} but the network is "
                    f"{self.dtype}; convert with {_convert('y', y_type, self.dtype)}."
                )
            y = V.contiguous(y.astype(self.dtype, copy=False), "C")
        if not self._engine.all_finite(y):
            raise ValueError(f"{where}: y contains NaN or inf.")
        return None, y

    # -- the native steps --
    # -- the native steps --
    def _check_batch(self, rows, where):
        if self.training and self._program.has_batchnorm and rows < 2:
            hint = (
                "use batch_size >= 2 and at least 2 rows: fit always trains"
                if where == "fit"
                else "use a larger batch, or net.eval() to use the running statistics"
            )
            raise ValueError(
                f"{where}: BatchNorm in training mode needs at least 2 rows per "
                f"batch to estimate the batch variance; got {rows} ({hint})."
            )

    def _next_counter(self):
        c = self._counter
        if self.training:
            self._counter += 1
        return c

    def compute_gradients(self, X, y) -> float:
        """Run forward, loss and backward on (X, y) in the network's mode (net.training).

        Fills net.grads and net.diagnostics(); the weights are not changed (in training
        mode the running statistics are updated, as a training forward does).

        Parameters
        ----------
        X : ndarray of shape (rows, n_in)
            The inputs, of the network's dtype, finite.
        y : array_like
            Class indices of shape (rows,) for softmax_cross_entropy; targets of shape
            (rows, n_out) (or (rows,) when n_out is 1) for mse and
            binary_cross_entropy_with_logits.

        Returns
        -------
        float
            The loss.

        Raises
        ------
        TypeError
            If X or y has a wrong dtype.
        ValueError
            If X or y has a wrong shape, contains NaN or inf, or a label is out of
            range; or BatchNorm trains on fewer than 2 rows.
        FloatingPointError
            If the loss or a gradient is not finite (with on_nonfinite="raise").
        """
        X = self._X(X, "compute_gradients")
        labels, target = self._y(y, X.shape[0], "compute_gradients")
        self._check_batch(X.shape[0], "compute_gradients")
        self._engine.reserve(X.shape[0])
        counter = self._counter
        check = self.on_nonfinite != "ignore"
        loss = self._engine.step(
            X,
            labels,
            target,
            True,
            training=self.training,
            seed=self.seed,
            counter=counter,
            check=check,
        )
        self._next_counter()  # (after the step: a call the engine refused changes nothing)
        if check and not self._engine.last_ok:
            self._nonfinite(X, loss, counter, "compute_gradients")
        return loss

    def train_step(self, X, y, optimizer) -> float:
        """Run one training step in one native call.

        Forward, loss, backward and the optimizer's update of every parameter, in the
        network's mode (net.training).  Allocates nothing once the buffers fit the batch
        size.

        Parameters
        ----------
        X : ndarray of shape (rows, n_in)
            The inputs, of the network's dtype.
        y : array_like
            The labels or targets, as for compute_gradients.
        optimizer : fastact.optim.Optimizer
            SGD, Adam or AdamW; bound to this network on first use.

        Returns
        -------
        float
            The loss, before the update.

        Raises
        ------
        TypeError
            If optimizer is not a fastact.optim optimizer, or X or y has a wrong dtype.
        ValueError
            As compute_gradients.
        FloatingPointError
            If the loss or a gradient is not finite (with on_nonfinite="raise"); the
            update is skipped.

        Examples
        --------
        >>> import numpy as np
        >>> import fastact
        >>> X = np.array([[0.0, 1.0], [1.0, 0.0]], dtype=np.float32)
        >>> net = fastact.MLP([2, 8, 2], "tanh", seed=1)
        >>> opt = fastact.optim.SGD(lr=0.5)
        >>> losses = [net.train_step(X, np.array([0, 1]), opt) for _ in range(20)]
        >>> losses[-1] < losses[0]
        True
        """
        if not isinstance(optimizer, Optimizer):
            raise TypeError(
                "train_step: optimizer must be a fastact.optim optimizer "
                f"(SGD, Adam, AdamW); got {type(optimizer).__name__}."
            )
        engine = self._engine
        training = self.training
        counter = self._counter
        check = self.on_nonfinite != "ignore"
        owner = optimizer._owner
        loss = None
        if owner is not None and owner() is self.theta:  # (bound to this network)
            # the usual batch: checked and stepped in one native call (None: not usual)
            st = optimizer.state
            t = optimizer.t + 1
            loss = engine.try_step(
                X,
                y,
                self.record_diagnostics,
                optimizer.kind,
                optimizer._hyper,
                st[0] if st else None,
                st[1] if len(st) > 1 else None,
                t,
                training,
                self.seed,
                counter,
                check,
            )
        if loss is None:  # the full checks: conversions, errors, larger buffers
            X = self._X(X, "train_step")
            rows = X.shape[0]
            labels, target = self._y(y, rows, "train_step")
            if training and rows < 2 and self._program.has_batchnorm:
                self._check_batch(rows, "train_step")
            optimizer._bind(self.theta, self._program.layout)
            if rows > engine.capacity:
                engine.reserve(rows)
            st = optimizer.state
            t = optimizer.t + 1
            loss = engine.step(
                X,
                labels,
                target,
                self.record_diagnostics,
                optimizer.kind,
                optimizer._hyper,
                st[0] if st else None,
                st[1] if len(st) > 1 else None,
                t,
                training,
                self.seed,
                counter,
                check,
            )
        if training:  # (after the step: a call the engine refused changes nothing)
            self._counter = counter + 1
        if check and not engine.last_ok:
            self._nonfinite(X, loss, counter, "train_step")  # the update was skipped
            return loss
        optimizer.__dict__["t"] = t  # (past Optimizer.__setattr__'s check: 1 us a step)
        return loss

    def _nonfinite(self, X, loss, counter, where, stacklevel=3):
        """Raise (or warn about) a non-finite loss or gradient, naming the first layer
        where it appeared: the first whose output is not finite (the forward pass rerun by
        the NumPy twin, same dropout masks), else the first whose parameters' gradient is
        not finite."""
        from ..reference import NumpyEngine

        layer = None
        twin = NumpyEngine(
            self.dtype,
            self._program,
            self.loss,
            self.theta.copy(),
            self.grad_flat.copy(),
            self.state.copy(),
        )
        with np.errstate(all="ignore"):
            T, _ = twin._forward(X, self.training, self.seed, counter)
        for o in self._program.ops:
            if not np.all(np.isfinite(T[o.out])):
                layer, what = o.path, "output"
                break
        if layer is None:
            for p in self._program.params:
                if not np.all(np.isfinite(self._views[p.name][1])):
                    layer, what = p.layer, f"gradient of {p.name}"
                    break
        where_txt = (
            f"first in layer {layer} ({type(self._layer_at(layer)).__name__}, its {what})"
            if layer is not None
            else "in the loss"
        )
        msg = (
            f"{where}: the loss ({loss!r}) or a gradient is not finite at training step "
            f"{counter}, {where_txt}; the parameters, the running statistics and the "
            "optimizer were left as they were after the last finite step.  Lower the "
            "learning rate, clip gradients "
            "(max_grad_norm), or check the data; on_nonfinite='warn' or 'ignore' changes "
            "this."
        )
        if self.on_nonfinite == "raise":
            raise FloatingPointError(msg)
        import warnings

        warnings.warn(msg, RuntimeWarning, stacklevel=stacklevel)  # the user's call

    def _layer_at(self, path):
        layers, obj = self.layers, None
        for part in str(path).split("."):
            obj = layers[int(part)]
            layers = getattr(obj, "layers", [])
        return obj

    # -- inference (evaluation mode) --
    def forward(self, X) -> np.ndarray:
        """Return the network's raw outputs, in evaluation mode.

        Parameters
        ----------
        X : ndarray of shape (rows, n_in)
            The inputs, of the network's dtype.

        Returns
        -------
        ndarray of shape (rows, n_out)
            The outputs: logits for the classification losses.
        """
        return self._forward(X, "forward")

    def _forward(self, X, where):
        X = self._X(X, where, blocked=True)
        out = np.empty((X.shape[0], self.n_out), self.dtype)
        self._engine.reserve(min(X.shape[0], max(self._engine.capacity, 1024)))
        self._engine.forward(X, out)
        return out

    def predict_proba(self, X) -> np.ndarray:
        """Return the class probabilities of X.

        Parameters
        ----------
        X : ndarray of shape (rows, n_in)
            The inputs, of the network's dtype.

        Returns
        -------
        ndarray of shape (rows, n_out)
            The softmax of the outputs (softmax_cross_entropy) or their sigmoid
            (binary_cross_entropy_with_logits).

        Raises
        ------
        ValueError
            If the network is a regressor (loss="mse").
        """
        if self.loss == "mse":
            raise ValueError(
                "predict_proba: the network is a regressor (loss='mse'); use predict or forward."
            )
        from .. import reference

        z = self._forward(X, "predict_proba")
        if self.loss == "softmax_cross_entropy":
            return reference.softmax(z)
        return reference.sigmoid(z)

    def predict(self, X) -> np.ndarray:
        """Return the predictions for X.

        Parameters
        ----------
        X : ndarray of shape (rows, n_in)
            The inputs, of the network's dtype.

        Returns
        -------
        ndarray
            Class indices (softmax_cross_entropy); 0/1 per output (binary: output > 0,
            i.e. probability > 1/2); or the outputs (mse).  A vector when n_out is 1.
        """
        z = self._forward(X, "predict")
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
        """Return the mean loss (and accuracy) on (X, y), in evaluation mode.

        Parameters
        ----------
        X : ndarray of shape (rows, n_in)
            The inputs, of the network's dtype.
        y : array_like
            The labels or targets, as for compute_gradients.

        Returns
        -------
        dict
            {"loss": the mean loss, "accuracy": the fraction correct (classification
            losses only)}.
        """
        X = self._X(X, "evaluate", blocked=True)
        labels, target = self._y(y, X.shape[0], "evaluate")
        self._engine.reserve(min(X.shape[0], max(self._engine.capacity, 1024)))
        res = {"loss": float(self._engine.loss_of(X, labels, target))}
        if self.loss != "mse":
            out = np.empty((X.shape[0], self.n_out), self.dtype)
            self._engine.forward(X, out)
            good, n = self._accuracy(out, labels, target)
            res["accuracy"] = good / n
        return res

    fit = _training.fit

    # -- diagnostics --
    def diagnostics(self) -> list:
        """Return the gradient diagnostics per dense layer, from the last backward pass.

        They come from the last compute_gradients (or train_step with
        diagnostics=True), computed inside the native backward pass.

        Returns
        -------
        list of dict
            One per dense layer (the last is the linear output layer): "layer",
            "activation", "shape", grad_W_norm, grad_b_norm (L2/Frobenius norms of dW
            and db), grad_z_norm (of the gradient at the layer's pre-activation: the
            dense output, or the BatchNorm output when BatchNorm comes before the
            activation), act_mean and act_std (of the activation's output over the
            batch), saturated_fraction (entries with ``|f'(z)| < 1e-3 max|f'|``) and
            dead_fraction (units whose gradient at the pre-activation is zero for the
            whole batch); with BatchNorm also grad_gamma_norm and grad_beta_norm.

        Raises
        ------
        RuntimeError
            If nothing was recorded yet.

        Examples
        --------
        >>> import numpy as np
        >>> import fastact
        >>> net = fastact.MLP([4, 8, 8, 3], "sigmoid")
        >>> X = np.ones((5, 4), dtype=np.float32)
        >>> loss = net.compute_gradients(X, np.array([0, 1, 2, 0, 1]))
        >>> [d["activation"] for d in net.diagnostics()]
        ['sigmoid', 'sigmoid', 'identity']
        """
        d = self._engine.diagnostics
        if d is None:
            raise RuntimeError(
                "diagnostics: nothing recorded yet; call compute_gradients(X, y) "
                "first (or train_step on a network made with diagnostics=True)."
            )
        out = []
        for l, (row, info) in enumerate(zip(d, self._program.diag_rows)):
            entry = {"layer": l, "activation": info["activation"], "shape": info["shape"]}
            cols = DIAG_COLUMNS if info["batchnorm"] else DIAG_COLUMNS[:_N_PLAIN_DIAG]
            entry.update({k: float(v) for k, v in zip(cols, row)})
            out.append(entry)
        return out

    # -- persistence --
    def config(self) -> dict:
        """Return the network's configuration: what rebuilds it without its parameters.

        Returns
        -------
        dict
            The constructor's arguments as JSON-able values (layers as their configs).
        """
        return {
            "layers": [l.config() for l in self.layers],
            "n_in": self.n_in,
            "init": self.init,
            "loss": self.loss,
            "dtype": str(self.dtype),
            "seed": self.seed,
            "on_nonfinite": self.on_nonfinite,
            "diagnostics": self.record_diagnostics,
            "flush_subnormals": self.flush_subnormals,
        }

    @classmethod
    def _from_config(cls, meta, **kwargs):
        from .layers import layer_from_config

        kwargs.setdefault("diagnostics", bool(meta.get("diagnostics", False)))

        return cls(
            [layer_from_config(c) for c in meta["layers"]],
            meta["n_in"],
            init=meta["init"],
            loss=meta["loss"],
            dtype=np.dtype(meta["dtype"]),
            seed=meta["seed"],
            on_nonfinite=meta.get("on_nonfinite", "raise"),
            **kwargs,
        )

    save = _persist.save
    load = classmethod(_persist.load)

    def __reduce__(self):
        """copy.deepcopy and pickle: the configuration, the parameters, the running
        statistics, the mode, dropout's step counter and the shuffling state (not the
        gradients, diagnostics or buffers, which the next step recomputes)."""
        return (
            _persist.rebuild,
            (
                type(self),
                self.config(),
                self.theta.copy(),
                self.state.copy(),
                self._rng.bit_generator.state,
                self.record_diagnostics,
                self._counter,
                self.training,
            ),
        )


def _plain(v):
    """v with NumPy scalars as Python's, lists and tuples as lists (for JSON)"""
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    return v


def _per_layer(value, n_hidden, name, check):
    """One value per hidden layer from a network-wide value or a list."""
    if isinstance(value, list):
        if len(value) != n_hidden:
            raise ValueError(
                f"MLP: {name} is a list of {len(value)} but the network has "
                f"{n_hidden} hidden layer(s); give one per hidden layer or a "
                "single value."
            )
        return [check(v, f"{name}[{i}]") for i, v in enumerate(value)], True
    return [check(value, name)] * n_hidden, False


def _check_bn(v, what):
    if v not in (None, "before", "after"):
        raise ValueError(
            f"MLP: {what} must be None, 'before' or 'after' (relative to "
            f"the activation); got {v!r}."
        )
    return v


def _check_dropout(v, what):
    check_probability(v, "MLP", what)
    return float(v)


def _check_residual(v, what):
    if not isinstance(v, (bool, np.bool_)):
        raise ValueError(f"MLP: {what} must be True or False; got {v!r}.")
    return bool(v)


class MLP(Sequential):
    """A multi-layer perceptron trained by one native call per step.

    Every hidden layer is dense + activation (with optional BatchNorm, dropout and a
    residual connection); the last layer is dense and linear (the loss applies its link:
    softmax, sigmoid).  Biases start at zero; the same seed gives the same weights in
    fastact.MLP and fastact.reference.MLP.  Modes (net.train(), net.eval()) and the rest
    of the interface are Sequential's.

    Parameters
    ----------
    layer_sizes : sequence of int
        [n_in, hidden..., n_out], positive.
    activation : str, Activation, (str, dict) or list, default "relu"
        One for all hidden layers, or a list with one per hidden layer: a name of
        fastact.nn.MLP_ACTIVATIONS, an ACTIVATIONS entry, (name, {parameters}) such as
        ("leaky_relu", {"negative_slope": 0.2}), or "prelu" / ("prelu", {"per_unit":
        True}) for a learnable slope (one per layer or per unit, starting at 0.25).
    init : str, default "auto"
        "auto": the matched scheme per layer (he_normal for ReLU-like, xavier_uniform
        for sigmoid/tanh-like and the output layer, lecun_normal for selu); or one of
        "standard", "xavier_uniform", "xavier_normal", "he_uniform", "he_normal",
        "lecun_normal", "orthogonal" for every layer.  xavier, he and orthogonal
        multiply by the activation's gain (fastact.nn.gain; 1 for the output layer).
    loss : {"softmax_cross_entropy", "mse", "binary_cross_entropy_with_logits"}
        The training loss, a mean over the batch (mse and binary cross-entropy: over all
        elements, as PyTorch's reduction="mean"); y holds class indices for
        softmax_cross_entropy, else rows x n_out values (or rows values when n_out is 1).
        Default "softmax_cross_entropy".
    dtype : {numpy.float32, numpy.float64}, default numpy.float32
        The precision of the parameters and of the arithmetic.
    seed : int, default 0
        Seeds the weights, dropout's masks and fit's shuffling; non-negative.
    diagnostics : bool, default False
        Record net.diagnostics() in train_step too (compute_gradients always does).
    batchnorm : {None, "before", "after"} or list, default None
        "before": dense -> BatchNorm -> activation (as Ioffe & Szegedy place it);
        "after": dense -> activation -> BatchNorm; for every hidden layer, or a list.
    dropout : float or list of float, default 0.0
        The probability of dropping a hidden unit, after each hidden activation (and
        BatchNorm), network-wide or a list; 0 = none.
    residual : bool or list of bool, default False
        True: h + f(h) over every hidden layer but the first whose input and output
        widths match (f = dense [+ BatchNorm] + activation [+ dropout]); a list: one per
        hidden layer (True where the widths differ is an error).
    on_nonfinite : {"raise", "warn", "ignore"}, default "raise"
        What a training step does when its loss or a gradient is not finite; see
        Sequential.

    Raises
    ------
    TypeError
        If layer_sizes is not a sequence, or dtype is not float32 or float64.
    ValueError
        If a size, activation, init, loss, seed or option is invalid, or a list option
        does not have one entry per hidden layer.

    See Also
    --------
    fastact.Sequential : A network of any layer objects.
    fastact.sklearn.MLPClassifier : The scikit-learn estimator around it.
    fastact.reference.MLP : The NumPy twin.

    Examples
    --------
    >>> import numpy as np
    >>> import fastact
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(200, 2)).astype(np.float32)
    >>> y = (X[:, 0] * X[:, 1] > 0).astype(np.int64)      # XOR of the signs
    >>> net = fastact.MLP([2, 32, 32, 2], "gelu", seed=0)
    >>> history = net.fit(X, y, epochs=60, batch_size=32, verbose=0,
    ...                   optimizer=fastact.optim.Adam(lr=0.01))
    >>> history["loss"][-1] < history["loss"][0]
    True
    >>> net.evaluate(X, y)["accuracy"] > 0.9
    True
    >>> net.predict(X[:4]).shape
    (4,)
    """

    _format = "fastact.MLP/2"

    def __init__(
        self,
        layer_sizes,
        activation="relu",
        *,
        init="auto",
        loss="softmax_cross_entropy",
        dtype=np.float32,
        seed=0,
        diagnostics=False,
        batchnorm=None,
        dropout=0.0,
        residual=False,
        on_nonfinite="raise",
    ):
        sizes = self._check_sizes(layer_sizes)
        n_hidden = len(sizes) - 2
        if isinstance(activation, list):
            if len(activation) != n_hidden:
                raise ValueError(
                    f"MLP: activation is a list of {len(activation)} but the network has "
                    f"{n_hidden} hidden layer(s); give one per hidden layer or a single name."
                )
            acts = [check_activation(a, "MLP") for a in activation]
        else:
            acts = [check_activation(activation, "MLP")] * n_hidden
        bns, _ = _per_layer(batchnorm, n_hidden, "batchnorm", _check_bn)
        drops, _ = _per_layer(dropout, n_hidden, "dropout", _check_dropout)
        ress, res_listed = _per_layer(residual, n_hidden, "residual", _check_residual)
        layers = []
        for i in range(n_hidden):
            n = sizes[i + 1]
            name, params = acts[i][0], acts[i][1]
            act = (name, params)
            if bns[i] == "before":
                block = [Dense(n, None, init_activation=act), BatchNorm(act)]
            else:
                block = [Dense(n, act)]
                if bns[i] == "after":
                    block.append(BatchNorm())
            if drops[i] > 0:
                block.append(Dropout(drops[i]))
            use_res = ress[i] and (res_listed or i > 0)
            if use_res and sizes[i] != n:
                if res_listed:
                    raise ValueError(
                        f"MLP: residual[{i}] is True but hidden layer {i} maps "
                        f"width {sizes[i]} to {n}; h + f(h) needs equal widths."
                    )
                use_res = False
            layers.extend([Residual(block)] if use_res else block)
        layers.append(Dense(sizes[-1], None))
        self.layer_sizes = tuple(sizes)
        self.activations = [(a[0], a[1]) for a in acts]
        self.batchnorm, self.dropout = bns, drops
        self.residual = [isinstance(l, Residual) for l in self._hidden_blocks(layers)]
        self._options = {  # as plain Python values (config() is JSON)
            "batchnorm": _plain(batchnorm),
            "dropout": _plain(dropout),
            "residual": _plain(residual),
        }
        self._setup(layers, sizes[0], init, loss, dtype, seed, diagnostics, on_nonfinite)

    @staticmethod
    def _hidden_blocks(layers):
        """the first layer of each hidden block (a Dense or a Residual)"""
        return [l for l in layers[:-1] if isinstance(l, (Dense, Residual))]

    @staticmethod
    def _check_sizes(layer_sizes):
        try:
            sizes = list(layer_sizes)
        except TypeError:
            raise TypeError(
                f"MLP: layer_sizes must be a list of ints [n_in, hidden..., n_out]; "
                f"got {layer_sizes!r}."
            ) from None
        if len(sizes) < 2:
            raise ValueError(f"MLP: layer_sizes needs at least [n_in, n_out]; got {sizes}.")
        for s in sizes:
            if isinstance(s, bool) or not isinstance(s, numbers.Integral) or s < 1:
                raise ValueError(f"MLP: layer sizes must be positive integers; got {sizes}.")
            _blas_dim(int(s), "a layer size", "MLP")
        return [int(s) for s in sizes]

    def __repr__(self):
        """The constructor call that makes this network (without its parameters)."""
        cfg = self.config()
        acts = [a if p else n for n, p in cfg["activation"] for a in [(n, p)]]
        act = acts[0] if acts and all(a == acts[0] for a in acts) else acts  # ([]: no hidden)
        extra = "".join(
            f", {k}={cfg[k]!r}"
            for k, default in (
                ("batchnorm", None),
                ("dropout", 0.0),
                ("residual", False),
                ("diagnostics", False),
                ("on_nonfinite", "raise"),
            )
            if cfg[k] != default
        )
        return (
            f"{_public_module(self)}.MLP({list(self.layer_sizes)}, activation={act!r}, "
            f"init={self.init!r}, loss={self.loss!r}, dtype=np.{self.dtype}, "
            f"seed={self.seed}{extra})"
        )

    def config(self) -> dict:
        """Return the network's configuration: what rebuilds it without its parameters.

        Returns
        -------
        dict
            The constructor's arguments as JSON-able values.

        Examples
        --------
        >>> import fastact
        >>> fastact.MLP([3, 4, 2], "tanh").config()["activation"]
        [['tanh', {}]]
        """
        return {
            "layer_sizes": list(self.layer_sizes),
            "activation": [
                [a, {k: (v.item() if isinstance(v, np.generic) else v) for k, v in p.items()}]
                for a, p in self.activations
            ],
            "init": self.init,
            "loss": self.loss,
            "dtype": str(self.dtype),
            "seed": self.seed,
            **{k: v for k, v in self._options.items()},
            "on_nonfinite": self.on_nonfinite,
            "diagnostics": self.record_diagnostics,
            "flush_subnormals": self.flush_subnormals,
        }

    @classmethod
    def _from_config(cls, meta, **kwargs):
        kwargs.setdefault("diagnostics", bool(meta.get("diagnostics", False)))
        acts = [(a, p) for a, p in meta["activation"]]
        opts = {
            k: meta[k] for k in ("batchnorm", "dropout", "residual", "on_nonfinite") if k in meta
        }
        return cls(
            meta["layer_sizes"],
            acts if acts else "relu",
            init=meta["init"],
            loss=meta["loss"],
            dtype=np.dtype(meta["dtype"]),
            seed=meta["seed"],
            **opts,
            **kwargs,
        )


class NativeEngine:
    """Run a network's program natively: fastact._nn.Engine behind the networks' interface.

    Sequential and MLP make one from their compiled program and flat arrays; it is not
    meant to be made by hand.  fastact.reference.NumpyEngine is its NumPy twin.

    Parameters
    ----------
    dtype : numpy.dtype
        float32 or float64.
    program : fastact.nn.program.Program
        The compiled network.
    loss : str
        One of fastact.nn.LOSSES.
    theta, grad, state : ndarray
        The network's flat parameters, gradients and running statistics (shared).
    """

    def __init__(self, dtype, program, loss, theta, grad, state):
        from .. import _nn
        from .._activations import ACT_IDS

        oi, of = program.arrays(ACT_IDS)
        self._e = _nn.Engine(
            0 if dtype == V.F32 else 1,
            oi,
            of,
            program.widths,
            program.alias,
            program.out_t,
            program.n_slots,
            len(program.diag_rows),
            program.n_stats,
            _nn.LOSSES[loss],
            theta,
            grad,
            state,
        )
        self.all_finite = _nn.all_finite
        self.bad_label = _nn.bad_label
        self.reserve = self._e.reserve
        self.forward = self._e.forward
        self.loss_of = self._e.loss_of
        self.gemms_only = self._e.gemms_only
        self.sk_epoch = self._e.sk_epoch  # fastact.sklearn's native epochs
        self._opt = {"": 0, **_nn.OPTIMIZERS}
        # step(X, labels, target, diag, kind="", hyper, s1, s2, t, training, seed, counter,
        # check): the engine's own method, no Python frame in between
        self.step = self._e.step
        self.try_step = self._e.try_step  # step() of the usual batch, or None
        self.batch_ok = self._e.batch_ok

    @property
    def capacity(self):
        return self._e.capacity

    @property
    def diagnostics(self):
        return self._e.diagnostics

    def output(self, rows):
        return self._e.output(rows)

    @property
    def last_ok(self):
        return self._e.last_ok

    @property
    def flush_subnormals(self):
        return self._e.flush_subnormals

    @flush_subnormals.setter
    def flush_subnormals(self, on):
        self._e.flush_subnormals = on

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
        return self._e.epoch(
            X,
            labels,
            target,
            order,
            bs,
            self._opt[kind],
            hyper,
            s1,
            s2,
            t0,
            training,
            seed,
            counter,
            check,
            skip_single,
            losses,
            correct,
            diag,
        )


Sequential._engine_class = NativeEngine
