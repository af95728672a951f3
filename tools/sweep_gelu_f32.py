"""Sweep every float32 through the float32 GELU kernels, on every SIMD path, against
the float64 reference (fastact.reference, the test oracle).

    python tools/sweep_gelu_f32.py                 # exhaustive: every float32 in range
    python tools/sweep_gelu_f32.py --step 997      # every 997th float32 (what CI runs)
    python tools/sweep_gelu_f32.py --paths avx2 --funcs gelu_tanh_bwd

The range is where the result is neither 0 nor x (forward) and the derivative
neither 0 nor 1 (backward): every float32 in [-15, 16], which contains it for both
forms (gelu(x) rounds to 0 below -14.3 and to x above 5.6; gelu'(x) to 0 below -14.6
and to 1 above 6.2), subnormals and both zeros included.  The backward is swept with
g = 1 (the kernel returns g * gelu'(x), so that is gelu'(x) itself).

Per path and function it prints the largest error in ulp of the float32-rounded
truth (where the truth is a normal float32, and where |truth| >= 1e-6, the region the
contract states in ulp; for a backward near its zero crossing the ulp count is large
and the contract's absolute 2e-7 |g| term is what holds), the largest ratio of the
error to the contract's tolerance (<= 1 passes), and the number of points outside
the accuracy contract
(forward 4 ulp, or 1e-7 absolute where |truth| < 1e-6; backward 8 ulp + 2e-7 |g|).
Run from the repository root after an in-place build.  Exit status 1 on any
contract violation.  The whole sweep is ~2.2e9 points per function and path.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

sys.path.insert(
    0,
    __import__("os").path.dirname(
        __import__("os").path.dirname(__import__("os").path.abspath(__file__))
    ),
)

import fastact
from fastact import _activations as ext
from fastact import reference as ref

FUNCS = {
    "gelu_fwd": ("gelu", {}, False),
    "gelu_bwd": ("gelu", {}, True),
    "gelu_tanh_fwd": ("gelu", {"approximate": "tanh"}, False),
    "gelu_tanh_bwd": ("gelu", {"approximate": "tanh"}, True),
    # the other kernels of fa_expf_simd.h, for --funcs (with --lo/--hi, e.g. -104, 104;
    # tanh_fwd: --lo -inf --hi inf, every float32)
    "tanh_fwd": ("tanh", {}, False),
    "sigmoid_fwd": ("sigmoid", {}, False),
    "silu_fwd": ("silu", {}, False),
    "silu_bwd": ("silu", {}, True),
    "log_sigmoid_bwd": ("log_sigmoid", {}, True),
    "softplus_bwd": ("softplus", {}, True),
}
LO, HI = -15.0, 16.0
TINY32 = float(np.finfo(np.float32).tiny)


def _bits(v):
    return int(np.float32(abs(v)).view(np.uint32))


def bit_ranges(lo, hi):
    """[start, stop) ranges of uint32 patterns covering every float32 in [lo, hi] (lo <=
    hi; either sign): positive floats grow with their patterns from 0x00000000, negative
    ones in magnitude from 0x80000000."""
    out = []
    if hi >= 0:  # the positive part: [max(lo, 0), hi]
        out.append((_bits(lo) if lo > 0 else 0, _bits(hi) + 1))
    if lo < 0:  # the negative part: [lo, min(hi, -0)]
        out.append((0x80000000 + (_bits(hi) if hi < 0 else 0), 0x80000000 + _bits(lo) + 1))
    return out


def contract_tol(t, backward):
    t = np.abs(t)
    ulp = np.spacing(t.astype(np.float32)).astype(np.float64)
    if backward:
        return 8 * ulp + 2e-7  # |g| = 1
    return np.where(t < 1e-6, np.maximum(1e-7, 4 * ulp), 4 * ulp)


def sweep(path, fname, step, chunk, lo=LO, hi=HI):
    name, kw, backward = FUNCS[fname]
    got_path = ext.set_isa(path)
    fn = getattr(fastact, name + ("_backward" if backward else ""))
    rf = getattr(ref, name + ("_backward" if backward else ""))
    worst_normal = worst_contract_region = 0.0
    where_normal = where_region = None
    bad = n = 0
    usage, where_usage = 0.0, None
    one = None
    for start, stop in bit_ranges(lo, hi):
        for c0 in range(start, stop, chunk * step):
            bits = np.arange(c0, min(c0 + chunk * step, stop), step, dtype=np.uint64).astype(
                np.uint32
            )
            x = bits.view(np.float32)
            if backward:
                if one is None or one.size != x.size:
                    one = np.ones(x.size, np.float32)
                y = fn(one, x, **kw)
                with np.errstate(all="ignore"):
                    t = rf(one.astype(np.float64), x.astype(np.float64), **kw)
            else:
                y = fn(x, **kw)
                with np.errstate(all="ignore"):
                    t = rf(x.astype(np.float64), **kw)
            y = y.astype(np.float64)
            err = np.abs(y - t)
            tr = t.astype(np.float32).astype(np.float64)
            tol = contract_tol(t, backward)
            ok = (y == t) | (y == tr) | (err <= tol)
            with np.errstate(all="ignore"):
                use = np.where(ok & ~((y == t) | (y == tr)), err / tol, 0.0)
                use = np.where(ok, use, np.inf)
            i = int(np.nan_to_num(use, nan=0.0).argmax())
            if use[i] > usage:
                usage, where_usage = float(use[i]), float(x[i])
            bad += int((~ok).sum())
            n += x.size
            at = np.abs(t)
            ulps = err / np.spacing(np.abs(tr).astype(np.float32)).astype(np.float64)
            for mask, which in ((at >= TINY32, "normal"), (at >= 1e-6, "region")):
                if mask.any():
                    u = np.where(mask, ulps, 0.0)
                    i = int(u.argmax())
                    if which == "normal" and u[i] > worst_normal:
                        worst_normal, where_normal = float(u[i]), float(x[i])
                    if which == "region" and u[i] > worst_contract_region:
                        worst_contract_region, where_region = float(u[i]), float(x[i])
    return (
        got_path,
        n,
        worst_normal,
        where_normal,
        worst_contract_region,
        where_region,
        bad,
        usage,
        where_usage,
    )


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--paths", default="avx512,avx2,baseline")
    ap.add_argument("--funcs", default=",".join(FUNCS))
    ap.add_argument("--step", type=int, default=1, help="every step-th float32 (1: all)")
    ap.add_argument("--chunk", type=int, default=1 << 22)
    ap.add_argument("--lo", type=float, default=LO)
    ap.add_argument("--hi", type=float, default=HI)
    args = ap.parse_args(argv)
    if args.step < 1 or args.chunk < 1 or not args.lo < args.hi:
        ap.error("--step and --chunk must be >= 1 and --lo below --hi")
    bad = set(args.paths.split(",")) - {"avx512", "avx2", "baseline"}
    bad |= set(args.funcs.split(",")) - set(FUNCS)
    if bad:
        ap.error(f"unknown --paths/--funcs value(s) {sorted(bad)}")
    failed = False
    print(
        f"float32 in [{args.lo}, {args.hi}], every {args.step}; CPU paths available up to "
        f"{ext.set_isa('avx512')}"
    )
    for path in args.paths.split(","):
        if ext.set_isa(path) != {"avx512": "avx512", "avx2": "avx2+fma"}.get(path, path):
            print(f"{path}: not available on this CPU, skipped")
            continue
        for f in args.funcs.split(","):
            t0 = time.time()
            got, n, wn, xn, wr, xr, bad, use, xu = sweep(
                path, f, args.step, args.chunk, args.lo, args.hi
            )
            failed |= bad > 0
            print(
                f"{got:9s} {f:14s} {n:>11,d} points  max ulp (normal truth) {wn:5.2f} at x={xn!r}"
                f"  (|truth| >= 1e-6) {wr:5.2f} at x={xr!r}  largest error / contract tolerance"
                f" {use:.3f} at x={xu!r}  outside contract: {bad}"
                f"  [{time.time() - t0:.0f} s]",
                flush=True,
            )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
