"""Weight initialisation: the schemes and the activation gains."""

from __future__ import annotations

import math

import numpy as np

__all__ = ["INITS", "gain", "auto_scheme", "init_weight"]

INITS = (
    "auto",
    "standard",
    "xavier_uniform",
    "xavier_normal",
    "he_uniform",
    "he_normal",
    "lecun_normal",
    "orthogonal",
)
_RELU_LIKE = (
    "relu",
    "leaky_relu",
    "relu6",
    "elu",
    "celu",
    "gelu",
    "silu",
    "mish",
    "softplus",
    "hardswish",
    "prelu",
)


def gain(name: str, params: dict | None = None) -> float:
    """The initialisation gain of an activation: torch.nn.init.calculate_gain where it
    defines one (identity/sigmoid 1, tanh 5/3, relu sqrt 2, leaky_relu sqrt(2 / (1 + slope^2)),
    selu 3/4; prelu as leaky_relu with its initial slope, 0.25 by default); sqrt 2 for the
    other ReLU-like activations and 1 for the other bounded ones."""
    if name == "tanh":
        return 5.0 / 3.0
    if name == "selu":
        return 0.75
    if name in ("leaky_relu", "prelu"):
        default = 0.01 if name == "leaky_relu" else 0.25
        key = "negative_slope" if name == "leaky_relu" else "init"
        slope = (params or {}).get(key, default)
        return math.sqrt(2.0 / (1.0 + slope * slope))
    if name in _RELU_LIKE:
        return math.sqrt(2.0)
    return 1.0


def auto_scheme(name: str) -> str:
    """The matched scheme: he_normal for ReLU-like, lecun_normal for selu, xavier_uniform
    for the rest (sigmoid/tanh-like and the linear output layer)."""
    if name in _RELU_LIKE:
        return "he_normal"
    if name == "selu":
        return "lecun_normal"
    return "xavier_uniform"


def init_weight(rng, scheme: str, n_in: int, n_out: int, g: float) -> np.ndarray:
    """One W (n_in x n_out) in float64: the layer computes x @ W, so fan_in = n_in."""
    if scheme == "standard":  # Glorot & Bengio (2010), eq. 15's "standard"
        a = 1.0 / math.sqrt(n_in)
        return rng.uniform(-a, a, (n_in, n_out))
    if scheme == "xavier_uniform":
        a = g * math.sqrt(6.0 / (n_in + n_out))
        return rng.uniform(-a, a, (n_in, n_out))
    if scheme == "xavier_normal":
        return rng.normal(0.0, g * math.sqrt(2.0 / (n_in + n_out)), (n_in, n_out))
    if scheme == "he_uniform":
        a = g * math.sqrt(3.0 / n_in)
        return rng.uniform(-a, a, (n_in, n_out))
    if scheme == "he_normal":
        return rng.normal(0.0, g / math.sqrt(n_in), (n_in, n_out))
    if scheme == "lecun_normal":
        return rng.normal(0.0, 1.0 / math.sqrt(n_in), (n_in, n_out))
    # orthogonal (Saxe et al.; torch.nn.init.orthogonal_): Q of a Gaussian matrix's QR,
    # signs fixed by R's diagonal, times the gain
    big, small = max(n_in, n_out), min(n_in, n_out)
    q, r = np.linalg.qr(rng.standard_normal((big, small)))
    q *= np.sign(np.diag(r))
    return g * (q if n_in >= n_out else q.T)
