"""scikit-learn estimators on fastact's network engine: `MLPClassifier`, `MLPRegressor`.

    from fastact.sklearn import MLPClassifier          # instead of sklearn.neural_network
    clf = MLPClassifier(hidden_layer_sizes=(64, 64), max_iter=50, random_state=0).fit(X, y)

scikit-learn's constructor parameters, defaults and meanings (1.9's signature), plus
fastact's own: ``init``, ``dtype`` (float32 by default), ``batchnorm``, ``dropout``,
``residual``, ``n_threads``; every fastact activation besides scikit-learn's four.

How it trains: each epoch is one native call (`Engine.sk_epoch`, src/_nn_engine.pxi and
src/_nn_sk.pxi; its NumPy twin `fastact.reference.NumpyEngine.sk_epoch`) that gathers
the batches in the order the estimator draws from random_state (scikit-learn's own
`shuffle` of the sample indices, so the draws are scikit-learn's), and runs for each
batch the forward pass, scikit-learn's loss and output delta ``(link(z) - y) s / sum(s)``
with the per-sample weights s, the backward pass, the L2 penalty ``alpha W / sum(s)`` of
the dense weights only (not the biases, BatchNorm's or PReLU's parameters) and
scikit-learn's update (AdamOptimizer: ``lr_t = lr sqrt(1 - b2^t) / (1 - b1^t)``,
``p -= lr_t m / (sqrt(v) + eps)``; SGDOptimizer: ``vel = momentum vel - lr g``, Nesterov
or classical), with no Python between the steps.  What scikit-learn does between epochs
(the loss curve, n_iter_no_change, the validation score of early stopping, invscaling's
and adaptive's learning rate) stays in Python.  Sparse X is densified one batch at a
time, each batch then one native call.  With batchnorm, a last batch of a single row is
left out of that epoch (one row has no batch variance), as fastact.MLP.fit does.

So in float64 the estimator reproduces scikit-learn's training to rounding when it
starts from the same weights (init="sklearn", the default, draws them as scikit-learn
does from random_state); tests/test_sklearn.py checks it.
"""

from __future__ import annotations

import numbers
import warnings

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, is_classifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import accuracy_score, r2_score
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils import check_random_state, column_or_1d
from sklearn.utils._param_validation import Interval, Options, StrOptions
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import _check_partial_fit_first_call, type_of_target, unique_labels
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data

from ._plumbing import aligned_zeros

__all__ = ["MLPClassifier", "MLPRegressor"]

# scikit-learn's names -> fastact's
_SK_ACTIVATIONS = {"identity": "identity", "logistic": "sigmoid", "tanh": "tanh", "relu": "relu"}
_STOCHASTIC = ("sgd", "adam")
# Engine.sk_epoch's codes (src/_nn_sk.pxi; a test checks they are the engine's)
_SK_OUTPUTS = {"softmax": 0, "logistic": 1, "identity": 2, "exp": 3}
_SK_SOLVERS = {"sgd": 1, "adam": 2}
_PREDICT_CHUNK = 4096  # rows per forward call for sparse X (densified per chunk)


def _fastact():
    import fastact

    return fastact


def _activation_names():
    from .nn.layers import MLP_ACTIVATIONS

    return set(_SK_ACTIVATIONS) | set(MLP_ACTIVATIONS)


def _resolve_threads(n_threads):
    fa = _fastact()
    if n_threads is None:
        return fa.get_num_threads()
    from . import _validate as V

    return V.check_threads(n_threads)  # -1: all usable cores, -2: all but one; clamped


class _Limits:
    """BLAS (threadpoolctl) and fastact's own threads limited to n for one fit.

    The BLAS limit is process-wide and threadpoolctl records and restores it per call
    (and, for OpenMP, per thread): fits that overlap in Python threads can leave the
    limit one of them set in force (sklearn.md says so).  A process-wide bookkeeping was
    tried and reverted: restoring from another thread than the one that limited reset
    that thread's OpenMP count, and threadpoolctl 3.8 lets only the thread that holds an
    OpenBLAS pool's control change it."""

    _controller = None

    def __init__(self, n, *, below_current_blas=False):
        self.n = n
        self.below_current_blas = below_current_blas  # n_threads=None: never raise a limit

    def __enter__(self):
        from threadpoolctl import ThreadpoolController

        if _Limits._controller is None:
            _Limits._controller = ThreadpoolController()
        n_blas = self.n
        if self.below_current_blas:  # a threadpool_limits the caller set stays in force
            libs = _Limits._controller.select(user_api="blas").lib_controllers
            counts = [lib.num_threads for lib in libs]  # (None where a BLAS cannot tell)
            n_blas = min([n_blas] + [c for c in counts if isinstance(c, int) and c > 0])
        self._blas = _Limits._controller.limit(limits=n_blas, user_api="blas")
        try:
            self._fa = _fastact().threads(self.n)
            self._fa.__enter__()
        except BaseException:
            self._blas.restore_original_limits()
            raise
        return self

    def __exit__(self, *exc):
        try:
            self._fa.__exit__(*exc)
        finally:
            self._blas.restore_original_limits()
        return False


class _BaseMLP(BaseEstimator):
    _parameter_constraints: dict = {
        "hidden_layer_sizes": ["array-like", Interval(numbers.Integral, 1, None, closed="left")],
        "activation": [StrOptions(_activation_names()), tuple],
        "solver": [StrOptions({"lbfgs", "sgd", "adam"})],
        "alpha": [Interval(numbers.Real, 0, None, closed="left")],
        "batch_size": [StrOptions({"auto"}), Interval(numbers.Integral, 1, None, closed="left")],
        "learning_rate": [StrOptions({"constant", "invscaling", "adaptive"})],
        "learning_rate_init": [Interval(numbers.Real, 0, None, closed="neither")],
        "power_t": [Interval(numbers.Real, 0, None, closed="left")],
        "max_iter": [Interval(numbers.Integral, 1, None, closed="left")],
        "shuffle": ["boolean"],
        "random_state": ["random_state"],
        "tol": [Interval(numbers.Real, 0, None, closed="left")],
        "verbose": ["verbose"],
        "warm_start": ["boolean"],
        "momentum": [Interval(numbers.Real, 0, 1, closed="both")],
        "nesterovs_momentum": ["boolean"],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(numbers.Real, 0, 1, closed="left")],
        "beta_1": [Interval(numbers.Real, 0, 1, closed="left")],
        "beta_2": [Interval(numbers.Real, 0, 1, closed="left")],
        "epsilon": [Interval(numbers.Real, 0, None, closed="neither")],
        "n_iter_no_change": [
            Interval(numbers.Integral, 1, None, closed="left"),
            Options(numbers.Real, {np.inf}),
        ],
        "max_fun": [Interval(numbers.Integral, 1, None, closed="left")],
        "init": [
            StrOptions(
                {
                    "sklearn",
                    "auto",
                    "standard",
                    "xavier_uniform",
                    "xavier_normal",
                    "he_uniform",
                    "he_normal",
                    "lecun_normal",
                    "orthogonal",
                }
            )
        ],
        "dtype": [type, str, np.dtype],
        "batchnorm": [StrOptions({"before", "after"}), None, list],
        "dropout": [Interval(numbers.Real, 0, 1, closed="left"), list],
        "residual": ["boolean", list],
        "n_threads": [
            Interval(numbers.Integral, 1, None, closed="left"),
            Interval(numbers.Integral, None, -1, closed="right"),
            None,
        ],
    }

    def _check_solver(self):
        if self.solver not in _STOCHASTIC:
            raise AttributeError(
                f"partial_fit is only available for stochastic optimizers. "
                f"{self.solver} is not stochastic."
            )
        return True

    # ------------------------------------------------------------------ checks
    def _check_options(self):
        where = type(self).__name__
        if self.solver == "lbfgs":
            raise NotImplementedError(
                f"{where}: solver='lbfgs' is not implemented in fastact; use solver='adam' "
                "or 'sgd', or sklearn.neural_network for L-BFGS."
            )
        try:
            dt = np.dtype(self.dtype)
        except TypeError:
            dt = None
        if dt is None or dt not in (np.dtype(np.float32), np.dtype(np.float64)):
            raise ValueError(f"{where}: dtype must be float32 or float64; got {self.dtype!r}.")
        sizes = self.hidden_layer_sizes
        if not hasattr(sizes, "__iter__"):
            sizes = [sizes]
        sizes = list(sizes)
        if any(isinstance(s, bool) or not isinstance(s, numbers.Integral) or s <= 0 for s in sizes):
            raise ValueError(f"hidden_layer_sizes must be positive integers (> 0), got {sizes}.")
        act = self.activation
        if isinstance(act, str):
            act = _SK_ACTIVATIONS.get(act, act)
        elif isinstance(act, tuple) and len(act) == 2 and isinstance(act[0], str):
            act = (_SK_ACTIVATIONS.get(act[0], act[0]), act[1])
        return dt, [int(s) for s in sizes], act

    # ------------------------------------------------------------------ network
    def _build(self, n_in, n_out, dt, sizes, act, loss):
        fa = _fastact()
        rs = self._random_state
        init = self.init
        seed = 0
        if init != "sklearn":  # the network's weights come from its seed
            seed = int(rs.randint(np.iinfo(np.int32).max))
        net = fa.MLP(
            [n_in] + sizes + [n_out],
            act,
            init="auto" if init == "sklearn" else init,
            loss=loss,
            dtype=dt,
            seed=seed,
            batchnorm=self.batchnorm,
            dropout=self.dropout,
            residual=self.residual,
        )
        if init == "sklearn":
            # Glorot uniform as scikit-learn draws it (coef then intercept per layer), from
            # the same RandomState: the same random_state gives scikit-learn's weights
            # (scikit-learn's factor follows its activation parameter, also with no hidden
            # layer)
            name = net.activations[0][0] if sizes else (act if isinstance(act, str) else act[0])
            factor = 2.0 if name == "sigmoid" else 6.0
            units = [n_in] + sizes + [n_out]
            for (W, b), fan_in, fan_out in zip(net.params, units[:-1], units[1:]):
                bound = np.sqrt(factor / (fan_in + fan_out))
                W[...] = rs.uniform(-bound, bound, (fan_in, fan_out))
                b[...] = rs.uniform(-bound, bound, fan_out)
            if self._uses_dropout():  # the dropout masks' seed, drawn after the weights
                net.seed = int(rs.randint(np.iinfo(np.int32).max))
        return net

    def _uses_batchnorm(self):
        b = self.batchnorm
        return any(v is not None for v in b) if isinstance(b, list) else b is not None

    def _check_batchnorm_batch(self, n_samples):
        """BatchNorm trains on batches of 2 rows or more (one row has no batch variance:
        an epoch would train on its first batch only)"""
        bs = n_samples if self.batch_size == "auto" else min(self.batch_size, n_samples)
        if min(bs, 200) < 2:
            raise ValueError(
                f"{type(self).__name__}: batchnorm needs training batches of at least 2 rows "
                f"to estimate the batch variance; got batch_size={self.batch_size!r} with "
                f"n_samples={n_samples} training rows. Use batch_size >= 2 (and at least 2 "
                "samples), or batchnorm=None."
            )

    def _uses_dropout(self):
        d = self.dropout
        return any(v > 0 for v in d) if isinstance(d, list) else d > 0

    # ------------------------------------------------------------------ fitting
    def _architecture(self, dt, sizes, act):
        """the parameters the network was built from: warm_start and partial_fit keep it"""
        return {
            "hidden_layer_sizes": tuple(sizes),
            "activation": repr(act),
            "dtype": dt,
            "batchnorm": repr(self.batchnorm),
            "dropout": repr(self.dropout),
            "residual": repr(self.residual),
            "init": self.init,
            "loss": repr(getattr(self, "loss", None)),
        }

    def _fit(self, X, y, sample_weight=None, incremental=False):
        dt, sizes, act = self._check_options()
        first_pass = not hasattr(self, "_net") or (not self.warm_start and not incremental)
        if not first_pass:
            built = getattr(self, "_arch", None)
            now = self._architecture(dt, sizes, act)
            changed = [k for k in now if built is not None and now[k] != built[k]]
            if changed:
                raise ValueError(
                    f"{type(self).__name__}: {', '.join(changed)} changed since the network "
                    "was built; warm_start and partial_fit continue that network: fit "
                    "without warm_start (or set the parameters back) to build a new one."
                )
        X, y = self._validate_input(X, y, incremental, reset=first_pass)
        if self._uses_batchnorm() and sizes:  # before anything is built or changed
            self._check_batchnorm_batch(X.shape[0])
        if sample_weight is not None:
            sample_weight = _check_sample_weight(sample_weight, X)
        if y.ndim == 1:
            y = y.reshape((-1, 1))
        self._random_state = check_random_state(self.random_state)
        n_features = X.shape[1]
        if first_pass:
            self._initialize(y, n_features, dt, sizes, act)
            self._arch = self._architecture(dt, sizes, act)
        elif y.shape[1] != self.n_outputs_:
            raise ValueError(
                f"{type(self).__name__}: y has {y.shape[1]} output(s) but the "
                f"fitted network has {self.n_outputs_}; fit again without "
                "warm_start to change it."
            )
        self._threads_used = _resolve_threads(self.n_threads)
        with _Limits(self._threads_used, below_current_blas=self.n_threads is None):
            try:
                self._fit_stochastic(X, y, sample_weight, incremental)
            except FloatingPointError as e:
                _check_in_range(self, dt, X=X, y=None if is_classifier(self) else y)
                raise ValueError(
                    "Solver produced a non-finite loss or gradient; that step was not applied "
                    "(the weights are those of the last finite step). The input data may contain "
                    f"large values and need to be preprocessed. ({e})"
                ) from e
        return self

    def _initialize(self, y, n_features, dt, sizes, act):
        self.n_iter_ = 0
        self.t_ = 0
        self.n_outputs_ = y.shape[1]
        self.n_layers_ = len(sizes) + 2
        if not is_classifier(self):
            self.out_activation_ = "exp" if self.loss == "poisson" else "identity"
        elif self._label_binarizer.y_type_ == "multiclass":
            self.out_activation_ = "softmax"
        else:
            self.out_activation_ = "logistic"
        native = {
            "softmax": "softmax_cross_entropy",
            "logistic": "binary_cross_entropy_with_logits",
        }.get(self.out_activation_, "mse")  # (the native loss serves net.evaluate only)
        self._net = self._build(n_features, self.n_outputs_, dt, sizes, act, native)
        self.loss_curve_ = []
        self._no_improvement_count = 0
        if self.early_stopping:
            self.validation_scores_ = []
            self.best_validation_score_ = -np.inf
            self.best_loss_ = None
        else:
            self.best_loss_ = np.inf
            self.validation_scores_ = None
            self.best_validation_score_ = None
        self._best = None

    def _new_optimizer(self):
        """scikit-learn's optimizer state: Adam's moments or SGD's velocity, flat like the
        network's parameters, and the step count"""
        theta = self._net.theta
        n_state = 2 if self.solver == "adam" else 1
        self._opt_state = [aligned_zeros(theta.shape, theta.dtype) for _ in range(n_state)]
        self._opt_t = 0
        self._lr = float(self.learning_rate_init)  # scikit-learn's current rate (sgd)
        # what scikit-learn's optimizer object holds from its creation on (partial_fit
        # keeps it, whatever set_params changed since)
        self._opt_conf = dict(
            solver=self.solver,
            schedule=self.learning_rate,
            lr_init=float(self.learning_rate_init),
            power_t=float(self.power_t),
            adam=(float(self.beta_1), float(self.beta_2), float(self.epsilon)),
            sgd=(float(self.momentum), float(bool(self.nesterovs_momentum))),
        )

    def _fit_stochastic(self, X, y, sample_weight, incremental):
        net = self._net
        if not incremental or not hasattr(self, "_opt_state"):
            self._new_optimizer()
        if self.early_stopping and incremental:
            raise ValueError("partial_fit does not support early_stopping=True")
        if self.early_stopping:
            stratify = y if (is_classifier(self) and self.n_outputs_ == 1) else None
            if sample_weight is None:
                X_train, X_val, y_train, y_val = train_test_split(
                    X,
                    y,
                    random_state=self._random_state,
                    test_size=self.validation_fraction,
                    stratify=stratify,
                )
                sw_train = sw_val = None
            else:
                X_train, X_val, y_train, y_val, sw_train, sw_val = train_test_split(
                    X,
                    y,
                    sample_weight,
                    random_state=self._random_state,
                    test_size=self.validation_fraction,
                    stratify=stratify,
                )
            if X_val.shape[0] < 2:
                raise ValueError(
                    "The validation set is too small. Increase "
                    "'validation_fraction' or the size of your dataset."
                )
            if is_classifier(self):
                y_val = self._label_binarizer.inverse_transform(y_val)
        else:
            X_train, y_train, sw_train = X, y, sample_weight
            X_val = y_val = sw_val = None
        n_samples = X_train.shape[0]
        if self.batch_size == "auto":
            bs = min(200, n_samples)
        else:
            if self.batch_size > n_samples:
                warnings.warn(
                    "Got `batch_size` less than 1 or larger than sample size. It is "
                    "going to be clipped",
                    stacklevel=4,  # the user's fit / partial_fit call
                )
            bs = int(np.clip(self.batch_size, 1, n_samples))
        if net._program.has_batchnorm:
            self._check_batchnorm_batch(n_samples)  # (after the validation split)
        dt = net.dtype
        sparse = sp.issparse(X_train)
        if sparse:
            X_train = X_train.tocsr()
        else:
            with np.errstate(over="ignore"):  # beyond float32: the fit's error names it
                X_train = np.ascontiguousarray(X_train, dtype=dt)
        if self.out_activation_ == "softmax":
            labels = np.ascontiguousarray(y_train.argmax(axis=1), dtype=np.int64)
            target = None
        else:
            with np.errstate(over="ignore"):
                labels, target = None, np.ascontiguousarray(y_train, dtype=dt)
        if sw_train is not None:
            sw_train = np.ascontiguousarray(sw_train, dtype=np.float64)
        state = _NativeEpochs(self, net, X_train, labels, target, sw_train, bs, sparse)
        sample_idx = np.arange(n_samples, dtype=np.int64)
        self.n_iter_ = 0
        try:
            for _ in range(self.max_iter):
                if self.shuffle:
                    # sklearn.utils.shuffle(sample_idx, random_state=...)'s draw, without its
                    # parameter validation (which costs as much as a digits epoch)
                    perm = np.arange(n_samples)
                    self._random_state.shuffle(perm)
                    sample_idx = sample_idx[perm]
                try:
                    with np.errstate(over="ignore", invalid="ignore"):  # diverging: inf
                        self.loss_ = state.epoch(sample_idx if self.shuffle else None) / n_samples
                except FloatingPointError:
                    if not (self.early_stopping and self._best is not None):
                        raise
                    warnings.warn(  # scikit-learn goes on with NaN scores to the same end
                        f"Training diverged in iteration {self.n_iter_ + 1}: a step met a "
                        "non-finite loss or gradient and was not applied. The weights of "
                        "the best validation score are restored (early_stopping=True); a "
                        "smaller learning_rate_init may train further.",
                        ConvergenceWarning,
                        stacklevel=4,
                    )
                    break
                self.n_iter_ += 1
                self.t_ += n_samples
                self.loss_curve_.append(self.loss_)
                if self.verbose:
                    print("Iteration %d, loss = %.8f" % (self.n_iter_, self.loss_))
                self._update_no_improvement_count(X_val, y_val, sw_val)
                conf = self._opt_conf
                if conf["solver"] == "sgd" and conf["schedule"] == "invscaling":
                    self._set_lr(conf["lr_init"] / (self.t_ + 1) ** conf["power_t"])
                if self._no_improvement_count > self.n_iter_no_change:
                    if self.early_stopping:
                        msg = (
                            "Validation score did not improve more than tol=%f for %d "
                            "consecutive epochs." % (self.tol, self.n_iter_no_change)
                        )
                    else:
                        msg = (
                            "Training loss did not improve more than tol=%f for %d "
                            "consecutive epochs." % (self.tol, self.n_iter_no_change)
                        )
                    if self._trigger_stopping(msg):
                        break
                    self._no_improvement_count = 0
                if incremental:
                    break
                if self.n_iter_ == self.max_iter:
                    warnings.warn(
                        "Stochastic Optimizer: Maximum iterations (%d) reached and the "
                        "optimization hasn't converged yet." % self.max_iter,
                        ConvergenceWarning,
                        stacklevel=4,
                    )
        except KeyboardInterrupt:  # as scikit-learn: the model trained so far is kept
            warnings.warn("Training interrupted by user.", stacklevel=4)
        if self.early_stopping and self._best is not None:
            net.theta[...] = self._best[0]
            net.state[...] = self._best[1]

    def _set_lr(self, lr):
        self._lr = lr

    def _trigger_stopping(self, msg):
        conf = self._opt_conf
        if conf["solver"] != "sgd" or conf["schedule"] != "adaptive":
            if self.verbose:
                print(msg + " Stopping.")
            return True
        if self._lr <= 1e-6:
            if self.verbose:
                print(msg + " Learning rate too small. Stopping.")
            return True
        self._set_lr(self._lr / 5.0)
        if self.verbose:
            print(msg + " Setting learning rate to %f" % self._lr)
        return False

    def _update_no_improvement_count(self, X_val, y_val, sw_val):
        if self.early_stopping:
            score = self._score(X_val, y_val, sw_val)
            self.validation_scores_.append(score)
            if self.verbose:
                print("Validation score: %f" % score)
            if score < self.best_validation_score_ + self.tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if score > self.best_validation_score_:
                self.best_validation_score_ = score
                self._best = (self._net.theta.copy(), self._net.state.copy())
        else:
            if self.loss_curve_[-1] > self.best_loss_ - self.tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if self.loss_curve_[-1] < self.best_loss_:
                self.best_loss_ = self.loss_curve_[-1]

    # ------------------------------------------------------------------ inference
    def _raw(self, X, check_input=True):
        """the network's outputs (float64), X validated"""
        if check_input:
            X = validate_data(self, X, accept_sparse=["csr", "csc"], reset=False)
        net = self._net
        if sp.issparse(X):
            X = X.tocsr()
            out = np.empty((X.shape[0], net.n_out), np.float64)
            try:
                for r0 in range(0, X.shape[0], _PREDICT_CHUNK):
                    with np.errstate(over="ignore"):  # (beyond float32: the error below)
                        xb = X[r0 : r0 + _PREDICT_CHUNK].toarray().astype(net.dtype, copy=False)
                    out[r0 : r0 + xb.shape[0]] = net.forward(np.ascontiguousarray(xb))
            except ValueError:
                _check_in_range(self, net.dtype, X=X)
                raise
            return out
        try:
            with np.errstate(over="ignore"):  # (beyond float32: the error below)
                X32 = np.ascontiguousarray(X, dtype=net.dtype)
            return net.forward(X32).astype(np.float64)
        except ValueError:
            _check_in_range(self, net.dtype, X=X)
            raise

    def _output(self, X, check_input=True):
        z = self._raw(X, check_input)
        kind = self.out_activation_
        if kind == "softmax":
            z -= z.max(axis=1, keepdims=True)
            np.exp(z, out=z)
            z /= z.sum(axis=1, keepdims=True)
        elif kind == "logistic":
            from scipy.special import expit

            expit(z, out=z)
        elif kind == "exp":
            np.exp(z, out=z)
        return z

    def _score_with_function(self, X, y, sample_weight, score_function):
        y_pred = self._predict(X, check_input=False)
        if np.issubdtype(y_pred.dtype, np.floating) and not np.isfinite(y_pred).all():
            return np.nan
        return score_function(y, y_pred, sample_weight=sample_weight)

    # ------------------------------------------------------------------ attributes
    @property
    def coefs_(self):
        """The weight matrix of each layer: views into the network.  Writing into them,
        assigning an item (``coefs_[i] = W``) or the whole list changes the model, as
        with scikit-learn's list of arrays (the shapes must stay)."""
        if "_net" not in self.__dict__:
            raise AttributeError("coefs_: the estimator is not fitted yet.")
        return _ParamList("coefs_", [W for W, _ in self._net.params])

    @coefs_.setter
    def coefs_(self, value):
        self._set_params("coefs_", value)

    @property
    def intercepts_(self):
        """The bias vector of each layer: views into the network (writable as ``coefs_``)."""
        if "_net" not in self.__dict__:
            raise AttributeError("intercepts_: the estimator is not fitted yet.")
        return _ParamList("intercepts_", [b for _, b in self._net.params])

    @intercepts_.setter
    def intercepts_(self, value):
        self._set_params("intercepts_", value)

    def _set_params(self, name, value):
        """coefs_ = [...] / intercepts_ = [...]: copy into the network's parameters"""
        if "_net" not in self.__dict__:
            raise AttributeError(
                f"{name}: the estimator is not fitted yet; fit (or partial_fit) builds "
                "the network whose parameters this sets."
            )
        views = getattr(self, name)
        try:
            value = list(value)
        except TypeError:
            raise TypeError(
                f"{name} must be a list of {len(views)} arrays; got {type(value).__name__}."
            ) from None
        if len(value) != len(views):
            raise ValueError(
                f"{name} must be a list of {len(views)} arrays (one per layer); got {len(value)}."
            )
        arrays = []
        for i, (v, w) in enumerate(zip(value, views)):  # every check first: all or nothing
            a = _as_layer_array(name, i, v, w)
            arrays.append(a)
        for w, a in zip(views, arrays):
            w[...] = a

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags


def _check_in_range(est, dtype, **arrays):
    """The error for finite data beyond the network dtype's range (1e39 is finite in
    float64 and inf in float32), which the network would otherwise report as non-finite
    input or a non-finite loss; called on those error paths only."""
    big = np.finfo(dtype).max
    for name, a in arrays.items():
        if a is None or np.dtype(a.dtype).itemsize <= np.dtype(dtype).itemsize:
            continue
        data = a.data if sp.issparse(a) else a
        largest = max(-np.min(data), np.max(data)) if data.size else 0.0
        if largest > big:
            raise ValueError(
                f"{type(est).__name__}: {name} has values beyond {np.dtype(dtype).name}'s "
                f"range (largest magnitude {largest:.3g}), the "
                f"dtype the network computes in: scale the data (e.g. StandardScaler) or "
                f"pass dtype=np.float64."
            )


def _as_layer_array(name, i, value, view):
    """value as an array of the layer's shape and dtype (converted before anything is
    written), or the error"""
    a = np.asarray(value)
    if a.shape != view.shape:
        raise ValueError(f"{name}[{i}] must have shape {view.shape} (the layer's); got {a.shape}.")
    if a.dtype.kind not in "biuf":
        raise TypeError(f"{name}[{i}] must hold real numbers; got dtype {a.dtype}.")
    return a.astype(view.dtype, copy=False)


class _ParamList(list):
    """coefs_ / intercepts_: the network's parameter views; assigning an item copies the
    values into the network (the list is built anew on each access)"""

    def __init__(self, name, views):
        super().__init__(views)
        self._name = name

    def __setitem__(self, i, value):
        if isinstance(i, slice):
            raise TypeError(
                f"{self._name}: assign one layer at a time ({self._name}[i] = array) or "
                f"the whole list ({self._name} = [...])."
            )
        view = list.__getitem__(self, i)
        view[...] = _as_layer_array(self._name, i, value, view)


class _NativeEpochs:
    """The epochs of one fit: each one Engine.sk_epoch call (dense X) or one per batch
    (sparse X, densified a batch at a time)."""

    def __init__(self, est, net, X, labels, target, sw, bs, sparse):
        self.est, self.net, self.X, self.bs, self.sparse = est, net, X, bs, sparse
        self.labels, self.target, self.sw = labels, target, sw
        self.out_kind = _SK_OUTPUTS[est.out_activation_]
        self.solver = _SK_SOLVERS[est._opt_conf["solver"]]
        self.alpha = float(est.alpha)
        rows = X.shape[0]
        self.nb = -(-rows // bs)
        self.sizes = np.full(self.nb, bs, np.float64)
        self.sizes[-1] = rows - bs * (self.nb - 1)
        self.losses = np.zeros(self.nb, np.float64)
        self.skip_single = net._program.has_batchnorm
        net._engine.reserve(bs)
        if sparse:
            self.Xb = np.empty((bs, X.shape[1]), net.dtype)

    def _hyper(self):
        conf = self.est._opt_conf
        if conf["solver"] == "adam":
            return np.array((conf["lr_init"], *conf["adam"]), np.float64)
        return np.array((self.est._lr, *conf["sgd"]), np.float64)

    def _run(self, X, labels, target, sw, order, bs, hyper, losses):
        est, net = self.est, self.net
        st = est._opt_state
        if sw is not None:  # scikit-learn's error for a batch whose weights sum to zero
            rows = X.shape[0]
            sums = np.add.reduceat(sw if order is None else sw[order], np.arange(0, rows, bs))
            if self.skip_single and rows > bs and rows % bs == 1:
                sums = sums[:-1]  # the single-row batch that the epoch leaves out
            if not np.all(sums != 0):
                raise ZeroDivisionError(
                    "Weights sum to zero, can't be normalized: a minibatch's sample "
                    "weights sum to zero; give some of its rows a positive weight, or "
                    "use a larger batch_size."
                )
        done = net._engine.sk_epoch(
            X,
            labels,
            target,
            sw,
            order,
            bs,
            self.out_kind,
            self.solver,
            hyper,
            st[0],
            st[1] if len(st) > 1 else None,
            est._opt_t,
            self.alpha,
            net.seed,
            net._counter,
            self.skip_single,
            losses,
        )
        est._opt_t += done
        net._counter += done
        if not net._engine.last_ok:
            raise FloatingPointError(
                "a training step met a non-finite loss or gradient; it was not applied"
            )
        return done

    def epoch(self, order):
        """one epoch (order: the permutation of the rows, or None); returns the sum over
        the batches of their loss times their row count, as scikit-learn accumulates it"""
        hyper = self._hyper()
        losses = self.losses
        if not self.sparse:
            done = self._run(
                self.X, self.labels, self.target, self.sw, order, self.bs, hyper, losses
            )
            return float(np.dot(losses[:done], self.sizes[:done]))
        total, rows = 0.0, self.X.shape[0]
        for b, r0 in enumerate(range(0, rows, self.bs)):
            n = min(self.bs, rows - r0)
            if n == 1 and self.skip_single and r0 > 0:
                break
            idx = np.arange(r0, r0 + n) if order is None else order[r0 : r0 + n]
            xb = self.Xb[:n]
            xb[...] = self.X[idx].toarray()
            lb = None if self.labels is None else self.labels[idx]
            tb = None if self.target is None else np.ascontiguousarray(self.target[idx])
            sw = None if self.sw is None else np.ascontiguousarray(self.sw[idx])
            self._run(xb, lb, tb, sw, None, n, hyper, losses[b : b + 1])
            total += float(losses[b]) * n
        return total


def _loss_fn(name):
    from sklearn.neural_network._base import LOSS_FUNCTIONS

    return LOSS_FUNCTIONS[name]


class MLPClassifier(ClassifierMixin, _BaseMLP):
    """Multi-layer perceptron classifier: scikit-learn's MLPClassifier on fastact's engine.

    scikit-learn's parameters, defaults and meanings (sklearn.neural_network.MLPClassifier),
    each training epoch one native call; plus every fastact activation and fastact's own
    options (init, dtype, batchnorm, dropout, residual, n_threads).  In float64 with
    init="sklearn" it reproduces scikit-learn's training to rounding.

    Parameters
    ----------
    hidden_layer_sizes : array-like of shape (n_layers - 2,), default (100,)
        The ith element is the number of units in the ith hidden layer.
    activation : str or (str, dict), default "relu"
        The hidden layers' activation: scikit-learn's "identity", "logistic", "tanh",
        "relu", or any fastact activation name ("gelu", "silu", "leaky_relu",
        "prelu", ...), or (name, {parameters}).
    solver : {"adam", "sgd", "lbfgs"}, default "adam"
        The weight optimizer; "lbfgs" raises NotImplementedError (use
        sklearn.neural_network for it).
    alpha : float, default 0.0001
        Strength of the L2 penalty on the weights (not the biases), divided by the
        batch's size (or sum of sample weights).
    batch_size : int or "auto", default "auto"
        Minibatch size; "auto" is min(200, n_samples).
    learning_rate : {"constant", "invscaling", "adaptive"}, default "constant"
        The learning-rate schedule of solver="sgd".
    learning_rate_init : float, default 0.001
        The initial learning rate (sgd and adam).
    power_t : float, default 0.5
        The exponent of the "invscaling" schedule.
    max_iter : int, default 200
        The maximum number of epochs.
    shuffle : bool, default True
        Shuffle the samples each epoch.
    random_state : int, RandomState instance or None, default None
        The weights (init="sklearn"), shuffling, the validation split and the seed
        of the network (dropout masks).
    tol : float, default 1e-4
        The tolerance of the stopping rule: training stops when the loss (or the
        validation score) has not improved by tol for n_iter_no_change epochs.
    verbose : bool, default False
        Print the loss of each epoch.
    warm_start : bool, default False
        Continue from the previous fit's weights.  With early_stopping, each fit ends on
        the best validation weights seen so far (scikit-learn 1.9 can end a warm-started
        fit on its last weights instead: after its first fit its best weights and its
        current ones are the same arrays), so the two part from the second fit on.
    momentum : float, default 0.9
        The momentum of solver="sgd", in [0, 1].
    nesterovs_momentum : bool, default True
        Nesterov's momentum (solver="sgd", momentum > 0).
    early_stopping : bool, default False
        Hold out validation_fraction of the training data and stop when its score
        stops improving.
    validation_fraction : float, default 0.1
        The held-out fraction for early stopping, in [0, 1).
    beta_1 : float, default 0.9
        Adam's first-moment decay, in [0, 1).
    beta_2 : float, default 0.999
        Adam's second-moment decay, in [0, 1).
    epsilon : float, default 1e-8
        Adam's numerical-stability term (scikit-learn's placement, reproduced exactly).
    n_iter_no_change : int, default 10
        The epochs without tol improvement before stopping.
    max_fun : int, default 15000
        Only used by solver="lbfgs" (not implemented); kept for compatibility.
    init : str, default "sklearn"
        "sklearn": scikit-learn's Glorot-uniform weights and biases, drawn from
        random_state as scikit-learn draws them; or a fastact scheme ("auto",
        "he_normal", ..., see fastact.nn.INITS; biases zero).
    dtype : {numpy.float32, numpy.float64}, default numpy.float32
        The network's precision; X is converted.
    batchnorm : {None, "before", "after"} or list, default None
        BatchNorm around each hidden activation, as fastact.MLP.
    dropout : float or list of float, default 0.0
        Dropout after each hidden activation, as fastact.MLP.
    residual : bool or list of bool, default False
        Residual connections, as fastact.MLP.
    n_threads : int, optional
        Threads of each fit (native code and BLAS, limited with threadpoolctl for the
        fit only); None: fastact's default (all usable cores, at most the OpenMP
        limit, which joblib sets in its worker processes), -1 all, -2 all but one.

    Attributes
    ----------
    classes_ : ndarray or list of ndarray
        The class labels (per output for multi-label).
    loss_ : float
        The current loss.
    best_loss_ : float or None
        The best training loss (None with early stopping).
    loss_curve_ : list of float
        The loss of each epoch.
    validation_scores_ : list of float or None
        The validation score of each epoch (early stopping).
    best_validation_score_ : float or None
        The best validation score (early stopping).
    t_ : int
        The number of training samples seen.
    coefs_ : list of ndarray
        The weight matrix of each layer: views into the network, in its dtype.  Writing
        into one, ``coefs_[i] = W`` or ``coefs_ = [...]`` sets the weights (same shapes).
    intercepts_ : list of ndarray
        The bias vector of each layer: views into the network (settable as ``coefs_``).
    n_features_in_ : int
        The number of features seen in fit.
    feature_names_in_ : ndarray of str
        The feature names seen in fit (when X has string column names).
    n_iter_ : int
        The number of epochs run.
    n_layers_ : int
        The number of layers.
    n_outputs_ : int
        The number of outputs.
    out_activation_ : str
        "softmax" (multi-class) or "logistic" (binary and multi-label).

    See Also
    --------
    MLPRegressor : The regressor.
    fastact.MLP : The network it trains.
    sklearn.neural_network.MLPClassifier : The model it mirrors.

    Examples
    --------
    >>> from sklearn.datasets import make_classification
    >>> from fastact.sklearn import MLPClassifier
    >>> X, y = make_classification(n_samples=200, n_features=8, random_state=0)
    >>> clf = MLPClassifier(hidden_layer_sizes=(32,), activation="gelu", tol=1e-3,
    ...                     max_iter=1000, random_state=0).fit(X, y)
    >>> clf.classes_
    array([0, 1])
    >>> clf.score(X, y) > 0.9
    True
    >>> clf.predict_proba(X[:2]).shape
    (2, 2)
    >>> [W.shape for W in clf.coefs_]
    [(8, 32), (32, 1)]
    """

    loss = "log_loss"  # scikit-learn's attribute (not a parameter of the classifier)

    def __init__(
        self,
        hidden_layer_sizes=(100,),
        activation="relu",
        *,
        solver="adam",
        alpha=0.0001,
        batch_size="auto",
        learning_rate="constant",
        learning_rate_init=0.001,
        power_t=0.5,
        max_iter=200,
        shuffle=True,
        random_state=None,
        tol=1e-4,
        verbose=False,
        warm_start=False,
        momentum=0.9,
        nesterovs_momentum=True,
        early_stopping=False,
        validation_fraction=0.1,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
        n_iter_no_change=10,
        max_fun=15000,
        init="sklearn",
        dtype=np.float32,
        batchnorm=None,
        dropout=0.0,
        residual=False,
        n_threads=None,
    ):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.max_fun = max_fun
        self.init = init
        self.dtype = dtype
        self.batchnorm = batchnorm
        self.dropout = dropout
        self.residual = residual
        self.n_threads = n_threads

    def _validate_input(self, X, y, incremental, reset):
        X, y = validate_data(
            self,
            X,
            y,
            accept_sparse=["csr", "csc"],
            multi_output=True,
            dtype=(np.float64, np.float32),
            reset=reset,
        )
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        if not hasattr(self, "classes_") or (not self.warm_start and not incremental):
            self._label_binarizer = LabelBinarizer()
            self._label_binarizer.fit(y)
            self.classes_ = self._label_binarizer.classes_
            if self._label_binarizer.y_type_ == "multiclass":
                # the transform's one-hot rows, without its second pass over y's type (the
                # classes come from this y, so every label is one of them)
                Y = np.zeros((y.shape[0], len(self.classes_)), bool)
                Y[np.arange(y.shape[0]), np.searchsorted(self.classes_, y)] = True
                return X, Y
        else:
            classes = unique_labels(y)
            if self.warm_start:
                if set(classes) != set(self.classes_):
                    raise ValueError(
                        "warm_start can only be used where `y` has the same classes as in the "
                        f"previous call to fit. Previously got {self.classes_}, `y` has "
                        f"{classes}"
                    )
            elif len(np.setdiff1d(classes, self.classes_, assume_unique=True)):
                raise ValueError(
                    f"`y` has classes not in `self.classes_`. `self.classes_` has "
                    f"{self.classes_}. 'y' has {classes}."
                )
        y = self._label_binarizer.transform(y).astype(bool)
        return X, y

    def _gradient_and_loss(self, z, y, sw):
        if self.out_activation_ == "softmax":
            z = z - z.max(axis=1, keepdims=True)
            np.exp(z, out=z)
            z /= z.sum(axis=1, keepdims=True)
            loss = _loss_fn("log_loss")(y, z, sw)
        else:
            from scipy.special import expit

            z = expit(z)
            loss = _loss_fn("binary_log_loss")(y, z, sw)
        G = z - y
        if sw is not None:
            G *= sw.reshape(-1, 1)
        return G, loss

    def fit(self, X, y, sample_weight=None):
        """Fit the model to data matrix X and target(s) y.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            The class labels (an indicator matrix for multi-label).
        sample_weight : array-like of shape (n_samples,), optional
            Per-sample weights; None: all 1.

        Returns
        -------
        MLPClassifier
            The fitted estimator.
        """
        self._validate_params()
        return self._fit(X, y, sample_weight=sample_weight, incremental=False)

    @available_if(lambda est: est._check_solver())
    def partial_fit(self, X, y, sample_weight=None, classes=None):
        """Update the model with one epoch over (X, y).

        Only with solver="sgd" or "adam".

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            The class labels.
        sample_weight : array-like of shape (n_samples,), optional
            Per-sample weights; None: all 1.
        classes : array-like of shape (n_classes,), optional
            Every class label; required on the first call.  A later call may leave it out
            or repeat it (other labels raise a ValueError, as in scikit-learn).

        Returns
        -------
        MLPClassifier
            The updated estimator.
        """
        self._validate_params()
        if _check_partial_fit_first_call(self, classes):
            self._label_binarizer = LabelBinarizer()
            if type_of_target(y).startswith("multilabel"):
                self._label_binarizer.fit(y)
            else:
                self._label_binarizer.fit(classes)
        return self._fit(X, y, sample_weight=sample_weight, incremental=True)

    def predict(self, X):
        """Predict the class labels of X.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.

        Returns
        -------
        ndarray of shape (n_samples,) or (n_samples, n_classes)
            The predicted labels (an indicator matrix for multi-label).
        """
        check_is_fitted(self)
        return self._predict(X)

    def _predict(self, X, check_input=True):
        y_pred = self._output(X, check_input)
        if self.n_outputs_ == 1:
            y_pred = y_pred.ravel()
        return self._label_binarizer.inverse_transform(y_pred)

    def _score(self, X, y, sample_weight=None):
        return self._score_with_function(X, y, sample_weight, accuracy_score)

    def predict_proba(self, X):
        """Return the probability estimates of X.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.

        Returns
        -------
        ndarray of shape (n_samples, n_classes)
            The probability of each class, the columns in the order of ``classes_``.
        """
        check_is_fitted(self)
        y_pred = self._output(X)
        if self.n_outputs_ == 1:
            y_pred = y_pred.ravel()
        if y_pred.ndim == 1:
            return np.vstack([1 - y_pred, y_pred]).T
        return y_pred

    def predict_log_proba(self, X):
        """Return the logarithm of the probability estimates of X.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.

        Returns
        -------
        ndarray of shape (n_samples, n_classes)
            log(predict_proba(X)).
        """
        y_prob = self.predict_proba(X)
        with np.errstate(divide="ignore"):
            return np.log(y_prob, out=y_prob)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags


class MLPRegressor(RegressorMixin, _BaseMLP):
    """Multi-layer perceptron regressor: scikit-learn's MLPRegressor on fastact's engine.

    scikit-learn's parameters, defaults and meanings (sklearn.neural_network.MLPRegressor),
    each training epoch one native call; plus every fastact activation and fastact's own
    options (init, dtype, batchnorm, dropout, residual, n_threads).

    Parameters
    ----------
    loss : {"squared_error", "poisson"}, default "squared_error"
        The loss; "poisson" (y >= 0): an exp output with the half Poisson deviance,
        as scikit-learn's.
    hidden_layer_sizes : array-like of shape (n_layers - 2,), default (100,)
        The ith element is the number of units in the ith hidden layer.
    activation : str or (str, dict), default "relu"
        The hidden layers' activation: scikit-learn's "identity", "logistic", "tanh",
        "relu", or any fastact activation name ("gelu", "silu", "leaky_relu",
        "prelu", ...), or (name, {parameters}).
    solver : {"adam", "sgd", "lbfgs"}, default "adam"
        The weight optimizer; "lbfgs" raises NotImplementedError (use
        sklearn.neural_network for it).
    alpha : float, default 0.0001
        Strength of the L2 penalty on the weights (not the biases), divided by the
        batch's size (or sum of sample weights).
    batch_size : int or "auto", default "auto"
        Minibatch size; "auto" is min(200, n_samples).
    learning_rate : {"constant", "invscaling", "adaptive"}, default "constant"
        The learning-rate schedule of solver="sgd".
    learning_rate_init : float, default 0.001
        The initial learning rate (sgd and adam).
    power_t : float, default 0.5
        The exponent of the "invscaling" schedule.
    max_iter : int, default 200
        The maximum number of epochs.
    shuffle : bool, default True
        Shuffle the samples each epoch.
    random_state : int, RandomState instance or None, default None
        The weights (init="sklearn"), shuffling, the validation split and the seed
        of the network (dropout masks).
    tol : float, default 1e-4
        The tolerance of the stopping rule: training stops when the loss (or the
        validation score) has not improved by tol for n_iter_no_change epochs.
    verbose : bool, default False
        Print the loss of each epoch.
    warm_start : bool, default False
        Continue from the previous fit's weights.  With early_stopping, each fit ends on
        the best validation weights seen so far (scikit-learn 1.9 can end a warm-started
        fit on its last weights instead: after its first fit its best weights and its
        current ones are the same arrays), so the two part from the second fit on.
    momentum : float, default 0.9
        The momentum of solver="sgd", in [0, 1].
    nesterovs_momentum : bool, default True
        Nesterov's momentum (solver="sgd", momentum > 0).
    early_stopping : bool, default False
        Hold out validation_fraction of the training data and stop when its score
        stops improving.
    validation_fraction : float, default 0.1
        The held-out fraction for early stopping, in [0, 1).
    beta_1 : float, default 0.9
        Adam's first-moment decay, in [0, 1).
    beta_2 : float, default 0.999
        Adam's second-moment decay, in [0, 1).
    epsilon : float, default 1e-8
        Adam's numerical-stability term (scikit-learn's placement, reproduced exactly).
    n_iter_no_change : int, default 10
        The epochs without tol improvement before stopping.
    max_fun : int, default 15000
        Only used by solver="lbfgs" (not implemented); kept for compatibility.
    init : str, default "sklearn"
        "sklearn": scikit-learn's Glorot-uniform weights and biases, drawn from
        random_state as scikit-learn draws them; or a fastact scheme ("auto",
        "he_normal", ..., see fastact.nn.INITS; biases zero).
    dtype : {numpy.float32, numpy.float64}, default numpy.float32
        The network's precision; X is converted.
    batchnorm : {None, "before", "after"} or list, default None
        BatchNorm around each hidden activation, as fastact.MLP.
    dropout : float or list of float, default 0.0
        Dropout after each hidden activation, as fastact.MLP.
    residual : bool or list of bool, default False
        Residual connections, as fastact.MLP.
    n_threads : int, optional
        Threads of each fit (native code and BLAS, limited with threadpoolctl for the
        fit only); None: fastact's default (all usable cores, at most the OpenMP
        limit, which joblib sets in its worker processes), -1 all, -2 all but one.

    Attributes
    ----------
    loss_ : float
        The current loss.
    best_loss_ : float or None
        The best training loss (None with early stopping).
    loss_curve_ : list of float
        The loss of each epoch.
    validation_scores_ : list of float or None
        The validation score of each epoch (early stopping).
    best_validation_score_ : float or None
        The best validation score (early stopping).
    t_ : int
        The number of training samples seen.
    coefs_ : list of ndarray
        The weight matrix of each layer: views into the network, in its dtype.  Writing
        into one, ``coefs_[i] = W`` or ``coefs_ = [...]`` sets the weights (same shapes).
    intercepts_ : list of ndarray
        The bias vector of each layer: views into the network (settable as ``coefs_``).
    n_features_in_ : int
        The number of features seen in fit.
    feature_names_in_ : ndarray of str
        The feature names seen in fit (when X has string column names).
    n_iter_ : int
        The number of epochs run.
    n_layers_ : int
        The number of layers.
    n_outputs_ : int
        The number of outputs.
    out_activation_ : str
        "identity" (squared_error) or "exp" (poisson).

    See Also
    --------
    MLPClassifier : The classifier.
    fastact.MLP : The network it trains.
    sklearn.neural_network.MLPRegressor : The model it mirrors.

    Examples
    --------
    >>> from sklearn.datasets import make_regression
    >>> from fastact.sklearn import MLPRegressor
    >>> X, y = make_regression(n_samples=200, n_features=5, noise=1.0, random_state=0)
    >>> y = y / y.std()
    >>> reg = MLPRegressor(hidden_layer_sizes=(64,), activation="silu", tol=1e-3,
    ...                    learning_rate_init=0.01, random_state=0).fit(X, y)
    >>> reg.score(X, y) > 0.95
    True
    >>> reg.predict(X[:2]).shape
    (2,)
    """

    _parameter_constraints = {
        **_BaseMLP._parameter_constraints,
        "loss": [StrOptions({"squared_error", "poisson"})],
    }

    def __init__(
        self,
        loss="squared_error",
        hidden_layer_sizes=(100,),
        activation="relu",
        *,
        solver="adam",
        alpha=0.0001,
        batch_size="auto",
        learning_rate="constant",
        learning_rate_init=0.001,
        power_t=0.5,
        max_iter=200,
        shuffle=True,
        random_state=None,
        tol=1e-4,
        verbose=False,
        warm_start=False,
        momentum=0.9,
        nesterovs_momentum=True,
        early_stopping=False,
        validation_fraction=0.1,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
        n_iter_no_change=10,
        max_fun=15000,
        init="sklearn",
        dtype=np.float32,
        batchnorm=None,
        dropout=0.0,
        residual=False,
        n_threads=None,
    ):
        self.loss = loss
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.max_fun = max_fun
        self.init = init
        self.dtype = dtype
        self.batchnorm = batchnorm
        self.dropout = dropout
        self.residual = residual
        self.n_threads = n_threads

    def _validate_input(self, X, y, incremental, reset):
        X, y = validate_data(
            self,
            X,
            y,
            accept_sparse=["csr", "csc"],
            multi_output=True,
            y_numeric=True,
            dtype=(np.float64, np.float32),
            reset=reset,
        )
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        if self.loss == "poisson" and np.any(y < 0):
            raise ValueError("MLPRegressor: loss='poisson' requires y >= 0.")
        return X, y

    def _gradient_and_loss(self, z, y, sw):
        if self.out_activation_ == "exp":
            p = np.exp(z)
            loss = _loss_fn("poisson")(y, p, sw)
        else:
            p = z
            loss = _loss_fn("squared_error")(y, p, sw)
        G = p - y
        if sw is not None:
            G *= sw.reshape(-1, 1)
        return G, loss

    def fit(self, X, y, sample_weight=None):
        """Fit the model to data matrix X and target(s) y.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            The target values.
        sample_weight : array-like of shape (n_samples,), optional
            Per-sample weights; None: all 1.

        Returns
        -------
        MLPRegressor
            The fitted estimator.
        """
        self._validate_params()
        return self._fit(X, y, sample_weight=sample_weight, incremental=False)

    @available_if(lambda est: est._check_solver())
    def partial_fit(self, X, y, sample_weight=None):
        """Update the model with one epoch over (X, y).

        Only with solver="sgd" or "adam".

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            The target values.
        sample_weight : array-like of shape (n_samples,), optional
            Per-sample weights; None: all 1.

        Returns
        -------
        MLPRegressor
            The updated estimator.
        """
        self._validate_params()
        return self._fit(X, y, sample_weight=sample_weight, incremental=True)

    def predict(self, X):
        """Predict using the multi-layer perceptron model.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.

        Returns
        -------
        ndarray of shape (n_samples,) or (n_samples, n_outputs)
            The predicted values.
        """
        check_is_fitted(self)
        return self._predict(X)

    def _predict(self, X, check_input=True):
        y_pred = self._output(X, check_input)
        if y_pred.shape[1] == 1:
            return y_pred.ravel()
        return y_pred

    def _score(self, X, y, sample_weight=None):
        return self._score_with_function(X, y, sample_weight, r2_score)
