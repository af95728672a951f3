"""The activation table: one row per activation, shared by both backends.

A row says what the activation is (formula, derivative), which parameters it
takes with their defaults (PyTorch's), what its backward needs (`saves`:
the forward "input" or "output"), and how its parameters become the
(a, b, c, d) of the native kernels.  `fastact.ACTIVATIONS` and
`fastact.reference.ACTIVATIONS` are built from it, each with its own
forward/backward callables; a test checks that both expose the same names.

Adding an activation: the C math (src/fa_acts.h) and list entry
(src/fa_kernels.h), a row here, the public functions in fastact/_api.py
(and the name in fastact/__init__.py's _PUBLIC), the NumPy twin in
fastact/reference.py, and its docstring example in fastact/_docs.py (EXAMPLES; the
docstring itself is made from this row).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from . import _validate as V

REQUIRED = inspect.Parameter.empty


@dataclass(frozen=True)
class Activation:
    """One activation of the registry: ``fastact.ACTIVATIONS[name]``.

    Made by fastact from its table (one row per activation), once for each backend;
    calling it calls the forward function.

    Parameters
    ----------
    name : str
        The public name, e.g. "gelu": ``fastact.gelu`` and ``fastact.gelu_backward``.
    params : Mapping[str, object]
        The activation's parameters and their defaults (PyTorch's); a required one
        (prelu's weight) has ``inspect.Parameter.empty``.
    saves : {"input", "output"}
        What the backward takes as ``saved``: the forward's input x or output y.
    formula : str
        The forward, as text.
    derivative : str
        The derivative, as text (in y where the backward takes the output).
    forward : callable
        ``fastact.<name>`` (or ``fastact.reference.<name>``).
    backward : callable
        ``fastact.<name>_backward``.
    kind : {"elementwise", "rowwise"}, default "elementwise"
        "rowwise": the softmax family, along the last axis.

    See Also
    --------
    fastact.bias_act : Takes an Activation (or its name) for the dense epilogue.

    Examples
    --------
    >>> import numpy as np
    >>> import fastact
    >>> act = fastact.ACTIVATIONS["elu"]
    >>> act.saves, dict(act.params)
    ('output', {'alpha': 1.0})
    >>> act.formula
    'x if x > 0 else alpha * (exp(x) - 1)'
    >>> np.round(act(np.array([-1.0, 1.0])), 4)
    array([-0.6321,  1.    ])
    >>> sorted(n for n, a in fastact.ACTIVATIONS.items() if a.kind == "rowwise")
    ['log_softmax', 'softmax']
    """

    name: str
    params: Mapping[str, object]
    saves: str  # "input" or "output": what `<name>_backward` takes as `saved`
    formula: str
    derivative: str
    forward: Callable = field(repr=False, compare=False)
    backward: Callable = field(repr=False, compare=False)
    kind: str = "elementwise"  # or "rowwise" (softmax family: over the last axis)

    def __call__(self, x, **kwargs):
        return self.forward(x, **kwargs)


# name, parameters with defaults, saves, formula, derivative, kind
_ROWS = [
    ("identity", {}, "output", "x", "1", "elementwise"),
    ("sigmoid", {}, "output", "1 / (1 + exp(-x))", "y (1 - y)", "elementwise"),
    ("tanh", {}, "output", "tanh(x)", "1 - y^2", "elementwise"),
    ("relu", {}, "output", "max(x, 0)", "1 if y > 0 else 0", "elementwise"),
    (
        "leaky_relu",
        {"negative_slope": 0.01},
        "output",
        "x if x > 0 else negative_slope * x",
        "1 if y > 0 else negative_slope (needs negative_slope >= 0)",
        "elementwise",
    ),
    (
        "prelu",
        {"weight": REQUIRED},
        "input",
        "x if x > 0 else weight * x (weight per last-axis feature)",
        "d/dx: 1 if x > 0 else weight; d/dweight: 0 if x > 0 else x",
        "elementwise",
    ),
    (
        "elu",
        {"alpha": 1.0},
        "output",
        "x if x > 0 else alpha * (exp(x) - 1)",
        "1 if y > 0 else y + alpha (needs alpha >= 0)",
        "elementwise",
    ),
    (
        "selu",
        {},
        "output",
        "scale * (x if x > 0 else alpha * (exp(x) - 1)), "
        "alpha = 1.6732632423543772, scale = 1.0507009873554805",
        "scale if y > 0 else y + scale * alpha",
        "elementwise",
    ),
    (
        "celu",
        {"alpha": 1.0},
        "output",
        "x if x > 0 else alpha * (exp(x / alpha) - 1)",
        "1 if y > 0 else y / alpha + 1",
        "elementwise",
    ),
    (
        "gelu",
        {"approximate": "none"},
        "input",
        "x * Phi(x) = x/2 * erfc(-x / sqrt 2); "
        "approximate='tanh': x/2 * (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))",
        "Phi(x) + x phi(x) (tanh: the derivative of the approximation)",
        "elementwise",
    ),
    ("silu", {}, "input", "x * sigmoid(x)", "sigmoid(x) (1 + x (1 - sigmoid(x)))", "elementwise"),
    (
        "mish",
        {},
        "input",
        "x * tanh(softplus(x))",
        "tanh(sp) + x sigmoid(x) (1 - tanh(sp)^2), sp = softplus(x)",
        "elementwise",
    ),
    (
        "softplus",
        {"beta": 1.0, "threshold": 20.0},
        "input",
        "log(1 + exp(beta x)) / beta, or x where beta x > threshold",
        "sigmoid(beta x), or 1 where beta x > threshold",
        "elementwise",
    ),
    ("softsign", {}, "input", "x / (1 + |x|)", "1 / (1 + |x|)^2", "elementwise"),
    (
        "hardtanh",
        {"min_val": -1.0, "max_val": 1.0},
        "output",
        "clip(x, min_val, max_val)",
        "1 if min_val < y < max_val else 0",
        "elementwise",
    ),
    ("relu6", {}, "output", "clip(x, 0, 6)", "1 if 0 < y < 6 else 0", "elementwise"),
    (
        "hardsigmoid",
        {},
        "input",
        "clip(x / 6 + 1/2, 0, 1)",
        "1/6 if -3 < x < 3 else 0",
        "elementwise",
    ),
    (
        "hardswish",
        {},
        "input",
        "x * clip(x / 6 + 1/2, 0, 1)",
        "0 if x <= -3, x / 3 + 1/2 if -3 < x < 3, 1 if x >= 3",
        "elementwise",
    ),
    ("log_sigmoid", {}, "input", "log(sigmoid(x)) = -softplus(-x)", "sigmoid(-x)", "elementwise"),
    (
        "softmax",
        {},
        "output",
        "exp(x - max) / sum(exp(x - max)) over the last axis",
        "y * (g - sum(g * y)) (a vector-Jacobian product)",
        "rowwise",
    ),
    (
        "log_softmax",
        {},
        "output",
        "x - max - log(sum(exp(x - max))) over the last axis",
        "g - exp(y) * sum(g) (a vector-Jacobian product)",
        "rowwise",
    ),
]

NAMES = tuple(r[0] for r in _ROWS)
# activations bias_act accepts: elementwise with scalar parameters
BIAS_ACT_NAMES = tuple(r[0] for r in _ROWS if r[5] == "elementwise" and r[0] != "prelu")
_SPEC = {r[0]: r for r in _ROWS}


def build(module) -> Mapping[str, Activation]:
    """The read-only name -> Activation mapping with `module`'s callables."""
    table = {}
    for name, params, saves, formula, deriv, kind in _ROWS:
        table[name] = Activation(
            name=name,
            params=MappingProxyType(dict(params)),
            saves=saves,
            formula=formula,
            derivative=deriv,
            forward=getattr(module, name),
            backward=getattr(module, name + "_backward"),
            kind=kind,
        )
    return MappingProxyType(table)


def check_bias_act_name(activation) -> str:
    if isinstance(activation, Activation):
        activation = activation.name
    if not isinstance(activation, str) or activation not in BIAS_ACT_NAMES:
        hint = ""
        if activation == "prelu":
            hint = " (prelu has a weight array: apply fastact.prelu to z + bias)"
        elif activation in ("softmax", "log_softmax"):
            hint = " (row-wise: apply fastact.%s to z + bias)" % activation
        raise ValueError(
            f"unknown activation {activation!r} for bias_act{hint}; valid names: "
            + ", ".join(BIAS_ACT_NAMES)
            + "."
        )
    return activation


def kernel_params(name: str, params: dict, func: str):
    """(kernel name, (a, b, c, d)) for an elementwise activation and its keyword parameters."""
    allowed = _SPEC[name][1]
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        takes = ", ".join(allowed) if allowed else "no parameters"
        raise TypeError(
            f"{func}: unexpected parameter(s) {', '.join(unknown)} for activation {name!r}; "
            f"it takes {takes}."
        )
    p = dict(allowed)
    p.update(params)
    try:
        return _kernel_params(name, p)
    except (ValueError, TypeError) as e:  # "elu: alpha must be ..." -> "MLP: elu: alpha ..."
        raise type(e)(f"{func}: {e}") from None


def _kernel_params(name, p):
    if name == "leaky_relu":
        return name, V.params_leaky_relu(p["negative_slope"])
    if name == "elu":
        return name, V.params_elu(p["alpha"])
    if name == "celu":
        return name, V.params_celu(p["alpha"])
    if name == "softplus":
        sp = V.params_softplus(p["beta"], p["threshold"])
        return V.softplus_kernel(sp), sp
    if name == "hardtanh":
        return name, V.params_hardtanh(p["min_val"], p["max_val"])
    if name == "relu6":
        return "hardtanh", (0.0, 6.0, 0.0, 0.0)
    if name == "gelu":
        approx = V.check_gelu_approximate(p["approximate"])
        return ("gelu_tanh" if approx == "tanh" else "gelu"), (0.0, 0.0, 0.0, 0.0)
    return name, (0.0, 0.0, 0.0, 0.0)


def saves(name: str) -> str:
    return _SPEC[name][2]
