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
    """Return the initialisation gain of an activation.

    torch.nn.init.calculate_gain where it defines one (identity and sigmoid 1, tanh 5/3,
    relu sqrt 2, leaky_relu sqrt(2 / (1 + slope^2)), selu 3/4); prelu as leaky_relu
    with its initial slope (0.25 by default); sqrt 2 for the other ReLU-like
    activations and 1 for the other bounded ones.

    Parameters
    ----------
    name : str
        The activation's name.
    params : dict, optional
        Its parameters: leaky_relu's "negative_slope", prelu's "init".

    Returns
    -------
    float
        The gain that xavier, he and orthogonal initialisation multiply by.

    Raises
    ------
    ValueError
        If `name` is not an activation a network takes.

    See Also
    --------
    fastact.nn.init.auto_scheme : The matched scheme of an activation.

    Examples
    --------
    >>> from fastact.nn import gain
    >>> round(gain("tanh"), 4), round(gain("relu"), 4)
    (1.6667, 1.4142)
    >>> round(gain("leaky_relu", {"negative_slope": 0.2}), 4)
    1.3868
    """
    from .. import _registry as R

    valid = (*R.BIAS_ACT_NAMES, "prelu")
    if name not in valid:  # (a typo would silently give 1.0)
        raise ValueError(f"gain: unknown activation {name!r}; valid names: {', '.join(valid)}.")
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
    """Return the matched initialisation scheme of an activation (init="auto").

    Parameters
    ----------
    name : str
        The activation's name ("identity" for a linear layer).

    Returns
    -------
    str
        "he_normal" for ReLU-like activations, "lecun_normal" for selu,
        "xavier_uniform" for the rest (sigmoid/tanh-like and linear layers).

    Examples
    --------
    >>> from fastact.nn.init import auto_scheme
    >>> auto_scheme("gelu"), auto_scheme("selu"), auto_scheme("tanh")
    ('he_normal', 'lecun_normal', 'xavier_uniform')
    """
    if name in _RELU_LIKE:
        return "he_normal"
    if name == "selu":
        return "lecun_normal"
    return "xavier_uniform"


def init_weight(rng, scheme: str, n_in: int, n_out: int, g: float) -> np.ndarray:
    """Draw one weight matrix of a scheme, in float64.

    The layer computes x @ W, so fan_in = n_in and fan_out = n_out.

    Parameters
    ----------
    rng : numpy.random.Generator
        The random numbers.
    scheme : str
        One of fastact.nn.INITS but "auto" (see auto_scheme): "standard" (uniform
        +-1/sqrt(n_in), Glorot & Bengio's), "xavier_uniform", "xavier_normal",
        "he_uniform", "he_normal", "lecun_normal", "orthogonal".
    n_in : int
        The layer's input width.
    n_out : int
        The layer's output width.
    g : float
        The gain (see gain); "standard" and "lecun_normal" ignore it.

    Returns
    -------
    ndarray of shape (n_in, n_out)
        The weights.

    See Also
    --------
    fastact.nn.gain : The gain of an activation.

    Examples
    --------
    >>> import numpy as np
    >>> from fastact.nn.init import init_weight
    >>> W = init_weight(np.random.default_rng(0), "orthogonal", 4, 4, 1.0)
    >>> bool(np.allclose(W.T @ W, np.eye(4)))
    True
    """
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
