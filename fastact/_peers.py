"""The peers fastact is measured against, each optional: SciPy, numexpr, PyTorch CPU,
and the roofline (the memory traffic alone).

Used by benches/bench_activations.py and `fastact bench`.  Every builder returns
{name: (forward(x), backward(g, saved))} with None where the peer has no such
operation, over the case names of fastact.bench.NUMPY_EXPRESSIONS; `saved` is
what fastact saves (ACTIVATIONS[name].saves: the output or the input), and
each call returns a NumPy array of the input's dtype.

- scipy.special: expit (sigmoid, silu), log_expit (log_sigmoid), ndtr (exact gelu).
- numexpr: the NumPy expression in one numexpr string, with its own thread pool
  set to the requested count (constants are passed in the array's dtype, so
  float32 stays float32).
- PyTorch CPU: torch.from_numpy (no copy) -> torch.nn.functional forward, and
  PyTorch's own backward kernels (torch.ops.aten.sigmoid_backward,
  threshold_backward, gelu_backward, ...) fed the same saved tensor autograd
  would save; .numpy() back.  Thread count: torch.set_num_threads, set by the
  caller (`torch_threads`).  softsign has no ATen backward: composite ops.
- roofline: forward = np.copyto of the same bytes (read n, write n); backward =
  np.add(g, s, out=o) (read 2n, write n, the cheapest ufunc with a backward's
  traffic).  No elementwise kernel that streams its arrays can beat these.
"""

from __future__ import annotations

import contextlib

import numpy as np

SELU_ALPHA, SELU_SCALE = 1.6732632423543772, 1.0507009873554805
PRELU_W = 0.25


# ---- roofline -----------------------------------------------------------------------


def roofline():
    def fwd(x):
        y = np.empty_like(x)
        np.copyto(y, x)
        return y

    def bwd(g, s):
        return np.add(g, s, out=np.empty_like(g))

    return fwd, bwd


# ---- scipy.special --------------------------------------------------------------------

# name -> (has forward, has backward)
SCIPY_HAS = {
    "sigmoid": (True, False),
    "log_sigmoid": (True, True),
    "silu": (True, True),
    "gelu": (True, True),
}


def scipy_calls() -> dict:
    from scipy import special as sp

    c = 1.0 / np.sqrt(2.0 * np.pi)

    def gelu_b(g, x):
        return g * (sp.ndtr(x) + x * np.exp(-0.5 * x * x) * x.dtype.type(c))

    def silu_b(g, x):
        s = sp.expit(x)
        return g * s * (1 + x * (1 - s))

    return {
        "sigmoid": (sp.expit, None),
        "log_sigmoid": (sp.log_expit, lambda g, x: g * sp.expit(-x)),
        "silu": (lambda x: x * sp.expit(x), silu_b),
        "gelu": (lambda x: x * sp.ndtr(x), gelu_b),
    }


# ---- numexpr --------------------------------------------------------------------------

_K0 = float(np.sqrt(2.0 / np.pi))
_C = float(1.0 / np.sqrt(2.0 * np.pi))

# name -> (forward expression of x, backward expression of g and s); constants by name
_NE = {
    "identity": ("x", "g"),
    "sigmoid": ("one / (one + exp(-x))", "g * s * (one - s)"),
    "tanh": ("tanh(x)", "g * (one - s * s)"),
    "relu": ("where(x > zero, x, zero)", "where(s > zero, g, zero)"),
    "leaky_relu": ("where(x > zero, x, slope * x)", "where(s > zero, g, slope * g)"),
    "prelu": ("where(x > zero, x, w * x)", "where(s > zero, g, w * g)"),
    "elu": ("where(x > zero, x, expm1(x))", "where(s > zero, g, g * (s + one))"),
    "selu": (
        "where(x > zero, scale * x, scale * alpha * expm1(x))",
        "where(s > zero, scale * g, g * (s + scale * alpha))",
    ),
    "celu": ("where(x > zero, x, expm1(x))", "where(s > zero, g, g * (s + one))"),
    "gelu_tanh": (
        "half * x * (one + tanh(k0 * (x + c3 * x * x * x)))",
        "g * (half * (one + tanh(k0 * (s + c3 * s * s * s))) + half * s * "
        "(one - tanh(k0 * (s + c3 * s * s * s)) ** 2) * k0 * (one + three * c3 * s * s))",
    ),
    "silu": (
        "x / (one + exp(-x))",
        "g / (one + exp(-s)) * (one + s * (one - one / (one + exp(-s))))",
    ),
    "mish": (
        "x * tanh(log1p(exp(x)))",
        "g * (tanh(log1p(exp(s))) + s / (one + exp(-s)) * (one - tanh(log1p(exp(s))) ** 2))",
    ),
    "softplus": ("log1p(exp(x))", "g / (one + exp(-s))"),
    "softsign": ("x / (one + abs(x))", "g / ((one + abs(s)) * (one + abs(s)))"),
    "hardtanh": (
        "where(x < -one, -one, where(x > one, one, x))",
        "where((s > -one) & (s < one), g, zero)",
    ),
    "relu6": (
        "where(x < zero, zero, where(x > six, six, x))",
        "where((s > zero) & (s < six), g, zero)",
    ),
    "hardsigmoid": (
        "where(x < -three, zero, where(x > three, one, x / six + half))",
        "where((s > -three) & (s < three), g / six, zero)",
    ),
    "hardswish": (
        "where(x < -three, zero, where(x > three, x, x * (x + three) / six))",
        "where(s < -three, zero, where(s <= three, g * (s / three + half), g))",
    ),
    "log_sigmoid": ("-log1p(exp(-x))", "g / (one + exp(s))"),
}


def _ne_consts(dtype) -> dict:
    t = np.dtype(dtype).type
    return {
        k: t(v)
        for k, v in {
            "zero": 0.0,
            "one": 1.0,
            "half": 0.5,
            "three": 3.0,
            "six": 6.0,
            "slope": 0.01,
            "w": PRELU_W,
            "alpha": SELU_ALPHA,
            "scale": SELU_SCALE,
            "k0": _K0,
            "c3": 0.044715,
        }.items()
    }


def numexpr_calls() -> dict:
    """numexpr evaluations (gelu: numexpr has no erf, so none).  Set numexpr's thread
    count with `numexpr_threads`."""
    import numexpr as ne

    consts = {
        np.dtype(np.float32): _ne_consts(np.float32),
        np.dtype(np.float64): _ne_consts(np.float64),
    }
    calls = {}
    for name, (ef, eb) in _NE.items():

        def fwd(x, ef=ef):
            d = dict(consts[x.dtype])
            d["x"] = x
            return ne.evaluate(ef, local_dict=d)

        def bwd(g, s, eb=eb):
            d = dict(consts[g.dtype])
            d["g"] = g
            d["s"] = s
            return ne.evaluate(eb, local_dict=d)

        calls[name] = (fwd, bwd)
    calls["gelu"] = (None, None)
    return calls


@contextlib.contextmanager
def numexpr_threads(n: int):
    import numexpr as ne

    old = ne.set_num_threads(n)
    try:
        yield
    finally:
        ne.set_num_threads(old)


# ---- PyTorch CPU ------------------------------------------------------------------------


@contextlib.contextmanager
def torch_threads(n: int):
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def torch_calls() -> dict:
    """PyTorch CPU: forward through torch.nn.functional, backward through ATen's own
    backward kernels, from and to NumPy (torch.from_numpy / .numpy(), no copies)."""
    import torch
    import torch.nn.functional as F

    A = torch.ops.aten
    T = torch.from_numpy
    w_cache = {}

    def prelu_w(dtype):
        w = w_cache.get(dtype)
        if w is None:
            w = w_cache[dtype] = torch.full((1,), PRELU_W, dtype=dtype)
        return w

    def f1(op):
        return lambda x: op(T(x)).numpy()

    def b2(op, *extra):
        return lambda g, s: op(T(g), T(s), *extra).numpy()

    def softsign_b(g, x):
        t = T(x)
        d = 1 + t.abs()
        return (T(g) / (d * d)).numpy()

    last = [None, None]

    def log_sigmoid_b(g, x):
        # PyTorch's forward saves log_sigmoid_forward's buffer for the backward: computed
        # once per input array here, outside the repeated (timed) calls
        if last[0] is not x:
            last[0], last[1] = x, A.log_sigmoid_forward(T(x))[1]
        return A.log_sigmoid_backward(T(g), T(x), last[1]).numpy()

    return {
        "identity": (lambda x: T(x).clone().numpy(), lambda g, s: T(g).clone().numpy()),
        "sigmoid": (f1(torch.sigmoid), b2(A.sigmoid_backward)),
        "tanh": (f1(torch.tanh), b2(A.tanh_backward)),
        "relu": (f1(torch.relu), b2(A.threshold_backward, 0)),
        "leaky_relu": (f1(lambda t: F.leaky_relu(t, 0.01)), b2(A.leaky_relu_backward, 0.01, True)),
        "prelu": (
            lambda x: F.prelu(T(x), prelu_w(T(x).dtype)).numpy(),
            lambda g, x: A._prelu_kernel_backward(T(g), T(x), prelu_w(T(x).dtype))[0].numpy(),
        ),
        "elu": (f1(F.elu), lambda g, y: A.elu_backward(T(g), 1.0, 1.0, 1.0, True, T(y)).numpy()),
        "selu": (
            f1(F.selu),
            lambda g, y: A.elu_backward(T(g), SELU_ALPHA, SELU_SCALE, 1.0, True, T(y)).numpy(),
        ),
        "celu": (f1(F.celu), lambda g, y: A.elu_backward(T(g), 1.0, 1.0, 1.0, True, T(y)).numpy()),
        "gelu": (f1(F.gelu), b2(A.gelu_backward)),
        "gelu_tanh": (
            f1(lambda t: F.gelu(t, approximate="tanh")),
            lambda g, x: A.gelu_backward(T(g), T(x), approximate="tanh").numpy(),
        ),
        "silu": (f1(F.silu), b2(A.silu_backward)),
        "mish": (f1(F.mish), b2(A.mish_backward)),
        "softplus": (f1(F.softplus), b2(A.softplus_backward, 1.0, 20.0)),
        "softsign": (f1(F.softsign), softsign_b),
        "hardtanh": (f1(F.hardtanh), b2(A.hardtanh_backward, -1.0, 1.0)),
        "relu6": (f1(F.relu6), b2(A.hardtanh_backward, 0.0, 6.0)),
        "hardsigmoid": (f1(F.hardsigmoid), b2(A.hardsigmoid_backward)),
        "hardswish": (f1(F.hardswish), b2(A.hardswish_backward)),
        "log_sigmoid": (f1(F.logsigmoid), log_sigmoid_b),
    }


def torch_out_calls(out) -> dict:
    """PyTorch CPU writing into the preallocated NumPy array `out` (torch.from_numpy, no
    copy) through ATen's out= overloads (aten.gelu.out, aten.sigmoid_backward.grad_input,
    ...): {name: (forward(x), backward(g, saved))}, None where PyTorch has no out=
    overload (prelu, softsign, mish backward); each call returns `out`."""
    import torch

    A = torch.ops.aten
    T = torch.from_numpy
    O = T(out)
    buf = {"fwd": torch.empty(0, dtype=O.dtype)}

    def fo(fn):
        def f(x):
            fn(T(x))
            return out

        return f

    def bo(fn):
        def b(g, s):
            fn(T(g), T(s))
            return out

        return b

    def log_sigmoid_b(g, x):
        if buf.get("x") is not x:  # the forward's saved buffer, as in torch_calls
            buf["x"], buf["b"] = x, A.log_sigmoid_forward(T(x))[1]
        A.log_sigmoid_backward.grad_input(T(g), T(x), buf["b"], grad_input=O)
        return out

    def elu_b(alpha, scale):
        def b(g, y):
            return A.elu_backward.grad_input(g, alpha, scale, 1.0, True, y, grad_input=O)

        return bo(b)

    return {
        "identity": (fo(lambda x: O.copy_(x)), bo(lambda g, s: O.copy_(g))),
        "sigmoid": (
            fo(lambda x: torch.sigmoid(x, out=O)),
            bo(lambda g, y: A.sigmoid_backward.grad_input(g, y, grad_input=O)),
        ),
        "tanh": (
            fo(lambda x: torch.tanh(x, out=O)),
            bo(lambda g, y: A.tanh_backward.grad_input(g, y, grad_input=O)),
        ),
        "relu": (
            fo(lambda x: torch.clamp_min(x, 0, out=O)),
            bo(lambda g, y: A.threshold_backward.grad_input(g, y, 0, grad_input=O)),
        ),
        "leaky_relu": (
            fo(lambda x: A.leaky_relu.out(x, 0.01, out=O)),
            bo(lambda g, y: A.leaky_relu_backward.grad_input(g, y, 0.01, True, grad_input=O)),
        ),
        "prelu": (None, None),
        "elu": (fo(lambda x: A.elu.out(x, 1.0, 1.0, 1.0, out=O)), elu_b(1.0, 1.0)),
        "selu": (
            fo(lambda x: A.elu.out(x, SELU_ALPHA, SELU_SCALE, 1.0, out=O)),
            elu_b(SELU_ALPHA, SELU_SCALE),
        ),
        "celu": (fo(lambda x: A.elu.out(x, 1.0, 1.0, 1.0, out=O)), elu_b(1.0, 1.0)),
        "gelu": (
            fo(lambda x: A.gelu.out(x, out=O)),
            bo(lambda g, x: A.gelu_backward.grad_input(g, x, grad_input=O)),
        ),
        "gelu_tanh": (
            fo(lambda x: A.gelu.out(x, approximate="tanh", out=O)),
            bo(lambda g, x: A.gelu_backward.grad_input(g, x, approximate="tanh", grad_input=O)),
        ),
        "silu": (
            fo(lambda x: A.silu.out(x, out=O)),
            bo(lambda g, x: A.silu_backward.grad_input(g, x, grad_input=O)),
        ),
        "mish": (fo(lambda x: A.mish.out(x, out=O)), None),
        "softplus": (
            fo(lambda x: A.softplus.out(x, 1.0, 20.0, out=O)),
            bo(lambda g, x: A.softplus_backward.grad_input(g, x, 1.0, 20.0, grad_input=O)),
        ),
        "softsign": (None, None),
        "hardtanh": (
            fo(lambda x: A.hardtanh.out(x, -1.0, 1.0, out=O)),
            bo(lambda g, y: A.hardtanh_backward.grad_input(g, y, -1.0, 1.0, grad_input=O)),
        ),
        "relu6": (
            fo(lambda x: A.hardtanh.out(x, 0.0, 6.0, out=O)),
            bo(lambda g, y: A.hardtanh_backward.grad_input(g, y, 0.0, 6.0, grad_input=O)),
        ),
        "hardsigmoid": (
            fo(lambda x: A.hardsigmoid.out(x, out=O)),
            bo(lambda g, x: A.hardsigmoid_backward.grad_input(g, x, grad_input=O)),
        ),
        "hardswish": (
            fo(lambda x: A.hardswish.out(x, out=O)),
            bo(lambda g, x: A.hardswish_backward.out(g, x, out=O)),
        ),
        "log_sigmoid": (
            fo(lambda x: A.log_sigmoid_forward.output(x, output=O, buffer=buf["fwd"])),
            log_sigmoid_b,
        ),
    }


def available(peer: str) -> bool:
    mod = {"scipy": "scipy.special", "numexpr": "numexpr", "torch": "torch"}[peer]
    try:
        __import__(mod)
    except ImportError:
        return False
    return True
