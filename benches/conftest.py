"""Benchmark options: sizes, dtypes and candidates come from the environment so CI can
run a quick pass and a user can narrow a long run.

    FASTACT_BENCH_SIZES=1e3,1e5     element counts (default 1e3,1e4,1e5,1e6,1.6e7)
    FASTACT_BENCH_DTYPES=float32    (default float32,float64)
    FASTACT_BENCH_IMPLS=fastact-1t,numpy,torch-1t
                                    candidates (default: all; see bench_activations.IMPLS)
"""

import os

import numpy as np


def _sizes():
    raw = os.environ.get("FASTACT_BENCH_SIZES", "1e3,1e4,1e5,1e6,1.6e7")
    return [int(float(v)) for v in raw.split(",") if v]


def _dtypes():
    raw = os.environ.get("FASTACT_BENCH_DTYPES", "float32,float64")
    return [np.dtype(v) for v in raw.split(",") if v]


def _impls(all_impls):
    raw = os.environ.get("FASTACT_BENCH_IMPLS", "")
    if not raw:
        return list(all_impls)
    chosen = [v for v in raw.split(",") if v]
    unknown = sorted(set(chosen) - set(all_impls))
    if unknown:
        raise ValueError(f"FASTACT_BENCH_IMPLS: unknown {unknown}; choose from {list(all_impls)}")
    return chosen


def size_label(n: int) -> str:
    """1000 -> '1e3', 16_000_000 -> '1.6e7' (group names)."""
    m, e = f"{n:.1e}".split("e")
    m = m.rstrip("0").rstrip(".")
    return f"{m}e{int(e)}"


SIZES = _sizes()
DTYPES = _dtypes()
