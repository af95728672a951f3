"""The public API, defined once for both backends.

`make_api(K)` returns every public function (signature, docstring, parameter
checks) bound to a kernel provider K: `fastact.activations.NativeKernels`
(the Cython entry points) or `fastact.reference.NumpyKernels` (plain NumPy).
So `fastact.gelu` and `fastact.reference.gelu` cannot drift apart in what
they accept, reject or return; only the arithmetic differs.

A provider (a subclass of KernelsBase) has: fwd(kernel_name, p),
bwd(kernel_name, p), bias_fwd(...), bias_bwd(...) returning kernels for the
plumbing, and the kernels prelu_fwd, prelu_bwd, softmax_fwd(log_),
softmax_bwd(log_), xent.  p is the (a, b, c, d) tuple of fa_params (see
fastact/_registry.py).  unary/binary run a whole elementwise call; the native
provider overrides them with a fast path decided in Cython.
"""

from __future__ import annotations

import math

import numpy as np

from . import _docs as D
from . import _plumbing as P
from . import _registry as R
from . import _validate as V

_NOP = (0.0, 0.0, 0.0, 0.0)


class KernelsBase:
    """What make_api needs from a backend; unary/binary go through the plumbing."""

    FAST_PRELU = False  # prelu_backward's small-array shortcut (native backend only)
    prelu1_bwd = None

    def unary(self, x, out, n_threads, kname, p=_NOP):
        return P.unary(x, out, n_threads, self.fwd(kname, p))

    def binary(self, g, s, out, n_threads, kname, p=_NOP):
        return P.binary(g, s, out, n_threads, self.bwd(kname, p))


_NONE = object()  # matches no argument
_PRELU_FAST_MAX = 65536  # prelu_backward's small-array path (serial), up to here
_F32_OVERFLOW = 2.0**128 - 2.0**103  # the doubles that round to float32's inf (ties to even)


def make_api(K, module: str) -> dict:
    """The public functions of fastact bound to the kernel provider K.

    Parameter checks: each parameterised function keeps its last (arguments, checked
    parameters) in a one-slot cell and skips the check when called again with the very
    same argument objects (defaults, literals in a loop): ~0.03 us instead of ~0.15 us
    of a call whose whole budget on a small array is ~0.25 us.  The cell holds one
    tuple, replaced whole, so concurrent callers never see a torn pair; objects that
    are the same are the same value (floats and strings are immutable)."""

    # ---- elementwise activations ----------------------------------------------

    def identity(x, *, out=None, n_threads=None):
        """identity(x) = x (a copy, or written into out)."""
        return K.unary(x, out, n_threads, "identity")

    def identity_backward(grad_out, saved, *, out=None, n_threads=None):
        """grad_out itself (copied); saved (the output) is checked but not read."""
        return K.binary(grad_out, saved, out, n_threads, "identity")

    def sigmoid(x, *, out=None, n_threads=None):
        """sigmoid(x) = 1 / (1 + exp(-x)); sigmoid(-inf) = 0, never overflows."""
        return K.unary(x, out, n_threads, "sigmoid")

    def sigmoid_backward(grad_out, saved, *, out=None, n_threads=None):
        """grad_out * y * (1 - y), saved = y = sigmoid(x)."""
        return K.binary(grad_out, saved, out, n_threads, "sigmoid")

    def tanh(x, *, out=None, n_threads=None):
        """tanh(x)."""
        return K.unary(x, out, n_threads, "tanh")

    def tanh_backward(grad_out, saved, *, out=None, n_threads=None):
        """grad_out * (1 - y^2), saved = y = tanh(x)."""
        return K.binary(grad_out, saved, out, n_threads, "tanh")

    def relu(x, *, out=None, n_threads=None):
        """relu(x) = max(x, 0); NaN stays NaN."""
        return K.unary(x, out, n_threads, "relu")

    def relu_backward(grad_out, saved, *, out=None, n_threads=None):
        """grad_out * (y > 0), saved = y = relu(x); relu'(0) = 0."""
        return K.binary(grad_out, saved, out, n_threads, "relu")

    last_lr = [(_NONE, None)]

    def leaky_relu(x, negative_slope=0.01, *, out=None, n_threads=None):
        """x if x > 0 else negative_slope * x."""
        a, p = last_lr[0]
        if a is not negative_slope:
            p = V.params_leaky_relu(negative_slope)
            last_lr[0] = (negative_slope, p)
        return K.unary(x, out, n_threads, "leaky_relu", p)

    last_lr_b = [(_NONE, None)]

    def leaky_relu_backward(grad_out, saved, negative_slope=0.01, *, out=None, n_threads=None):
        """grad_out * (1 if y > 0 else negative_slope), saved = y; needs negative_slope >= 0."""
        a, p = last_lr_b[0]
        if a is not negative_slope:
            p = V.params_leaky_relu(negative_slope)
            V.check_backward_slope(p[0], "leaky_relu", "negative_slope")
            last_lr_b[0] = (negative_slope, p)
        return K.binary(grad_out, saved, out, n_threads, "leaky_relu", p)

    last_prelu = [(_NONE, None, None)]

    def prelu(x, weight, *, out=None, n_threads=None):
        """x if x > 0 else weight * x; weight: one slope, or one per feature (last axis)."""
        # one plain-float slope on a C-ordered float array: leaky_relu with that slope
        # rounded to x's dtype computes the same, without the per-call weight plumbing
        if type(weight) is float and type(x) is np.ndarray and x.ndim and x.flags.c_contiguous:
            dt = x.dtype
            w, d, p = last_prelu[0]
            if w is not weight or d is not dt:
                p = None
                if dt == V.F64 or dt == V.F32:
                    wx = V.prelu_weight(weight, x)  # the checks and the rounding
                    p = V.params_leaky_relu(float(wx[0]))
                last_prelu[0] = (weight, dt, p)
            if p is not None:
                return K.unary(x, out, n_threads, "leaky_relu", p)  # out: checked there
        return P.prelu_forward(x, weight, out, n_threads, K.prelu_fwd)

    last_prelu_b = [(_NONE, None, None)]

    def prelu_backward(grad_out, saved, weight, *, out=None, n_threads=None):
        """(grad_in, grad_weight), saved = x (the input); grad_weight has weight's shape."""
        # one plain-float slope, small C-ordered arrays (native only): one C call on the
        # calling thread (small arrays run serially anyway), no weight plumbing
        x, g = saved, grad_out
        if (
            K.FAST_PRELU
            and type(weight) is float
            and type(x) is np.ndarray
            and type(g) is np.ndarray
            and 0 < x.size <= _PRELU_FAST_MAX
            and x.shape == g.shape
            and x.dtype == g.dtype
            and x.flags.c_contiguous
            and g.flags.c_contiguous
            and x.flags.aligned
            and g.flags.aligned
            and x.dtype.isnative
            and (n_threads is None or type(n_threads) is int)
            and (
                out is None
                or out is g
                or out is x
                or (
                    type(out) is np.ndarray
                    and out.shape == x.shape
                    and out.dtype == x.dtype
                    and out.flags.c_contiguous
                    and out.flags.aligned
                    and out.flags.writeable
                    and not np.may_share_memory(out, x)
                    and not np.may_share_memory(out, g)
                )
            )
        ):
            dt = x.dtype
            w, d, wv = last_prelu_b[0]
            if w is not weight or d is not dt:
                wv = None
                if dt == V.F64 or dt == V.F32:
                    wx = V.prelu_weight(weight, x)  # the checks and the rounding
                    wv = np.full(64, wx[0], dt)
                last_prelu_b[0] = (weight, dt, wv)
            if wv is not None:
                if n_threads is not None and not n_threads > 0:
                    V.check_threads(n_threads)  # its errors; the count is moot
                if out is None:
                    gx = np.empty_like(x)
                elif out.flags.writeable:
                    gx = out  # in place: element by element
                else:
                    return P.prelu_backward(
                        grad_out, saved, weight, out, n_threads, K.prelu_bwd
                    )  # its error message
                total = K.prelu1_bwd(g, x, gx, wv)
                if dt == V.F32 and not abs(total) < _F32_OVERFLOW and total == total:
                    total = math.copysign(math.inf, total)  # rounds beyond float32: inf
                elif dt == V.F64 and not math.isfinite(total) and gx is not g and gx is not x:
                    return P.prelu_backward(  # the sum overflowed on the way: scaled
                        grad_out, saved, weight, out, n_threads, K.prelu_bwd
                    )
                return gx, np.asarray(total, dtype=dt)
        return P.prelu_backward(grad_out, saved, weight, out, n_threads, K.prelu_bwd)

    last_elu = [(_NONE, None)]

    def elu(x, alpha=1.0, *, out=None, n_threads=None):
        """x if x > 0 else alpha * (exp(x) - 1)."""
        a, p = last_elu[0]
        if a is not alpha:
            p = V.params_elu(alpha)
            last_elu[0] = (alpha, p)
        return K.unary(x, out, n_threads, "elu", p)

    last_elu_b = [(_NONE, None)]

    def elu_backward(grad_out, saved, alpha=1.0, *, out=None, n_threads=None):
        """grad_out * (1 if y > 0 else y + alpha), saved = y; needs alpha >= 0."""
        a, p = last_elu_b[0]
        if a is not alpha:
            p = V.params_elu(alpha)
            V.check_backward_slope(p[0], "elu", "alpha")
            last_elu_b[0] = (alpha, p)
        return K.binary(grad_out, saved, out, n_threads, "elu", p)

    def selu(x, *, out=None, n_threads=None):
        """scale * (x if x > 0 else alpha * (exp(x) - 1)), PyTorch's alpha and scale."""
        return K.unary(x, out, n_threads, "selu")

    def selu_backward(grad_out, saved, *, out=None, n_threads=None):
        """grad_out * (scale if y > 0 else y + scale * alpha), saved = y."""
        return K.binary(grad_out, saved, out, n_threads, "selu")

    last_celu = [(_NONE, None)]

    def celu(x, alpha=1.0, *, out=None, n_threads=None):
        """x if x > 0 else alpha * (exp(x / alpha) - 1); alpha > 0."""
        a, p = last_celu[0]
        if a is not alpha:
            p = V.params_celu(alpha)
            last_celu[0] = (alpha, p)
        return K.unary(x, out, n_threads, "celu", p)

    def celu_backward(grad_out, saved, alpha=1.0, *, out=None, n_threads=None):
        """grad_out * (1 if y > 0 else y / alpha + 1), saved = y."""
        a, p = last_celu[0]
        if a is not alpha:
            p = V.params_celu(alpha)
            last_celu[0] = (alpha, p)
        return K.binary(grad_out, saved, out, n_threads, "celu", p)

    last_gelu = [(_NONE, None)]

    def gelu(x, approximate="none", *, out=None, n_threads=None):
        """x * Phi(x) (approximate='none', via erfc) or PyTorch's tanh approximation."""
        a, k = last_gelu[0]
        if a is not approximate:
            k = "gelu_tanh" if V.check_gelu_approximate(approximate) == "tanh" else "gelu"
            last_gelu[0] = (approximate, k)
        return K.unary(x, out, n_threads, k)

    def gelu_backward(grad_out, saved, approximate="none", *, out=None, n_threads=None):
        """grad_out * gelu'(x), saved = x (the input)."""
        a, k = last_gelu[0]
        if a is not approximate:
            k = "gelu_tanh" if V.check_gelu_approximate(approximate) == "tanh" else "gelu"
            last_gelu[0] = (approximate, k)
        return K.binary(grad_out, saved, out, n_threads, k)

    def silu(x, *, out=None, n_threads=None):
        """x * sigmoid(x) (a.k.a. swish)."""
        return K.unary(x, out, n_threads, "silu")

    def silu_backward(grad_out, saved, *, out=None, n_threads=None):
        """grad_out * sigmoid(x) (1 + x (1 - sigmoid(x))), saved = x."""
        return K.binary(grad_out, saved, out, n_threads, "silu")

    def mish(x, *, out=None, n_threads=None):
        """x * tanh(softplus(x))."""
        return K.unary(x, out, n_threads, "mish")

    def mish_backward(grad_out, saved, *, out=None, n_threads=None):
        """grad_out * mish'(x), saved = x."""
        return K.binary(grad_out, saved, out, n_threads, "mish")

    last_sp = [(_NONE, _NONE, None, None)]

    def softplus(x, beta=1.0, threshold=20.0, *, out=None, n_threads=None):
        """log(1 + exp(beta x)) / beta, or x where beta x > threshold (PyTorch's rule)."""
        b, t, k, p = last_sp[0]
        if b is not beta or t is not threshold:
            p = V.params_softplus(beta, threshold)
            k = V.softplus_kernel(p)
            last_sp[0] = (beta, threshold, k, p)
        return K.unary(x, out, n_threads, k, p)

    def softplus_backward(grad_out, saved, beta=1.0, threshold=20.0, *, out=None, n_threads=None):
        """grad_out * sigmoid(beta x) (1 where beta x > threshold), saved = x."""
        b, t, k, p = last_sp[0]
        if b is not beta or t is not threshold:
            p = V.params_softplus(beta, threshold)
            k = V.softplus_kernel(p)
            last_sp[0] = (beta, threshold, k, p)
        return K.binary(grad_out, saved, out, n_threads, k, p)

    def softsign(x, *, out=None, n_threads=None):
        """``x / (1 + |x|)``; ``softsign(+-inf) = +-1``."""
        return K.unary(x, out, n_threads, "softsign")

    def softsign_backward(grad_out, saved, *, out=None, n_threads=None):
        """``grad_out / (1 + |x|)^2``, saved = x."""
        return K.binary(grad_out, saved, out, n_threads, "softsign")

    last_ht = [(_NONE, _NONE, None)]

    def hardtanh(x, min_val=-1.0, max_val=1.0, *, out=None, n_threads=None):
        """clip(x, min_val, max_val); NaN stays NaN."""
        lo, hi, p = last_ht[0]
        if lo is not min_val or hi is not max_val:
            p = V.params_hardtanh(min_val, max_val)
            last_ht[0] = (min_val, max_val, p)
        return K.unary(x, out, n_threads, "hardtanh", p)

    def hardtanh_backward(grad_out, saved, min_val=-1.0, max_val=1.0, *, out=None, n_threads=None):
        """grad_out * (min_val < y < max_val), saved = y."""
        lo, hi, p = last_ht[0]
        if lo is not min_val or hi is not max_val:
            p = V.params_hardtanh(min_val, max_val)
            last_ht[0] = (min_val, max_val, p)
        return K.binary(grad_out, saved, out, n_threads, "hardtanh", p)

    def relu6(x, *, out=None, n_threads=None):
        """clip(x, 0, 6)."""
        return K.unary(x, out, n_threads, "hardtanh", (0.0, 6.0, 0.0, 0.0))

    def relu6_backward(grad_out, saved, *, out=None, n_threads=None):
        """grad_out * (0 < y < 6), saved = y."""
        return K.binary(grad_out, saved, out, n_threads, "hardtanh", (0.0, 6.0, 0.0, 0.0))

    def hardsigmoid(x, *, out=None, n_threads=None):
        """clip(x / 6 + 1/2, 0, 1)."""
        return K.unary(x, out, n_threads, "hardsigmoid")

    def hardsigmoid_backward(grad_out, saved, *, out=None, n_threads=None):
        """grad_out / 6 where -3 < x < 3, else 0; saved = x."""
        return K.binary(grad_out, saved, out, n_threads, "hardsigmoid")

    def hardswish(x, *, out=None, n_threads=None):
        """x * clip(x / 6 + 1/2, 0, 1)."""
        return K.unary(x, out, n_threads, "hardswish")

    def hardswish_backward(grad_out, saved, *, out=None, n_threads=None):
        """grad_out * (0 if x < -3, x/3 + 1/2 if -3 <= x <= 3, 1 if x > 3); saved = x."""
        return K.binary(grad_out, saved, out, n_threads, "hardswish")

    def log_sigmoid(x, *, out=None, n_threads=None):
        """log(sigmoid(x)) = -softplus(-x); log_sigmoid(-1e4) = -1e4."""
        return K.unary(x, out, n_threads, "log_sigmoid")

    def log_sigmoid_backward(grad_out, saved, *, out=None, n_threads=None):
        """grad_out * sigmoid(-x), saved = x."""
        return K.binary(grad_out, saved, out, n_threads, "log_sigmoid")

    # ---- row-wise: softmax family over the last axis ---------------------------

    def softmax(x, *, out=None, n_threads=None):
        """exp(x) / sum(exp(x)) over the last axis (max-shifted, sums in double)."""
        return P.rowwise_forward(x, out, n_threads, K.softmax_fwd(False), "softmax")

    def softmax_backward(grad_out, saved, *, out=None, n_threads=None):
        """y * (grad_out - sum(grad_out * y)) per row, saved = y = softmax(x)."""
        return P.rowwise_backward(
            grad_out, saved, out, n_threads, K.softmax_bwd(False), "softmax_backward"
        )

    def log_softmax(x, *, out=None, n_threads=None):
        """x - logsumexp(x) over the last axis."""
        return P.rowwise_forward(x, out, n_threads, K.softmax_fwd(True), "log_softmax")

    def log_softmax_backward(grad_out, saved, *, out=None, n_threads=None):
        """grad_out - exp(y) * sum(grad_out) per row, saved = y = log_softmax(x)."""
        return P.rowwise_backward(
            grad_out, saved, out, n_threads, K.softmax_bwd(True), "log_softmax_backward"
        )

    def softmax_cross_entropy(logits, labels, *, out=None, n_threads=None):
        """(loss, grad_logits) of the mean softmax cross-entropy over the rows.

        labels: class indices (1-D ints) or probability rows (logits' shape).
        loss = mean_r sum_j -t[r, j] log_softmax(x)[r, j] (a float, summed in double);
        grad_logits = (softmax(x) * sum_j t[r, j] - t) / rows, the exact gradient."""
        return P.cross_entropy(logits, labels, out, n_threads, K.xent)

    # ---- the dense layer's epilogue and prologue -------------------------------

    def bias_act(z, bias, activation, *, out=None, n_threads=None, **params):
        """act(z + bias), bias over the last axis (the rows of a 2-D z), one pass."""
        name = R.check_bias_act_name(activation)
        kname, p = R.kernel_params(name, params, "bias_act")
        return P.bias_forward(z, bias, out, n_threads, K.bias_fwd(kname, p))

    def bias_act_backward(
        grad_out, saved, activation, *, bias=None, out=None, n_threads=None, **params
    ):
        """(grad_z, grad_bias) of y = act(z + bias), one pass; grad_bias summed in double.

        saved is y for activations that save their output, and z (before the bias)
        for those that save their input; those need bias= as well."""
        name = R.check_bias_act_name(activation)
        kname, p = R.kernel_params(name, params, "bias_act_backward")
        if name == "leaky_relu":
            V.check_backward_slope(p[0], "leaky_relu", "negative_slope")
        elif name == "elu":
            V.check_backward_slope(p[0], "elu", "alpha")
        needs_bias = R.saves(name) == "input"
        return P.bias_backward(
            grad_out, saved, bias, needs_bias, out, n_threads, K.bias_bwd(kname, p)
        )

    api = {k: v for k, v in locals().items() if callable(v) and not k.startswith("_") and k != "K"}
    for name, f in api.items():
        f.__module__ = module
        f.__qualname__ = name
        if name.removesuffix("_backward") in R.NAMES:
            f.__doc__ = D.render(name, module, f.__doc__)
        else:
            f.__doc__ = D.HANDWRITTEN[name].format(fa=D.public(module)[0], twin=D.public(module)[1])
    return api
