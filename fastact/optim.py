"""Optimizers for fastact.MLP: PyTorch's update formulas, run as fused native loops.

An optimizer holds its hyperparameters and, once used, the state of one
network (momentum buffer; Adam's first and second moments), as flat arrays
laid out like the network's parameters.  The state is allocated on the first
`net.train_step(X, y, optimizer)` and updated in place by the native step
afterwards; an optimizer serves one network (make one per network).  A copy
(copy.deepcopy, pickle) carries the hyperparameters, the step count and the state,
unbound: its first use binds it to a network of the same layout (a copy or a load of
the original), where training goes on bit for bit.

    SGD(lr, momentum=0, nesterov=False, weight_decay=0, max_grad_norm=None)
    Adam(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, max_grad_norm=None)
    AdamW(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, max_grad_norm=None)

Formulas (torch.optim, dampening 0, maximize False, amsgrad False):
    SGD:   g = grad + wd p;  buf = g (first step) or momentum buf + g;
           g = g + momentum buf (nesterov) or buf;  p -= lr g
    Adam:  g = grad + wd p;  m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;
           p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
    AdamW: p *= 1 - lr wd, then Adam with wd = 0
max_grad_norm: before the update, the gradients of all layers are scaled by
max_grad_norm / (norm + 1e-6) when their global L2 norm exceeds max_grad_norm
(``torch.nn.utils.clip_grad_norm_``); net.grads then holds the clipped values.
"""

from __future__ import annotations

import math
import numbers
import weakref

import numpy as np

from ._plumbing import aligned_zeros

__all__ = ["SGD", "Adam", "AdamW", "Optimizer"]


def _number(value, name: str, cls: str, *, low=0.0, low_open=False, high=None) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ValueError(f"{cls}: {name} must be a finite real number; got {value!r}.")
    v = float(value)
    if (v <= low) if low_open else (v < low):
        raise ValueError(f"{cls}: {name} must be {'>' if low_open else '>='} {low}; got {v}.")
    if high is not None and v >= high:
        raise ValueError(f"{cls}: {name} must be < {high}; got {v}.")
    return v


def _max_norm(value, cls: str):
    if value is None:
        return 0.0
    return _number(value, "max_grad_norm", cls, low=0.0, low_open=True)


class _Hyper:
    """A hyperparameter attribute: validated on assignment and written into the array the
    native update reads, so `opt.lr = 0.01` (a schedule) takes effect at the next step."""

    def __init__(self, index, check):
        self.index, self.check = index, check

    def __set_name__(self, owner, name):
        self.name = name

    def __get__(self, obj, objtype=None):
        if obj is None:
            return self
        return obj.__dict__[self.name]

    def __set__(self, obj, value):
        cls = type(obj).__name__
        stored, native = self.check(value, self.name, cls, obj)
        obj.__dict__[self.name] = stored
        obj._hyper[self.index] = native


def _lr_like(value, name, cls, obj):
    v = _number(value, name, cls)
    _check_in_dtype(v, name, obj.__dict__.get("_dtype"), cls)
    return v, v


def _check_in_dtype(v, name, dt, cls):
    """lr / weight_decay finite in the dtype the update runs in (checked when the
    optimizer is bound, and on assignment after): 1e39 is finite in double and inf in
    float32, and the update would write inf into the weights without a non-finite
    gradient to stop it"""
    if dt is not None and v > float(np.finfo(dt).max):
        raise ValueError(
            f"{cls}: {name}={v!r} is beyond {np.dtype(dt).name}'s range for a "
            f"{np.dtype(dt).name} network (the update would write inf into the weights)."
        )


def _clip(value, name, cls, obj):
    return value, _max_norm(value, cls)


_TINY = {np.dtype(np.float32): 2.0**-126, np.dtype(np.float64): 2.0**-1022}


def _check_eps_normal(v, dt, cls):
    """eps a normal number in the dtype the update runs in (dt: the network's, or None:
    double): with one that rounds or flushes to 0, a parameter whose gradient is exactly
    0 gets 0/0 = NaN"""
    where = "" if dt is None else f" for a {dt} network"
    dt = np.dtype(np.float64) if dt is None else dt
    if v < _TINY[dt]:
        raise ValueError(
            f"{cls}: eps must be at least {_TINY[dt]!r}{where} (the smallest normal {dt}: a "
            f"smaller one rounds or flushes to 0, and a parameter whose gradient is exactly "
            f"0 gets 0/0 = NaN); got {v!r}."
        )


def _eps(value, name, cls, obj):
    """eps > 0 and normal in the dtype of the network bound (else double)"""
    v = _number(value, name, cls, low=0.0, low_open=True)
    _check_eps_normal(v, obj.__dict__.get("_dtype"), cls)
    return v, v


def _momentum(value, name, cls, obj):
    v = _number(value, name, cls)
    if v == 0 and obj.__dict__.get("nesterov"):
        raise ValueError(f"{cls}: nesterov=True needs momentum > 0 (as in torch.optim.SGD).")
    holds = obj._owner is not None or obj.__dict__.get("state")  # (a copy's state too)
    if holds and (v != 0) != (obj.__dict__.get("momentum", 0.0) != 0):
        raise ValueError(
            f"{cls}: momentum cannot be switched on or off once the optimizer "
            "holds state; create a new optimizer."
        )
    return v, v


def _nesterov(value, name, cls, obj):
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{cls}: nesterov must be True or False; got {value!r}.")
    if value and obj.__dict__.get("momentum", 0.0) == 0:
        raise ValueError(f"{cls}: nesterov=True needs momentum > 0 (as in torch.optim.SGD).")
    return bool(value), float(bool(value))


def _betas(value, name, cls, obj):
    try:
        b1, b2 = value
    except (TypeError, ValueError):
        raise ValueError(f"{cls}: betas must be a pair (beta1, beta2); got {value!r}.") from None
    b = (_number(b1, "betas[0]", cls, high=1.0), _number(b2, "betas[1]", cls, high=1.0))
    obj._hyper[2] = b[1]
    return b, b[0]


class Optimizer:
    """The base class of the optimizers: hyperparameters, one network's state, step count.

    Hyperparameters are attributes that may be changed between steps (a learning-rate
    schedule: ``opt.lr = ...``); each assignment is validated.  The state (momentum
    buffer, Adam's moments) is allocated on the first ``net.train_step(X, y, opt)``, laid
    out like the network's flat parameters, and updated in place by the native step; an
    optimizer serves one network.

    Attributes
    ----------
    t : int
        The number of completed steps.
    state : list of ndarray
        The optimizer's flat state arrays (empty until first used).

    See Also
    --------
    SGD, Adam, AdamW : The optimizers.

    Examples
    --------
    >>> import fastact
    >>> opt = fastact.optim.Adam(lr=0.01)
    >>> isinstance(opt, fastact.optim.Optimizer), opt.t
    (True, 0)
    >>> opt.lr = 0.005          # a schedule: takes effect at the next step
    >>> opt
    Adam(lr=0.005, betas=(0.9, 0.999), eps=1e-08, weight_decay=0.0, max_grad_norm=None)
    """

    kind = ""  # "sgd", "adam", "adamw": the native update to run
    n_state = 0  # flat state arrays per network

    def __init__(self):
        if type(self) is Optimizer:
            raise TypeError(
                "Optimizer is the base class of fastact.optim's optimizers; use SGD, Adam "
                "or AdamW (the native step runs their updates only)."
            )
        self.t = 0  # completed steps
        self.state = []  # n_state flat arrays, allocated on first use
        self._owner = None  # weak reference to the network's flat parameter array
        self._hyper = np.zeros(6, np.float64)

    def __setattr__(self, name, value):
        """A misspelt or foreign hyperparameter (`opt.learning_rate = ...`, an Adam's
        `momentum`) is an error: silently ignored, it would leave the schedule a no-op."""
        if not name.startswith("_") and name not in ("t", "state"):
            if not isinstance(getattr(type(self), name, None), _Hyper):
                names = [k for k in dir(type(self)) if isinstance(getattr(type(self), k), _Hyper)]
                raise AttributeError(
                    f"{type(self).__name__} has no hyperparameter {name!r}; its "
                    f"hyperparameters are {', '.join(sorted(names))}."
                )
        super().__setattr__(name, value)

    def __getstate__(self):
        """copy.deepcopy and pickle: the hyperparameters, the step count and the state,
        not bound to a network (the network is not copied with it): the copy's first use
        binds it to a network of the same layout, e.g. a copy or a load of the original,
        and training goes on bit for bit."""
        d = self.__dict__.copy()
        d["_owner"] = None
        return d

    def _bind(self, theta: np.ndarray, layout=None) -> None:
        """Allocate the state for the network whose flat parameters are theta (first use),
        adopt a copied optimizer's state (the same layout: the parameters' names, offsets
        and shapes, when the network gives it), or check that it is that network."""
        if self.kind not in ("sgd", "adam", "adamw"):
            raise TypeError(
                f"{type(self).__name__} is not one of fastact's optimizers (SGD, Adam, "
                "AdamW): the native step runs only their updates."
            )
        owner = self._owner
        if owner is not None and owner() is theta:
            return
        if owner is None:
            if "eps" in self.__dict__:  # (set while unbound: checked in double)
                _check_eps_normal(self.eps, theta.dtype, type(self).__name__)
            for name in ("lr", "weight_decay"):
                _check_in_dtype(self.__dict__[name], name, theta.dtype, type(self).__name__)
            if self.state:  # a copy's state, carried over
                mine = self.__dict__.get("_layout")
                if any(s.shape != theta.shape or s.dtype != theta.dtype for s in self.state) or (
                    layout is not None and mine is not None and layout != mine
                ):
                    same = (self.state[0].size, self.state[0].dtype) == (theta.size, theta.dtype)
                    what = (
                        f"the same {theta.size} {theta.dtype} in its flat array, in other "
                        "layers' shapes"
                        if same
                        else f"{self.state[0].size} {self.state[0].dtype} in its flat array; "
                        f"this network's has {theta.size} {theta.dtype}"
                    )
                    raise ValueError(
                        f"this {type(self).__name__} (a copy) holds the state of a network "
                        f"with another parameter layout ({what}): create a new optimizer."
                    )
                state = [aligned_zeros(theta.shape, theta.dtype) for _ in self.state]
                for a, b in zip(state, self.state):
                    a[...] = b
                self.state = state
            else:
                self.state = [aligned_zeros(theta.shape, theta.dtype) for _ in range(self.n_state)]
            self._owner = weakref.ref(theta)
            self._layout = layout
            self._dtype = theta.dtype
        elif owner() is None:
            raise ValueError(
                f"this {type(self).__name__} holds the state of a network that no longer "
                "exists; create a new optimizer for this network."
            )
        else:
            raise ValueError(
                f"this {type(self).__name__} already holds the state of another network; "
                "create one optimizer per network."
            )

    def __repr__(self):
        return (
            f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.hparams().items())})"
        )

    def hparams(self) -> dict:  # pragma: no cover - overridden
        """Return the hyperparameters by name.

        Returns
        -------
        dict
            The constructor's arguments, as they are now.
        """
        raise NotImplementedError


class SGD(Optimizer):
    """Stochastic gradient descent with momentum, Nesterov and weight decay (torch.optim.SGD).

    ``g = grad + weight_decay p``; with momentum, ``buf = g`` (first step) or
    ``momentum buf + g``, then ``g = g + momentum buf`` (nesterov) or ``buf``;
    ``p -= lr g``.  Dampening 0.

    Parameters
    ----------
    lr : float
        The learning rate, finite, >= 0.
    momentum : float, default 0.0
        The momentum factor, >= 0; it cannot be switched on or off once the optimizer
        holds state.
    nesterov : bool, default False
        Nesterov momentum (needs momentum > 0).
    weight_decay : float, default 0.0
        L2 penalty added to the gradient, >= 0.
    max_grad_norm : float, optional
        Clip the global L2 norm of all the gradients to this (> 0) before the update
        (``torch.nn.utils.clip_grad_norm_``); None: no clipping.

    Raises
    ------
    TypeError
        If nesterov is not a bool.
    ValueError
        If a hyperparameter is not a finite number in range, or nesterov is True
        without momentum.

    See Also
    --------
    Adam, AdamW : Adaptive moments.

    Examples
    --------
    >>> import numpy as np
    >>> import fastact
    >>> opt = fastact.optim.SGD(lr=0.1, momentum=0.9, nesterov=True)
    >>> net = fastact.MLP([2, 4, 2])
    >>> loss = net.train_step(np.ones((3, 2), np.float32), np.array([0, 1, 0]), opt)
    >>> opt.t, len(opt.state)
    (1, 1)
    """

    kind = "sgd"
    # _hyper: lr, momentum, weight_decay, nesterov, -, max_grad_norm
    lr = _Hyper(0, _lr_like)
    momentum = _Hyper(1, _momentum)
    weight_decay = _Hyper(2, _lr_like)
    nesterov = _Hyper(3, _nesterov)
    max_grad_norm = _Hyper(5, _clip)

    def __init__(self, lr, momentum=0.0, nesterov=False, weight_decay=0.0, max_grad_norm=None):
        super().__init__()
        self.lr = lr
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.nesterov = nesterov
        self.max_grad_norm = max_grad_norm

    @property
    def n_state(self):
        """The number of flat state arrays: 1 with momentum (its buffer), else 0."""
        return 1 if self.momentum else 0

    def hparams(self):
        """Return the hyperparameters by name.

        Returns
        -------
        dict
            lr, momentum, nesterov, weight_decay, max_grad_norm.
        """
        return {
            "lr": self.lr,
            "momentum": self.momentum,
            "nesterov": self.nesterov,
            "weight_decay": self.weight_decay,
            "max_grad_norm": self.max_grad_norm,
        }


class Adam(Optimizer):
    """Adam (torch.optim.Adam, amsgrad False), with optional L2 weight decay and clipping.

    ``g = grad + weight_decay p``; ``m = b1 m + (1 - b1) g``; ``v = b2 v + (1 - b2) g^2``;
    ``p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)``.

    Parameters
    ----------
    lr : float, default 1e-3
        The learning rate, finite, >= 0.
    betas : (float, float), default (0.9, 0.999)
        The decay rates of the first and second moments, each in [0, 1).
    eps : float, default 1e-8
        Added to the denominator, > 0 (torch.optim allows 0, which gives 0/0 = NaN for
        every parameter whose gradient is exactly 0, e.g. a dead unit's).
    weight_decay : float, optional
        L2 penalty added to the gradient, >= 0; None: the class's default (0 for Adam,
        1e-2 for AdamW).
    max_grad_norm : float, optional
        Clip the global L2 norm of all the gradients to this (> 0) before the update;
        None: no clipping.

    Raises
    ------
    ValueError
        If a hyperparameter is not a finite number in range, or betas is not a pair.

    See Also
    --------
    AdamW : Adam with decoupled weight decay.
    SGD : Plain, momentum or Nesterov gradient descent.

    Examples
    --------
    >>> import fastact
    >>> opt = fastact.optim.Adam(lr=1e-2, betas=(0.9, 0.99))
    >>> opt.hparams()["betas"]
    (0.9, 0.99)
    """

    kind = "adam"
    n_state = 2
    _default_wd = 0.0
    # _hyper: lr, beta1, beta2, eps, weight_decay, max_grad_norm
    lr = _Hyper(0, _lr_like)
    betas = _Hyper(1, _betas)
    eps = _Hyper(3, _eps)
    weight_decay = _Hyper(4, _lr_like)
    max_grad_norm = _Hyper(5, _clip)

    def __init__(
        self, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=None, max_grad_norm=None
    ):
        super().__init__()
        self.lr = lr
        self.betas = betas
        self.eps = eps
        self.weight_decay = self._default_wd if weight_decay is None else weight_decay
        self.max_grad_norm = max_grad_norm

    def hparams(self):
        """Return the hyperparameters by name.

        Returns
        -------
        dict
            lr, betas, eps, weight_decay, max_grad_norm.
        """
        return {
            "lr": self.lr,
            "betas": self.betas,
            "eps": self.eps,
            "weight_decay": self.weight_decay,
            "max_grad_norm": self.max_grad_norm,
        }


class AdamW(Adam):
    """Adam with decoupled weight decay (torch.optim.AdamW).

    ``p *= 1 - lr weight_decay``, then Adam's update without weight decay.

    Parameters
    ----------
    lr : float, default 1e-3
        The learning rate, finite, >= 0.
    betas : (float, float), default (0.9, 0.999)
        The decay rates of the first and second moments, each in [0, 1).
    eps : float, default 1e-8
        Added to the denominator, > 0 (torch.optim allows 0, which gives 0/0 = NaN for
        every parameter whose gradient is exactly 0, e.g. a dead unit's).
    weight_decay : float, optional
        The decoupled decay, >= 0; None: 1e-2 (torch.optim.AdamW's default).
    max_grad_norm : float, optional
        Clip the global L2 norm of all the gradients to this (> 0) before the update.

    Raises
    ------
    ValueError
        If a hyperparameter is not a finite number in range, or betas is not a pair.

    See Also
    --------
    Adam : The update without decoupled decay.

    Examples
    --------
    >>> import fastact
    >>> fastact.optim.AdamW().weight_decay
    0.01
    """

    kind = "adamw"
    _default_wd = 1e-2
