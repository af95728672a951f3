"""Re-measure the float32 column of the accuracy table (docs/guide/accuracy.md).

For every activation with a float32 forward kernel: the largest error in float32 ulp of
the truth, over every STEP-th float32 of [LO, HI] (default: every 101st of [-20, 20],
about 21 million points), at points where |truth| >= 1e-6 (the contract's absolute bound
covers the rest).  The truth is the float64 NumPy twin (fastact.reference) at the same
float32 input: its own error (about 1e-16 relative) is 1e-9 float32 ulp.

Run once per SIMD path, e.g.:

    for isa in avx512 avx2 baseline; do FASTACT_ISA=$isa python tools/accuracy_table.py; done
"""

from __future__ import annotations

import argparse

import numpy as np

import fastact
from fastact import reference

NAMES = [
    "sigmoid",
    "tanh",
    "leaky_relu",
    "elu",
    "celu",
    "selu",
    "gelu",
    "silu",
    "mish",
    "softplus",
    "log_sigmoid",
    "softsign",
    "hardsigmoid",
    "hardswish",
]


def float32_grid(lo: float, hi: float, step: int) -> np.ndarray:
    """Every step-th float32 of [lo, hi] (by bit pattern, both signs)."""

    def bits(v):
        return int(np.float32(abs(v)).view(np.int32))

    parts = []
    # negative floats: bit patterns from -0 (0x80000000) upwards in magnitude, over
    # [lo, min(hi, -0)]
    if lo < 0:
        m = np.arange(bits(hi) if hi < 0 else 0, bits(lo), step, dtype=np.int64)
        parts.append((m | 0x80000000).astype(np.uint32).view(np.float32))
    # positive ones over [max(lo, 0), hi]
    if hi > 0:
        parts.append(
            np.arange(bits(lo) if lo > 0 else 0, bits(hi), step, dtype=np.int32).view(np.float32)
        )
    return np.concatenate(parts)


def max_ulp(name: str, x: np.ndarray, kwargs: dict) -> tuple[float, float]:
    """(largest error in ulp, where), over x in chunks of 4M points."""
    best = (-1.0, 0.0)
    for i in range(0, x.size, 1 << 22):
        best = max(best, _max_ulp(name, x[i : i + (1 << 22)], kwargs))
    return best


def _max_ulp(name: str, x: np.ndarray, kwargs: dict) -> tuple[float, float]:
    y = getattr(fastact, name)(x, **kwargs).astype(np.float64)
    t = getattr(reference, name)(x.astype(np.float64), **kwargs)
    ok = np.isfinite(t) & (np.abs(t) >= 1e-6) & (np.abs(t) < 3.4e38)
    t32 = np.abs(t[ok]).astype(np.float32)
    ulp = np.spacing(t32).astype(np.float64)
    err = np.abs(y[ok] - t[ok]) / ulp
    if err.size == 0:
        return (-1.0, 0.0)
    i = int(np.argmax(err))
    return float(err[i]), float(x[ok][i])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--lo", type=float, default=-20.0)
    ap.add_argument("--hi", type=float, default=20.0)
    ap.add_argument("--step", type=int, default=101)
    ap.add_argument("--only", default="", help="comma-separated activation names")
    a = ap.parse_args()
    if a.step < 1 or not a.lo < a.hi:
        ap.error("--step must be >= 1 and --lo below --hi")
    names = a.only.split(",") if a.only else NAMES
    if set(names) - set(NAMES):
        ap.error(f"unknown --only name(s) {sorted(set(names) - set(NAMES))}; choose from {NAMES}")
    x = float32_grid(a.lo, a.hi, a.step)
    isa = fastact.config()["SIMD path in use"]
    print(f"# path {isa}; {x.size} float32 points in [{a.lo}, {a.hi}], every {a.step}th")
    for name in names:
        cases = [(name, {})]
        if name == "gelu":
            cases.append(("gelu", {"approximate": "tanh"}))
        for n, kw in cases:
            e, at = max_ulp(n, x, kw)
            label = n + ("(tanh)" if kw else "")
            print(f"{label:14s} {e:6.2f} ulp  at x = {at:.9g}")


if __name__ == "__main__":
    main()
