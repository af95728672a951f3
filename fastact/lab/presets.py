"""The presets: fixed lists of configurations that each ask one question.

    activations  depth sweep per activation, each with its matched init (= the default run)
    init         activation x init at depth 20: Glorot's "standard" U(+-1/sqrt n) against
                 Xavier, He and LeCun
    remedies     a deep sigmoid network, then each remedy in turn: a matched init,
                 BatchNorm, dropout, residual connections, another activation
    glorot2010   tanh and sigmoid, 5 hidden layers, standard vs normalised (Xavier) init:
                 the per-layer spread of back-propagated gradients (Glorot & Bengio 2010,
                 Figure 7 in spirit), at initialisation
    he2015       30 ReLU layers, "Xavier" (variance 1/n, as He et al. define it: fastact's
                 lecun_normal) vs He init, trained with SGD + momentum as the paper trains,
                 and with Adam as a second row (He et al. 2015, Figure 3 in spirit)

A preset fixes its grid (activations, depths, inits, variants; he2015 also the
optimizers); width, batch, data, steps, seed, lr, dropout and dtype keep the preset's
defaults unless given.

Init names are fastact's (fastact.nn): its xavier and he schemes multiply by the
activation's gain (PyTorch's calculate_gain: 1 for sigmoid, 5/3 for tanh, sqrt 2 for ReLU),
so "xavier_uniform" for tanh is the modern gain-corrected Xavier, and for ReLU it equals He
on square layers; "lecun_normal" is N(0, 1/n) without a gain.
"""

from __future__ import annotations

from .config import DEFAULT_ACTIVATIONS, DEFAULT_DEPTHS, DEFAULT_LR, Config

# the scalar defaults of every run; a preset may change some
BASE = {
    "width": 64,
    "batch": 128,
    "steps": 300,
    "optimizer": "adam",
    "dropout": 0.5,
    "dtype": "float32",
    "seed": 0,
}


def _activations(o):
    return [Config(a, "auto", d, "plain", **o) for a in DEFAULT_ACTIVATIONS for d in DEFAULT_DEPTHS]


def _init(o):
    return [
        Config(a, i, 20, "plain", **o)
        for a in ("sigmoid", "tanh", "relu", "selu")
        for i in ("standard", "xavier_uniform", "he_normal", "lecun_normal")
    ]


def _remedies(o):
    d = 20
    rows = [
        ("sigmoid", "standard", "plain", "sigmoid, standard init"),
        ("sigmoid", "auto", "plain", "+ matched init (xavier_uniform)"),
        ("sigmoid", "auto", "batchnorm", "+ BatchNorm before each activation"),
        ("sigmoid", "auto", "dropout", f"+ dropout p={o['dropout']:g}"),
        ("sigmoid", "auto", "residual", "+ residual connections"),
        ("sigmoid", "auto", "batchnorm+residual", "+ BatchNorm + residual"),
        ("tanh", "auto", "plain", "tanh instead (xavier_uniform, gain 5/3)"),
        ("relu", "auto", "plain", "relu instead (he_normal)"),
    ]
    return [Config(a, i, d, v, label=lab, **o) for a, i, v, lab in rows]


def _glorot2010(o):
    return [
        Config(a, i, 5, "plain", label=f"{a}, {lab}", **o)
        for a in ("tanh", "sigmoid")
        for i, lab in (
            ("standard", "standard U(+-1/sqrt n)"),
            ("xavier_uniform", "normalised (Xavier)"),
        )
    ]


_OPT_NAME = {"momentum": "SGD+momentum", "adam": "Adam", "sgd": "SGD"}


def _he2015(o):
    rows = []
    for opt in ("momentum", "adam"):
        for init, lab in (("lecun_normal", "Xavier (var 1/n)"), ("he_normal", "He (var 2/n)")):
            oo = {**o, "optimizer": opt, "lr": o["lr"] if o.get("lr_given") else DEFAULT_LR[opt]}
            oo.pop("lr_given", None)
            rows.append(Config("relu", init, 30, "plain", label=f"{_OPT_NAME[opt]}, {lab}", **oo))
    return rows


# name -> (builder, the defaults it changes, the grid arguments it fixes)
PRESETS = {
    "activations": (_activations, {}, ("activations", "depths", "inits", "variants")),
    "init": (_init, {}, ("activations", "depths", "inits", "variants")),
    "remedies": (_remedies, {"steps": 300}, ("activations", "depths", "inits", "variants")),
    "glorot2010": (
        _glorot2010,
        {"steps": 0, "width": 128},
        ("activations", "depths", "inits", "variants"),
    ),
    "he2015": (
        _he2015,
        {"steps": 300},
        ("activations", "depths", "inits", "variants", "optimizer"),
    ),
}


def build(name, scalars: dict):
    """The configurations of a preset; `scalars` are the user's width, batch, ... (None =
    the preset's default)."""
    builder, changes, _ = PRESETS[name]
    o = {**BASE, **changes, **{k: v for k, v in scalars.items() if v is not None}}
    lr_given = o.get("lr") is not None
    if not lr_given:
        o["lr"] = DEFAULT_LR[o["optimizer"]]
    if name == "he2015":
        o["lr_given"] = lr_given
    return builder(o)
