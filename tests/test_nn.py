"""Dense layers and the MLP: numerics (finite differences, the NumPy twin, known
formulas), initialisation, training, allocation and threads.

Argument errors and API details are in test_nn_errors.py; optimizers in test_optim.py.
"""

import threading
import time
import tracemalloc

import numpy as np
import pytest

import fastact
from fastact import nn, optim
from fastact import reference as ref

NATIVE = not fastact.PUREPYTHON

# every hidden activation an MLP takes, with some parameters off their defaults
# (prelu's learnable slope is tested in tests/test_nn_layers.py: dense_forward has no slope)
ACTS = [(n, {}) for n in nn.MLP_ACTIVATIONS if n != "prelu"] + [
    ("leaky_relu", {"negative_slope": 0.2}),
    ("elu", {"alpha": 0.5}),
    ("celu", {"alpha": 2.0}),
    ("softplus", {"beta": 2.0, "threshold": 5.0}),
    ("softplus", {"beta": 0.7}),
    ("hardtanh", {"min_val": -0.5, "max_val": 2.0}),
    ("gelu", {"approximate": "tanh"}),
]
ACT_IDS = [n + ("-" + "-".join(f"{k}={v}" for k, v in p.items()) if p else "") for n, p in ACTS]
LOSSES = list(nn.LOSSES)
OPTIMIZERS = {
    "sgd": lambda: optim.SGD(0.05),
    "sgd-momentum-nesterov-wd": lambda: optim.SGD(
        0.05, momentum=0.9, nesterov=True, weight_decay=1e-2
    ),
    "adam-wd-clip": lambda: optim.Adam(1e-2, weight_decay=0.1, max_grad_norm=0.5),
    "adamw": lambda: optim.AdamW(1e-2),
}


def _data(sizes, loss, rows=9, dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((rows, sizes[0])).astype(dtype)
    C = sizes[-1]
    if loss == "softmax_cross_entropy":
        y = rng.integers(0, C, rows)
    elif loss == "mse":
        y = rng.standard_normal((rows, C)).astype(dtype)
    else:
        y = (rng.random((rows, C)) < 0.4).astype(dtype)
    return X, y


def _rel(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


# ---- dense layers -----------------------------------------------------------------


@pytest.mark.parametrize("act", ACTS, ids=ACT_IDS)
def test_dense_backward_matches_finite_differences(act):
    name, params = act
    rng = np.random.default_rng(1)
    x = rng.standard_normal((5, 4))
    W = rng.standard_normal((4, 3)) * 0.8
    b = rng.standard_normal(3) * 0.5
    g = rng.standard_normal((5, 3))
    y, cache = fastact.dense_forward(x, W, b, name, **params)
    gx, gW, gb = fastact.dense_backward(g, cache)

    def f(x_, W_, b_):
        return float(np.sum(g * fastact.dense_forward(x_, W_, b_, name, **params)[0]))

    h = 1e-6
    for arr, grad in ((x, gx), (W, gW), (b, gb)):
        fd = np.zeros_like(arr)
        for i in np.ndindex(arr.shape):
            old = arr[i]
            arr[i] = old + h
            up = f(x, W, b)
            arr[i] = old - h
            down = f(x, W, b)
            arr[i] = old
            fd[i] = (up - down) / (2 * h)
        np.testing.assert_allclose(grad, fd, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("act", ACTS, ids=ACT_IDS)
def test_dense_native_matches_reference(act, dtype):
    name, params = act
    rng = np.random.default_rng(2)
    x = (rng.standard_normal((33, 17)) * 2).astype(dtype)
    W = (rng.standard_normal((17, 9)) / 3).astype(dtype)
    b = rng.standard_normal(9).astype(dtype)
    g = rng.standard_normal((33, 9)).astype(dtype)
    y, c = fastact.dense_forward(x, W, b, name, **params)
    yr, cr = ref.dense_forward(x, W, b, name, **params)
    assert y.dtype == dtype and y.shape == (33, 9)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    assert _rel(y, yr) < tol
    for a, r in zip(fastact.dense_backward(g, c), ref.dense_backward(g, cr)):
        assert a.dtype == dtype
        assert _rel(a, r) < (2e-5 if dtype == np.float32 else 1e-12)


def test_dense_forward_is_act_of_affine_and_out_is_used():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((6, 5)).astype(np.float32)
    W = rng.standard_normal((5, 4)).astype(np.float32)
    b = rng.standard_normal(4).astype(np.float32)
    out = np.empty((6, 4), np.float32)
    y, cache = fastact.dense_forward(x, W, b, "sigmoid", out=out)
    assert y is out
    expect = 1 / (1 + np.exp(-(x.astype(np.float64) @ W + b)))
    np.testing.assert_allclose(y, expect, rtol=2e-6)
    assert cache.saves == "output" and cache.saved is out
    # input-saving activations keep x @ W (before the bias) for the backward
    y2, c2 = fastact.dense_forward(x, W, b, "gelu")
    assert c2.saves == "input"
    np.testing.assert_allclose(c2.saved, x @ W, rtol=1e-5, atol=1e-6)


def test_dense_empty_batch_and_strided_inputs():
    rng = np.random.default_rng(4)
    W = rng.standard_normal((5, 3))
    b = rng.standard_normal(3)
    y, c = fastact.dense_forward(np.empty((0, 5)), W, b, "tanh")
    assert y.shape == (0, 3)
    gx, gW, gb = fastact.dense_backward(np.empty((0, 3)), c)
    assert gx.shape == (0, 5) and np.all(gW == 0) and np.all(gb == 0)
    big = rng.standard_normal((8, 10))
    x = big[::2, ::2]  # not contiguous
    y, c = fastact.dense_forward(x, W, b, "relu")
    np.testing.assert_allclose(y, np.maximum(x @ W + b, 0), rtol=1e-13)


# ---- the MLP against its NumPy twin ------------------------------------------------


@pytest.mark.parametrize("opt", list(OPTIMIZERS))
@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("act", ACTS, ids=ACT_IDS)
def test_mlp_matches_reference_float64(act, loss, opt):
    sizes = [6, 8, 7, 3]
    X, y = _data(sizes, loss)
    a = fastact.MLP(sizes, act, loss=loss, dtype=np.float64, seed=5)
    r = ref.MLP(sizes, act, loss=loss, dtype=np.float64, seed=5)
    assert np.array_equal(a.theta, r.theta)
    la, lr = a.compute_gradients(X, y), r.compute_gradients(X, y)
    assert abs(la - lr) <= 1e-12 * max(1.0, abs(lr))
    assert _rel(a.grad_flat, r.grad_flat) < 1e-10
    da = np.array([[d[k] for k in nn.DIAG_COLUMNS if k in d] for d in a.diagnostics()])
    dr = np.array([[d[k] for k in nn.DIAG_COLUMNS if k in d] for d in r.diagnostics()])
    np.testing.assert_allclose(da, dr, rtol=1e-10, atol=1e-12)
    oa, orf = OPTIMIZERS[opt](), OPTIMIZERS[opt]()
    for _ in range(3):
        la, lr = a.train_step(X, y, oa), r.train_step(X, y, orf)
        assert abs(la - lr) <= 1e-10 * max(1.0, abs(lr))
    assert _rel(a.theta, r.theta) < 1e-10
    assert _rel(a.grad_flat, r.grad_flat) < 1e-10
    for s1, s2 in zip(oa.state, orf.state):
        assert _rel(s1, s2) < 1e-10


@pytest.mark.parametrize("init", nn.INITS)
@pytest.mark.parametrize(
    "act", ACTS[: len(nn.MLP_ACTIVATIONS)], ids=ACT_IDS[: len(nn.MLP_ACTIVATIONS)]
)
def test_mlp_every_init_matches_reference(act, init):
    sizes = [5, 9, 4, 3]
    X, y = _data(sizes, "softmax_cross_entropy", seed=6)
    a = fastact.MLP(sizes, act, init=init, dtype=np.float64, seed=11)
    r = ref.MLP(sizes, act, init=init, dtype=np.float64, seed=11)
    assert np.array_equal(a.theta, r.theta)
    assert np.all(np.isfinite(a.theta)) and np.any(a.theta != 0)
    assert (
        _rel(np.float64(a.compute_gradients(X, y)), np.float64(r.compute_gradients(X, y))) < 1e-12
    )
    assert _rel(a.grad_flat, r.grad_flat) < 1e-10


@pytest.mark.parametrize("loss", LOSSES)
def test_mlp_float32_close_to_reference(loss):
    sizes = [10, 16, 16, 4]
    X, y = _data(sizes, loss, rows=20, dtype=np.float32)
    a = fastact.MLP(sizes, "silu", loss=loss, dtype=np.float32, seed=2)
    r = ref.MLP(sizes, "silu", loss=loss, dtype=np.float32, seed=2)
    assert a.theta.dtype == np.float32
    assert abs(a.compute_gradients(X, y) - r.compute_gradients(X, y)) < 1e-5
    assert _rel(a.grad_flat, r.grad_flat) < 1e-4
    oa, orf = optim.Adam(1e-2), optim.Adam(1e-2)
    for _ in range(3):
        a.train_step(X, y, oa)
        r.train_step(X, y, orf)
    assert _rel(a.theta, r.theta) < 1e-4


@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("act", ["tanh", "sigmoid", "gelu", "softplus", "selu", "mish", "relu"])
def test_mlp_gradients_match_finite_differences(act, loss):
    sizes = [4, 5, 3, 2]
    X, y = _data(sizes, loss, rows=6, seed=7)
    net = fastact.MLP(sizes, act, loss=loss, dtype=np.float64, seed=3)
    net.compute_gradients(X, y)
    grad = net.grad_flat.copy()
    fd = np.zeros_like(grad)
    h = 1e-6
    for i in range(net.theta.size):
        old = net.theta[i]
        net.theta[i] = old + h
        up = net.evaluate(X, y)["loss"]
        net.theta[i] = old - h
        down = net.evaluate(X, y)["loss"]
        net.theta[i] = old
        fd[i] = (up - down) / (2 * h)
    np.testing.assert_allclose(grad, fd, rtol=1e-5, atol=1e-8)


def test_losses_are_the_documented_means():
    sizes = [3, 4, 2]
    rng = np.random.default_rng(8)
    X = rng.standard_normal((5, 3))
    for loss in LOSSES:
        net = fastact.MLP(sizes, "tanh", loss=loss, dtype=np.float64, seed=0)
        z = net.forward(X)
        h = np.tanh(X @ net.params[0][0] + net.params[0][1])
        np.testing.assert_allclose(z, h @ net.params[1][0] + net.params[1][1], rtol=1e-13)
        if loss == "softmax_cross_entropy":
            y = np.array([0, 1, 1, 0, 1])
            lse = np.log(np.exp(z).sum(axis=1))
            expect = np.mean(lse - z[np.arange(5), y])
        elif loss == "mse":
            y = rng.standard_normal((5, 2))
            expect = np.mean((z - y) ** 2)
        else:
            y = (rng.random((5, 2)) < 0.5).astype(np.float64)
            expect = np.mean(np.log1p(np.exp(z)) - y * z)
        assert net.compute_gradients(X, y) == pytest.approx(expect, rel=1e-13)
        assert net.evaluate(X, y)["loss"] == pytest.approx(expect, rel=1e-13)


# ---- initialisation ------------------------------------------------------------------


def _std_uniform(a):
    return a / np.sqrt(3)


@pytest.mark.parametrize(
    "init,act,std",
    [
        ("standard", "relu", _std_uniform(1 / np.sqrt(400))),
        ("xavier_uniform", "tanh", 5 / 3 * _std_uniform(np.sqrt(6 / 700))),
        ("xavier_normal", "sigmoid", np.sqrt(2 / 700)),
        ("he_uniform", "relu", np.sqrt(2) * _std_uniform(np.sqrt(3 / 400))),
        ("he_normal", "relu", np.sqrt(2) / np.sqrt(400)),
        ("he_normal", ("leaky_relu", {"negative_slope": 0.3}), np.sqrt(2 / 1.09) / np.sqrt(400)),
        ("lecun_normal", "selu", 1 / np.sqrt(400)),
        ("auto", "relu", np.sqrt(2) / np.sqrt(400)),
        ("auto", "gelu", np.sqrt(2) / np.sqrt(400)),
        ("auto", "tanh", 5 / 3 * _std_uniform(np.sqrt(6 / 700))),
        ("auto", "sigmoid", _std_uniform(np.sqrt(6 / 700))),
        ("auto", "selu", 1 / np.sqrt(400)),
    ],
)
def test_init_scales(init, act, std):
    net = fastact.MLP([400, 300, 10], act, init=init, dtype=np.float64, seed=0)
    W, b = net.params[0]
    assert W.shape == (400, 300)
    assert np.all(b == 0) and np.all(net.params[1][1] == 0)
    assert W.std() == pytest.approx(std, rel=0.02)
    assert abs(W.mean()) < 0.02 * std
    if init == "auto":  # the linear output layer: xavier_uniform, gain 1
        assert net.params[1][0].std() == pytest.approx(_std_uniform(np.sqrt(6 / 310)), rel=0.05)


@pytest.mark.parametrize("shape", [(50, 20), (20, 50)])
def test_orthogonal_init(shape):
    net = fastact.MLP([shape[0], shape[1], 3], "tanh", init="orthogonal", dtype=np.float64)
    W = net.params[0][0]
    small = W.T @ W if shape[0] >= shape[1] else W @ W.T
    np.testing.assert_allclose(small, (5 / 3) ** 2 * np.eye(min(shape)), atol=1e-12)


def test_seed_determines_weights():
    a = fastact.MLP([8, 6, 3], seed=1)
    b = fastact.MLP([8, 6, 3], seed=1)
    c = fastact.MLP([8, 6, 3], seed=2)
    assert np.array_equal(a.theta, b.theta) and not np.array_equal(a.theta, c.theta)
    assert np.array_equal(a.theta, ref.MLP([8, 6, 3], seed=1).theta)


# ---- diagnostics ---------------------------------------------------------------------


def test_diagnostics_values():
    sizes = [6, 10, 8, 3]
    X, y = _data(sizes, "softmax_cross_entropy", rows=40, seed=9)
    net = fastact.MLP(sizes, "relu", dtype=np.float64, seed=0)
    net.params[0][1][3] = -100.0  # unit 3 of layer 0 never fires: dead
    net.compute_gradients(X, y)
    d = net.diagnostics()
    assert [e["activation"] for e in d] == ["relu", "relu", "identity"]
    for e, (gW, gb) in zip(d, net.grads):
        assert e["grad_W_norm"] == pytest.approx(np.linalg.norm(gW), rel=1e-12)
        assert e["grad_b_norm"] == pytest.approx(np.linalg.norm(gb), rel=1e-12)
    h1 = np.maximum(X @ net.params[0][0] + net.params[0][1], 0)
    assert d[0]["act_mean"] == pytest.approx(h1.mean(), rel=1e-12)
    assert d[0]["act_std"] == pytest.approx(h1.std(), rel=1e-12)
    # relu: f' = 0 exactly where the unit is off, so saturated = fraction of zeros
    assert d[0]["saturated_fraction"] == pytest.approx(np.mean(h1 <= 0), abs=1e-12)
    assert d[0]["dead_fraction"] >= 1 / 10
    assert d[2]["saturated_fraction"] == 0.0 and d[2]["dead_fraction"] == 0.0
    assert d[1]["grad_z_norm"] > 0


def test_diagnostics_see_sigmoid_saturation_and_vanishing_gradients():
    sizes = [20] + [32] * 6 + [4]
    X, y = _data(sizes, "softmax_cross_entropy", rows=64, seed=10)
    net = fastact.MLP(sizes, "sigmoid", init="standard", dtype=np.float64, seed=0)
    net.compute_gradients(X, y)
    dz = [e["grad_z_norm"] for e in net.diagnostics()[:-1]]
    assert dz[0] < dz[-1] / 10  # the gradient shrinks towards the input
    for W, _ in net.params[:-1]:
        W *= 40  # big weights saturate every sigmoid
    net.compute_gradients(X, y)
    assert net.diagnostics()[1]["saturated_fraction"] > 0.5


# ---- training ---------------------------------------------------------------------------


def _digits_or_teacher():
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        rng = np.random.default_rng(0)
        teacher = fastact.MLP([20, 32, 4], "tanh", init="orthogonal", seed=42)
        X = rng.standard_normal((3000, 20)).astype(np.float32)
        return X, teacher.predict(X), "teacher", 0.90
    X, y = load_digits(return_X_y=True)
    return (X / 16.0).astype(np.float32), y, "digits", 0.95


def test_training_reaches_accuracy():
    X, y, task, target = _digits_or_teacher()
    rng = np.random.default_rng(1)
    idx = rng.permutation(len(X))
    cut = int(0.75 * len(X))
    tr, te = idx[:cut], idx[cut:]
    net = fastact.MLP([X.shape[1], 64, 64, int(y.max()) + 1], "relu", seed=0)
    hist = net.fit(
        X[tr],
        y[tr],
        epochs=30,
        batch_size=32,
        optimizer=optim.Adam(3e-3),
        validation_data=(X[te], y[te]),
        verbose=0,
    )
    assert hist["loss"][-1] < hist["loss"][0] / 4
    acc = net.evaluate(X[te], y[te])["accuracy"]
    assert acc >= target, (task, acc)
    assert acc == pytest.approx(np.mean(net.predict(X[te]) == y[te]))
    assert hist["val_accuracy"][-1] == pytest.approx(acc)


@pytest.mark.parametrize("loss", ["mse", "binary_cross_entropy_with_logits"])
def test_training_regression_and_binary(loss):
    rng = np.random.default_rng(2)
    X = rng.standard_normal((512, 3)).astype(np.float32)
    if loss == "mse":
        y = (np.sin(X[:, 0]) + X[:, 1] * X[:, 2]).astype(np.float32)
    else:
        y = (X[:, 0] * X[:, 1] > 0).astype(np.float32)
    net = fastact.MLP([3, 32, 32, 1], "tanh", loss=loss, seed=0)
    before = net.evaluate(X, y)["loss"]
    net.fit(X, y, epochs=60, batch_size=32, optimizer=optim.Adam(1e-2), verbose=0)
    after = net.evaluate(X, y)
    assert after["loss"] < before / 5
    if loss != "mse":
        assert after["accuracy"] > 0.9
        assert set(np.unique(net.predict(X))) <= {0, 1}
        p = net.predict_proba(X)
        assert p.shape == (512, 1) and np.all((p >= 0) & (p <= 1))


# ---- allocation and threads ---------------------------------------------------------------


@pytest.mark.skipif(not NATIVE, reason="the NumPy twin allocates per step by design")
@pytest.mark.parametrize("opt", ["sgd-momentum-nesterov-wd", "adam-wd-clip", "adamw"])
def test_train_step_allocates_nothing(opt):
    sizes = [64, 64, 64, 10]
    rows = 256  # one activation array = 64 KiB
    X, y = _data(sizes, "softmax_cross_entropy", rows=rows, dtype=np.float32)
    net = fastact.MLP(sizes, "gelu", seed=0)
    o = OPTIMIZERS[opt]()
    for _ in range(3):
        net.train_step(X, y, o)
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        for _ in range(50):
            net.train_step(X, y, o)
        current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak - base < 4096, peak - base
    assert current - base < 1024


def _train(net, X, y, steps):
    o = optim.SGD(0.05, momentum=0.9)
    return [net.train_step(X, y, o) for _ in range(steps)]


def test_concurrent_training_in_threads_matches_serial():
    sizes = [32, 64, 64, 5]
    X, y = _data(sizes, "softmax_cross_entropy", rows=128, dtype=np.float32)
    serial = []
    for s in range(4):
        net = fastact.MLP(sizes, "tanh", seed=s)
        serial.append((_train(net, X, y, 20), net.theta.copy()))
    nets = [fastact.MLP(sizes, "tanh", seed=s) for s in range(4)]
    results = [None] * 4

    def work(i):
        results[i] = _train(nets[i], X, y, 20)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i in range(4):
        assert results[i] == serial[i][0]
        assert np.array_equal(nets[i].theta, serial[i][1])


@pytest.mark.skipif(not NATIVE, reason="NumPy holds the GIL between its calls")
def test_train_step_releases_the_gil():
    """A Python thread keeps running while one long native step runs."""
    sizes = [512, 1024, 1024, 10]
    X, y = _data(sizes, "softmax_cross_entropy", rows=512, dtype=np.float32)
    net = fastact.MLP(sizes, "tanh", seed=0)
    o = optim.SGD(0.01)
    net.train_step(X, y, o)
    stamps, stop = [], threading.Event()

    def tick():
        while not stop.is_set():
            stamps.append(time.perf_counter())

    t = threading.Thread(target=tick)
    t.start()
    time.sleep(0.01)
    t0 = time.perf_counter()
    net.train_step(X, y, o)
    t1 = time.perf_counter()
    stop.set()
    t.join()
    inside = sum(t0 < s < t1 for s in stamps)
    assert inside > 20, (inside, t1 - t0)


def test_readme_tour_runs(tmp_path, monkeypatch):
    """The README's 30-second tour runs as written: its Python blocks, in order."""
    import pathlib
    import warnings

    readme = pathlib.Path(__file__).resolve().parents[1] / "README.md"
    if not readme.exists():
        pytest.skip("README.md is not beside the tests (installed package)")
    pytest.importorskip("sklearn")
    from sklearn.exceptions import ConvergenceWarning

    tour = readme.read_text().split("## A 30-second tour", 1)[1].split("\n## ", 1)[0]
    blocks = [b.split("```", 1)[0] for b in tour.split("```python")[1:]]
    assert len(blocks) >= 3
    monkeypatch.chdir(tmp_path)
    ns = {}
    with warnings.catch_warnings():
        # the estimator stops at max_iter=50 by design: scikit-learn's warning says so
        warnings.simplefilter("ignore", ConvergenceWarning)
        for block in blocks:
            exec(compile(block, "README.md", "exec"), ns)
    assert ns["history"]["loss"][-1] < ns["history"]["loss"][0]
    assert ns["clf"].score(ns["X"], ns["labels"]) > 0.9


# ---- sharing, copying, schedules ------------------------------------------------------------


def _equal_to_rounding(a, b):
    """Equal up to float32 rounding of sums split differently (relative to the array's scale)."""
    scale = float(np.max(np.abs(b))) or 1.0
    return a.shape == b.shape and float(np.max(np.abs(a - b))) <= 1e-5 * scale


def test_one_network_shared_by_two_threads_is_refused_not_corrupted():
    """An MLP's buffers belong to one call at a time: a second thread gets a RuntimeError
    (never a crash or a wrong result).  The results are compared to rounding, not bit for
    bit: OpenBLAS's threaded GEMM splits its work differently when two Python threads call
    it at once (float32 differences of a few 1e-7 relative), while a corrupted buffer would
    be off by far more than that."""
    sizes = [50, 256, 256, 10]
    rng = np.random.default_rng(0)
    X = rng.standard_normal((3000, 50)).astype(np.float32)
    y = rng.integers(0, 10, 3000)
    net = fastact.MLP(sizes, "relu", seed=0)
    expect = net.forward(X[:2000])
    grads = {}
    for r in (600, 1500, 2900):
        net.compute_gradients(X[:r], y[:r])
        grads[r] = net.grad_flat.copy()
    fresh = fastact.MLP(sizes, "relu", seed=0)  # small buffers again: the next calls grow them
    net = fresh
    errors, wrong, stop = [], [], threading.Event()

    def infer():
        while not stop.is_set():
            try:
                out = net.forward(X[:2000])
            except RuntimeError as e:
                errors.append(str(e))
                continue
            if not _equal_to_rounding(out, expect):
                wrong.append("forward")

    t = threading.Thread(target=infer)
    t.start()
    try:
        for _ in range(3):
            for r in (600, 1500, 2900):
                try:
                    net.compute_gradients(X[:r], y[:r])
                except RuntimeError as e:
                    errors.append(str(e))
                    continue
                if not _equal_to_rounding(net.grad_flat, grads[r]):
                    wrong.append(r)
    finally:
        stop.set()
        t.join()
    assert not wrong
    for msg in errors:
        assert "an MLP is not shareable between threads" in msg


def test_deepcopy_and_pickle_copy_weights_and_shuffling():
    import copy
    import pickle

    rng = np.random.default_rng(3)
    X = rng.standard_normal((100, 6)).astype(np.float32)
    y = rng.integers(0, 3, 100)
    for cls in (fastact.MLP, ref.MLP):
        net = cls([6, 8, 3], ("leaky_relu", {"negative_slope": 0.1}), seed=4)
        net.fit(X, y, epochs=1, batch_size=16, optimizer=optim.SGD(0.1), verbose=0)
        for twin in (copy.deepcopy(net), pickle.loads(pickle.dumps(net))):
            assert type(twin) is cls and twin is not net
            assert np.array_equal(twin.theta, net.theta) and twin.theta is not net.theta
            assert twin.activations == net.activations
            h1 = twin.fit(X, y, epochs=2, batch_size=16, optimizer=optim.SGD(0.1), verbose=0)
            net2 = copy.deepcopy(net)
            h2 = net2.fit(X, y, epochs=2, batch_size=16, optimizer=optim.SGD(0.1), verbose=0)
            assert h1["loss"] == h2["loss"]
            assert np.array_equal(twin.theta, net2.theta)


def test_learning_rate_schedule_takes_effect():
    sizes = [5, 7, 3]
    X, y = _data(sizes, "softmax_cross_entropy", seed=12)
    for make in (lambda: optim.SGD(0.1, momentum=0.5), lambda: optim.Adam(0.01)):
        net = fastact.MLP(sizes, "tanh", dtype=np.float64, seed=0)
        twin = ref.MLP(sizes, "tanh", dtype=np.float64, seed=0)
        o, ot = make(), make()
        for lr in (0.1, 0.0, 0.02):
            o.lr = lr
            ot.lr = lr
            before = net.theta.copy()
            net.train_step(X, y, o)
            twin.train_step(X, y, ot)
            if lr == 0.0:
                assert np.array_equal(net.theta, before)
        assert _rel(net.theta, twin.theta) < 1e-12


@pytest.mark.skipif(not NATIVE, reason="the NumPy twin sizes nothing by the input width")
def test_buffers_do_not_scale_with_the_input_width():
    net = fastact.MLP([20000, 4, 2], "relu", seed=0)
    X = np.zeros((256, 20000), np.float32)
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        net.forward(X)
        net.compute_gradients(X, np.zeros(256, np.int64))
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20, peak  # an input-wide buffer would be 20 MB


@pytest.mark.parametrize("cls", [fastact.MLP, ref.MLP], ids=["native", "reference"])
def test_overflowing_network_warns_nothing(cls):
    """Huge weights overflow to inf/NaN quietly in both engines (pytest turns warnings
    into errors here)."""
    sizes = [4, 6, 3]
    X, y = _data(sizes, "softmax_cross_entropy", dtype=np.float32, seed=13)
    net = cls(sizes, "relu", seed=0, on_nonfinite="ignore")  # (the default raises)
    for W, _ in net.params:
        W *= np.float32(1e30)
    net.train_step(X, y, optim.Adam())
    net.evaluate(X, y)
    net.predict(X)
    net.predict_proba(X)
    mse = cls(sizes, "tanh", loss="mse", seed=0, on_nonfinite="ignore")
    for W, _ in mse.params:
        W *= np.float32(1e30)
    # the loss is summed in double: (3e38)^2 is finite there; the float32 update overflows
    assert mse.train_step(X, np.full((9, 3), 3e38, np.float32), optim.SGD(1.0)) > 1e76
    assert not np.all(np.isfinite(mse.theta))


@pytest.mark.skipif(not NATIVE, reason="the native engine's backward")
@pytest.mark.parametrize(
    "act", ["silu", ("gelu", {"approximate": "tanh"})], ids=["silu", "gelu_tanh"]
)
@pytest.mark.parametrize("width", [64, 50, 37])
def test_kept_derivative_gives_the_same_bits(width, act):
    """A silu (or tanh-form gelu) layer's forward keeps f'(z + b) over z and its backward
    is dz = g f' (Engine.keep_derivative): the loss, gradients and diagnostics equal those
    of the backward that evaluates f' again, bit for bit, on every SIMD path of this CPU
    (a path without a fused loop, chosen after the network was built, keeps nothing: its
    backward evaluates f' again)."""
    from fastact import _activations as ext

    rng = np.random.default_rng(5)
    X = rng.standard_normal((33, width)).astype(np.float32)
    y = rng.integers(0, 10, 33)
    cur = ext.get_isa()
    try:
        for cap in ("avx512", "avx2", "baseline"):
            ext.set_isa(cap)
            nets = [fastact.MLP([width, width, width, 10], act, seed=1) for _ in range(2)]
            nets[1]._engine._e.keep_derivative = False
            assert nets[0]._engine._e.keep_derivative is True
            got = []
            for net in nets:
                loss = net.compute_gradients(X, y)  # (diagnostics recorded too)
                got.append((loss, net.grad_flat.copy(), net.diagnostics()))
            assert got[0][0] == got[1][0]
            assert np.array_equal(got[0][1], got[1][1]), cap
            assert got[0][2] == got[1][2] and len(got[0][2]) == 3
            # the kept derivative is the one the backward needs after an ISA change too
            ext.set_isa("baseline")
            loss = nets[0].compute_gradients(X, y)
            nets[1].compute_gradients(X, y)
            assert np.array_equal(nets[0].grad_flat, nets[1].grad_flat), cap
            ext.set_isa(cap)
    finally:
        ext.set_isa({"avx2+fma": "avx2"}.get(cur, cur))
    kd = fastact.MLP([8, 8, 8, 3], act)._engine._e._keep_derivative_ops()
    fused = ext.get_isa() != "baseline"
    assert list(kd) == [0, int(fused), 0, int(fused), 0, 0]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_parameter_and_optimizer_buffers_start_on_a_cache_line(dtype):
    """theta, its gradient, the running statistics and the optimizer's state start on a
    64-byte boundary (the update and the engine's loops stream whole lines), and a step
    over them gives the NumPy twin's result."""
    net = fastact.MLP([300, 257, 3], batchnorm="after", dtype=dtype, seed=0)
    twin = ref.MLP([300, 257, 3], batchnorm="after", dtype=dtype, seed=0)
    X = np.random.default_rng(0).standard_normal((16, 300)).astype(dtype)
    y = np.arange(16) % 3
    opts = [fastact.optim.Adam(1e-3), fastact.optim.Adam(1e-3)]
    for n, o in zip((net, twin), opts):
        n.train_step(X, y, o)
    for a in (net.theta, net.grad_flat, net.state, *opts[0].state):
        assert a.ctypes.data % 64 == 0
    tol = 1e-5 if dtype == np.float32 else 1e-10
    np.testing.assert_allclose(net.theta, twin.theta, rtol=tol, atol=tol)


def test_the_progress_line_is_cleared_before_the_epoch_summary(capsys):
    from fastact.nn.training import _Progress

    bar = _Progress(True, 2, 4)
    bar.update(0, 4, 0.5)
    bar.end_epoch(0, {"loss": 0.25, "time": 0.5})
    err = capsys.readouterr().err
    assert err.startswith("\rEpoch 1/2 [")  # the bar
    assert err.endswith("\r\x1b[2KEpoch 1/2 loss 0.2500  (0.50 s)\n")  # cleared, replaced


def test_a_refused_step_leaves_the_dropout_counter():
    """A step the engine refuses (another thread holds the network) changes nothing the
    next step depends on: the counter moved before, shifting every later dropout mask."""
    X = np.random.default_rng(0).standard_normal((16, 4)).astype(np.float32)
    y = np.arange(16) % 3
    net = fastact.MLP([4, 8, 3], "relu", dropout=0.5, seed=1)
    opt = optim.SGD(0.1)
    net.train_step(X, y, opt)
    c, t = net._counter, opt.t

    def refuse(*a, **k):
        raise RuntimeError("this network is in use by another thread")

    step, try_step = net._engine.step, net._engine.try_step
    net._engine.step = net._engine.try_step = refuse
    try:
        for call in (lambda: net.train_step(X, y, opt), lambda: net.compute_gradients(X, y)):
            with pytest.raises(RuntimeError, match="in use by another thread"):
                call()
            assert net._counter == c and opt.t == t
    finally:
        net._engine.step, net._engine.try_step = step, try_step
    net.train_step(X, y, opt)
    assert net._counter == c + 1 and opt.t == t + 1


@pytest.mark.skipif(fastact.PUREPYTHON, reason="the native engine's buffers")
def test_a_failed_buffer_growth_leaves_the_engine_whole():
    import copy

    X = np.random.default_rng(0).standard_normal((32, 2)).astype(np.float32)
    y = np.arange(32) % 2
    net = fastact.MLP([2, 1000, 2], "relu", seed=0)
    twin = copy.deepcopy(net)
    o1, o2 = optim.SGD(0.1), optim.SGD(0.1)
    net.train_step(X, y, o1)
    twin.train_step(X, y, o2)
    cap = net._engine.capacity
    with pytest.raises(MemoryError):
        net._engine.reserve(2**44)  # terabytes: refused
    assert net._engine.capacity == cap
    junk = [np.arange(5) for _ in range(64)]  # (reuses freed blocks, were any left behind)
    for _ in range(3):
        assert net.train_step(X, y, o1) == twin.train_step(X, y, o2)
    assert np.array_equal(net.theta, twin.theta) and np.array_equal(net.forward(X), twin.forward(X))
    del junk


def test_gain_values_and_unknown_names():
    """gain() against torch.nn.init.calculate_gain's documented values; an unknown name
    (a typo, another case, None) is an error, not the gain 1.0."""
    import math

    from fastact.nn import gain

    assert gain("identity") == 1.0 and gain("sigmoid") == 1.0
    assert gain("tanh") == 5.0 / 3.0 and gain("selu") == 0.75
    assert gain("relu") == math.sqrt(2.0)
    assert gain("leaky_relu", {"negative_slope": 0.2}) == math.sqrt(2.0 / 1.04)
    assert gain("prelu") == math.sqrt(2.0 / (1.0 + 0.25**2))
    for bad in ("foo", "RELU", None):
        with pytest.raises(ValueError, match=f"gain: unknown activation {bad!r}; valid names: "):
            gain(bad)


# ---- binary outputs, eval-mode steps, non-finite fit: values pinned ------------------------


def _binary_net(n_out=3, rows=12):
    rng = np.random.default_rng(5)
    X = rng.standard_normal((rows, 4)).astype(np.float32)
    y = (rng.random((rows, n_out)) < 0.5).astype(np.float32)
    net = fastact.MLP([4, 6, n_out], "tanh", loss="binary_cross_entropy_with_logits", seed=3)
    return net, X, y


def test_evaluate_accuracy_of_a_multi_output_binary_network_is_per_element():
    """bce accuracy: the share of the rows x n_out outputs whose sign matches the target
    (z > 0 against y > 1/2), not correct outputs per row."""
    net, X, y = _binary_net()
    z = net.forward(X)
    correct = int(((z > 0) == (y > 0.5)).sum())
    expected = correct / y.size  # (12 rows x 3 outputs)
    acc = net.evaluate(X, y)["accuracy"]
    assert acc == expected and 0.0 <= acc <= 1.0
    assert 0 < correct < y.size  # (neither all right nor all wrong: the divisor shows)


def test_fit_history_accuracy_of_a_multi_output_binary_network():
    """fit's accuracy is of the forward passes before each update, over every output: one
    full batch and one epoch make it the accuracy of the network before fit."""
    import copy

    net, X, y = _binary_net()
    before = copy.deepcopy(net)
    z = before.forward(X)
    expected = float(np.mean((z > 0) == (y > 0.5)))
    hist = net.fit(X, y, epochs=1, batch_size=12, optimizer=optim.SGD(0.1), verbose=0)
    assert hist["accuracy"] == [pytest.approx(expected, abs=1e-12)]
    assert 0.0 < hist["accuracy"][0] < 1.0


def test_a_zero_logit_predicts_0():
    """predict of bce is output > 0 (probability > 1/2): a logit of exactly 0 is class 0,
    and so counts against a target of 1 in evaluate."""
    net, X, _ = _binary_net(n_out=2)
    net.theta[...] = 0  # every weight and bias: every logit is exactly 0
    assert np.array_equal(net.forward(X), np.zeros((12, 2), np.float32))
    assert np.array_equal(net.predict(X), np.zeros((12, 2), np.int64))
    assert np.array_equal(net.predict_proba(X), np.full((12, 2), 0.5, np.float32))
    assert net.evaluate(X, np.zeros((12, 2), np.float32))["accuracy"] == 1.0
    assert net.evaluate(X, np.ones((12, 2), np.float32))["accuracy"] == 0.0
    one = fastact.MLP([4, 6, 1], "tanh", loss="binary_cross_entropy_with_logits")
    one.theta[...] = 0
    assert np.array_equal(one.predict(X), np.zeros(12, np.int64))


def test_eval_mode_steps_leave_dropout_step_counter():
    """The step counter counts training-mode steps only (networks.md): compute_gradients
    and train_step in evaluation mode leave it, so the next training step draws the same
    dropout masks as without them."""
    import copy

    rng = np.random.default_rng(0)
    X = rng.standard_normal((16, 4)).astype(np.float32)
    y = np.arange(16) % 3
    net = fastact.MLP([4, 8, 3], "relu", dropout=0.5, seed=1)
    opt = optim.SGD(0.1)
    net.train_step(X, y, opt)  # (a training step: the counter moves)
    assert net._counter == 1
    twin = copy.deepcopy(net)
    net.eval()
    net.compute_gradients(X, y)
    assert net._counter == 1
    net.train_step(X, y, opt)  # the bound optimizer: the one-call path
    assert net._counter == 1
    net.train_step(X, y, optim.SGD(0.1))  # a new optimizer: the checked path
    assert net._counter == 1
    net.train()
    twin.theta[...] = net.theta  # (the same weights: only the counter could differ)
    net.compute_gradients(X, y)
    twin.compute_gradients(X, y)
    assert net._counter == twin._counter == 2
    assert np.array_equal(net.grad_flat, twin.grad_flat)


def test_fit_counts_only_the_applied_steps_after_a_warned_nonfinite_step():
    """on_nonfinite="warn": fit warns and stops at the failing batch; the optimizer's step
    count is the steps applied before it (the failed update is skipped), as train_step."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((64, 6)).astype(np.float32)
    y = rng.integers(0, 3, 64)
    X[40] = 3e38  # in the third batch of 16: overflows in the first layer
    net = fastact.MLP([6, 8, 3], "relu", seed=0, on_nonfinite="warn")
    opt = optim.Adam(1e-2)
    with pytest.warns(RuntimeWarning, match="fit: the loss"):
        hist = net.fit(X, y, epochs=2, batch_size=16, shuffle=False, optimizer=opt, verbose=0)
    assert opt.t == 2 and hist["loss"] == []
    assert np.all(np.isfinite(net.theta))
