"""Type stubs of fastact._activations (src/_activations.pyx): the native activation kernels.

The entry points take validated, contiguous, aligned arrays of one dtype (float32 or
float64) and write into the outputs they are given: fastact/_plumbing.py and
fastact/activations.py do the checking.  ``act`` is a kernel id of ACT_IDS; ``a, b, c, d``
the kernel's parameters (fastact/_registry.py's kernel_params).
"""

from collections.abc import Callable
from typing import Any

import numpy as np

SERIAL_BELOW: int
N_ACT: int
ACT_IDS: dict[str, int]
C_API: object
ISA_NAMES: dict[int, str]

def build_info() -> dict[str, Any]: ...
def openmp_enabled() -> bool: ...
def omp_max_threads() -> int: ...
def omp_thread_limit() -> int: ...
def omp_library() -> str | None: ...
def cpu_has_avx2_fma() -> bool: ...
def cpu_has_avx512() -> bool: ...
def avx2_compiled() -> bool: ...
def get_isa() -> str: ...
def pick_isa(cap: str, has_avx2_fma: bool, has_avx512: bool) -> str: ...
def set_isa(cap: str) -> str: ...
def forward(
    act: int,
    x: np.ndarray,
    y: np.ndarray,
    a: float,
    b: float,
    c: float,
    d: float,
    n_threads: int,
) -> None: ...
def backward(
    act: int,
    g: np.ndarray,
    s: np.ndarray,
    out: np.ndarray,
    a: float,
    b: float,
    c: float,
    d: float,
    n_threads: int,
) -> None: ...
def set_default_threads(n: int, cap: int) -> None: ...
def default_threads() -> int: ...
def fast_forward(
    act: int,
    x: object,
    out: object,
    n_threads: object,
    a: float,
    b: float,
    c: float,
    d: float,
) -> np.ndarray | None: ...
def fast_backward(
    act: int,
    g: object,
    s: object,
    out: object,
    n_threads: object,
    a: float,
    b: float,
    c: float,
    d: float,
) -> np.ndarray | None: ...
def set_fallbacks(unary_: Callable[..., Any], binary_: Callable[..., Any]) -> None: ...
def unary(
    x: object,
    out: np.ndarray | None,
    n_threads: int | None,
    kname: str,
    p: tuple[float, float, float, float] = ...,
) -> Any: ...
def binary(
    g: object,
    s: object,
    out: np.ndarray | None,
    n_threads: int | None,
    kname: str,
    p: tuple[float, float, float, float] = ...,
) -> Any: ...
def bias_forward(
    act: int,
    z: np.ndarray,
    bias: np.ndarray,
    y: np.ndarray,
    rows: int,
    cols: int,
    a: float,
    b: float,
    c: float,
    d: float,
    n_threads: int,
) -> None: ...
def bias_backward(
    act: int,
    g: np.ndarray,
    s: np.ndarray,
    bias: np.ndarray | None,
    dz: np.ndarray,
    db: np.ndarray,
    rows: int,
    cols: int,
    a: float,
    b: float,
    c: float,
    d: float,
    n_threads: int,
) -> None: ...
def prelu_forward(
    x: np.ndarray, w: np.ndarray, y: np.ndarray, rows: int, cols: int, n_threads: int
) -> None: ...
def prelu_backward(
    g: np.ndarray,
    x: np.ndarray,
    w: np.ndarray,
    gx: np.ndarray,
    gw: np.ndarray,
    rows: int,
    cols: int,
    n_threads: int,
) -> None: ...
def prelu1_backward(g: np.ndarray, x: np.ndarray, gx: np.ndarray, w: np.ndarray) -> float: ...
def softmax_forward(
    x: np.ndarray, y: np.ndarray, rows: int, cols: int, log_: bool, n_threads: int
) -> None: ...
def softmax_backward(
    g: np.ndarray,
    y: np.ndarray,
    gx: np.ndarray,
    rows: int,
    cols: int,
    log_: bool,
    n_threads: int,
) -> None: ...
def softmax_xent(
    x: np.ndarray,
    labels: np.ndarray | None,
    target: np.ndarray | None,
    grad: np.ndarray,
    loss: np.ndarray,
    rows: int,
    cols: int,
    scale: float,
    n_threads: int,
) -> None: ...
