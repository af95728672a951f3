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

    Parameters
    ----------
    activations, depths, inits, variants : lists (or comma-separated strings)
        The grid.  Defaults: 9 activations (sigmoid, tanh, relu, leaky_relu, prelu, elu,
        selu, gelu, silu), depths 2, 5, 10, 20, 50 (hidden layers), init "auto" (each
        activation's matched scheme), variant "plain".  Variants: "plain", "batchnorm",
        "batchnorm_after", "dropout", "residual" and "+" combinations.
    preset : "activations", "init", "remedies", "glorot2010", "he2015" or None
        A fixed grid that asks one question (fastact.lab.presets); it cannot be combined
        with the grid arguments.
    width, batch : hidden width (64) and batch size (128).
    data : "teacher" (built in, default), "digits" (scikit-learn), a .npz/.csv path, or (X, y).
    steps : training steps per configuration (300; 0 = gradients at initialisation only).
    seed : weights, batches and dropout masks; the same seed gives the same records, bit for
        bit, with any jobs or scheduler (timings excepted).
    lr, optimizer : "adam" (default, lr 1e-3), "momentum" (SGD + 0.9, lr 0.01), "sgd" (0.05).
    dropout : p of the dropout variants (0.5).
    dtype : "float32" (default) or "float64" for training and timing; gradient figures are
        always measured in float64.
    jobs : worker processes (joblib; -1 = every core).  scheduler : a Dask scheduler address
        or distributed.Client.
    timing : measure the step time of fastact.MLP and fastact.reference.MLP per configuration.
    progress : "auto" (a bar on a terminal for runs over a second), True, False, or a stream.

    Returns
    -------
    LabResult, with .records (one dict per configuration), .verdicts, .table(), .report(),
    .to_json(), .to_csv(), .to_pandas(), .save(dir), .plot(dir).
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
    check_int(seed, "seed", zero_ok=True)
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


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"
