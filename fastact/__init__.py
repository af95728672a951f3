"""fastact: fused native forward/backward kernels for neural-network activations.

    import fastact
    y = fastact.gelu(x)                    # float32 or float64, any shape
    gx = fastact.gelu_backward(g, x)       # `saved` = x: ACTIVATIONS["gelu"].saves == "input"
    fastact.reference.gelu(x)              # the same in plain NumPy

Environment:
    FASTACT_PUREPYTHON=1   the whole package runs on fastact.reference (no native code)
    FASTACT_ISA=baseline   force the portable loops even on an AVX2+FMA CPU
"""
from __future__ import annotations

import os as _os

__version__ = "0.1.0"

PUREPYTHON = _os.environ.get("FASTACT_PUREPYTHON", "") not in ("", "0")

if PUREPYTHON:
    from . import reference as _backend
else:
    from . import activations as _backend
    from . import _activations as _ext

    _isa = _os.environ.get("FASTACT_ISA", "auto").lower()
    if _isa not in ("auto", "avx2", "baseline"):
        raise ValueError(
            f"FASTACT_ISA={_isa!r} is not understood; use 'auto' (default), 'avx2' or 'baseline'.")
    _ext.set_isa("baseline" if _isa == "baseline" else "avx2")

from . import reference
from ._config import config, show_config
from ._registry import Activation, build as _build
from ._validate import get_default_threads as get_num_threads
from ._validate import set_default_threads as set_num_threads

ACTIVATIONS = _build(_backend)

_PUBLIC = [
    "identity", "sigmoid", "tanh", "relu", "leaky_relu", "prelu", "elu", "selu", "celu", "gelu",
    "silu", "mish", "softplus", "softsign", "hardtanh", "relu6", "hardsigmoid", "hardswish",
    "log_sigmoid", "softmax", "log_softmax",
]
for _n in _PUBLIC:
    globals()[_n] = getattr(_backend, _n)
    globals()[_n + "_backward"] = getattr(_backend, _n + "_backward")
softmax_cross_entropy = _backend.softmax_cross_entropy
bias_act = _backend.bias_act
bias_act_backward = _backend.bias_act_backward

__all__ = (_PUBLIC + [n + "_backward" for n in _PUBLIC]
           + ["softmax_cross_entropy", "bias_act", "bias_act_backward", "ACTIVATIONS",
              "Activation", "reference", "show_config", "config", "set_num_threads",
              "get_num_threads", "PUREPYTHON", "__version__"])
del _n
