"""The network as a program of native ops, built from the layer objects.

Layers (fastact/nn/layers.py) only describe a network; `build_program` turns a
list of them into what both engines run: the parameters (a flat array `theta`,
one named slice per parameter), the state (running statistics), the tensors
(rows x width buffers; tensor 0 is the input) and a table of ops, each reading
and writing tensors and parameters by offset.  The native engine
(src/_nn_engine.pxi) and its NumPy twin (fastact.reference.NumpyEngine) execute
the same table, so adding a layer kind is: its op in the engine, its class in
layers.py, its twin in the reference.

The gradient buffers are assigned here too, by liveness, walking the ops
backwards: an op whose backward may run in place (bias + activation, BatchNorm,
dropout, PReLU) writes its input's gradient over its output's; a GEMM writes a
fresh slot; a residual add leaves its gradient in its slot for both of its inputs
(no copy): the skip connection keeps it there, the branch's last op writes its own
input's gradient to a fresh slot (an in-place backward runs in place only over a slot
no live tensor still needs), and the branch's first GEMM adds its input gradient into
the skip connection's slot (BLAS beta = 1).  A plain chain needs two slots, each
residual connection one more.

A residual branch that ends in a bias + activation pass compiles to one op,
"bias_act_add": out = act(in + b) + in2 in the same pass over the data (the add costs
no pass of its own).  Its backward is the bias + activation's (input gradient to a
fresh slot) and the add's (the skip connection shares the output's slot).  The
activation's output is kept (in the aux tensor, over the GEMM's output) only when the
backward needs it: relu and leaky_relu (slope >= 0) read the pre-activation instead
(the derivative depends only on its sign, the same as the output's), input-saving
activations always do, and then nothing but the sum is written.
"""

from __future__ import annotations

import numpy as np

# op codes and fields: must equal src/_nn_engine.pxi's (tests/test_nn_layers.py checks)
OP_CODES = {
    "gemm": 0,
    "bias_act": 1,
    "batchnorm": 2,
    "dropout": 3,
    "add": 4,
    "prelu": 5,
    "bias_act_add": 6,
}
_INT_FIELDS = (
    "KIND",
    "IN",
    "IN2",
    "OUT",
    "K",
    "N",
    "W",
    "B",
    "GAMMA",
    "BETA",
    "SLOPE",
    "PER_UNIT",
    "RM",
    "RV",
    "ACT",
    "SAVES_IN",
    "DIAG",
    "ACT_OP",
    "LAYER",
    "AUX",
    "GIN",
    "GOUT",
    "GIN2",
    "ACC",
    "STAT",
)
_FLOAT_FIELDS = ("A", "A1", "A2", "A3", "P", "EPS", "MOM", "THR")
FIELDS = {"NI": len(_INT_FIELDS), "NF": len(_FLOAT_FIELDS)}
FIELDS.update({"I_" + f: i for i, f in enumerate(_INT_FIELDS)})
FIELDS.update({"F_" + f: i for i, f in enumerate(_FLOAT_FIELDS) if f not in ("A1", "A2", "A3")})

_INPLACE_BACKWARD = ("bias_act", "batchnorm", "dropout", "prelu")


class Op(dict):
    """One op: kind, tensors (in_, in2, out, aux), widths (k, n), parameter offsets
    (w, b, gamma, beta, slope; -1 = none), state offsets (rm, rv), the activation
    (kname, p, saves_in) and its layer's diagnostics row."""

    def __init__(self, kind, **kw):
        super().__init__(
            kind=kind,
            in_=-1,
            in2=-1,
            out=-1,
            k=0,
            n=0,
            w=-1,
            b=-1,
            gamma=-1,
            beta=-1,
            slope=-1,
            per_unit=0,
            rm=-1,
            rv=-1,
            kname="identity",
            p=(0.0, 0.0, 0.0, 0.0),
            saves_in=0,
            diag=-1,
            act_op=0,
            layer=0,
            aux=-1,
            gin=-1,
            gout=-1,
            gin2=-1,
            acc=0,
            stat=-1,
            prob=0.0,
            eps=0.0,
            momentum=0.0,
            thr=0.0,
            path="",
        )
        for key, v in kw.items():
            if key not in self:
                raise KeyError(key)
            self[key] = v

    __getattr__ = dict.__getitem__


# theta's elements per alignment step of a weight matrix: 64 bytes of float32, 128 of
# float64 (theta itself starts on a cache line: fastact._plumbing.aligned_zeros)
PARAM_ALIGN = 16


class Param:
    """A named slice of theta: its offset, shape and how it starts."""

    __slots__ = ("name", "offset", "shape", "init", "layer")

    def __init__(self, name, offset, shape, init, layer):
        self.name, self.offset, self.shape, self.init, self.layer = name, offset, shape, init, layer

    @property
    def size(self):
        return int(np.prod(self.shape))


class Builder:
    """What the layers fill while the program is built (see Layer._build)."""

    def __init__(self):
        self.params, self.state, self.ops = [], [], []
        self.widths, self.alias = [], []
        self.n_theta = self.n_state = self.n_stats = 0
        self.n_dropout = 0
        self.diag_rows = []  # per dense layer: {"activation", "shape", "batchnorm"}
        self.pending = None  # op index of a dense layer's bias pass with no activation
        self.dense_params = []  # (W, b) Param pairs

    def tensor(self, width, alias=-1):
        self.widths.append(int(width))
        self.alias.append(int(alias))
        return len(self.widths) - 1

    def param(self, name, shape, init, layer, align=False):
        """a slice of theta; align: it starts on a multiple of PARAM_ALIGN elements (a
        dense layer's weights, which the GEMMs read and write: a weight matrix one float
        past a cache line, after a one-slope PReLU layer, made the GEMMs of a
        20 x 64 x 128 network 6% slower); the gap before it stays zero"""
        if align:
            self.n_theta = -(-self.n_theta // PARAM_ALIGN) * PARAM_ALIGN
        p = Param(name, self.n_theta, tuple(int(s) for s in shape), init, layer)
        self.params.append(p)
        self.n_theta += p.size
        return p

    def buffer(self, name, n, fill, layer):
        p = Param(name, self.n_state, (int(n),), ("fill", fill), layer)
        self.state.append(p)
        self.n_state += p.size
        return p

    def op(self, kind, path="", **kw):
        self.ops.append(Op(kind, path=path, **kw))
        return len(self.ops) - 1

    def settle_pending(self):
        """A dense layer without an activation and no BatchNorm claiming one: its bias
        pass is its layer's activation (identity) in the diagnostics."""
        if self.pending is not None:
            self.ops[self.pending]["act_op"] = 1
            self.pending = None


class Program:
    """The built network: parameters, state, tensors, ops and gradient slots."""

    def __init__(self, builder, out_t):
        self.params = builder.params
        self.state = builder.state
        self.ops = builder.ops
        self.widths = builder.widths
        self.alias = builder.alias
        self.n_theta = builder.n_theta  # theta's length, the gaps before aligned weights in
        self.n_learned = sum(p.size for p in builder.params)  # the parameters alone
        # what an optimizer's state is laid out by (a copied optimizer binds to a network
        # with the same)
        self.layout = tuple((p.name, p.offset, tuple(p.shape)) for p in builder.params)
        self.n_state = builder.n_state
        self.n_stats = builder.n_stats
        self.diag_rows = builder.diag_rows
        self.dense_params = builder.dense_params
        self.out_t = out_t
        self.n_slots = _assign_grad_slots(self.ops, out_t)
        self.has_batchnorm = any(o.kind == "batchnorm" for o in self.ops)
        self.has_dropout = any(o.kind == "dropout" for o in self.ops)

    def unpack(self, theta):
        """theta as this program lays it out, from theta as earlier versions laid it out
        (the parameters one after another, no gaps: files and pickles written before
        weights were aligned), or theta itself when its length is not the packed one"""
        if theta.size == self.n_theta or theta.size != self.n_learned:
            return theta
        out = np.zeros(self.n_theta, theta.dtype)
        o = 0
        for p in self.params:
            out[p.offset : p.offset + p.size] = theta[o : o + p.size]
            o += p.size
        return out

    def arrays(self, act_ids):
        """(int64 table, float64 table) for the native engine."""
        NI, NF = FIELDS["NI"], FIELDS["NF"]
        oi = np.zeros((len(self.ops), NI), np.int64)
        of = np.zeros((len(self.ops), NF), np.float64)
        for i, o in enumerate(self.ops):
            vals = {
                "KIND": OP_CODES[o.kind],
                "IN": o.in_,
                "IN2": o.in2,
                "OUT": o.out,
                "K": o.k,
                "N": o.n,
                "W": o.w,
                "B": o.b,
                "GAMMA": o.gamma,
                "BETA": o.beta,
                "SLOPE": o.slope,
                "PER_UNIT": o.per_unit,
                "RM": o.rm,
                "RV": o.rv,
                "ACT": act_ids[o.kname],
                "SAVES_IN": o.saves_in,
                "DIAG": o.diag,
                "ACT_OP": o.act_op,
                "LAYER": o.layer,
                "AUX": o.aux,
                "GIN": o.gin,
                "GOUT": o.gout,
                "GIN2": o.gin2,
                "ACC": o.acc,
                "STAT": o.stat,
            }
            for k, v in vals.items():
                oi[i, FIELDS["I_" + k]] = v
            of[i, FIELDS["F_A"] : FIELDS["F_A"] + 4] = o.p
            of[i, FIELDS["F_P"]] = o.prob
            of[i, FIELDS["F_EPS"]] = o.eps
            of[i, FIELDS["F_MOM"]] = o.momentum
            of[i, FIELDS["F_THR"]] = o.thr
        return oi, of


def _assign_grad_slots(ops, out_t):
    """Give every tensor's gradient a slot (see the module docstring); returns the
    number of slots.  Fills each op's gout, gin, gin2 and acc."""
    slot = {out_t: 0}
    n_slots = 1
    free = []
    live = {out_t}

    def new():
        nonlocal n_slots
        if free:
            return free.pop()
        n_slots += 1
        return n_slots - 1

    for o in reversed(ops):
        gout = slot[o.out]
        o["gout"] = gout
        live.discard(o.out)
        acc = 0
        # the first input
        t = o.in_
        if t > 0:
            if t in slot:  # a later consumer wrote it: add to it
                if o.kind != "gemm":
                    raise ValueError(
                        "a residual connection's branch must begin with a Dense layer (its "
                        "gradient is added to the skip connection's by the GEMM)."
                    )
                acc |= 1
            elif o.kind == "add" or (
                o.kind in _INPLACE_BACKWARD and gout not in {slot[u] for u in live}
            ):
                slot[t] = gout
            else:
                slot[t] = new()
            o["gin"] = slot[t]
            live.add(t)
        elif o.kind in _INPLACE_BACKWARD:
            o["gin"] = -1  # the network's input: no gradient
        # the second input (the skip connection of an add): the add's own slot when it
        # has none yet (the gradient is the same: nothing to copy), unless a live tensor
        # other than the add's first input holds that slot too: an enclosing residual
        # connection's skip, when this add ends the enclosing branch.  The gradients of
        # both are added to later (each by its branch's first GEMM), so they cannot share
        # it: a fresh slot, and the engine copies the gradient there.
        t = o.in2
        if t > 0:
            if t in slot:
                acc |= 2
            elif gout in {slot[u] for u in live if u != o.in_}:
                slot[t] = new()
            else:
                slot[t] = gout
            o["gin2"] = slot[t]
            live.add(t)
        o["acc"] = acc
        if gout not in {slot[t] for t in live}:
            free.append(gout)
    return n_slots
