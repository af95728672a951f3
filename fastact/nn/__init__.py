"""fastact.nn: dense layers, BatchNorm, dropout and residual connections, and networks
trained by one native call per step.

    fastact.nn.functional   dense_forward/backward, batchnorm_forward/backward,
                            dropout_forward/backward (the layers one call at a time)
    fastact.nn.layers       Dense, BatchNorm, Dropout, ActivationLayer, Residual
    fastact.nn.program      the layers compiled into the native engine's program of ops
    fastact.nn.network      Sequential, MLP (and the native engine's adapter)
    fastact.nn.init         initialisation schemes and gains
    fastact.nn.training     net.fit's loop and progress bar
    fastact.nn.persistence  save / load (.npz, no pickle)

The native arithmetic is src/_nn.pyx (with src/_nn_ops.pxi and src/_nn_engine.pxi);
fastact.reference holds the NumPy twin of every piece.
"""

from .functional import (
    BatchNormCache,
    DenseCache,
    DropoutCache,
    batchnorm_backward,
    batchnorm_forward,
    dense_backward,
    dense_forward,
    dropout_backward,
    dropout_forward,
)
from .init import INITS, gain
from .layers import MLP_ACTIVATIONS, ActivationLayer, BatchNorm, Dense, Dropout, Layer, Residual
from .network import DIAG_COLUMNS, LOSSES, MLP, Sequential

__all__ = [
    "MLP",
    "Sequential",
    "Dense",
    "BatchNorm",
    "Dropout",
    "ActivationLayer",
    "Residual",
    "Layer",
    "DenseCache",
    "BatchNormCache",
    "DropoutCache",
    "dense_forward",
    "dense_backward",
    "batchnorm_forward",
    "batchnorm_backward",
    "dropout_forward",
    "dropout_backward",
    "INITS",
    "LOSSES",
    "MLP_ACTIVATIONS",
    "DIAG_COLUMNS",
    "gain",
]
