"""flush_subnormals: the engine's calls run with flush-to-zero and denormals-are-zero on
(by default), put the caller's floating-point mode back, and differ from the NumPy twin
only where a value is subnormal."""

from __future__ import annotations

import copy
import pickle
import time

import numpy as np
import pytest

import fastact
from fastact import optim
from fastact import reference as ref
from fastact.nn import Dense, Dropout, Sequential

NATIVE = not fastact.PUREPYTHON
native_only = pytest.mark.skipif(not NATIVE, reason="FASTACT_PUREPYTHON=1: no native engine")

# act(x) for these x is subnormal in the dtype (checked against the twin below).  float32
# takes sigmoid: its float32 gelu kernels return 0 below x ~ -5.6 on the SIMD paths
# (|gelu| < 6e-8 there, the contract's 1e-7 absolute), so they make no subnormal.
TAIL = {np.float32: -90.0, np.float64: -37.65}
TAIL_ACT = {np.float32: "sigmoid", np.float64: "gelu"}


def _subnormal_arithmetic_works():
    """NumPy on this thread still produces subnormals (FTZ off) and reads them (DAZ off)."""
    a = np.float32(1e-38) * np.float32(1e-2)
    b = np.array([np.finfo(np.float64).smallest_subnormal]) * 4.0
    return a != 0 and b[0] != 0


def _tail_net(cls, dtype):
    """x -> act(x) -> x 2^k: the hidden value is subnormal, the output is not"""
    net = cls([Dense(1, TAIL_ACT[dtype]), Dense(2, None)], n_in=1, dtype=dtype)
    sd = net.state_dict()
    sd["0.W"][...] = 1
    sd["0.b"][...] = 0
    big = 2.0**100 if dtype == np.float32 else 2.0**1000
    sd["1.W"][...] = [[big, -big]]
    sd["1.b"][...] = 0
    return net


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@native_only
def test_flush_zeroes_subnormals_and_off_keeps_them(dtype):
    X = np.array([[TAIL[dtype]]], dtype)
    h = getattr(ref, TAIL_ACT[dtype])(X.astype(np.float64)).astype(dtype)
    assert h[0, 0] != 0 and abs(h[0, 0]) < np.finfo(dtype).tiny  # the premise
    twin = _tail_net(ref.Sequential, dtype).forward(X)
    assert np.all(twin != 0)
    net = _tail_net(Sequential, dtype)
    assert net.flush_subnormals is True  # the default
    np.testing.assert_array_equal(net.forward(X), np.zeros((1, 2), dtype))
    net.flush_subnormals = False
    out = net.forward(X)
    assert np.all(out != 0)
    np.testing.assert_allclose(out, twin, rtol=1e-2)  # (subnormals carry few digits)
    assert _subnormal_arithmetic_works()


@native_only
def test_every_engine_call_puts_the_floating_point_mode_back():
    assert _subnormal_arithmetic_works()
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 6)).astype(np.float32)
    y = rng.integers(0, 3, 40)
    net = fastact.MLP([6, 8, 8, 3], "gelu", batchnorm="before", dropout=0.2, residual=True)
    opt = optim.Adam(1e-3)
    calls = [
        lambda: net.train_step(X, y, opt),
        lambda: net.compute_gradients(X, y),
        lambda: net.forward(X),
        lambda: net.predict(X),
        lambda: net.evaluate(X, y),
        lambda: net.fit(X, y, 1, 16, optimizer=optim.SGD(0.01), verbose=0),
        lambda: net._engine.gemms_only(X),
        lambda: net._engine._e.kernels_only(X),
        lambda: net._engine._e.update_only(1, opt._hyper * 0, None, None, 1),
    ]
    for flush in (True, False):
        net.flush_subnormals = flush
        for call in calls:
            call()
            assert _subnormal_arithmetic_works()


@native_only
def test_the_sklearn_epoch_runs_in_the_networks_mode():
    """Engine.sk_epoch (the scikit-learn estimators' fit) flushes like every engine call
    and puts the caller's mode back: x -> sigmoid(x) (subnormal) -> x 2^100, target 0, so
    the loss is 0 when the hidden value is flushed and (2^100 sigmoid(x))^2 / 2 when not."""
    sk = pytest.importorskip("fastact.sklearn")
    X = np.full((4, 1), TAIL[np.float32], np.float32)
    y = np.zeros(4)
    losses = {}
    for flush in (True, False):
        est = sk.MLPRegressor(
            hidden_layer_sizes=(1,),
            activation="logistic",
            alpha=0.0,
            solver="sgd",
            learning_rate_init=1e-30,
            batch_size=4,
            shuffle=False,
        )
        est.partial_fit(X, y)
        est._net.flush_subnormals = flush
        est.coefs_[0][...] = 1
        est.intercepts_[0][...] = 0
        est.coefs_[1][...] = 2.0**100
        est.intercepts_[1][...] = 0
        est.partial_fit(X, y)
        losses[flush] = est.loss_
        assert _subnormal_arithmetic_works()
    h = float(ref.sigmoid(np.float32(TAIL[np.float32]))) * 2.0**100
    assert h != 0.0
    assert losses[True] == 0.0
    assert losses[False] == pytest.approx(h * h / 2, rel=1e-5)


@native_only
@pytest.mark.parametrize("setting", ["flush_subnormals", "keep_derivative"])
def test_engine_settings_cannot_change_during_a_call(setting):
    """A running call reads flush_subnormals again when it puts the caller's mode back,
    and its backward reads keep_derivative as its forward did, so another thread may not
    change either meanwhile: it gets a RuntimeError."""
    import threading

    rng = np.random.default_rng(0)
    X = rng.standard_normal((4000, 256)).astype(np.float32)
    net = fastact.MLP([256, 512, 512, 10], "tanh", seed=0)
    net.forward(X)  # buffers sized
    stop, errors = threading.Event(), []

    def run():
        while not stop.is_set():
            net.forward(X)

    t = threading.Thread(target=run)
    t.start()
    try:
        owner = net if setting == "flush_subnormals" else net._engine._e
        deadline = time.monotonic() + 60.0  # (a call runs most of the time: met at once)
        while not errors and time.monotonic() < deadline:
            try:
                setattr(owner, setting, True)
            except RuntimeError as e:
                errors.append(str(e))
    finally:
        stop.set()
        t.join()
    assert errors, "the setter never met a running call"
    assert f"{setting} cannot change while this network runs a call" in errors[0]
    assert net.flush_subnormals is True


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@native_only
def test_flush_changes_nothing_without_subnormals(dtype):
    """relu and tanh on standard-normal data make no subnormal: bit-identical steps"""
    rng = np.random.default_rng(1)
    X = rng.standard_normal((32, 10)).astype(dtype)
    y = rng.integers(0, 4, 32)
    results = []
    for flush in (True, False):
        net = fastact.MLP([10, 16, 16, 4], ["relu", "tanh"], dtype=dtype, batchnorm="before")
        net.flush_subnormals = flush
        opt = optim.SGD(0.05, momentum=0.9)
        losses = [net.train_step(X, y, opt) for _ in range(5)]
        results.append((losses, net.theta.copy(), net.grad_flat.copy()))
    assert results[0][0] == results[1][0]
    np.testing.assert_array_equal(results[0][1], results[1][1])
    np.testing.assert_array_equal(results[0][2], results[1][2])


@native_only
def test_flush_step_matches_the_twin_where_subnormals_appear():
    """gelu behind residual connections: the pre-activations grow to |x| > 13 and gelu's
    tail gives subnormals (its backward's; the float32 forward returns 0 below x ~ -5.6 on
    the SIMD paths); flushed or not, the step is the twin's to float32 accuracy"""
    rng = np.random.default_rng(2)
    X = (rng.standard_normal((64, 32)) * 30).astype(np.float32)
    y = rng.integers(0, 10, 64)
    sizes = [32] + [32] * 6 + [10]
    twin = ref.MLP(sizes, "gelu", residual=True, seed=3)
    g_twin = twin.compute_gradients(X, y), twin.grad_flat.copy()
    for flush in (True, False):
        net = fastact.MLP(sizes, "gelu", residual=True, seed=3)
        net.flush_subnormals = flush
        loss = net.compute_gradients(X, y)
        assert loss == pytest.approx(g_twin[0], rel=1e-5)
        scale = np.max(np.abs(g_twin[1]))
        np.testing.assert_allclose(net.grad_flat, g_twin[1], rtol=0, atol=1e-4 * scale)


@pytest.mark.parametrize("backend", ["fastact", "reference"])
def test_flush_setting_is_saved_and_copied(backend, tmp_path):
    mod = fastact if backend == "fastact" else ref
    net = mod.MLP([3, 4, 2], "relu")
    net.flush_subnormals = False
    assert copy.deepcopy(net).flush_subnormals is False
    assert pickle.loads(pickle.dumps(net)).flush_subnormals is False
    net.save(tmp_path / "n.npz")
    assert mod.MLP.load(tmp_path / "n.npz").flush_subnormals is False
    net.flush_subnormals = True
    assert copy.deepcopy(net).flush_subnormals is True


def test_flush_setting_must_be_a_bool():
    net = fastact.MLP([3, 4, 2], "relu")
    with pytest.raises(TypeError, match="flush_subnormals must be True or False; got 1"):
        net.flush_subnormals = 1


# ---- train_step's native fast path for the usual batch (Engine.batch_ok) ----------------


@pytest.mark.parametrize("loss", ["softmax_cross_entropy", "mse"])
@native_only
def test_batch_ok_accepts_only_the_usual_batch(loss):
    rng = np.random.default_rng(4)
    net = fastact.MLP([5, 6, 3], "tanh", loss=loss)
    net._engine.reserve(8)
    X = rng.standard_normal((8, 5)).astype(np.float32)
    if loss == "mse":
        y = rng.standard_normal((8, 3)).astype(np.float32)
        bad_y = [
            y.astype(np.float64),
            y[:, :2].copy(),
            y[:7].copy(),
            np.asfortranarray(y),
            np.where(y > 1, np.inf, y).astype(np.float32),
            y.tolist(),
        ]
    else:
        y = rng.integers(0, 3, 8)
        bad_y = [
            y.astype(np.int32),
            y[:7].copy(),
            y.reshape(8, 1),
            y * 0 + 3,
            y * 0 - 1,
            y.tolist(),
        ]
    ok = net._engine.batch_ok
    assert ok(X, y)
    assert not ok(rng.standard_normal((9, 5)).astype(np.float32), y)  # beyond the buffers
    bad_X = [
        X.astype(np.float64),
        X[:, :4].copy(),
        X[:0],
        np.asfortranarray(X),
        X.tolist(),
        np.where(X > 1, np.nan, X).astype(np.float32),
        X[:, None, :],
    ]
    for bx in bad_X:
        assert not ok(bx, y)
    for by in bad_y:
        assert not ok(X, by)


@native_only
def test_byte_swapped_batches_take_the_checked_path():
    """A big-endian array has float32's type number; the fast path must not read its
    bytes as native floats: train_step raises the dtype error, warm or not."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((5, 4)).astype(np.float32)
    y = rng.integers(0, 3, 5)
    net = fastact.MLP([4, 8, 3], "tanh", seed=1)
    net.train_step(X, y, optim.SGD(0.1))  # warm: the buffers fit the batch
    assert net._engine._e.batch_ok(X, y)
    assert not net._engine._e.batch_ok(X.astype(">f4"), y)
    assert not net._engine._e.batch_ok(X, y.astype(">i8"))
    with pytest.raises(TypeError, match="X has dtype >f4 but the network is float32"):
        net.train_step(X.astype(">f4"), y, optim.SGD(0.1))


@native_only
def test_train_step_fast_and_checked_paths_agree():
    """the same batch as a C-ordered float32 / int64 pair (fast path) and as a Fortran-ordered
    array with int32 labels (the Python checks convert): the same losses and parameters"""
    rng = np.random.default_rng(5)
    X = rng.standard_normal((16, 5)).astype(np.float32)
    y = rng.integers(0, 3, 16)
    a = fastact.MLP([5, 8, 3], "silu", dropout=0.3, seed=2)
    b = fastact.MLP([5, 8, 3], "silu", dropout=0.3, seed=2)
    oa, ob = optim.Adam(1e-2), optim.Adam(1e-2)
    for i in range(3):
        assert a._engine.batch_ok(X, y) == (i > 0)  # (the first step sizes the buffers)
        assert a.train_step(X, y, oa) == b.train_step(np.asfortranarray(X), y.astype(np.int32), ob)
    np.testing.assert_array_equal(a.theta, b.theta)


@pytest.mark.parametrize("loss", ["softmax_cross_entropy", "mse"])
@native_only
def test_try_step_runs_only_the_usual_batch(loss):
    """Engine.try_step (train_step's one call for the usual batch): None and nothing run
    for a batch batch_ok refuses or of one row (BatchNorm's check is Python's); else the
    step's loss, parameters and running statistics, bit for bit."""
    rng = np.random.default_rng(7)
    kw = dict(loss=loss, batchnorm="before", dropout=0.2, seed=3)
    a, b = fastact.MLP([5, 6, 3], "gelu", **kw), fastact.MLP([5, 6, 3], "gelu", **kw)
    oa, ob = optim.Adam(1e-2), optim.Adam(1e-2)
    X = rng.standard_normal((8, 5)).astype(np.float32)
    if loss == "mse":
        y = rng.standard_normal((8, 3)).astype(np.float32)
        labels, target = None, y
    else:
        y = rng.integers(0, 3, 8)
        labels, target = y, None
    a.train_step(X, y, oa)  # sizes the buffers and binds the optimizers
    b.train_step(X, y, ob)
    e = a._engine

    def args(opt, t, counter):
        st = opt.state
        return (False, opt.kind, opt._hyper, st[0], st[1], t, True, a.seed, counter, True)

    theta, state = a.theta.copy(), a.state.copy()
    for bx, by in [
        (X[:1], y[:1]),
        (X.astype(np.float64), y),
        (np.asfortranarray(X), y),
        (np.where(X > 1, np.nan, X).astype(np.float32), y),
        (rng.standard_normal((9, 5)).astype(np.float32), y),
        (X, y[:7]),
    ]:
        assert e.try_step(bx, by, *args(oa, 2, 1)) is None
    np.testing.assert_array_equal(a.theta, theta)
    np.testing.assert_array_equal(a.state, state)
    loss_a = e.try_step(X, y, *args(oa, 2, 1))
    loss_b = b._engine.step(X, labels, target, *args(ob, 2, 1))
    assert isinstance(loss_a, float) and loss_a == loss_b and e.last_ok
    np.testing.assert_array_equal(a.theta, b.theta)
    np.testing.assert_array_equal(a.state, b.state)
    np.testing.assert_array_equal(oa.state[1], ob.state[1])


@pytest.mark.parametrize("backend", ["fastact", "reference"])
def test_train_step_rejected_batches_still_raise(backend):
    mod = fastact if backend == "fastact" else ref
    net = mod.MLP([5, 6, 3], "relu")
    opt = optim.SGD(0.1)
    X = np.zeros((4, 5), np.float32)
    with pytest.raises(ValueError, match="label 3 is out of range"):
        net.train_step(X, np.array([0, 1, 2, 3]), opt)
    with pytest.raises(ValueError, match="X contains NaN or inf"):
        net.train_step(np.full((4, 5), np.nan, np.float32), np.zeros(4, np.int64), opt)
    with pytest.raises(ValueError, match=r"X must have shape \(rows, 5\)"):
        net.train_step(np.zeros((4, 4), np.float32), np.zeros(4, np.int64), opt)
    with pytest.raises(TypeError, match="X has dtype float64 but the network is float32"):
        net.train_step(np.zeros((4, 5)), np.zeros(4, np.int64), opt)


# ---- the update fused into the backward (a step that neither clips nor checks) -------------


def _fused_pair_nets(dtype, seed=6):
    kw = dict(
        batchnorm=["before", "after", None],
        dropout=0.2,
        residual=True,
        dtype=dtype,
        seed=seed,
    )
    acts = ["gelu", ("prelu", {"per_unit": True}), "prelu"]
    fused = fastact.MLP([7, 9, 9, 9, 4], acts, on_nonfinite="ignore", **kw)
    plain = fastact.MLP([7, 9, 9, 9, 4], acts, on_nonfinite="raise", **kw)
    return fused, plain


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize(
    "make_opt",
    [
        lambda: optim.SGD(0.05),
        lambda: optim.SGD(0.05, momentum=0.9, nesterov=True, weight_decay=1e-3),
        lambda: optim.Adam(1e-2, weight_decay=1e-3),
        lambda: optim.AdamW(1e-2, weight_decay=1e-2),
    ],
    ids=["sgd", "sgd-nesterov-wd", "adam-l2", "adamw"],
)
@native_only
def test_fused_update_is_bit_identical_to_the_separate_one(dtype, make_opt):
    rng = np.random.default_rng(7)
    X = rng.standard_normal((24, 7)).astype(dtype)
    y = rng.integers(0, 4, 24)
    fused, plain = _fused_pair_nets(dtype)
    of, op = make_opt(), make_opt()
    for _ in range(4):
        assert fused.train_step(X, y, of) == plain.train_step(X, y, op)
    np.testing.assert_array_equal(fused.theta, plain.theta)
    np.testing.assert_array_equal(fused.state, plain.state)
    for a, b in zip(of.state, op.state):
        np.testing.assert_array_equal(a, b)
    # fit (the native epoch loop) fuses the same way
    hf = fused.fit(X, y, 2, 8, optimizer=of, shuffle=True, verbose=0)
    hp = plain.fit(X, y, 2, 8, optimizer=op, shuffle=True, verbose=0)
    assert hf["loss"] == hp["loss"]
    np.testing.assert_array_equal(fused.theta, plain.theta)


@native_only
def test_fused_update_matches_the_twin_in_float64():
    rng = np.random.default_rng(8)
    X = rng.standard_normal((24, 7))
    y = rng.integers(0, 4, 24)
    net, _ = _fused_pair_nets(np.float64)
    twin = ref.MLP(
        [7, 9, 9, 9, 4],
        ["gelu", ("prelu", {"per_unit": True}), "prelu"],
        batchnorm=["before", "after", None],
        dropout=0.2,
        residual=True,
        dtype=np.float64,
        seed=6,
        on_nonfinite="ignore",
    )
    on, ot = optim.SGD(0.05, momentum=0.9), optim.SGD(0.05, momentum=0.9)
    for _ in range(3):
        assert net.train_step(X, y, on) == pytest.approx(twin.train_step(X, y, ot), rel=1e-10)
    np.testing.assert_allclose(net.theta, twin.theta, rtol=1e-10, atol=1e-12)


def test_residual_add_copies_no_gradient():
    """the skip connection keeps the add's gradient slot (no copy in the backward); the
    branch's last op writes elsewhere, so a plain residual chain still needs two slots"""
    for kw in ({}, {"batchnorm": "before"}, {"batchnorm": "after", "dropout": 0.3}):
        net = fastact.MLP([8, 8, 8, 8, 8, 3], "tanh", residual=True, **kw)
        prog = net._program
        adds = [o for o in prog.ops if o.kind in ("add", "bias_act_add")]
        assert len(adds) == 3
        # a branch ending in its bias + activation pass fuses the add into it
        assert {o.kind for o in adds} == {"bias_act_add" if not kw else "add"}
        for o in adds:
            assert o.gin2 == o.gout and not o.acc & 2
            # the add's input shares the slot; the fused op's (the GEMM's output) does not
            assert (o.gin == o.gout) == (o.kind == "add")
        assert prog.n_slots == 2


# ---- dropout's backward mask is the forward's (the twin's), with and without zeros ---------


def _grads(net, X, y):
    loss = net.compute_gradients(X, y)
    return loss, net.grad_flat.copy()


@pytest.mark.parametrize("act", ["relu", "tanh", "gelu"])
@pytest.mark.parametrize("bn", [None, "before", "after"])
@native_only
def test_dropout_backward_mask_is_the_forwards(act, bn):
    """relu puts exact zeros into dropout's input, tanh and gelu almost none: the
    gradients are the twin's in float64, the same units dropped"""
    rng = np.random.default_rng(9)
    X = rng.standard_normal((40, 12))
    y = rng.integers(0, 5, 40)
    kw = dict(dropout=[0.5, 0.3], batchnorm=bn, dtype=np.float64, seed=4)
    net = fastact.MLP([12, 64, 64, 5], act, **kw)
    twin = ref.MLP([12, 64, 64, 5], act, **kw)
    for _ in range(2):  # two steps: two masks
        (ln, gn), (lt, gt) = _grads(net, X, y), _grads(twin, X, y)
        assert ln == pytest.approx(lt, rel=1e-12)
        np.testing.assert_allclose(gn, gt, rtol=1e-10, atol=1e-14)
        assert np.array_equal(gn == 0, gt == 0)  # the same units dropped


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@native_only
def test_dropout_backward_when_its_output_is_overwritten(dtype):
    """Dropout then a tanh layer (tanh's output takes the dropout output's buffer): the
    same gradients as the twin's"""
    from fastact.nn.layers import ActivationLayer

    rng = np.random.default_rng(10)
    X = rng.standard_normal((30, 6)).astype(dtype)
    y = rng.integers(0, 3, 30)
    layers = lambda: [Dense(16), Dropout(0.4), ActivationLayer("tanh"), Dense(3)]
    net = Sequential(layers(), n_in=6, dtype=dtype, seed=2)
    twin = ref.Sequential(layers(), n_in=6, dtype=dtype, seed=2)
    (ln, gn), (lt, gt) = _grads(net, X, y), _grads(twin, X, y)
    tol = 1e-10 if dtype == np.float64 else 2e-5
    assert ln == pytest.approx(lt, rel=tol)
    np.testing.assert_allclose(gn, gt, rtol=tol, atol=tol * np.max(np.abs(gt)))
    assert np.array_equal(gn == 0, gt == 0)


@pytest.mark.parametrize("fuse", [True, False])
@native_only
def test_nonfinite_gradient_with_a_finite_loss_is_caught_op_by_op(fuse):
    """h ~ 4e307 (finite), output ~ 1 (finite loss), but dW of the last layer sums 64
    rows of h g and overflows: the check (op by op when fused, one pass when not) skips
    the update and names the gradient"""
    X = np.ones((64, 4))
    y = np.full((64, 2), 1e3)
    net = Sequential([Dense(3, "relu"), Dense(2)], n_in=4, dtype=np.float64, loss="mse")
    net._engine._e.fuse_update = fuse
    sd = net.state_dict()
    sd["0.W"][...] = 4e307
    sd["0.b"][...] = 0
    sd["1.W"][...] = 1e-307
    sd["1.b"][...] = 0
    before = net.theta.copy()
    opt = optim.Adam(1e-3)
    with pytest.raises(
        FloatingPointError,
        match=r"train_step: the loss \(906304\.0\) or a gradient is not finite at training "
        r"step 0, first in layer 1 \(Dense, its gradient of 1\.W\)",
    ):
        net.train_step(X, y, opt)
    np.testing.assert_array_equal(net.theta, before)
    assert opt.t == 0 and not np.all(np.isfinite(net.grad_flat))
