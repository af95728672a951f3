"""fastact.lab.run: check the arguments, build the configurations, run them, judge them."""

from __future__ import annotations

import platform
import time

import numpy as np

import fastact

from . import presets as P
from . import verdicts as V
from .config import (
    DEFAULT_ACTIVATIONS,
    DEFAULT_DEPTHS,
    DEFAULT_LR,
    Config,
    check_activations,
    check_dtype,
    check_inits,
    check_int,
    check_optimizer,
    check_positive_ints,
    check_real,
    check_variants,
    variant_parts,
)
from .data import load_data
from .result import LabResult
from .runners import Progress, run_dask, run_joblib, run_serial, usable_jobs


def run(
    activations=None,
    depths=None,
    inits=None,
    variants=None,
    *,
    preset=None,
    width=None,
    batch=None,
    data="teacher",
    steps=None,
    seed=0,
    lr=None,
    optimizer=None,
    dropout=None,
    dtype=None,
    jobs=1,
    scheduler=None,
    timing=True,
    progress="auto",
) -> LabResult:
    """Run the vanishing-gradient lab: a sweep over activation x depth x init x variant.

    Each configuration gets its gradients measured at initialisation (in float64, on one
    seeded batch), optionally a seeded training run and a step-time comparison of
    fastact.MLP with fastact.reference.MLP; the records are then judged into verdicts.

    Parameters
    ----------
    activations : list of str or str, optional
        The activations (a list or a comma-separated string).  Default: sigmoid, tanh,
        relu, leaky_relu, prelu, elu, selu, gelu, silu.
    depths : list of int or str, optional
        Hidden layers per network.  Default: 2, 5, 10, 20, 50.
    inits : list of str or str, optional
        Schemes of fastact.nn.INITS.  Default: "auto" (each activation's match).
    variants : list of str or str, optional
        "plain" (the default), "batchnorm", "batchnorm_after", "dropout", "residual"
        and "+" combinations such as "batchnorm+residual".
    preset : {"activations", "init", "remedies", "glorot2010", "he2015"}, optional
        A fixed grid that asks one question (fastact.lab.PRESETS); it cannot be
        combined with the grid arguments it fixes.
    width : int, optional
        Units per hidden layer (64).
    batch : int, optional
        The batch size (128).
    data : str, os.PathLike, Data or (X, y), default "teacher"
        The task, as fastact.lab.load_data takes it.
    steps : int, optional
        Training steps per configuration (300; 0 = gradients at initialisation only).
    seed : int, default 0
        Weights, batches and dropout masks; the same seed gives the same records, bit
        for bit, with any jobs or scheduler (timings excepted).
    lr : float, optional
        The learning rate (default: the optimizer's, below).
    optimizer : {"adam", "momentum", "sgd"}, optional
        "adam" (the default, lr 1e-3), "momentum" (SGD with 0.9, lr 0.01), "sgd" (0.05).
    dropout : float, optional
        The drop probability of the dropout variants (0.5).
    dtype : {"float32", "float64"}, optional
        The precision of training and timing (float32); the gradient figures are always
        measured in float64.
    jobs : int, default 1
        Worker processes (joblib; -1 = every core).
    scheduler : str or distributed.Client, optional
        A Dask scheduler address or client (instead of jobs).
    timing : bool, default True
        Measure the step time of fastact.MLP and fastact.reference.MLP per configuration.
    progress : {"auto", True, False} or file-like, default "auto"
        "auto": a bar on a terminal for runs over a second; or a stream to write to.

    Returns
    -------
    LabResult
        .records (one dict per configuration), .verdicts, .table(), .report(),
        .to_json(), .to_csv(), .to_pandas(), .save(dir), .plot(dir).

    Raises
    ------
    TypeError
        If an argument has a wrong type (timing not a bool, data of an unknown kind).
    ValueError
        If a name, number or preset is invalid, a preset meets an argument it fixes, or
        both jobs and scheduler are given.

    See Also
    --------
    fastact.lab.run_config : One configuration's record.

    Examples
    --------
    >>> import fastact.lab
    >>> res = fastact.lab.run(["sigmoid", "relu"], depths=[2, 10], steps=0,
    ...                       timing=False, progress=False)
    >>> [(r["activation"], r["depth"]) for r in res.records]
    [('sigmoid', 2), ('sigmoid', 10), ('relu', 2), ('relu', 10)]
    >>> deep_sigmoid, deep_relu = res.records[1], res.records[3]
    >>> bool(deep_sigmoid["backprop_grad_ratio"] < 1e-3 < deep_relu["backprop_grad_ratio"])
    True
    >>> print(res.verdicts[0])
    sigmoid, auto (xavier_uniform): |dz1|/|dzL| 0.22 at depth 2, 1.8e-6 at depth 10: vanishes.
    """
    t0 = time.perf_counter()
    scalars = {
        "width": width,
        "batch": batch,
        "steps": steps,
        "seed": seed,
        "lr": lr,
        "optimizer": optimizer,
        "dropout": dropout,
        "dtype": dtype,
    }
    if width is not None:
        check_int(width, "width", hint=" (units per hidden layer)")
    if batch is not None:
        check_int(batch, "batch")
    if steps is not None:
        check_int(steps, "steps", zero_ok=True, hint=" (0 = gradients at initialisation only)")
    check_int(seed, "seed", zero_ok=True, high=(2**63, "2**63"))
    if lr is not None:
        check_real(lr, "lr")
    if optimizer is not None:
        check_optimizer(optimizer)
    if dropout is not None:
        check_real(dropout, "dropout", low=0.0, low_open=False, high=1.0)
    if dtype is not None:
        scalars["dtype"] = check_dtype(dtype)
    if not isinstance(timing, bool):
        raise TypeError(f"lab: timing must be True or False; got {timing!r}.")
    n_jobs = usable_jobs(jobs)
    if scheduler is not None and n_jobs != 1:
        raise ValueError(
            "lab: give jobs or scheduler, not both: with a Dask scheduler the "
            "cluster's workers decide the parallelism."
        )
    notes = []
    if preset is not None:
        if not isinstance(preset, str) or preset not in P.PRESETS:
            raise ValueError(f"lab: unknown preset {preset!r}; valid: {', '.join(P.PRESETS)}.")
        given = {
            "activations": activations,
            "depths": depths,
            "inits": inits,
            "variants": variants,
            "optimizer": optimizer,
        }
        for k in P.PRESETS[preset][2]:
            if given.get(k) is not None:
                raise ValueError(f"lab: preset {preset!r} fixes {k}; drop {k} or drop the preset.")
        configs = P.build(preset, scalars)
    else:
        acts = check_activations(DEFAULT_ACTIVATIONS if activations is None else activations)
        ds = check_positive_ints(DEFAULT_DEPTHS if depths is None else depths, "depths")
        ins = check_inits(("auto",) if inits is None else inits)
        vs = check_variants(("plain",) if variants is None else variants)
        o = {**P.BASE, **{k: v for k, v in scalars.items() if v is not None}}
        if o.get("lr") is None:
            o["lr"] = DEFAULT_LR[o["optimizer"]]
        configs = [Config(a, i, d, v, **o) for v in vs for i in ins for a in acts for d in ds]
    _check_variants_do_something(configs)
    if fastact.PUREPYTHON and timing:
        notes.append(
            "FASTACT_PUREPYTHON=1: fastact.MLP is fastact.reference.MLP here, so the "
            "speed-up column compares NumPy with itself."
        )
    dat = load_data(data)
    big = [c.batch for c in configs if c.batch > dat.X_train.shape[0]]
    if big:
        raise ValueError(
            f"lab: batch {big[0]} is larger than the training set of "
            f"{dat.name!r} ({dat.X_train.shape[0]} rows); use a smaller batch."
        )
    stream = None
    if progress not in ("auto", True, False):
        if not hasattr(progress, "write"):
            raise TypeError(
                f"lab: progress must be 'auto', True, False or a stream; got {progress!r}."
            )
        stream, progress = progress, True
    bar = Progress(len(configs), progress, stream) if progress is not False else None
    try:
        if scheduler is not None:
            records = run_dask(configs, dat, scheduler, timing=timing, progress=bar)
        elif n_jobs > 1 and len(configs) > 1:
            records = run_joblib(configs, dat, n_jobs, timing=timing, progress=bar)
        else:
            records = run_serial(configs, dat, timing=timing, progress=bar)
    finally:
        if bar:
            bar.close()
    meta = {
        "fastact": fastact.__version__,
        "backend": "reference" if fastact.PUREPYTHON else "native",
        "numpy": np.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "processor": _cpu_name(),
        "jobs": n_jobs,
        "scheduler": None if scheduler is None else str(scheduler),
        "data": dat.name,
        "seed": seed,
    }
    return LabResult(
        records,
        preset=preset,
        verdicts=V.compute(records, preset),
        notes=notes,
        elapsed=time.perf_counter() - t0,
        meta=meta,
    )


def _check_variants_do_something(configs) -> None:
    """A variant that leaves the network plain would be judged as a remedy that fails."""
    for c in configs:
        parts = variant_parts(c.variant)
        if "dropout" in parts and c.dropout == 0:
            raise ValueError(
                f"lab: variant {c.variant!r} with dropout=0 is the network without "
                "dropout; give a dropout probability above 0 (e.g. --dropout 0.2)."
            )
        if ("batchnorm" in parts or "batchnorm_after" in parts) and c.batch < 2:
            raise ValueError(
                f"lab: variant {c.variant!r} needs a batch of 2 or more rows (BatchNorm "
                f"normalises over the batch); got batch {c.batch}."
            )
        if "residual" in parts and c.depth < 2:
            raise ValueError(
                f"lab: variant {c.variant!r} at depth {c.depth} has no residual "
                "connection (the first hidden layer, n_in -> width, has none); give "
                "depths of 2 or more."
            )


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"
