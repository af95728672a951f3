"""Layer objects: what a network is made of.

A layer only *describes* its part of the network (widths, parameters, options);
`Sequential` turns the list into a program of native ops (fastact/nn/program.py)
that one native call runs forward and backward.  Each layer knows its output
width from its input width and checks its options when it is built, so a network
checks its own wiring before it sees data.

    Dense(n_out, activation=None, *, init=None)   y = act(x @ W + b); "prelu" learns its slope
    BatchNorm(activation=None, *, momentum=0.1, eps=1e-5)
                                                  y = act(gamma xhat + beta) (BatchNorm1d)
    Dropout(p)                                    inverted dropout, identity in evaluation
    ActivationLayer(activation)                   y = act(x)
    Residual(layers)                              y = x + f(x), f = the layers in order
"""

from __future__ import annotations

import math
import numbers
import sys

import numpy as np

from .. import _registry as R

__all__ = [
    "Layer",
    "Dense",
    "BatchNorm",
    "Dropout",
    "ActivationLayer",
    "Residual",
    "check_activation",
    "MLP_ACTIVATIONS",
]

# hidden-layer activations of a network: the elementwise ones with scalar parameters, and
# prelu with learnable slopes (one per layer, or one per unit)
MLP_ACTIVATIONS = tuple(R.BIAS_ACT_NAMES) + ("prelu",)
PRELU_INIT = 0.25  # torch.nn.PReLU's initial slope


def check_activation(activation, where: str, allow_none: bool = False, functional=False):
    """(name, params dict, kernel name, kernel params) from a name, an ACTIVATIONS entry,
    or (name, {params}); None is the identity where allow_none.  prelu's params:
    {"per_unit": bool, "init": float}."""
    params = {}
    if activation is None and allow_none:
        activation = "identity"
    if isinstance(activation, tuple) and len(activation) == 2 and isinstance(activation[1], dict):
        activation, params = activation
    if isinstance(activation, R.Activation):
        activation = activation.name
    if not isinstance(activation, str) or activation not in MLP_ACTIVATIONS:
        hint = ""
        if activation in ("softmax", "log_softmax") and functional:
            hint = f" (row-wise: apply fastact.{activation} to the layer's output)"
        elif activation in ("softmax", "log_softmax"):
            hint = " (row-wise: use loss='softmax_cross_entropy' for a softmax output)"
        # (the functional layers take no learnable prelu: a network option)
        valid = [a for a in MLP_ACTIVATIONS if not (functional and a == "prelu")]
        raise ValueError(
            f"{where}: unknown activation {activation!r}{hint}; valid names: "
            + ", ".join(valid)
            + "."
        )
    if activation == "prelu":
        bad = set(params) - {"per_unit", "init"}
        if bad:
            raise ValueError(
                f"{where}: prelu takes the parameters 'per_unit' (bool) and "
                f"'init' (the initial slope); got {sorted(bad)}."
            )
        per_unit = params.get("per_unit", False)
        if not isinstance(per_unit, (bool, np.bool_)):
            raise ValueError(f"{where}: prelu's per_unit must be True or False; got {per_unit!r}.")
        init = params.get("init", PRELU_INIT)
        if isinstance(init, bool) or not isinstance(init, numbers.Real) or not np.isfinite(init):
            raise ValueError(
                f"{where}: prelu's init must be a finite number (the initial slope); got {init!r}."
            )
        return "prelu", dict(params), "prelu", (float(init), 0.0, 0.0, 0.0)
    kname, p = R.kernel_params(activation, dict(params), where)
    if activation in ("leaky_relu", "elu") and p[0] < 0:
        pname = "negative_slope" if activation == "leaky_relu" else "alpha"
        raise ValueError(
            f"{where}: {activation} with {pname}={p[0]} < 0 cannot be differentiated from the "
            "saved output (the sign of the output no longer tells the side of the kink), and "
            f"the layer's backward reads the output; use {pname} >= 0 (or 'prelu')."
        )
    return activation, dict(params), kname, tuple(float(v) for v in p)


def _act_config(name, params):
    return [name, {k: (v.item() if isinstance(v, np.generic) else v) for k, v in params.items()}]


class Layer:
    """The base class of the layers: what Sequential compiles into native ops.

    A layer describes its part of the network (widths, parameters, options);
    ``_build(b, x, path, ctx)`` adds its parameters, state and ops to the program
    builder b for the input tensor x and returns its output tensor.  Two layers are
    equal when their configurations are.

    See Also
    --------
    fastact.nn.Dense, fastact.nn.BatchNorm, fastact.nn.Dropout : Layers.
    fastact.nn.ActivationLayer, fastact.nn.Residual : Layers.

    Examples
    --------
    >>> import fastact
    >>> from fastact.nn import Dense, Layer
    >>> isinstance(Dense(4), Layer)
    True
    >>> Dense(4, "relu") == Dense(4, "relu")
    True
    """

    kind = "layer"

    def config(self) -> dict:
        """Return the layer's configuration (what rebuilds it), JSON-able.

        Returns
        -------
        dict
            "kind" and the constructor's arguments.
        """
        raise NotImplementedError

    def __repr__(self):
        """The constructor call that makes this layer (activations as a name, or (name,
        {parameters}))"""

        def arg(k, v):
            if k in ("activation", "init_activation") and isinstance(v, list):
                return repr(v[0] if not v[1] else (v[0], v[1]))
            return repr(v)

        cfg = self.config()
        args = ", ".join(f"{k}={arg(k, v)}" for k, v in cfg.items() if k != "kind")
        return f"{type(self).__name__}({args})"

    def __eq__(self, other):
        return type(self) is type(other) and self.config() == other.config()

    __hash__ = None


def _emit_activation(b, ctx, x, name, params, kname, p, bias, where_row, act_op, path):
    """The bias (+ activation) pass after a GEMM, or an activation alone: returns
    (output tensor, op index)."""
    from ._engine_support import max_derivative

    n = b.widths[x]
    if name == "prelu":
        shape = (n,) if params.get("per_unit", False) else (1,)
        slope = b.param(path + ".slope", shape, ("fill", p[0]), path)
        y = b.tensor(n)
        i = b.op(
            "prelu",
            path=path,
            in_=x,
            out=y,
            k=n,
            n=n,
            b=-1 if bias is None else bias.offset,
            slope=slope.offset,
            per_unit=int(bool(params.get("per_unit", False))),
            kname="identity",
            diag=where_row,
            act_op=act_op,
            thr=1e-3 * max(1.0, abs(p[0])),
        )
        return y, i
    saves_in = R.saves(name) == "input" if name != "identity" else False
    # an output-saving activation writes over its input only where no backward reads
    # that input: a GEMM's output (or a linear bias pass over one); after another
    # activation, a BatchNorm, an add or the network's input it gets a tensor of its own
    producer = next((o for o in reversed(b.ops) if o.out == x), None) if x > 0 else None
    over = producer is not None and (
        producer.kind == "gemm" or (producer.kind == "bias_act" and producer.kname == "identity")
    )
    y = b.tensor(n, alias=x if over and not saves_in else -1)
    i = b.op(
        "bias_act",
        path=path,
        in_=x,
        out=y,
        k=n,
        n=n,
        b=-1 if bias is None else bias.offset,
        kname=kname,
        p=p,
        saves_in=int(saves_in),
        diag=where_row,
        act_op=act_op,
        thr=1e-3 * max_derivative(kname, p, "input" if saves_in else "output"),
    )
    return y, i


class Dense(Layer):
    """A dense layer: ``y = act(x @ W + b)``, W of shape (n_in, n_out).

    n_in is the width of the layer's input, known when the network is built.

    Parameters
    ----------
    n_out : int
        The number of units, positive.
    activation : str, Activation, (str, dict) or None, default None
        None (linear), a name of fastact.nn.MLP_ACTIVATIONS, an ACTIVATIONS entry,
        (name, {parameters}), or "prelu" / ("prelu", {"per_unit": True, "init": 0.25})
        for a learnable slope (one per layer or per unit, starting at 0.25).
    init : str, optional
        The weights' scheme, one of fastact.nn.INITS; None: the network's.
    init_activation : str, Activation or (str, dict), optional
        The activation whose gain the init uses, when it is not this layer's: MLP gives a
        linear Dense followed by BatchNorm(act) the gain of act.  None: this layer's.

    Raises
    ------
    ValueError
        If n_out is not a positive integer, the activation is unknown (or leaky_relu/elu
        with a negative slope, whose backward reads the output), or init is unknown.

    See Also
    --------
    fastact.nn.dense_forward : The same layer, one call at a time.

    Examples
    --------
    >>> import fastact
    >>> from fastact.nn import Dense
    >>> Dense(64, ("leaky_relu", {"negative_slope": 0.2}), init="he_normal")
    Dense(n_out=64, activation=('leaky_relu', {'negative_slope': 0.2}), init='he_normal')
    >>> net = fastact.Sequential([Dense(8, "prelu"), Dense(2)], n_in=3)
    >>> sorted(net.state_dict())
    ['0.W', '0.b', '0.slope', '1.W', '1.b']
    """

    kind = "dense"

    def __init__(self, n_out, activation=None, *, init=None, init_activation=None):
        if isinstance(n_out, bool) or not isinstance(n_out, numbers.Integral) or n_out < 1:
            raise ValueError(f"Dense: n_out must be a positive integer; got {n_out!r}.")
        from .init import INITS

        if init is not None and (not isinstance(init, str) or init not in INITS):
            raise ValueError(f"Dense: unknown init {init!r}; valid: {', '.join(INITS)}.")
        self.n_out = int(n_out)
        self.activation, self.params, self._kname, self._p = check_activation(
            activation, "Dense", allow_none=True
        )
        self.init = init
        self._init_act = None  # (name, params) whose gain the weights use, if not ours
        if init_activation is not None:
            a, prm, _, _ = check_activation(init_activation, "Dense (init_activation)")
            self._init_act = (a, prm)

    def config(self):
        """Return the layer's configuration (what rebuilds it), JSON-able.

        Returns
        -------
        dict
            "kind" and the constructor's arguments.
        """
        cfg = {
            "kind": "dense",
            "n_out": self.n_out,
            "activation": _act_config(self.activation, self.params),
            "init": self.init,
        }
        if self._init_act is not None:
            cfg["init_activation"] = _act_config(*self._init_act)
        return cfg

    def _build(self, b, x, path, ctx):
        from ._engine_support import blas_dim

        k, n = b.widths[x], self.n_out
        blas_dim(n, "a layer width", "Dense")
        b.settle_pending()
        gain_of = self._init_act or (self.activation, self.params)
        W = b.param(
            path + ".W", (k, n), ("weight", self.init or ctx["init"], gain_of), path, align=True
        )
        bias = b.param(path + ".b", (n,), ("fill", 0.0), path)
        b.dense_params.append((W, bias))
        row = len(b.diag_rows)
        b.diag_rows.append(
            {"activation": self.activation, "shape": (k, n), "batchnorm": False, "path": path}
        )
        z = b.tensor(n)
        b.op("gemm", path=path, in_=x, out=z, k=k, n=n, w=W.offset, diag=row)
        linear = self.activation == "identity"
        y, i = _emit_activation(
            b,
            ctx,
            z,
            self.activation,
            self.params,
            self._kname,
            self._p,
            bias,
            row,
            0 if linear else 1,
            path,
        )
        if linear:
            b.pending = i
        return y


class ActivationLayer(Layer):
    """An activation on its own: ``y = act(x)``, elementwise.

    After a linear Dense layer it is fused into that layer's bias pass.

    Parameters
    ----------
    activation : str, Activation, (str, dict) or None
        As for Dense; "prelu" learns its slope; None is the identity.

    Raises
    ------
    ValueError
        If the activation is unknown or row-wise.

    See Also
    --------
    fastact.nn.Dense : A dense layer with its activation.

    Examples
    --------
    >>> import fastact
    >>> from fastact.nn import ActivationLayer, Dense
    >>> net = fastact.Sequential([Dense(4), ActivationLayer("tanh"), Dense(2)], n_in=3)
    >>> net.layers[1]
    ActivationLayer(activation='tanh')
    """

    kind = "activation"

    def __init__(self, activation):
        self.activation, self.params, self._kname, self._p = check_activation(
            activation, "ActivationLayer", allow_none=True
        )

    def config(self):
        """Return the layer's configuration (what rebuilds it), JSON-able.

        Returns
        -------
        dict
            "kind" and the constructor's arguments.
        """
        return {"kind": "activation", "activation": _act_config(self.activation, self.params)}

    def _build(self, b, x, path, ctx):
        row, act_op = -1, 0
        if b.pending is not None and self.activation != "identity":
            row, act_op = b.ops[b.pending].diag, 1
            b.diag_rows[row]["activation"] = self.activation
            b.pending = None
        y, _ = _emit_activation(
            b, ctx, x, self.activation, self.params, self._kname, self._p, None, row, act_op, path
        )
        return y


class BatchNorm(Layer):
    """Batch normalisation over the rows (PyTorch BatchNorm1d), then an optional activation.

    The activation runs in the same pass.  Training: normalise with the batch mean and
    biased variance; running_mean and running_var (starting at 0 and 1) move towards the
    batch mean and *unbiased* variance by `momentum`.  Evaluation: normalise with the
    running statistics.  gamma (1) and beta (0) are learned.  Statistics accumulate in
    double.

    Parameters
    ----------
    activation : str, Activation, (str, dict) or None, default None
        As for Dense; None: no activation.
    momentum : float, default 0.1
        How far the running statistics move per training step, in [0, 1].
    eps : float, default 1e-5
        Added to the variance; > 0 and not subnormal (at least 2.2e-308).

    Raises
    ------
    ValueError
        If the activation is unknown, or momentum or eps is out of range.

    See Also
    --------
    fastact.nn.batchnorm_forward : The same, one call at a time.

    Examples
    --------
    >>> import fastact
    >>> from fastact.nn import BatchNorm, Dense
    >>> net = fastact.Sequential([Dense(4), BatchNorm("relu"), Dense(2)], n_in=3)
    >>> sorted(k for k in net.state_dict() if k.startswith("1."))
    ['1.beta', '1.gamma', '1.running_mean', '1.running_var']
    """

    kind = "batchnorm"

    def __init__(self, activation=None, *, momentum=0.1, eps=1e-5):
        self.activation, self.params, self._kname, self._p = check_activation(
            activation, "BatchNorm", allow_none=True
        )
        self.momentum, self.eps = check_bn_hyper(momentum, eps, "BatchNorm")

    def config(self):
        """Return the layer's configuration (what rebuilds it), JSON-able.

        Returns
        -------
        dict
            "kind" and the constructor's arguments.
        """
        return {
            "kind": "batchnorm",
            "activation": _act_config(self.activation, self.params),
            "momentum": self.momentum,
            "eps": self.eps,
        }

    def _build(self, b, x, path, ctx):
        from ._engine_support import max_derivative

        n = b.widths[x]
        # A linear dense layer's bias pass right before (MLP's batchnorm="before"): the
        # normalisation takes the shift out, so the op reads the GEMM's output and folds
        # the bias in (the running mean's, and evaluation's, shift; a gradient of exactly
        # 0 in training) instead of a pass of its own over the data.
        pre_b, claims = -1, None
        if b.pending is not None and b.pending == len(b.ops) - 1:
            po = b.ops[b.pending]
            if po.kind == "bias_act" and po.kname == "identity" and po.out == x and po.b >= 0:
                pre_b, x = po.b, po.in_
                b.ops.pop()
                claims, b.pending = b.pending, None
        gamma = b.param(path + ".gamma", (n,), ("fill", 1.0), path)
        beta = b.param(path + ".beta", (n,), ("fill", 0.0), path)
        rm = b.buffer(path + ".running_mean", n, 0.0, path)
        rv = b.buffer(path + ".running_var", n, 1.0, path)
        stat = b.n_stats
        b.n_stats += 4 * n
        # the diagnostics row: the dense layer this normalises (gamma/beta norms there);
        # it takes over the layer's activation columns when it applies the activation
        row = len(b.diag_rows) - 1 if b.diag_rows else -1
        if row >= 0:
            b.diag_rows[row]["batchnorm"] = True
        act_op = 0
        has_act = self.activation != "identity"
        if has_act and (b.pending is not None or claims is not None):
            act_op = 1
            b.diag_rows[row]["activation"] = self.activation
            b.pending = claims = None
        fused = self.activation != "prelu"
        kname = self._kname if fused else "identity"
        saves_in = fused and has_act and R.saves(self.activation) == "input"
        aux = b.tensor(n) if saves_in else -1
        y = b.tensor(n)
        i = b.op(
            "batchnorm",
            path=path,
            in_=x,
            out=y,
            k=n,
            n=n,
            b=pre_b,
            gamma=gamma.offset,
            beta=beta.offset,
            rm=rm.offset,
            rv=rv.offset,
            kname=kname,
            p=self._p if fused else (0.0,) * 4,
            saves_in=int(saves_in),
            aux=aux,
            stat=stat,
            eps=self.eps,
            momentum=self.momentum,
            diag=row,
            act_op=act_op if fused else 0,
            thr=1e-3
            * max_derivative(
                kname, self._p if fused else (0.0,) * 4, "input" if saves_in else "output"
            ),
        )
        if claims is not None:  # the folded layer's activation is still to come
            b.pending = i
        if not fused:
            y, _ = _emit_activation(
                b, ctx, y, "prelu", self.params, "prelu", self._p, None, row, act_op, path
            )
        return y


class Dropout(Layer):
    """Inverted dropout: drop units with probability p in training, identity in evaluation.

    In training each element is kept with probability 1 - p and scaled by 1 / (1 - p).
    The mask is a pure function of (seed, step, layer, element index) (SplitMix64), so it
    does not depend on the thread count and fastact.reference reproduces it bit for bit.

    Parameters
    ----------
    p : float
        The probability of dropping a unit, in [0, 1).

    Raises
    ------
    ValueError
        If p is not in [0, 1).

    See Also
    --------
    fastact.nn.dropout_forward : The same, one call at a time.

    Examples
    --------
    >>> from fastact.nn import Dropout
    >>> Dropout(0.5)
    Dropout(p=0.5)
    """

    kind = "dropout"

    def __init__(self, p):
        check_probability(p, "Dropout")
        self.p = float(p)

    def config(self):
        """Return the layer's configuration (what rebuilds it), JSON-able.

        Returns
        -------
        dict
            "kind" and the constructor's arguments.
        """
        return {"kind": "dropout", "p": self.p}

    def _build(self, b, x, path, ctx):
        n = b.widths[x]
        y = b.tensor(n)
        b.op("dropout", path=path, in_=x, out=y, k=n, n=n, prob=self.p, layer=b.n_dropout)
        b.n_dropout += 1
        return y


def _as_float(v):
    """float(v) for a real number (not a bool) that converts, else None"""
    if isinstance(v, bool) or not isinstance(v, numbers.Real):
        return None
    try:
        return float(v)
    except (OverflowError, ValueError, TypeError):
        return None


def check_bn_hyper(momentum, eps, where):
    """BatchNorm's (momentum, eps) as the floats the kernels use, checked as those floats:
    finite, momentum in [0, 1], eps > 0"""
    vals = []
    for v, nm in ((momentum, "momentum"), (eps, "eps")):
        f = _as_float(v)
        if f is None or not math.isfinite(f):
            raise ValueError(f"{where}: {nm} must be a finite number; got {v!r}.")
        vals.append(f)
    if not 0.0 <= vals[0] <= 1.0:
        raise ValueError(f"{where}: momentum must be in [0, 1]; got {momentum!r}.")
    if not vals[1] > 0.0:
        raise ValueError(f"{where}: eps must be > 0; got {eps!r}.")
    if vals[1] < sys.float_info.min:  # a network's flush_subnormals reads it as 0: NaN
        raise ValueError(
            f"{where}: eps must be a normal number, at least {sys.float_info.min!r} (a "
            f"subnormal eps is 0 where subnormals are flushed); got {eps!r}."
        )
    return vals[0], vals[1]


def check_probability(p, where, what="p"):
    """p checked as the float the kernels use (a value just below 1 that rounds to 1.0
    is refused)"""
    f = _as_float(p)
    if f is None or not 0.0 <= f < 1.0 or not 0.0 <= p < 1.0:
        raise ValueError(
            f"{where}: {what} must be a probability in [0, 1) (the fraction of "
            f"units dropped); got {p!r}."
        )


class Residual(Layer):
    """A residual connection: ``y = x + f(x)``, f the given layers in order.

    Parameters
    ----------
    layers : Layer or list of Layer
        The branch f, beginning with a Dense layer; its output width must equal its
        input width (checked when the network is built).

    Raises
    ------
    TypeError
        If layers is not a layer or a list of them.
    ValueError
        If layers is empty or does not begin with a Dense layer.

    See Also
    --------
    fastact.MLP : residual=True puts one around each hidden layer whose widths match.

    Examples
    --------
    >>> import fastact
    >>> from fastact.nn import BatchNorm, Dense, Residual
    >>> block = Residual([Dense(16), BatchNorm("relu")])
    >>> net = fastact.Sequential([Dense(16, "relu"), block, Dense(2)], n_in=4)
    >>> net.n_params
    418
    """

    kind = "residual"

    def __init__(self, layers):
        if isinstance(layers, Layer):
            layers = [layers]
        try:
            layers = list(layers)
        except TypeError:
            raise TypeError(
                f"Residual: layers must be a list of layer objects; got {layers!r}."
            ) from None
        if not layers:
            raise ValueError("Residual: needs at least one layer (the branch f of x + f(x)).")
        for l in layers:
            if not isinstance(l, Layer):
                raise TypeError(
                    f"Residual: {l!r} is not a layer (Dense, BatchNorm, Dropout, "
                    "ActivationLayer, Residual)."
                )
        if not isinstance(layers[0], Dense):
            raise ValueError(
                "Residual: the branch must begin with a Dense layer; got "
                f"{type(layers[0]).__name__}."
            )
        self.layers = layers

    def config(self):
        """Return the layer's configuration (what rebuilds it), JSON-able.

        Returns
        -------
        dict
            "kind" and the constructor's arguments.
        """
        return {"kind": "residual", "layers": [l.config() for l in self.layers]}

    def __repr__(self):
        return f"Residual(layers=[{', '.join(map(repr, self.layers))}])"

    def _build(self, b, x, path, ctx):
        h = x
        for i, l in enumerate(self.layers):
            h = l._build(b, h, f"{path}.{i}", ctx)
        if b.widths[h] != b.widths[x]:
            raise ValueError(
                f"Residual: the branch maps width {b.widths[x]} to "
                f"{b.widths[h]}; x + f(x) needs equal widths (give the branch's "
                f"last Dense layer {b.widths[x]} units, or drop the residual "
                "connection there)."
            )
        y = b.tensor(b.widths[x])
        last = b.ops[-1]
        if last.kind == "bias_act" and last.out == h:
            # the add in the branch's last pass: out = act(z + b) + x (program.py)
            sign_only = last.kname == "relu" or (last.kname == "leaky_relu" and last.p[0] >= 0)
            if last.saves_in or last.kname == "identity" or sign_only:
                last["saves_in"], last["aux"] = 1, -1
                b.alias[h] = last.in_  # (the activation's output is never written)
            else:
                last["aux"] = h  # over the GEMM's output, as the bias pass wrote it
            last["kind"], last["in2"], last["out"] = "bias_act_add", x, y
            b.settle_pending()  # (a later activation layer does not claim the branch's pass)
            return y
        b.op("add", path=path, in_=h, in2=x, out=y, k=b.widths[x], n=b.widths[x])
        b.settle_pending()
        return y


def layer_from_config(cfg):
    kind = cfg.get("kind")
    if kind == "dense":
        ia = cfg.get("init_activation")
        return Dense(
            cfg["n_out"],
            tuple(cfg["activation"]),
            init=cfg["init"],
            init_activation=None if ia is None else tuple(ia),
        )
    if kind == "batchnorm":
        return BatchNorm(tuple(cfg["activation"]), momentum=cfg["momentum"], eps=cfg["eps"])
    if kind == "dropout":
        return Dropout(cfg["p"])
    if kind == "activation":
        return ActivationLayer(tuple(cfg["activation"]))
    if kind == "residual":
        return Residual([layer_from_config(c) for c in cfg["layers"]])
    raise ValueError(f"unknown layer kind {kind!r} in the configuration.")
