"""fastact: fused native forward/backward kernels for neural-network activations.

    import fastact
    y = fastact.gelu(x)                    # float32 or float64, any shape
    gx = fastact.gelu_backward(g, x)       # `saved` = x: ACTIVATIONS["gelu"].saves == "input"
    fastact.reference.gelu(x)              # the same in plain NumPy

Environment:
    FASTACT_PUREPYTHON=1   the whole package runs on fastact.reference (no native code)
    FASTACT_ISA=baseline   cap the SIMD path: avx512, avx2 or baseline (default: the best
                           this CPU runs)
"""

from __future__ import annotations

import os as _os

__version__ = "0.1.0"

PUREPYTHON = _os.environ.get("FASTACT_PUREPYTHON", "") not in ("", "0")

if PUREPYTHON:
    from . import reference as _backend
else:
    from . import _activations as _ext
    from . import activations as _backend

    _isa = _os.environ.get("FASTACT_ISA", "auto").lower()
    if _isa not in ("auto", "avx512", "avx2", "baseline"):
        raise ValueError(
            f"FASTACT_ISA={_isa!r} is not understood; use 'auto' (default), 'avx512', 'avx2' "
            "or 'baseline'."
        )
    _ext.set_isa("avx512" if _isa == "auto" else _isa)

from . import _validate as _V
from . import reference
from ._config import config, show_config
from ._registry import Activation
from ._registry import build as _build
from ._threads import get_num_threads, set_num_threads, threads

if not PUREPYTHON:
    _V.set_omp_query(_ext.omp_max_threads)
    _ext.set_default_threads(0, _V.usable_cores())

ACTIVATIONS = _build(_backend)

_PUBLIC = [
    "identity",
    "sigmoid",
    "tanh",
    "relu",
    "leaky_relu",
    "prelu",
    "elu",
    "selu",
    "celu",
    "gelu",
    "silu",
    "mish",
    "softplus",
    "softsign",
    "hardtanh",
    "relu6",
    "hardsigmoid",
    "hardswish",
    "log_sigmoid",
    "softmax",
    "log_softmax",
]
for _n in _PUBLIC:
    globals()[_n] = getattr(_backend, _n)
    globals()[_n + "_backward"] = getattr(_backend, _n + "_backward")
softmax_cross_entropy = _backend.softmax_cross_entropy
bias_act = _backend.bias_act
bias_act_backward = _backend.bias_act_backward

# dense layers, BatchNorm, dropout and networks (fastact/nn/; the native side is src/_nn.pyx)
from . import nn, optim
from .nn import BatchNorm, BatchNormCache, Dense, DenseCache, Dropout, DropoutCache, Residual

_nn_backend = reference if PUREPYTHON else nn
MLP = _nn_backend.MLP
Sequential = _nn_backend.Sequential
dense_forward = _nn_backend.dense_forward
dense_backward = _nn_backend.dense_backward
batchnorm_forward = _nn_backend.batchnorm_forward
batchnorm_backward = _nn_backend.batchnorm_backward
dropout_forward = _nn_backend.dropout_forward
dropout_backward = _nn_backend.dropout_backward

__all__ = (
    _PUBLIC
    + [n + "_backward" for n in _PUBLIC]
    + [
        "softmax_cross_entropy",
        "bias_act",
        "bias_act_backward",
        "ACTIVATIONS",
        "Activation",
        "reference",
        "show_config",
        "config",
        "set_num_threads",
        "get_num_threads",
        "threads",
        "PUREPYTHON",
        "__version__",
        "MLP",
        "Sequential",
        "Dense",
        "BatchNorm",
        "Dropout",
        "Residual",
        "dense_forward",
        "dense_backward",
        "DenseCache",
        "batchnorm_forward",
        "batchnorm_backward",
        "BatchNormCache",
        "dropout_forward",
        "dropout_backward",
        "DropoutCache",
        "nn",
        "optim",
    ]
)
del _n
