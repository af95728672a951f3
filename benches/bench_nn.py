"""One SGD training step of an MLP: fastact vs NumPy vs PyTorch vs scikit-learn vs the GEMMs.

Each network (depth hidden layers of `width` units, tanh, softmax cross-entropy over
10 classes, float32, batch rows) is one pytest-benchmark group with these candidates:

    gemm       the 3 * depth + 2 matrix products of the step alone, through the BLAS
               fastact uses (SciPy's, scipy.linalg.cython_blas) into the engine's own
               buffers: the limit of a fastact step
    gemm-numpy the same products with np.matmul into preallocated arrays (NumPy's BLAS,
               which may be another OpenBLAS build than SciPy's)
    fastact    net.train_step(X, y, SGD(lr)): one native call
    numpy      the step as a competent NumPy user writes it (fastact.nn.peers.NumpyStep)
    reference  fastact.reference.MLP.train_step (the NumPy twin, written for obviousness)
    torch      PyTorch eager: zero_grad, forward, CrossEntropyLoss, backward, SGD step
    sklearn    MLPClassifier.partial_fit on the same batch (solver="sgd")

    pytest benches/bench_nn.py --benchmark-only --benchmark-group-by=group --benchmark-disable-gc
    FASTACT_BENCH_NETS=8x64x64 pytest benches/bench_nn.py --benchmark-only

The grid (bench_grid): depth x activation x variant at width 256, batch 128 (float32, one
thread), candidates gemm (the limit), fastact, numpy (fastact.nn.peers.NumpyStep: the
step written well, with BatchNorm, dropout, residual connections and PReLU),
reference and torch.  Default slice: depths 2,10 x tanh,relu,gelu x every variant; the
whole grid (depths 2,5,10,20,50 x sigmoid, tanh, relu, leaky_relu, prelu, elu, gelu,
silu x plain, batchnorm, dropout, residual) with

    FASTACT_BENCH_DEPTHS=2,5,10,20,50 FASTACT_BENCH_ACTS=all FASTACT_BENCH_VARIANTS=all \
        pytest benches/bench_nn.py -k grid --benchmark-only --benchmark-disable-gc
    (FASTACT_BENCH_WIDTH, FASTACT_BENCH_BATCH, FASTACT_BENCH_GRID_IMPLS change the rest;
    `fastact bench --nn` prints the same comparison as one summary table)

Threads: BLAS pools (NumPy's, SciPy's, PyTorch's) are limited to FASTACT_BENCH_THREADS
(default 1) with threadpoolctl when it is installed, and torch.set_num_threads; without
threadpoolctl the BLAS libraries use their defaults (the group name says which).
Before timing, each candidate's first loss is checked against fastact's, so all of them
do the same work.  Use --benchmark-disable-gc: with the collector on, garbage left by
the allocating candidates triggers collections inside the allocation-free ones' rounds
(here the 8x64 fastact median went from 171 to ~200 us, with a bimodal spread).
"""

import contextlib
import os

import numpy as np
import pytest

import fastact

NETS = [
    tuple(int(v) for v in s.split("x"))
    for s in os.environ.get("FASTACT_BENCH_NETS", "8x64x64,8x256x256,2x1024x256").split(",")
    if s
]
THREADS = int(os.environ.get("FASTACT_BENCH_THREADS", "1"))
CLASSES = 10
from fastact.nn.peers import LR  # noqa: E402  (one learning rate for every candidate)


def _limits():
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext(), "blas-default"
    return threadpool_limits(THREADS), f"threads={THREADS}"


def _data(width, rows):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((rows, width)).astype(np.float32)
    y = rng.integers(0, CLASSES, rows)
    return X, y


def _sizes(depth, width):
    return [width] + [width] * depth + [CLASSES]


class GemmStep:
    """Only the matrix products of one step, into preallocated arrays."""

    def __init__(self, params, rows):
        self.W = [W.copy() for W, _ in params]
        self.A = [np.empty((rows, W.shape[1]), np.float32) for W in self.W]
        self.D = [np.empty((rows, W.shape[0]), np.float32) for W in self.W]
        self.G = [np.empty_like(W) for W in self.W]

    def __call__(self, X, y):
        a = X
        for W, A in zip(self.W, self.A):
            np.matmul(a, W, out=A)
            a = A
        d = self.A[-1]
        for i in range(len(self.W) - 1, -1, -1):
            prev = X if i == 0 else self.A[i - 1]
            np.matmul(prev.T, d, out=self.G[i])
            if i:
                np.matmul(d, self.W[i].T, out=self.D[i])
                d = self.D[i]
        return None


def _sklearn_step(params, X, y, depth, width):
    neural = pytest.importorskip("sklearn.neural_network")
    clf = neural.MLPClassifier(
        hidden_layer_sizes=(width,) * depth,
        activation="tanh",
        solver="sgd",
        learning_rate_init=LR,
        momentum=0.0,
        batch_size=X.shape[0],
        alpha=0.0,
        shuffle=False,
        random_state=0,
    )
    classes = np.arange(CLASSES)
    clf.partial_fit(X, y, classes=classes)  # builds the layers
    for i, (W, b) in enumerate(params):
        clf.coefs_[i][...] = W
        clf.intercepts_[i][...] = b

    def step(X_, y_):
        clf.partial_fit(X_, y_)
        return None

    return step


def _candidate(impl, depth, width, rows, X, y):
    net = fastact.MLP(_sizes(depth, width), "tanh", init="xavier_uniform", seed=1)
    params = [(W.copy(), b.copy()) for W, b in net.params]
    if impl == "fastact":
        opt = fastact.optim.SGD(LR)
        return lambda X_, y_: net.train_step(X_, y_, opt), net
    if impl == "reference":
        ref = fastact.reference.MLP(_sizes(depth, width), "tanh", init="xavier_uniform", seed=1)
        opt = fastact.optim.SGD(LR)
        return lambda X_, y_: ref.train_step(X_, y_, opt), net
    if impl == "numpy":
        from fastact.nn.peers import NumpyStep

        return NumpyStep(net, "tanh", "plain"), net
    if impl == "gemm-numpy":
        return GemmStep(params, rows), net
    if impl == "gemm":
        if fastact.PUREPYTHON:
            pytest.skip("FASTACT_PUREPYTHON=1: no native engine")
        other = fastact.MLP(_sizes(depth, width), "tanh", init="xavier_uniform", seed=1)
        other._engine.reserve(rows)
        engine = other._engine._e
        return lambda X_, y_: engine.gemms_only(X_), net
    if impl == "torch":
        from fastact.nn.peers import torch_step

        step = torch_step(net, "tanh", "plain", X, y, THREADS)
        if step is None:
            pytest.skip("torch is not installed")
        return step, net
    return _sklearn_step(params, X, y, depth, width), net


@pytest.mark.parametrize(
    "impl", ["gemm", "gemm-numpy", "fastact", "numpy", "reference", "torch", "sklearn"]
)
@pytest.mark.parametrize("net_shape", NETS, ids=lambda s: "%dx%d-batch%d" % s)
def bench_train_step(benchmark, net_shape, impl):
    depth, width, rows = net_shape
    X, y = _data(width, rows)
    limits, threads = _limits()
    with limits:
        step, net = _candidate(impl, depth, width, rows, X, y)
        expected = net.compute_gradients(X, y)  # the loss at the initial weights
        first = step(X, y)
        if first is not None:  # the same network, the same loss
            assert abs(first - expected) <= 1e-4 * max(1.0, abs(expected)), (impl, first, expected)
        benchmark.group = f"train step {depth}x{width} batch {rows} float32 tanh ({threads})"
        sizes = _sizes(depth, width)
        products = [a * b for a, b in zip(sizes[:-1], sizes[1:])]
        # forward and dW for every layer, dX for all but the first (which has no dX)
        benchmark.extra_info["flop"] = 2 * rows * (3 * sum(products) - products[0])
        with np.errstate(all="ignore"):
            benchmark(step, X, y)


# ---- the grid: depth x activation x variant ---------------------------------------------

from fastact.nn import peers  # noqa: E402


def _env_list(name, default, every):
    raw = os.environ.get(name, default)
    return list(every) if raw == "all" else [v for v in raw.split(",") if v]


GRID_DEPTHS = [int(v) for v in _env_list("FASTACT_BENCH_DEPTHS", "2,10", ())]
GRID_ACTS = _env_list("FASTACT_BENCH_ACTS", "tanh,relu,gelu", peers.GRID_ACTIVATIONS)
GRID_VARIANTS = _env_list("FASTACT_BENCH_VARIANTS", "all", peers.VARIANTS)
GRID_WIDTH = int(os.environ.get("FASTACT_BENCH_WIDTH", "256"))
GRID_BATCH = int(os.environ.get("FASTACT_BENCH_BATCH", "128"))
GRID_IMPLS = _env_list("FASTACT_BENCH_GRID_IMPLS", "gemm,fastact,numpy,reference,torch", ())


@pytest.mark.parametrize("impl", GRID_IMPLS)
@pytest.mark.parametrize("variant", GRID_VARIANTS)
@pytest.mark.parametrize("act", GRID_ACTS)
@pytest.mark.parametrize("depth", GRID_DEPTHS)
def bench_grid(benchmark, depth, act, variant, impl):
    if fastact.PUREPYTHON and impl in ("gemm", "fastact"):
        pytest.skip("FASTACT_PUREPYTHON=1: no native engine")
    limits, threads = _limits()
    with limits:
        steps, X, y, net = peers.candidates(
            depth, GRID_WIDTH, GRID_BATCH, act, variant, [impl], threads=THREADS
        )
        if impl not in steps:
            pytest.skip(f"{impl} is not installed")
        step = steps[impl]
        first = step(X, y)
        if first is not None and variant != "dropout":  # the same network, the same loss
            expected = net.compute_gradients(X, y)
            assert abs(first - expected) <= 1e-4 * max(1.0, abs(expected)), (impl, first, expected)
        benchmark.group = (
            f"grid {depth}x{GRID_WIDTH} batch {GRID_BATCH} {act} {variant} float32 ({threads})"
        )
        with np.errstate(all="ignore"):
            benchmark(step, X, y)


# ---- BatchNorm and dropout alone: forward + backward ------------------------------------


def _bn_candidate(impl, x, g):
    n = x.shape[1]
    gamma, beta = np.ones(n, np.float32), np.zeros(n, np.float32)
    rm, rv = np.zeros(n, np.float32), np.ones(n, np.float32)
    if impl in ("fastact", "reference"):
        mod = fastact if impl == "fastact" else fastact.reference

        def step():
            y, c = mod.batchnorm_forward(
                x, gamma, beta, training=True, running_mean=rm, running_var=rv, n_threads=THREADS
            )
            return mod.batchnorm_backward(g, c, n_threads=THREADS)

        return step
    torch = pytest.importorskip("torch")
    torch.set_num_threads(THREADS)
    bn = torch.nn.BatchNorm1d(n)
    xt = torch.from_numpy(x).requires_grad_(True)
    gt = torch.from_numpy(g)

    def step():
        xt.grad = None
        bn.zero_grad(set_to_none=True)
        bn(xt).backward(gt)

    return step


@pytest.mark.parametrize("impl", ["fastact", "reference", "torch"])
def bench_batchnorm(benchmark, impl):
    """BatchNorm1d forward + backward at (256, 1024) float32, training mode."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((256, 1024)).astype(np.float32)
    g = rng.standard_normal((256, 1024)).astype(np.float32)
    benchmark.group = f"batchnorm fwd+bwd (256, 1024) float32 ({THREADS} thread(s))"
    benchmark(_bn_candidate(impl, x, g))


@pytest.mark.parametrize("impl", ["fastact", "reference", "torch"])
def bench_dropout(benchmark, impl):
    """Dropout p = 0.5 forward + backward on 1e6 float32 elements."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal(1_000_000).astype(np.float32)
    g = np.ones_like(x)
    benchmark.group = f"dropout fwd+bwd 1e6 float32 ({THREADS} thread(s))"
    if impl in ("fastact", "reference"):
        mod = fastact if impl == "fastact" else fastact.reference

        def step():
            y, c = mod.dropout_forward(x, 0.5, seed=1, n_threads=THREADS)
            return mod.dropout_backward(g, c, n_threads=THREADS)

        benchmark(step)
        return
    torch = pytest.importorskip("torch")
    torch.set_num_threads(THREADS)
    xt = torch.from_numpy(x).requires_grad_(True)
    gt = torch.from_numpy(g)

    def tstep():
        xt.grad = None
        torch.nn.functional.dropout(xt, 0.5, training=True).backward(gt)

    benchmark(tstep)
