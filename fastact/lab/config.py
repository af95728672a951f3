"""One configuration of the lab, its checks, and the networks and optimizers it builds.

A configuration is a frozen dataclass (picklable, hashable), so a sweep is a list of them
and a runner (serial, joblib, Dask) only ever ships `Config` objects and the data.

Depth counts hidden layers (dense + activation); the linear output layer comes on top, so
`depth=20` is `[n_in] + [width] * 20 + [n_classes]`.  Variants are "plain" or one or more
of "batchnorm" (before each hidden activation, as Ioffe & Szegedy place it),
"batchnorm_after", "dropout" (probability `dropout` after each hidden activation) and
"residual" (h + f(h) over every hidden layer whose widths match: all but the first),
joined with "+": "batchnorm+residual".  They map onto `fastact.MLP(batchnorm=...,
dropout=..., residual=...)` (Config.mlp_kwargs).
"""

from __future__ import annotations

import math
import numbers
from dataclasses import asdict, dataclass, replace

import numpy as np

import fastact
from fastact import nn as _nn
from fastact.nn.init import auto_scheme

# the lab's default activations: the classic bounded ones, the ReLU family (prelu: leaky
# ReLU with a learned slope per layer, starting at 0.25), the smooth ones
DEFAULT_ACTIVATIONS = (
    "sigmoid",
    "tanh",
    "relu",
    "leaky_relu",
    "prelu",
    "elu",
    "selu",
    "gelu",
    "silu",
)
DEFAULT_DEPTHS = (2, 5, 10, 20, 50)
INITS = tuple(_nn.INITS)
VARIANT_PARTS = ("batchnorm", "batchnorm_after", "dropout", "residual")
OPTIMIZERS = ("sgd", "momentum", "adam")
# the learning rate each optimizer gets unless one is given
DEFAULT_LR = {"sgd": 0.05, "momentum": 0.01, "adam": 1e-3}
DTYPES = ("float32", "float64")


@dataclass(frozen=True)
class Config:
    """One network of a sweep: what to build, train and time.

    A frozen dataclass (picklable, hashable): a sweep is a list of them, and a runner
    ships only Config objects and the data.  fastact.lab.run checks the values it makes
    configurations from; a Config made by hand is taken as it is.

    Parameters
    ----------
    activation : str
        The hidden layers' activation, a name of fastact.nn.MLP_ACTIVATIONS.
    init : str, default "auto"
        The weights' scheme, one of fastact.nn.INITS ("auto": the activation's match).
    depth : int, default 10
        The number of hidden layers (dense + activation); the linear output layer
        comes on top.
    variant : str, default "plain"
        "plain", or "batchnorm", "batchnorm_after", "dropout", "residual" joined with
        "+" (e.g. "batchnorm+residual").
    width : int, default 64
        Units per hidden layer.
    batch : int, default 128
        The batch size of the gradient figures and of training.
    steps : int, default 0
        Training steps (0: gradients at initialisation only).
    seed : int, default 0
        Weights, batches and dropout masks.
    optimizer : {"adam", "momentum", "sgd"}, default "adam"
        The training optimizer.
    lr : float, default 1e-3
        Its learning rate.
    dropout : float, default 0.5
        The drop probability of the "dropout" variants.
    dtype : {"float32", "float64"}, default "float32"
        Training and timing precision (the gradient figures are always float64).
    label : str, default ""
        A free text shown by presets (e.g. "+ BatchNorm"); not part of the maths.

    See Also
    --------
    fastact.lab.run_config : One configuration's record.
    fastact.lab.build_network : Its network.

    Examples
    --------
    >>> from fastact.lab import Config
    >>> cfg = Config("tanh", depth=3, width=8, variant="batchnorm+residual")
    >>> cfg.parts
    ('batchnorm', 'residual')
    >>> cfg.mlp_kwargs()
    {'batchnorm': 'before', 'residual': True}
    >>> cfg.init_scheme()
    'xavier_uniform'
    """

    activation: str
    init: str = "auto"
    depth: int = 10
    variant: str = "plain"
    width: int = 64
    batch: int = 128
    steps: int = 0
    seed: int = 0
    optimizer: str = "adam"
    lr: float = 1e-3
    dropout: float = 0.5
    dtype: str = "float32"
    label: str = ""

    def as_dict(self) -> dict:
        """Return the fields as a dict.

        Returns
        -------
        dict
            Field name -> value.
        """
        return asdict(self)

    def replace(self, **changes) -> Config:
        """Return a copy with some fields changed.

        Parameters
        ----------
        **changes
            Field name -> new value.

        Returns
        -------
        Config
            The new configuration.
        """
        return replace(self, **changes)

    @property
    def parts(self) -> tuple:
        """The variant's parts: ("batchnorm", "residual") for "batchnorm+residual"."""
        return variant_parts(self.variant)

    def mlp_kwargs(self) -> dict:
        """Return the keyword arguments of fastact.MLP for the variant.

        Returns
        -------
        dict
            batchnorm=, dropout=, residual= as the variant asks; empty for "plain".
        """
        kw = {}
        for part in self.parts:
            if part == "batchnorm":
                kw["batchnorm"] = "before"
            elif part == "batchnorm_after":
                kw["batchnorm"] = "after"
            elif part == "dropout":
                kw["dropout"] = float(self.dropout)
            elif part == "residual":
                kw["residual"] = True
        return kw

    def init_scheme(self) -> str:
        """Return the scheme the hidden layers get ("auto" resolved for the activation).

        Returns
        -------
        str
            A name of fastact.nn.INITS other than "auto".
        """
        return auto_scheme(self.activation) if self.init == "auto" else self.init


def variant_parts(variant: str) -> tuple:
    """("batchnorm", "residual") for "batchnorm+residual"; () for "plain"."""
    if variant == "plain":
        return ()
    return tuple(variant.split("+"))


# ---- argument checks (every message names the argument, the value and the fix) ---------


def _names(value, what: str) -> list:
    if isinstance(value, str):
        value = [v.strip() for v in value.split(",") if v.strip()]
    try:
        value = list(value)
    except TypeError:
        raise TypeError(
            f"lab: {what} must be a list of names or a comma-separated string; got {value!r}."
        ) from None
    if not value:
        raise ValueError(f"lab: {what} is empty; give at least one.")
    _no_repeats(value, what)
    return value


def _no_repeats(values, what: str) -> None:
    seen = []
    for v in values:
        if any(v == s and type(v) is type(s) for s in seen):
            raise ValueError(
                f"lab: {what} repeats {v!r}; give each once (a repeated entry would run "
                "the same networks twice and compare them with themselves)."
            )
        seen.append(v)


def check_activations(value) -> list:
    names = _names(value, "activations")
    valid = list(_nn.MLP_ACTIVATIONS)
    out = []
    for name in names:
        if not isinstance(name, str):
            raise TypeError(f"lab: activations must be names; got {name!r}.")
        try:  # the network is the judge of what a hidden layer may use
            fastact.MLP([2, 2, 2], name)
        except (ValueError, TypeError):
            raise ValueError(
                f"lab: unknown activation {name!r} for an MLP hidden layer; valid: "
                + ", ".join(valid)
                + "."
            ) from None
        out.append(name)
    return out


def check_inits(value) -> list:
    names = _names(value, "inits")
    for name in names:
        if name not in INITS:
            raise ValueError(f"lab: unknown init {name!r}; valid: {', '.join(INITS)}.")
    return names


def check_variants(value) -> list:
    names = _names(value, "variants")
    for name in names:
        if not isinstance(name, str) or not name:
            raise ValueError(f"lab: variants must be names; got {name!r}.")
        if name == "plain":
            continue
        parts = name.split("+")
        for p in parts:
            if p not in VARIANT_PARTS:
                raise ValueError(
                    f"lab: unknown variant {name!r}; valid: plain, or one or more of "
                    f"{', '.join(VARIANT_PARTS)} joined with '+' (e.g. 'batchnorm+residual')."
                )
        if len(set(parts)) != len(parts) or ("batchnorm" in parts and "batchnorm_after" in parts):
            raise ValueError(
                f"lab: variant {name!r} repeats a part (or puts BatchNorm both "
                "before and after the activation); give each part once."
            )
    seen = {}
    for name in names:  # the same parts in another order build the same network
        key = frozenset(name.split("+"))
        if key in seen:
            raise ValueError(
                f"lab: variants {seen[key]!r} and {name!r} are the same network (the "
                "parts' order does not matter); give it once."
            )
        seen[key] = name
    return names


def check_positive_ints(value, what: str, *, zero_ok=False) -> list:
    if isinstance(value, str):
        try:
            value = [int(v) for v in value.split(",") if v.strip()]
        except ValueError:
            raise ValueError(f"lab: {what} must be integers; got {value!r}.") from None
    if isinstance(value, numbers.Integral):
        value = [value]
    value = list(value)
    if not value:
        raise ValueError(f"lab: {what} is empty; give at least one.")
    for v in value:
        check_int(v, what, zero_ok=zero_ok)
    value = [int(v) for v in value]
    _no_repeats(value, what)
    return value


def check_int(v, what: str, *, zero_ok=False, hint="", high=None) -> int:
    low = 0 if zero_ok else 1
    if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < low:
        kind = "a non-negative" if zero_ok else "a positive"
        raise ValueError(f"lab: {what} must be {kind} integer{hint}; got {v!r}.")
    if high is not None and v >= high[0]:
        raise ValueError(f"lab: {what} must be below {high[1]}; got {v!r}.")
    return int(v)


def check_real(v, what: str, *, low=0.0, low_open=True, high=None, high_open=True) -> float:
    if isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(v):
        raise ValueError(f"lab: {what} must be a finite number; got {v!r}.")
    v = float(v)
    if (v <= low) if low_open else (v < low):
        raise ValueError(f"lab: {what} must be {'>' if low_open else '>='} {low}; got {v}.")
    if high is not None and ((v >= high) if high_open else (v > high)):
        raise ValueError(f"lab: {what} must be {'<' if high_open else '<='} {high}; got {v}.")
    return v


def check_optimizer(name) -> str:
    if not isinstance(name, str) or name not in OPTIMIZERS:
        raise ValueError(
            f"lab: unknown optimizer {name!r}; valid: {', '.join(OPTIMIZERS)} "
            "(momentum = SGD with momentum 0.9)."
        )
    return name


def check_dtype(dtype) -> str:
    try:
        name = np.dtype(dtype).name
    except TypeError:
        name = None
    if name not in DTYPES:
        raise ValueError(f"lab: dtype must be float32 or float64; got {dtype!r}.")
    return name


# ---- what a configuration builds ---------------------------------------------------------


def build_network(cfg: Config, n_in: int, n_classes: int, *, dtype=None, engine="fastact"):
    """Build the configuration's network, freshly initialised from cfg.seed.

    In training mode (batch statistics, dropout active).  A diverging run is a result
    the lab records (on_nonfinite="ignore"), not an error.

    Parameters
    ----------
    cfg : Config
        What to build.
    n_in : int
        The input width.
    n_classes : int
        The number of classes (the output width).
    dtype : str or numpy.dtype, optional
        The precision; default cfg.dtype.
    engine : {"fastact", "reference"}, default "fastact"
        fastact.MLP or its NumPy twin fastact.reference.MLP.

    Returns
    -------
    fastact.MLP
        ``[n_in] + [cfg.width] * cfg.depth + [n_classes]``, with the variant's options.

    See Also
    --------
    fastact.lab.make_optimizer : The configuration's optimizer.

    Examples
    --------
    >>> from fastact.lab import Config, build_network
    >>> net = build_network(Config("relu", depth=3, width=8), n_in=4, n_classes=2)
    >>> net.layer_sizes, net.training
    ((4, 8, 8, 8, 2), True)
    """
    cls = fastact.MLP if engine == "fastact" else fastact.reference.MLP
    sizes = [int(n_in)] + [cfg.width] * cfg.depth + [int(n_classes)]
    net = cls(
        sizes,
        cfg.activation,
        init=cfg.init,
        dtype=np.dtype(dtype or cfg.dtype),
        seed=cfg.seed,
        on_nonfinite="ignore",
        **cfg.mlp_kwargs(),
    )
    return net.train()


def make_optimizer(cfg: Config):
    """Make the configuration's optimizer.

    Parameters
    ----------
    cfg : Config
        Its optimizer and lr: "adam" is Adam(lr), "momentum" SGD(lr, momentum=0.9),
        "sgd" SGD(lr).

    Returns
    -------
    fastact.optim.Optimizer
        A new optimizer (one per network).

    Examples
    --------
    >>> from fastact.lab import Config, make_optimizer
    >>> make_optimizer(Config("relu", optimizer="momentum", lr=0.01))
    SGD(lr=0.01, momentum=0.9, nesterov=False, weight_decay=0.0, max_grad_norm=None)
    """
    if cfg.optimizer == "adam":
        return fastact.optim.Adam(lr=cfg.lr)
    if cfg.optimizer == "momentum":
        return fastact.optim.SGD(lr=cfg.lr, momentum=0.9)
    return fastact.optim.SGD(lr=cfg.lr)
