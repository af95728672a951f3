"""Benchmark options: sizes and dtypes come from the environment so CI can run a quick pass.

    FASTACT_BENCH_SIZES=1e3,1e5     element counts (default 1e3,1e4,1e5,1e6,1e7)
    FASTACT_BENCH_DTYPES=float32    (default float32,float64)
"""
import os

import numpy as np


def _sizes():
    raw = os.environ.get("FASTACT_BENCH_SIZES", "1e3,1e4,1e5,1e6,1e7")
    return [int(float(v)) for v in raw.split(",") if v]


def _dtypes():
    raw = os.environ.get("FASTACT_BENCH_DTYPES", "float32,float64")
    return [np.dtype(v) for v in raw.split(",") if v]


SIZES = _sizes()
DTYPES = _dtypes()
