"""Optimizers for fastact.MLP: PyTorch's update formulas, run as fused native loops.

An optimizer holds its hyperparameters and, once used, the state of one
network (momentum buffer; Adam's first and second moments), as flat arrays
laid out like the network's parameters.  The state is allocated on the first
`net.train_step(X, y, optimizer)` and updated in place by the native step
afterwards; an optimizer serves one network (make one per network).

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
(torch.nn.utils.clip_grad_norm_); net.grads then holds the clipped values.
"""
from __future__ import annotations

import math
import numbers
import weakref

import numpy as np

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


class Optimizer:
    """Base class: hyperparameters, the state of one network, and the step count."""

    kind = ""           # "sgd", "adam", "adamw": the native update to run
    n_state = 0         # flat state arrays per network

    def __init__(self):
        self.t = 0                  # completed steps
        self.state = []             # n_state flat arrays, allocated on first use
        self._owner = None          # weak reference to the network's flat parameter array
        self._hyper = np.zeros(6, np.float64)

    def _bind(self, theta: np.ndarray) -> None:
        """Allocate the state for the network whose flat parameters are theta (first use),
        or check that it is that network."""
        owner = self._owner
        if owner is not None and owner() is theta:
            return
        if owner is None:
            self.state = [np.zeros_like(theta) for _ in range(self.n_state)]
            self._owner = weakref.ref(theta)
        else:
            raise ValueError(
                f"this {type(self).__name__} already holds the state of another network; "
                "create one optimizer per network.")

    def __repr__(self):
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.hparams().items())})"

    def hparams(self) -> dict:  # pragma: no cover - overridden
        raise NotImplementedError


class SGD(Optimizer):
    kind = "sgd"

    def __init__(self, lr, momentum=0.0, nesterov=False, weight_decay=0.0, max_grad_norm=None):
        super().__init__()
        self.lr = _number(lr, "lr", "SGD")
        self.momentum = _number(momentum, "momentum", "SGD")
        self.weight_decay = _number(weight_decay, "weight_decay", "SGD")
        if not isinstance(nesterov, (bool, np.bool_)):
            raise TypeError(f"SGD: nesterov must be True or False; got {nesterov!r}.")
        if nesterov and self.momentum == 0:
            raise ValueError("SGD: nesterov=True needs momentum > 0 (as in torch.optim.SGD).")
        self.nesterov = bool(nesterov)
        self.max_grad_norm = max_grad_norm
        self.n_state = 1 if self.momentum else 0
        self._hyper[:] = (self.lr, self.momentum, self.weight_decay, float(self.nesterov), 0.0,
                          _max_norm(max_grad_norm, "SGD"))

    def hparams(self):
        return {"lr": self.lr, "momentum": self.momentum, "nesterov": self.nesterov,
                "weight_decay": self.weight_decay, "max_grad_norm": self.max_grad_norm}


class Adam(Optimizer):
    kind = "adam"
    n_state = 2
    _default_wd = 0.0

    def __init__(self, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=None,
                 max_grad_norm=None):
        super().__init__()
        cls = type(self).__name__
        self.lr = _number(lr, "lr", cls)
        try:
            b1, b2 = betas
        except (TypeError, ValueError):
            raise ValueError(f"{cls}: betas must be a pair (beta1, beta2); got {betas!r}.") from None
        self.betas = (_number(b1, "betas[0]", cls, high=1.0), _number(b2, "betas[1]", cls, high=1.0))
        self.eps = _number(eps, "eps", cls)
        self.weight_decay = _number(self._default_wd if weight_decay is None else weight_decay,
                                    "weight_decay", cls)
        self.max_grad_norm = max_grad_norm
        self._hyper[:] = (self.lr, self.betas[0], self.betas[1], self.eps, self.weight_decay,
                          _max_norm(max_grad_norm, cls))

    def hparams(self):
        return {"lr": self.lr, "betas": self.betas, "eps": self.eps,
                "weight_decay": self.weight_decay, "max_grad_norm": self.max_grad_norm}


class AdamW(Adam):
    """Adam with decoupled weight decay (default 1e-2, as torch.optim.AdamW)."""
    kind = "adamw"
    _default_wd = 1e-2
