"""One configuration -> one record: gradients at initialisation, a seeded training run,
and the step time of fastact against fastact.reference.

Gradient figures come from a float64 copy of the network (fastact.MLP in float64, the
same weights), on one seeded batch of the training data, in training mode: float32 would
underflow where a deep sigmoid network's first-layer gradients reach 1e-40, and the
figures are what the lab is about.  Training and timing run in the configuration's dtype.

Definitions (hidden layers 1..L, L = depth; the output layer is not one of them):
    weight_grad_norms[l]  = ||dL/dW_l||_F for every dense layer, the output layer last
    backprop_grad_norms[l] = ||dL/dz_l||_F, z_l the pre-activation of hidden layer l
                           (what flows back into layer l: Glorot & Bengio 2010, eq. 14)
    weight_grad_ratio     = ||dL/dW_1|| / ||dL/dW_L||
    backprop_grad_ratio   = ||dL/dz_1|| / ||dL/dz_L||
    activation_std[l], saturated_fraction[l], dead_fraction[l]: net.diagnostics() of
                           hidden layer l (|f'(z)| < 1e-3 max|f'|; units with dz = 0 over
                           the whole batch)
"""

from __future__ import annotations

import math
import time

import numpy as np

import fastact

from .config import Config, build_network, make_optimizer

# the record's fields that are measured times: they differ between runs of the same seed
TIMING_FIELDS = ("train_time", "step_time_fastact", "step_time_reference", "speedup")
# how many accuracy points a training curve gets (plus the start)
CURVE_POINTS = 20
# one timing sample runs this long (several steps when a step is short); the best of
# REPEATS interleaved samples (timeit's convention: on a shared machine the minimum is the
# figure least disturbed by other processes)
_SAMPLE_SECONDS = 2e-3
_REPEATS = 7


def _ratio(a: float, b: float) -> float:
    if b == 0:
        return math.nan if a == 0 else math.inf
    return a / b


def gradient_batch(data, cfg: Config):
    """Return the seeded batch that the gradient figures are measured on.

    Parameters
    ----------
    data : Data
        The task.
    cfg : Config
        cfg.batch rows (at most all), drawn from the training data without replacement
        by numpy.random.default_rng([cfg.seed, 1]).

    Returns
    -------
    X : ndarray of shape (rows, features)
        The inputs.
    y : ndarray of shape (rows,)
        Their labels.

    Examples
    --------
    >>> import fastact.lab
    >>> data = fastact.lab.load_data("teacher")
    >>> X, y = fastact.lab.gradient_batch(data, fastact.lab.Config("relu", batch=64))
    >>> X.shape, y.shape
    ((64, 32), (64,))
    """
    rng = np.random.default_rng([cfg.seed, 1])
    n = data.X_train.shape[0]
    idx = rng.choice(n, size=min(cfg.batch, n), replace=False)
    return data.X_train[idx], data.y_train[idx]


def gradient_figures(net, X, y, depth: int) -> dict:
    """compute_gradients on (X, y) and the record's gradient fields from diagnostics()."""
    loss = net.compute_gradients(X, y)
    diag = net.diagnostics()
    hidden = diag[:depth]
    wn = [d["grad_W_norm"] for d in diag]
    zn = [d["grad_z_norm"] for d in hidden]
    out = {
        "loss_at_batch": float(loss),
        "weight_grad_norms": wn,
        "backprop_grad_norms": zn,
        "weight_grad_ratio": _ratio(wn[0], wn[depth - 1]),
        "backprop_grad_ratio": _ratio(zn[0], zn[depth - 1]),
        "activation_std": [d["act_std"] for d in hidden],
        "saturated_fraction": [d["saturated_fraction"] for d in hidden],
        "dead_fraction": [d["dead_fraction"] for d in hidden],
    }
    for k in ("grad_gamma_norm", "grad_beta_norm"):  # BatchNorm layers (None elsewhere)
        if any(k in d for d in hidden):
            out[k + "s"] = [d.get(k) for d in hidden]
    return out


def _measure_net(cfg, data, theta=None):
    """The float64 measuring network (the configuration's weights, or `theta`)."""
    net = build_network(cfg, data.n_features, data.n_classes, dtype=np.float64)
    if theta is not None:
        net.theta[...] = theta
    return net


def _train(cfg: Config, data, net) -> dict:
    """`cfg.steps` seeded steps of mini-batch training; curves and final values."""
    dt = net.dtype
    Xtr, ytr = data.X_train.astype(dt), data.y_train
    Xte, yte = data.X_test.astype(dt), data.y_test
    opt = make_optimizer(cfg)
    rng = np.random.default_rng([cfg.seed, 2])
    n = Xtr.shape[0]
    bs = min(cfg.batch, n)
    every = max(1, cfg.steps // CURVE_POINTS)
    evaluate = _evaluator(net)
    start = evaluate(Xtr, ytr)
    acc_curve = [[0, evaluate(Xte, yte)["accuracy"]]]
    losses = []
    order, pos = rng.permutation(n), 0
    diverged = False
    Xb = np.empty((bs, Xtr.shape[1]), dt)
    yb = np.empty(bs, np.int64)
    t0 = time.perf_counter()
    for step in range(1, cfg.steps + 1):
        if pos + bs > n:  # a new epoch: reshuffle
            order, pos = rng.permutation(n), 0
        idx = order[pos : pos + bs]
        pos += bs
        np.take(Xtr, idx, axis=0, out=Xb)
        np.take(ytr, idx, out=yb)
        loss = float(net.train_step(Xb, yb, opt))
        losses.append(loss)
        if not math.isfinite(loss):
            diverged = True
            break
        if step % every == 0 or step == cfg.steps:
            acc_curve.append([step, evaluate(Xte, yte)["accuracy"]])
    train_time = time.perf_counter() - t0
    end = evaluate(Xtr, ytr)
    test = evaluate(Xte, yte)
    return {
        "initial_loss": start["loss"],
        "loss_curve": losses,
        "accuracy_curve": acc_curve,
        "final_loss": end["loss"],
        "train_accuracy": end["accuracy"],
        "accuracy": test["accuracy"],
        "diverged": diverged,
        "train_time": train_time,
    }


def _evaluator(net):
    """net.evaluate: always in evaluation mode (BatchNorm's running statistics, no dropout),
    without changing net.training; a diverged network (NaN weights) gives NaN loss."""

    def evaluate(X, y):
        with np.errstate(all="ignore"):
            res = net.evaluate(X, y)
        return {"loss": float(res["loss"]), "accuracy": float(res["accuracy"])}

    return evaluate


_WARM = []


def _warm_up(cfg, data):
    """Once per process, before the first timing: a few steps of a small network on both
    engines (the first steps of a process pay for page faults, lazy imports and BLAS
    buffers, and would make the first configuration look slow)."""
    if not _WARM:
        small = cfg.replace(depth=2)
        X, y = gradient_batch(data, small)
        for engine in ("fastact", "reference"):
            net = build_network(small, data.n_features, data.n_classes, engine=engine)
            opt = make_optimizer(small)
            with np.errstate(all="ignore"):
                for _ in range(20):
                    net.train_step(X.astype(small.dtype), y, opt)
        _WARM.append(True)


def time_steps(cfg: Config, data, repeats: int = _REPEATS) -> tuple:
    """(seconds per train_step of fastact.MLP, of fastact.reference.MLP): the same
    configuration, batch and optimizer, interleaved, best of `repeats` samples (a sample
    runs several steps when one is shorter than 2 ms)."""
    _warm_up(cfg, data)
    X, y = gradient_batch(data, cfg)
    X = X.astype(cfg.dtype)
    nets = [
        build_network(cfg, data.n_features, data.n_classes, engine=e)
        for e in ("fastact", "reference")
    ]
    opts = [make_optimizer(cfg) for _ in nets]
    inner = []
    with np.errstate(all="ignore"):
        for net, opt in zip(nets, opts):
            net.train_step(X, y, opt)  # warm-up: buffers, state
            t0 = time.perf_counter()
            net.train_step(X, y, opt)
            one = time.perf_counter() - t0
            inner.append(max(1, min(100, int(_SAMPLE_SECONDS / max(one, 1e-7)))))
        samples = ([], [])
        for _ in range(repeats):
            for i, (net, opt) in enumerate(zip(nets, opts)):
                t0 = time.perf_counter()
                for _ in range(inner[i]):
                    net.train_step(X, y, opt)
                samples[i].append((time.perf_counter() - t0) / inner[i])
    return min(samples[0]), min(samples[1])


# the figures measured again after training (as trained_<name>), on the same batch
_AGAIN = (
    "weight_grad_norms",
    "backprop_grad_norms",
    "weight_grad_ratio",
    "backprop_grad_ratio",
    "activation_std",
    "saturated_fraction",
    "dead_fraction",
)


def run_config(cfg: Config, data, *, timing: bool = True) -> dict:
    """Measure one configuration: its record.

    Gradients at initialisation (on gradient_batch, in float64), a seeded training run
    of cfg.steps steps (with the gradients measured again after it), and optionally the
    step time of fastact.MLP against fastact.reference.MLP.  The fields are described in
    fastact.lab.measure's module docstring.

    Parameters
    ----------
    cfg : Config
        The configuration.
    data : Data
        The task.
    timing : bool, default True
        Measure the step times (the fields of fastact.lab.TIMING_FIELDS; None without).

    Returns
    -------
    dict
        The record: the configuration's fields, the gradient figures
        (weight_grad_ratio, backprop_grad_ratio, per-layer norms, activation_std,
        saturated_fraction, dead_fraction), the training curve and accuracy, timings.

    See Also
    --------
    fastact.lab.run : Many configurations, with verdicts.

    Examples
    --------
    >>> import fastact.lab
    >>> data = fastact.lab.load_data("teacher")
    >>> rec = fastact.lab.run_config(
    ...     fastact.lab.Config("tanh", depth=3, width=8, steps=20), data, timing=False
    ... )
    >>> rec["depth"], len(rec["backprop_grad_norms"])
    (3, 3)
    >>> rec["final_loss"] < rec["initial_loss"]
    True
    """
    rec = {
        **cfg.as_dict(),
        "init_scheme": cfg.init_scheme(),
        "data": data.name,
        "n_classes": data.n_classes,
        "chance": data.chance,
        "chance_loss": data.chance_loss,
        "backend": "reference" if fastact.PUREPYTHON else "native",
    }
    if cfg.steps == 0:
        rec.update(optimizer=None, lr=None)
    if "dropout" not in cfg.parts:
        rec["dropout"] = 0.0
    X, y = gradient_batch(data, cfg)
    mnet = _measure_net(cfg, data)
    rec["n_params"] = mnet.n_params
    with np.errstate(all="ignore"):
        rec.update(gradient_figures(mnet, X, y, cfg.depth))
    trained = {
        k: None
        for k in (
            "initial_loss",
            "loss_curve",
            "accuracy_curve",
            "final_loss",
            "train_accuracy",
            "accuracy",
            "diverged",
            "train_time",
        )
    }
    trained.update({"trained_" + k: None for k in _AGAIN})
    if cfg.steps > 0:
        net = build_network(cfg, data.n_features, data.n_classes)
        trained.update(_train(cfg, data, net))
        if not trained["diverged"]:
            mnet.theta[...] = net.theta
            with np.errstate(all="ignore"):
                g = gradient_figures(mnet, X, y, cfg.depth)
            for k in _AGAIN:
                trained["trained_" + k] = g[k]
    rec.update(trained)
    if timing:
        tf, tr = time_steps(cfg, data)
        rec.update(step_time_fastact=tf, step_time_reference=tr, speedup=tr / tf)
    else:
        rec.update(step_time_fastact=None, step_time_reference=None, speedup=None)
    return rec
