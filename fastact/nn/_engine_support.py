"""Small helpers shared by the layers, the functional API and the network."""

from __future__ import annotations

import functools

import numpy as np

BLAS_INT_MAX = 2**31 - 1


def blas_dim(n: int, what: str, where: str) -> None:
    if n > BLAS_INT_MAX:
        raise ValueError(f"{where}: {what} = {n} is beyond the BLAS integer range (2**31 - 1).")


@functools.lru_cache(maxsize=256)
def max_derivative(kname: str, p: tuple, saves: str) -> float:
    """max |f'| of an activation, on a dense grid (for the saturation threshold)."""
    from ..reference import _MATH

    f, d = _MATH[kname]
    x = np.linspace(-30.0, 30.0, 120001)
    with np.errstate(all="ignore"):
        s = x if saves == "input" else f(x, p)
        v = np.abs(d(s, p))
    return float(np.nanmax(v))
