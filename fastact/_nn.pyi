"""Type stubs of fastact._nn (src/_nn.pyx, src/_nn_ops.pxi, src/_nn_sk.pxi, src/_nn_engine.pxi).

The dense, BatchNorm and dropout loops of fastact.nn.functional, and the Engine that runs
a network's program (fastact/nn/program.py) forward, backward and through the optimizer
in one call.  The arrays are validated, contiguous and of one dtype (float32 or float64)
by the Python layer (fastact/nn/).
"""

import numpy as np
from typing_extensions import disjoint_base

LOSSES: dict[str, int]
OPTIMIZERS: dict[str, int]
OP_CODES: dict[str, int]
FIELDS: dict[str, int]
SK_OUTPUTS: dict[str, int]
SK_SOLVERS: dict[str, int]

def dense_forward(
    act: int,
    x: np.ndarray,
    W: np.ndarray,
    b: np.ndarray,
    z: np.ndarray,
    y: np.ndarray,
    a: float,
    b_: float,
    c: float,
    d: float,
) -> None: ...
def dense_backward(
    act: int,
    g: np.ndarray,
    s: np.ndarray,
    b: np.ndarray | None,
    x: np.ndarray,
    W: np.ndarray,
    dz: np.ndarray,
    dx: np.ndarray | None,
    dW: np.ndarray,
    db: np.ndarray,
    a: float,
    b_: float,
    c: float,
    d: float,
) -> None: ...
def all_finite(a: np.ndarray) -> bool: ...
def bad_label(labels: np.ndarray, n_classes: int) -> int | None: ...
def batchnorm_forward(
    x: np.ndarray,
    gamma: np.ndarray,
    beta: np.ndarray,
    y: np.ndarray,
    mean: np.ndarray,
    invstd: np.ndarray,
    running_mean: np.ndarray | None,
    running_var: np.ndarray | None,
    momentum: float,
    eps: float,
    training: bool,
    n_threads: int,
) -> None: ...
def batchnorm_backward(
    g: np.ndarray,
    x: np.ndarray,
    gamma: np.ndarray,
    mean: np.ndarray,
    invstd: np.ndarray,
    dx: np.ndarray,
    dgamma: np.ndarray,
    dbeta: np.ndarray,
    training: bool,
    n_threads: int,
) -> None: ...
def dropout(
    x: np.ndarray, y: np.ndarray, p: float, seed: int, step: int, layer: int, n_threads: int
) -> None: ...

@disjoint_base
class Engine:
    def __init__(
        self,
        dtype_code: int,
        ops_i: np.ndarray,
        ops_f: np.ndarray,
        widths: object,
        alias: object,
        out_tensor: int,
        n_slots: int,
        n_diag_rows: int,
        n_stats: int,
        loss: int,
        theta: np.ndarray,
        grad: np.ndarray,
        state: np.ndarray,
    ) -> None: ...
    @property
    def capacity(self) -> int: ...
    @property
    def diagnostics(self) -> np.ndarray | None: ...
    @property
    def last_ok(self) -> bool: ...
    @property
    def flush_subnormals(self) -> bool: ...
    @flush_subnormals.setter
    def flush_subnormals(self, on: bool) -> None: ...
    @property
    def fuse_update(self) -> bool: ...
    @fuse_update.setter
    def fuse_update(self, on: bool) -> None: ...
    @property
    def keep_derivative(self) -> bool: ...
    @keep_derivative.setter
    def keep_derivative(self, on: bool) -> None: ...
    def reserve(self, rows: int) -> None: ...
    def batch_ok(self, X: object, y: object) -> bool: ...
    def step(
        self,
        X: np.ndarray,
        labels: np.ndarray | None,
        target: np.ndarray | None,
        diag: bool,
        kind: str = "",
        hyper: np.ndarray | None = None,
        state1: np.ndarray | None = None,
        state2: np.ndarray | None = None,
        t: int = 0,
        training: bool = True,
        seed: int = 0,
        counter: int = 0,
        check: bool = False,
    ) -> float: ...
    def try_step(
        self,
        X: object,
        y: object,
        diag: bool,
        kind: str,
        hyper: np.ndarray | None,
        state1: np.ndarray | None,
        state2: np.ndarray | None,
        t: int,
        training: bool,
        seed: int,
        counter: int,
        check: bool,
    ) -> float | None: ...
    def epoch(
        self,
        X: np.ndarray,
        labels: np.ndarray | None,
        target: np.ndarray | None,
        order: np.ndarray | None,
        bs: int,
        opt: int,
        hyper: np.ndarray,
        state1: np.ndarray | None,
        state2: np.ndarray | None,
        t0: int,
        training: bool,
        seed: int,
        counter0: int,
        check: bool,
        skip_single: bool,
        losses: np.ndarray,
        correct: np.ndarray,
        diag: bool = False,
    ) -> int: ...
    def sk_epoch(
        self,
        X: np.ndarray,
        labels: np.ndarray | None,
        target: np.ndarray | None,
        weights: np.ndarray | None,
        order: np.ndarray | None,
        bs: int,
        out_kind: int,
        solver: int,
        hyper: np.ndarray,
        state1: np.ndarray,
        state2: np.ndarray | None,
        t0: int,
        alpha: float,
        seed: int,
        counter: int,
        skip_single: bool,
        losses: np.ndarray,
    ) -> int: ...
    def gemms_only(self, X: np.ndarray) -> None: ...
    def kernels_only(self, X: np.ndarray) -> None: ...
    def update_only(
        self,
        opt: int,
        hyper: np.ndarray,
        state1: np.ndarray | None = None,
        state2: np.ndarray | None = None,
        t: int = 1,
    ) -> None: ...
    def output(self, rows: int) -> np.ndarray: ...
    def forward(self, X: np.ndarray, out: np.ndarray) -> None: ...
    def loss_of(
        self, X: np.ndarray, labels: np.ndarray | None, target: np.ndarray | None
    ) -> float: ...
