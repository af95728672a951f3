"""The lab's own speed: one training step at the lab's default shapes (width 64, batch
128, the teacher task) with fastact.MLP against fastact.reference.MLP, the same for the
remedies preset's variants (a depth-20 sigmoid network with BatchNorm, dropout, residual
connections), and one whole lab configuration (gradients at initialisation + 50 training
steps, no timing).

    pytest benches/bench_lab.py --benchmark-only --benchmark-group-by=group
    FASTACT_BENCH_LAB_DEPTHS=20 pytest benches/bench_lab.py --benchmark-only

The step pair is the lab's "speed-up" column measured by pytest-benchmark instead of the
lab's own best-of-7 timer; BLAS is limited to one thread (threadpoolctl) as in the lab.
"""

import contextlib
import os

import numpy as np
import pytest

import fastact.lab as lab
from fastact.lab.measure import gradient_batch

DEPTHS = [int(v) for v in os.environ.get("FASTACT_BENCH_LAB_DEPTHS", "5,20,50").split(",") if v]
ACTIVATIONS = ("sigmoid", "relu", "gelu")
DATA = lab.load_data("teacher")


def _one_thread():
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(1)


@pytest.mark.parametrize("engine", ["fastact", "reference"])
@pytest.mark.parametrize("depth", DEPTHS)
@pytest.mark.parametrize("activation", ACTIVATIONS)
def bench_lab_step(benchmark, activation, depth, engine):
    cfg = lab.Config(activation, "auto", depth, optimizer="adam", lr=1e-3)
    net = lab.build_network(cfg, DATA.n_features, DATA.n_classes, engine=engine)
    opt = lab.make_optimizer(cfg)
    X, y = gradient_batch(DATA, cfg)
    X = X.astype(np.float32)
    benchmark.group = f"lab step {activation} depth {depth} width 64 batch 128"
    with _one_thread():
        net.train_step(X, y, opt)
        loss = benchmark(net.train_step, X, y, opt)
    assert np.isfinite(loss)


@pytest.mark.parametrize("engine", ["fastact", "reference"])
@pytest.mark.parametrize(
    "variant", ["plain", "batchnorm", "dropout", "residual", "batchnorm+residual"]
)
def bench_lab_variant_step(benchmark, variant, engine):
    cfg = lab.Config("sigmoid", "auto", 20, variant, optimizer="adam", lr=1e-3)
    net = lab.build_network(cfg, DATA.n_features, DATA.n_classes, engine=engine)
    opt = lab.make_optimizer(cfg)
    X, y = gradient_batch(DATA, cfg)
    X = X.astype(np.float32)
    benchmark.group = f"lab step sigmoid depth 20 {variant} width 64 batch 128"
    with _one_thread():
        net.train_step(X, y, opt)
        loss = benchmark(net.train_step, X, y, opt)
    assert np.isfinite(loss)


@pytest.mark.parametrize("depth", DEPTHS)
def bench_lab_config(benchmark, depth):
    cfg = lab.Config("tanh", "auto", depth, steps=50)
    benchmark.group = "lab configuration (gradients + 50 steps)"
    with _one_thread():
        rec = benchmark.pedantic(
            lab.run_config, args=(cfg, DATA), kwargs={"timing": False}, rounds=3, iterations=1
        )
    assert len(rec["loss_curve"]) == 50
