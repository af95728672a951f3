"""fastact: fused native forward/backward kernels for neural-network activations.

    import fastact
    y = fastact.gelu(x)                    # float32 or float64, any shape
    gx = fastact.gelu_backward(g, x)       # `saved` = x: ACTIVATIONS["gelu"].saves == "input"
    fastact.reference.gelu(x)              # the same in plain NumPy

Environment:
    FASTACT_PUREPYTHON=1   the whole package runs on fastact.reference (no native code);
                           1/true/yes/on, or 0/false/no/off/empty (the default), any case
    FASTACT_ISA=baseline   cap the SIMD path: avx512, avx2 or baseline (default, or empty:
                           auto, the best this CPU runs)
"""

from __future__ import annotations

import os as _os

__version__ = "0.1.0"

_pure = _os.environ.get("FASTACT_PUREPYTHON", "").strip().lower()
if _pure not in ("", "0", "1", "false", "true", "no", "yes", "off", "on"):
    raise ValueError(
        f"FASTACT_PUREPYTHON={_os.environ['FASTACT_PUREPYTHON']!r} is not understood; use 1 "
        "(or true, yes, on) for the pure-NumPy twin, 0 (or false, no, off, or unset) for the "
        "native kernels."
    )
PUREPYTHON = _pure in ("1", "true", "yes", "on")

_isa = _os.environ.get("FASTACT_ISA", "").strip().lower() or "auto"
if _isa not in ("auto", "avx512", "avx2", "baseline"):
    raise ValueError(
        f"FASTACT_ISA={_isa!r} is not understood; use 'auto' (default), "
        "'avx512', 'avx2' or 'baseline'."
    )

if PUREPYTHON:
    from . import reference as _backend
else:
    from . import activations as _backend  # (its import of the extension says how to build it)

    _ext = _backend._ext

    _ext.set_isa("avx512" if _isa == "auto" else _isa)

from . import _validate as _V
from . import reference
from ._config import config, show_config
from ._registry import Activation
from ._registry import build as _build
from ._threads import get_num_threads, set_num_threads, threads

if not PUREPYTHON:
    _V.set_omp_query(_ext.omp_max_threads)
    _V.set_thread_limit(_ext.omp_thread_limit())
    _ext.set_default_threads(0, _V.thread_cap())

    def _after_fork_in_child():
        # libgomp's thread pool does not survive fork(): a forked child (multiprocessing's
        # "fork" start method) that used it would hang at its first parallel call, so the
        # child runs every call on its own thread; and threads()'s lock, which another
        # thread of the parent may have held at the fork, is made anew
        import threading

        _V.forked_child()
        _ext.set_default_threads(1, 1)
        threads._lock = threading.RLock()

    if hasattr(_os, "register_at_fork"):
        _os.register_at_fork(after_in_child=_after_fork_in_child)

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

# the networks and the functional layers: native, or (pure mode) the twin's, in fastact.nn
# too
_NN_TWINNED = (
    "MLP",
    "Sequential",
    "dense_forward",
    "dense_backward",
    "batchnorm_forward",
    "batchnorm_backward",
    "dropout_forward",
    "dropout_backward",
)
for _n in _NN_TWINNED:
    if PUREPYTHON:
        setattr(nn, _n, getattr(reference, _n))
    globals()[_n] = getattr(nn, _n)

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
