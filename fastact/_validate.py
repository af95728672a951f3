"""Argument checking and output plumbing shared by the native API and its NumPy twin.

Both `fastact` (native kernels) and `fastact.reference` (plain NumPy) go
through these functions, so they accept and reject exactly the same inputs
with exactly the same messages; only the arithmetic differs.

Dtype policy (DESIGN.md section 3): float32 and float64 are computed in
their own precision (byte-swapped ones are converted to native order first);
integer arrays are computed in float64 (NumPy's convention); bool, float16,
longdouble, complex, object and everything else raise a TypeError that names
the argument and says how to convert.
"""

from __future__ import annotations

import math
import numbers
import os

import numpy as np

F32 = np.dtype(np.float32)
F64 = np.dtype(np.float64)
_FLOATS = (F32, F64)


_FORKED = False  # a child made by fork() after import: one thread (fastact/__init__.py)


def forked_child() -> None:
    """In a forked child: every count is 1 (libgomp's pool does not survive fork())."""
    global _FORKED, _default_threads
    _FORKED = True
    if _default_threads is not None:
        _default_threads = 1


def affinity_cores() -> int:
    """Cores this process may run on (its CPU affinity), forked child or not."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def usable_cores() -> int:
    """Cores a call may use: the affinity's, 1 in a forked child."""
    return 1 if _FORKED else affinity_cores()


_default_threads: int | None = None  # set_num_threads / threads(): pinned by the user
_omp_query = None  # the native build's omp_get_max_threads (None: pure-NumPy mode)
_thread_limit = None  # the OpenMP runtime's omp_get_thread_limit() (OMP_THREAD_LIMIT)


def set_thread_limit(n) -> None:
    """The OpenMP runtime's thread limit (fixed for the process), or None: no limit."""
    global _thread_limit
    _thread_limit = n if n is not None and n > 0 else None


def thread_cap() -> int:
    """The most threads a call can get: the usable cores, at most OMP_THREAD_LIMIT (a
    pinned or explicit count above it would run on fewer threads than it says)."""
    cores = usable_cores()
    return cores if _thread_limit is None else max(1, min(cores, _thread_limit))


def set_omp_query(fn) -> None:
    """fn() -> the OpenMP runtime's current omp_get_max_threads() (OMP_NUM_THREADS,
    threadpoolctl's limit); asked on every call that uses the default."""
    global _omp_query
    _omp_query = fn


def set_default_threads(n: int | None) -> None:
    """Pin the default: a positive count as given (clamped to the usable cores when used,
    so a count pinned before the affinity shrank comes back when it grows again), a
    negative one resolved against the cores now."""
    global _default_threads
    if n is None:
        _default_threads = None
    else:
        k = check_threads(n)
        _default_threads = int(n) if n > 0 else k


def pinned_threads() -> int | None:
    """The count set_num_threads / threads() pinned, or None (follow the OpenMP runtime)."""
    return _default_threads


def get_default_threads() -> int:
    """set_num_threads's value, else all usable cores, at most the OpenMP runtime's
    omp_get_max_threads() (OMP_NUM_THREADS, or a threadpoolctl limit in force)."""
    if _default_threads is not None:
        return min(_default_threads, thread_cap())
    cores = usable_cores()
    return cores if _omp_query is None else max(1, min(cores, _omp_query()))


def check_threads(n_threads) -> int:
    """None -> the default; k > 0 -> k; -1 -> all, -2 -> all but one, ...

    Counts above the usable cores are clamped to them: more OpenMP threads than
    cores only oversubscribe, and a huge count would make the OpenMP runtime
    abort the process when it cannot create the threads."""
    if n_threads is None:
        return get_default_threads()
    if isinstance(n_threads, bool) or not isinstance(n_threads, numbers.Integral):
        raise TypeError(
            f"n_threads must be an int or None; got {type(n_threads).__name__} {n_threads!r}."
        )
    n = int(n_threads)
    if n > 0:
        return min(n, thread_cap())
    if n == 0:
        raise ValueError(
            "n_threads=0 is not allowed; use None for all cores, a positive count, "
            "or a negative count from the end (-1 = all cores)."
        )
    cores = affinity_cores()  # (in a forked child too: the same counts are valid there)
    k = cores + 1 + n
    if k < 1:
        raise ValueError(
            f"n_threads={n} leaves no thread on this machine with {cores} usable cores; "
            f"use a value >= {-cores}."
        )
    return min(k, thread_cap())


def as_float_array(x, name: str) -> np.ndarray:
    """x as an ndarray of float32 or float64 (integers become float64)."""
    if isinstance(x, np.ma.MaskedArray):
        raise TypeError(
            f"{name} is a masked array; fastact ignores masks. Pass {name}.filled(value) "
            f"or {name}.data explicitly."
        )
    a = x if type(x) is np.ndarray else np.asarray(x)
    dt = a.dtype
    if dt == F32 or dt == F64:
        return a
    if dt.kind == "f" and not dt.isnative and dt.newbyteorder("=") in _FLOATS:
        return a.astype(dt.newbyteorder("="))  # byte-swapped float32/64: same values
    if dt.kind in "iu":
        return a.astype(F64)
    raise TypeError(
        f"{name} must be float32 or float64 (integers are computed in float64); got {dt}. "
        f"Convert with {name}.astype(np.float64) or {name}.astype(np.float32)."
    )


def check_same_dtype(a: np.ndarray, b: np.ndarray, name_a: str, name_b: str) -> None:
    if a.dtype != b.dtype:
        raise TypeError(
            f"{name_a} and {name_b} must have the same dtype; got {a.dtype} and {b.dtype}. "
            f"Convert one with .astype(np.{a.dtype}) or .astype(np.{b.dtype})."
        )


def check_same_shape(a: np.ndarray, b: np.ndarray, name_a: str, name_b: str) -> None:
    if a.shape != b.shape:
        raise ValueError(
            f"{name_a} and {name_b} must have the same shape; got {a.shape} and {b.shape}."
        )


def check_out(out, shape: tuple, dtype: np.dtype, name: str = "out") -> np.ndarray:
    if type(out) is not np.ndarray and not isinstance(out, np.ndarray):
        raise TypeError(f"{name} must be a NumPy array or None; got {type(out).__name__}.")
    if isinstance(out, np.ma.MaskedArray):
        raise TypeError(
            f"{name} is a masked array; fastact ignores masks and would leave {name}'s "
            f"mask as it is. Pass {name}.data (written in place) or {name}=None."
        )
    if out.shape != shape:
        raise ValueError(f"{name} has shape {out.shape}; the result has shape {shape}.")
    if out.dtype != dtype:
        raise TypeError(
            f"{name} has dtype {out.dtype}; the result has dtype {dtype}. "
            f"Pass an array of dtype {dtype} or out=None."
        )
    if not out.flags.writeable:
        raise ValueError(f"{name} is read-only; pass a writeable array or out=None.")
    return out


def same_view(a: np.ndarray, b: np.ndarray) -> bool:
    return (
        a.__array_interface__["data"][0] == b.__array_interface__["data"][0]
        and a.strides == b.strides
        and a.shape == b.shape
    )


def check_overlap(
    out: np.ndarray, arr: np.ndarray, out_name: str, arr_name: str, identical_ok: bool
) -> None:
    """out may be arr itself (when the kernel allows it) but must not partly overlap it."""
    if not np.may_share_memory(out, arr):
        return
    if identical_ok and same_view(out, arr):
        return
    if np.shares_memory(out, arr, max_work=10**6):
        if identical_ok:
            raise ValueError(
                f"{out_name} overlaps {arr_name} without being the same array; pass "
                f"{out_name}={arr_name} for in-place, a separate array, or {out_name}=None."
            )
        raise ValueError(
            f"{out_name} overlaps {arr_name}, which this function still needs while it "
            f"writes; pass a separate array or {out_name}=None."
        )


def layout_order(a: np.ndarray) -> str:
    return "F" if (a.flags.f_contiguous and not a.flags.c_contiguous) else "C"


def contiguous(a: np.ndarray, order: str) -> np.ndarray:
    """a itself if contiguous in `order` and aligned (the kernels dereference typed
    pointers), else an aligned copy."""
    if (a.flags.c_contiguous if order == "C" else a.flags.f_contiguous) and a.flags.aligned:
        return a
    return np.array(a, order=order, copy=True)


class Target:
    """Where a kernel writes: out itself when its layout fits, else a temporary copied back."""

    __slots__ = ("out", "buf")

    def __init__(self, out, shape, dtype, order):
        if (
            out is not None
            and out.flags.aligned
            and (out.flags.c_contiguous if order == "C" else out.flags.f_contiguous)
        ):
            self.out = out
            self.buf = out
        else:
            self.out = out
            self.buf = np.empty(shape, dtype, order=order)

    def result(self) -> np.ndarray:
        if self.out is None:
            return self.buf
        if self.buf is not self.out:
            self.out[...] = self.buf
        return self.out


def finite_param(value, name: str, func: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(
            f"{func}: {name} must be a real number; got {type(value).__name__} {value!r}."
        )
    try:
        v = float(value)
    except OverflowError:  # an integer beyond float64's range
        raise ValueError(
            f"{func}: {name} must be finite; got an integer of {int(value).bit_length()} "
            "bits, beyond float64's range."
        ) from None
    if not math.isfinite(v):
        raise ValueError(f"{func}: {name} must be finite; got {v}.")
    return v


# ---- activation parameters -> the (a, b, c, d) of fa_params ----------------
# Checked once per distinct value: the results are cached by (type, value) of
# every argument, so a hot loop calling elu(x, alpha=0.5) pays a dict lookup.

_PLAIN = frozenset((float, str))
_NUMS = (float, int, np.floating, np.integer)


def _memo(f):
    cache = {}
    floats = {}  # exact-float arguments: keyed by the values alone (cheapest lookup)

    def wrapper(*args):
        # a zero argument: its sign in the key (0.0 == -0.0 as keys, but their results
        # differ: hardtanh(x, -0.0, 1) clamps to -0.0)
        for a in args:
            if isinstance(a, _NUMS) and a == 0:
                try:
                    key = tuple(map(type, args)) + args
                    key += tuple(
                        math.copysign(1.0, b) if isinstance(b, _NUMS) else 0.0 for b in args
                    )
                    r = cache.get(key)
                except (TypeError, ValueError):  # unhashable, or no sign: uncached
                    return f(*args)
                if r is None:
                    r = f(*args)
                    if len(cache) < 1024:
                        cache[key] = r
                return r
        # plain floats (and strings), the common case: no key to build (1, 1.0 and True
        # would collide as values, so only exact floats and strings come here)
        if type(args[0]) in _PLAIN and (len(args) == 1 or type(args[1]) in _PLAIN):
            r = floats.get(args)
            if r is not None:
                return r
            r = f(*args)
            if len(floats) < 1024:
                floats[args] = r
            return r
        # anything else: keyed by (type, value) of each argument
        key = tuple(map(type, args)) + args
        try:
            return cache[key]
        except KeyError:
            pass
        except TypeError:  # unhashable: validate (and reject) uncached
            return f(*args)
        result = f(*args)
        if len(cache) < 1024:
            cache[key] = result
        return result

    wrapper.__name__ = f.__name__
    wrapper.__doc__ = f.__doc__
    return wrapper


@_memo
def params_leaky_relu(negative_slope) -> tuple:
    s = finite_param(negative_slope, "negative_slope", "leaky_relu")
    # the float32 FMA path of the kernels: s = hi + lo with hi, lo float32 (src/fa_acts.h)
    # the float32 paths of the kernels (src/fa_acts.h): s itself when it is a float32
    # (d = 2), else s = hi + lo, both float32 of s's sign (hi rounded toward zero, so
    # x * lo never is an inf of the other sign), FMA (d = 1); else double (d = 0)
    if 2.0**-60 < abs(s) < 2.0**60:
        hi = float(np.float32(s))
        if abs(hi) > abs(s):
            hi = float(np.nextafter(np.float32(hi), np.float32(0)))
        lo = float(np.float32(s - hi))
        if lo == 0:
            return (s, hi, 0.0, 2.0)  # s is a float32: x * hi, rounded once, exactly
        return (s, hi, lo, 1.0)
    return (s, 0.0, 0.0, 0.0)


_F32_MAX = float(np.finfo(np.float32).max)


@_memo
def params_elu(alpha) -> tuple:
    a = finite_param(alpha, "alpha", "elu")
    if abs(a) > _F32_MAX:
        raise ValueError(
            f"elu: alpha must be at most {_F32_MAX:.8g} in magnitude (the float32 kernels "
            f"compute with alpha as a float32); got {a}."
        )
    return (a, 0.0, 0.0, 0.0)


@_memo
def params_celu(alpha) -> tuple:
    a = finite_param(alpha, "alpha", "celu")
    if not 2.0**-126 <= a <= 2.0**126:
        raise ValueError(
            f"celu: alpha must be in [2**-126, 2**126] (about 1.2e-38 to 8.5e37) so that alpha "
            f"and 1/alpha are normal float32 numbers; got {a}."
        )
    return (a, 1.0 / a, 0.0, 1.0 / a)


@_memo
def params_softplus(beta, threshold) -> tuple:
    b = finite_param(beta, "beta", "softplus")
    t = finite_param(threshold, "threshold", "softplus")
    if b <= 0:
        raise ValueError(f"softplus: beta must be > 0; got {b}.")
    if b < 2.0**-1022:
        raise ValueError(
            f"softplus: beta must be at least 2**-1022 (about 2.2e-308) so that 1/beta is "
            f"finite; got {b}."
        )
    if t <= 0:
        raise ValueError(f"softplus: threshold must be > 0; got {t}.")
    # d: the threshold rounded down to float32, for the float32 comparison z > threshold
    with np.errstate(over="ignore"):  # (a threshold beyond float32: inf, then its max)
        t32 = np.float32(t)
    if float(t32) > t:
        t32 = np.nextafter(t32, np.float32(-np.inf))
    return (b, t, 1.0 / b, float(t32))


def softplus_kernel(p: tuple) -> str:
    """The kernel id for softplus's (beta, ...):

    - softplus_far for beta < 1 (powers of two included): e^(beta x) / beta can be a
      normal number where e^(beta x) underflows (float64: beta = 2**-100, beta x = -744.4
      is 6.5e-294; float32 in float: beta = 2**-60, x = -104 * 2**60 is 7.9e-28), so
      both dtypes take the double body with the far tail (e^(z + 700) (1/beta) e^-700);
    - softplus_pow2 (float32 in float) for a power of two in [1, 2**126]: beta * x is
      exact in float32;
    - softplus otherwise (beta >= 1; float32 in double).
    For beta >= 1, e^(beta x) / beta <= e^(beta x) is subnormal wherever e^(beta x) is,
    so the two ids without the far tail (its select costs 15-20% per element) lose
    nothing the accuracy contract keeps.  float64 runs one double body for softplus and
    softplus_pow2."""
    beta = p[0]
    if beta < 1.0:
        return "softplus_far"
    pow2 = math.frexp(beta)[0] == 0.5 and beta <= 2.0**126
    return "softplus_pow2" if pow2 else "softplus"


@_memo
def params_hardtanh(min_val, max_val) -> tuple:
    lo = finite_param(min_val, "min_val", "hardtanh")
    hi = finite_param(max_val, "max_val", "hardtanh")
    if not lo < hi:
        raise ValueError(
            f"hardtanh: min_val must be less than max_val; got min_val={lo}, max_val={hi}."
        )
    return (lo, hi, 0.0, 0.0)


GELU_APPROXIMATIONS = ("none", "tanh")


@_memo
def check_gelu_approximate(approximate) -> str:
    if not isinstance(approximate, str) or approximate not in GELU_APPROXIMATIONS:
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh'; got {approximate!r}.")
    return approximate


def check_backward_slope(value: float, func: str, name: str) -> None:
    if value < 0:
        fix = (
            f"use fastact.prelu with weight={value}, whose backward takes the input."
            if func == "leaky_relu"
            else "differentiate it from the input instead: 1 for x > 0, alpha exp(x) below."
        )
        raise ValueError(
            f"{func}_backward: {name}={value} < 0 cannot be differentiated from the saved "
            f"output (the sign of the output no longer tells the side of the kink); {fix}"
        )


def prelu_weight(weight, x: np.ndarray) -> np.ndarray:
    """The slope(s) as a 1-D array of x's dtype: one value, or one per feature (last axis)."""
    if isinstance(weight, int) and not isinstance(weight, bool) and abs(weight) >= 2**63:
        try:  # beyond int64: NumPy would make an object array of it
            weight = float(weight)
        except OverflowError:
            raise ValueError("prelu: weight must be finite (in x's dtype).") from None
    w = weight if isinstance(weight, np.ndarray) else np.asarray(weight)
    if isinstance(weight, np.ndarray) and w.dtype.kind == "f" and w.dtype != x.dtype:
        raise TypeError(
            f"prelu: weight has dtype {w.dtype} but x has dtype {x.dtype}; "
            f"convert with weight.astype(np.{x.dtype})."
        )
    if w.dtype.kind not in "fiu":
        raise TypeError(f"prelu: weight must be real numbers; got dtype {w.dtype}.")
    if w.ndim > 1:
        raise ValueError(f"prelu: weight must be a scalar or 1-D; got shape {w.shape}.")
    features = x.shape[-1] if x.ndim else 1
    if w.size not in (1, features):
        raise ValueError(
            f"prelu: weight must hold 1 value or one per feature (x.shape[-1] = {features}); "
            f"got {w.size} values."
        )
    with np.errstate(over="ignore"):
        wx = np.array(w.reshape(-1), dtype=x.dtype, copy=True)  # a copy: out= may alias weight
    if not np.all(np.isfinite(wx)):
        raise ValueError("prelu: weight must be finite (in x's dtype).")
    return wx
