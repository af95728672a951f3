"""BatchNorm, dropout, residual connections and learnable PReLU: the standalone
functions and the layers inside networks (native engine against the NumPy twin,
finite differences, PyTorch's documented formulas, training on digits)."""

from __future__ import annotations

import copy
import pickle
import re
import tracemalloc

import numpy as np
import pytest

import fastact
from fastact import optim
from fastact import reference as ref
from fastact.nn import BatchNorm, Dense, Dropout, Residual, Sequential
from fastact.nn.layers import ActivationLayer

esc = re.escape
NATIVE = not fastact.PUREPYTHON
native_only = pytest.mark.skipif(not NATIVE, reason="FASTACT_PUREPYTHON=1: no native engine")
BACKENDS = [
    pytest.param((fastact, fastact.MLP, fastact.Sequential), id="fastact"),
    pytest.param((ref, ref.MLP, ref.Sequential), id="reference"),
]


def _rel(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


def _fd4(loss_at, base, h=1e-5):
    """4th-order central differences of loss_at(theta) at base, one parameter at a time"""
    fd = np.empty_like(base)
    for i in range(base.size):
        vals = []
        for k in (-2, -1, 1, 2):
            t = base.copy()
            t[i] += k * h
            vals.append(loss_at(t))
        fd[i] = (vals[0] - 8 * vals[1] + 8 * vals[2] - vals[3]) / (12 * h)
    return fd


def _data(n_in=12, rows=32, classes=4, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((rows, n_in)).astype(dtype), rng.integers(0, classes, rows)


# ---- the program's codes are the engine's ---------------------------------------------


@native_only
def test_program_codes_match_the_native_engine():
    from fastact import _nn
    from fastact.nn import program

    assert program.OP_CODES == _nn.OP_CODES
    assert program.FIELDS == _nn.FIELDS


# ---- standalone BatchNorm ----------------------------------------------------------------


def _bn_loss_fd(x, gamma, beta, g, training, rm=None, rv=None, h=1e-4):
    """4th-order central differences of sum(g * y) with respect to x, gamma and beta"""

    def f(xx, gg, bb):
        y, _ = ref.batchnorm_forward(
            xx,
            gg,
            bb,
            training=training,
            running_mean=None if rm is None else rm.copy(),
            running_var=None if rv is None else rv.copy(),
        )
        return float(np.sum(g * y))

    out = []
    for which in range(3):
        args = [x, gamma, beta]
        a = args[which]
        d = np.zeros_like(a)
        for idx in np.ndindex(a.shape):
            vals = []
            for k in (-2, -1, 1, 2):
                aa = a.copy()
                aa[idx] += k * h
                args2 = list(args)
                args2[which] = aa
                vals.append(f(*args2))
            d[idx] = (vals[0] - 8 * vals[1] + 8 * vals[2] - vals[3]) / (12 * h)
        out.append(d)
    return out


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
def test_batchnorm_backward_matches_finite_differences(training):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((7, 5)) * 2 + 1
    gamma, beta = rng.standard_normal(5), rng.standard_normal(5)
    g = rng.standard_normal((7, 5))
    rm, rv = rng.standard_normal(5), rng.random(5) + 0.5
    fx, fg, fb = _bn_loss_fd(x, gamma, beta, g, training, rm, rv)
    for mod in (fastact, ref):
        y, cache = mod.batchnorm_forward(
            x, gamma, beta, training=training, running_mean=rm.copy(), running_var=rv.copy()
        )
        dx, dgamma, dbeta = mod.batchnorm_backward(g, cache)
        assert _rel(dx, fx) < 1e-9
        assert _rel(dgamma, fg) < 1e-9
        assert _rel(dbeta, fb) < 1e-9


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
def test_batchnorm_native_matches_reference(dtype, training):
    rng = np.random.default_rng(2)
    x = (rng.standard_normal((64, 33)) * 3 + 5).astype(dtype)
    gamma = rng.standard_normal(33).astype(dtype)
    beta = rng.standard_normal(33).astype(dtype)
    g = rng.standard_normal((64, 33)).astype(dtype)
    rms = [rng.standard_normal(33).astype(dtype) for _ in range(2)]
    rvs = [(rng.random(33) + 0.5).astype(dtype) for _ in range(2)]
    rm2, rv2 = [a.copy() for a in rms], [a.copy() for a in rvs]
    tol = 1e-12 if dtype == np.float64 else 2e-5
    y1, c1 = fastact.batchnorm_forward(
        x, gamma, beta, training=training, running_mean=rms[0], running_var=rvs[0]
    )
    y2, c2 = ref.batchnorm_forward(
        x, gamma, beta, training=training, running_mean=rm2[0], running_var=rv2[0]
    )
    assert y1.dtype == dtype and _rel(y1, y2) < tol
    assert _rel(rms[0], rm2[0]) < tol and _rel(rvs[0], rv2[0]) < tol
    for a, b in zip(fastact.batchnorm_backward(g, c1), ref.batchnorm_backward(g, c2)):
        assert a.dtype == dtype and _rel(a, b) < 10 * tol


def test_batchnorm_follows_pytorch_batchnorm1d():
    """Training: biased batch variance to normalise; running statistics move by momentum
    towards the mean and the unbiased variance (torch.nn.BatchNorm1d's documented update);
    evaluation: the running statistics."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((10, 4)) * 2 + 3
    gamma, beta = rng.standard_normal(4), rng.standard_normal(4)
    for mod in (fastact, ref):
        rm, rv = np.zeros(4), np.ones(4)
        y, _ = mod.batchnorm_forward(
            x, gamma, beta, training=True, running_mean=rm, running_var=rv, momentum=0.3, eps=1e-3
        )
        mean, var = x.mean(axis=0), x.var(axis=0)
        np.testing.assert_allclose(
            y, gamma * (x - mean) / np.sqrt(var + 1e-3) + beta, rtol=1e-12, atol=1e-12
        )
        np.testing.assert_allclose(rm, 0.7 * 0 + 0.3 * mean, rtol=1e-13)
        np.testing.assert_allclose(rv, 0.7 * 1 + 0.3 * x.var(axis=0, ddof=1), rtol=1e-13)
        y2, _ = mod.batchnorm_forward(
            x, gamma, beta, training=False, running_mean=rm, running_var=rv, eps=1e-3
        )
        np.testing.assert_allclose(
            y2, gamma * (x - rm) / np.sqrt(rv + 1e-3) + beta, rtol=1e-12, atol=1e-12
        )


def test_batchnorm_matches_torch_when_installed():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(4)
    x = rng.standard_normal((16, 6)) * 2 - 1
    g = rng.standard_normal((16, 6))
    bn = torch.nn.BatchNorm1d(6, momentum=0.1, eps=1e-5).double()
    with torch.no_grad():
        bn.weight.copy_(torch.from_numpy(rng.standard_normal(6)))
        bn.bias.copy_(torch.from_numpy(rng.standard_normal(6)))
    xt = torch.from_numpy(x).requires_grad_(True)
    yt = bn(xt)
    yt.backward(torch.from_numpy(g))
    rm, rv = np.zeros(6), np.ones(6)
    gamma, beta = bn.weight.detach().numpy().copy(), bn.bias.detach().numpy().copy()
    y, cache = fastact.batchnorm_forward(
        x, gamma, beta, training=True, running_mean=rm, running_var=rv
    )
    dx, dgamma, dbeta = fastact.batchnorm_backward(g, cache)
    assert _rel(y, yt.detach().numpy()) < 1e-12
    assert _rel(rm, bn.running_mean.numpy()) < 1e-12
    assert _rel(rv, bn.running_var.numpy()) < 1e-12
    assert _rel(dx, xt.grad.numpy()) < 1e-10
    assert _rel(dgamma, bn.weight.grad.numpy()) < 1e-10
    assert _rel(dbeta, bn.bias.grad.numpy()) < 1e-10


@pytest.mark.parametrize("mod", [fastact, ref], ids=["fastact", "reference"])
def test_batchnorm_errors(mod):
    x = np.zeros((4, 3))
    g, b = np.ones(3), np.zeros(3)
    with pytest.raises(
        ValueError,
        match=esc(
            "batchnorm_forward: training needs at least 2 "
            "rows to estimate the batch variance; got 1"
        ),
    ):
        mod.batchnorm_forward(x[:1], g, b, training=True)
    with pytest.raises(
        ValueError,
        match=esc(
            "batchnorm_forward: evaluation (training=False) normalises with the running statistics"
        ),
    ):
        mod.batchnorm_forward(x, g, b, training=False)
    with pytest.raises(
        ValueError,
        match=esc(
            "batchnorm_forward: gamma must have shape (3,), one value per feature; got (4,)."
        ),
    ):
        mod.batchnorm_forward(x, np.ones(4), b, training=True)
    with pytest.raises(
        ValueError, match=esc("batchnorm_forward: x must be 2-D (rows x features); got shape (3,).")
    ):
        mod.batchnorm_forward(np.zeros(3), g, b, training=True)
    with pytest.raises(ValueError, match=esc("give both running_mean and running_var")):
        mod.batchnorm_forward(x, g, b, training=True, running_mean=np.zeros(3))
    with pytest.raises(
        TypeError, match=esc("batchnorm_forward: running_var has dtype float32 but x is float64")
    ):
        mod.batchnorm_forward(
            x, g, b, training=True, running_mean=np.zeros(3), running_var=np.ones(3, np.float32)
        )
    with pytest.raises(
        ValueError, match=esc("batchnorm_forward: momentum must be in [0, 1]; got 1.5.")
    ):
        mod.batchnorm_forward(x, g, b, training=True, momentum=1.5)
    with pytest.raises(ValueError, match=esc("batchnorm_forward: eps must be > 0; got 0.")):
        mod.batchnorm_forward(x, g, b, training=True, eps=0)
    with pytest.raises(
        TypeError, match=esc("batchnorm_forward: training must be True or False; got 'yes'.")
    ):
        mod.batchnorm_forward(x, g, b, training="yes")
    ro = np.zeros(3)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match=esc("batchnorm_forward: running_mean is read-only")):
        mod.batchnorm_forward(x, g, b, training=True, running_mean=ro, running_var=np.ones(3))
    rm, both = np.zeros(3), np.zeros(6)
    x2 = np.array(x)
    for kw, nm, other in [
        (dict(running_mean=rm, running_var=rm), "running_mean", "running_var"),
        (dict(running_mean=both[:3], running_var=both[2:5]), "running_mean", "running_var"),
        (dict(running_mean=np.zeros(3), running_var=g), "running_var", "gamma"),
        (dict(running_mean=b, running_var=np.ones(3)), "running_mean", "beta"),
        (dict(running_mean=x2[0], running_var=np.ones(3)), "running_mean", "x"),
    ]:
        with pytest.raises(
            ValueError,
            match=esc(
                f"batchnorm_forward: {nm} shares memory with {other}; training updates "
                f"{nm} in place: give it an array of its own."
            ),
        ):
            mod.batchnorm_forward(x2 if other == "x" else x, g, b, training=True, **kw)
    # side by side is fine, and evaluation writes nothing
    mod.batchnorm_forward(x, g, b, training=True, running_mean=both[:3], running_var=both[3:])
    mod.batchnorm_forward(x, g, b, training=False, running_mean=rm, running_var=np.abs(rm) + 1)
    with pytest.raises(
        TypeError,
        match=esc(
            "batchnorm_backward: cache must be the BatchNormCache returned by batchnorm_forward"
        ),
    ):
        mod.batchnorm_backward(x, None)
    _, cache = mod.batchnorm_forward(x, g, b, training=True)
    with pytest.raises(
        ValueError,
        match=esc(
            "batchnorm_backward: grad_y has shape (4, 2); the layer's output has shape (4, 3)."
        ),
    ):
        mod.batchnorm_backward(np.zeros((4, 2)), cache)


# ---- standalone dropout ------------------------------------------------------------------


def test_dropout_keep_rate_within_four_sigma():
    n, p = 1_000_000, 0.3
    x = np.ones(n, np.float32)
    for mod in (fastact, ref):
        y, _ = mod.dropout_forward(x, p, seed=123)
        kept = int(np.count_nonzero(y))
        sigma = np.sqrt(n * p * (1 - p))
        assert abs(kept - n * (1 - p)) < 4 * sigma
        assert np.all((y == 0) | (y == np.float32(1 / (1 - p))))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dropout_native_equals_reference_bit_for_bit(dtype):
    x = np.random.default_rng(5).standard_normal((37, 129)).astype(dtype)
    for p in (0.1, 0.5, 0.9):
        for seed, step, layer in ((0, 0, 0), (7, 3, 2), (2**64 - 1, 2**40, 5)):
            y1, c1 = fastact.dropout_forward(x, p, seed=seed, step=step, layer=layer)
            y2, c2 = ref.dropout_forward(x, p, seed=seed, step=step, layer=layer)
            assert np.array_equal(y1, y2)
            g = np.arange(x.size, dtype=dtype).reshape(x.shape)
            assert np.array_equal(fastact.dropout_backward(g, c1), ref.dropout_backward(g, c2))
            keep = ref.dropout_keep(x.size, p, seed, step, layer).reshape(x.shape)
            assert np.array_equal(y1 != 0, keep & (x != 0))


@native_only
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dropout_mask_is_the_same_for_every_vector_width(dtype):
    """The mask loop takes 16 elements a block where the CPU has AVX-512, 8 elsewhere (one
    hash for two elements either way): both widths give the twin's mask, for sizes that
    end mid-block and for threads that split the elements."""
    from fastact import _nn

    x = np.random.default_rng(6).standard_normal(70_001).astype(dtype) + 5.0  # no zeros
    try:
        for width in (8, 16):
            got_width = _nn._dropout_width(width)
            for n in (1, 2, 7, 15, 16, 17, 33, 4097, 70_001):
                keep = ref.dropout_keep(n, 0.3, 11, 2, 1)
                for threads in (1, 2):
                    y, _ = fastact.dropout_forward(
                        x[:n], 0.3, seed=11, step=2, layer=1, n_threads=threads
                    )
                    assert np.array_equal(y != 0, keep), (got_width, n, threads)
    finally:
        _nn._dropout_width(0)


def test_dropout_mask_is_a_function_of_seed_step_layer():
    x = np.ones(4096)
    a = fastact.dropout_forward(x, 0.5, seed=1)[0]
    assert np.array_equal(a, fastact.dropout_forward(x, 0.5, seed=1)[0])
    for kw in ({"seed": 2}, {"seed": 1, "step": 1}, {"seed": 1, "layer": 1}):
        other = fastact.dropout_forward(x, 0.5, **kw)[0]
        assert 0.4 < np.mean((a != 0) == (other != 0)) < 0.6  # independent masks
    # backward regenerates the same mask
    y, cache = fastact.dropout_forward(x, 0.25, seed=9)
    assert np.array_equal(fastact.dropout_backward(np.ones(4096), cache), y)
    # evaluation: identity
    y, cache = fastact.dropout_forward(x, 0.5, seed=1, training=False)
    assert np.array_equal(y, x) and np.array_equal(fastact.dropout_backward(x, cache), x)


def test_batchnorm_evaluation_reads_read_only_strided_statistics():
    x = np.random.default_rng(0).normal(size=(5, 3))
    s = np.zeros((3, 2))
    s[:, 1] = [1.0, 2.0, 4.0]
    s[:, 0] = [0.5, -1.0, 2.0]
    s.setflags(write=False)
    g, b = np.full(3, 1.5), np.full(3, 0.25)
    ys = [
        mod.batchnorm_forward(x, g, b, training=False, running_mean=s[:, 0], running_var=s[:, 1])[0]
        for mod in (fastact, ref)
    ]
    want = (x - s[:, 0]) / np.sqrt(s[:, 1] + 1e-5) * g + b
    assert _rel(ys[0], want) < 1e-14 and _rel(ys[1], want) < 1e-14


def test_batchnorm_statistics_are_two_pass():
    """A first row far from the column's mean (the old one-pass sums were shifted by it)
    and columns near 1e160 (their squares overflow: the variance is inf, the output 0,
    as the twin's and PyTorch's, not inf - inf = NaN)."""
    import math

    rng = np.random.default_rng(1)
    x = rng.normal(5.0, 3.0, size=(1000, 4))
    x[0] = [1e3, 1e6, -1e3, 5.0]  # (one-pass: up to 3e-12 relative; two-pass: ~1e-15)
    rm, rv = np.zeros(4), np.ones(4)
    fastact.batchnorm_forward(
        x, np.ones(4), np.zeros(4), training=True, running_mean=rm, running_var=rv, momentum=1.0
    )
    for j in range(4):
        col = [float(v) for v in x[:, j]]
        m = math.fsum(col) / len(col)
        var = math.fsum((v - m) ** 2 for v in col) / (len(col) - 1)
        assert rm[j] == pytest.approx(m, rel=1e-14) and rv[j] == pytest.approx(var, rel=1e-14)
    x = np.array([[1e160, 1.0], [-1e160, 3.0], [5e159, 2.0]])
    out = []
    for mod in (fastact, ref):
        rm, rv = np.zeros(2), np.ones(2)
        y, c = mod.batchnorm_forward(
            x, np.ones(2), np.zeros(2), training=True, running_mean=rm, running_var=rv
        )
        gx, gg, gb = mod.batchnorm_backward(np.ones_like(x), c)
        assert np.array_equal(y[:, 0], np.zeros(3)) and rv[0] == np.inf
        assert np.array_equal(gx[:, 0], np.zeros(3)) and np.isfinite(y[:, 1]).all()
        out.append((y, rm, rv))
    assert _rel(out[0][0], out[1][0]) < 1e-15 and np.array_equal(out[0][2], out[1][2])


def _bn_degenerate_columns(rng, rows, n):
    """float32 x whose columns are normal (kind 0), constant (1), a subnormal spread
    {0, 1e-45} (2) or constant but one element an ulp above (3)"""
    x = (rng.standard_normal((rows, n)) * 2 + 1).astype(np.float32)
    kind = rng.integers(0, 4, n)
    kind[:4] = [1, 2, 3, 0]
    for j in np.flatnonzero(kind):
        c = np.float32(rng.standard_normal())
        x[:, j] = c if kind[j] != 2 else np.float32(0)
        x[rng.random(rows) < 0.5, j] = np.float32(1e-45) if kind[j] == 2 else x[0, j]
        x[1, j] = np.float32(1e-45) if kind[j] == 2 else x[0, j]
        if kind[j] == 3:
            x[rows // 2, j] = np.nextafter(c, np.float32(np.inf))
    return x, kind


@pytest.mark.parametrize("n_threads", [1, 2])
@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
def test_batchnorm_float32_scale_beyond_float_is_the_twins(training, n_threads):
    """float32 with eps so small that gamma / sqrt(var + eps) of a zero-variance feature
    overflows float (1e50 at eps=1e-100): that feature goes through double, as in the
    twin, not 0 inf = NaN.  A constant feature gives beta and a zero grad_x in training
    (evaluation, x == running_mean, running_var 0: beta and grad_y c1 = +-inf), the other
    overflowing ones +-inf where the twin's are; the other features keep the float pass.
    120 x 600: three chunks of 256 columns, and threads split the columns."""
    rng = np.random.default_rng(11)
    rows, n = 120, 600
    x, kind = _bn_degenerate_columns(rng, rows, n)
    const = kind == 1
    gamma = (rng.choice([-1, 1], n) * rng.uniform(0.5, 2, n)).astype(np.float32)
    beta = rng.standard_normal(n).astype(np.float32)
    rm = np.where(kind == 0, rng.standard_normal(n), x[0]).astype(np.float32)
    rv = np.where(kind == 0, rng.random(n) + 0.5, 0.0).astype(np.float32)
    g = rng.standard_normal((rows, n)).astype(np.float32)
    g[:, const] = gamma[const]  # one value a column
    out = []
    for mod in (fastact, ref):
        rm2, rv2 = rm.copy(), rv.copy()
        y, cache = mod.batchnorm_forward(
            x,
            gamma,
            beta,
            training=training,
            running_mean=rm2,
            running_var=rv2,
            eps=1e-100,
            n_threads=n_threads,
        )
        out.append((y, *mod.batchnorm_backward(g, cache, n_threads=n_threads), cache, rm2, rv2))
    (y, dx, dgamma, dbeta, c, _, rv1), (yr, dxr, dgr, dbr, cr, _, rvr) = out
    wide = np.abs(cr.invstd * gamma) > np.finfo(np.float32).max
    assert wide[const].all() and wide[kind == 2].all() and not wide[kind == 0].any()
    for a in (y, dx, dgamma, dbeta):
        assert a.dtype == np.float32 and not np.isnan(a).any()
    assert np.array_equal(y[:, const], yr[:, const])
    if training:
        assert np.array_equal(y[:, const], np.broadcast_to(beta[const], (rows, const.sum())))
        assert not dx[:, const].any() and not dxr[:, const].any()
    else:
        assert np.array_equal(dx[:, wide], dxr[:, wide])  # grad_y c1: +-inf, 0 where 0
        assert np.isinf(dx[:, const]).all() and np.isinf(y[:, kind == 3]).any()
    fin = np.isfinite(yr)
    assert np.array_equal(y[~fin], yr[~fin]) and _rel(y[fin], yr[fin]) < 1e-6
    assert _rel(dx[:, ~wide], dxr[:, ~wide]) < 2e-4
    scale = rows * float(np.abs(g).max())  # of the gradient sums (twin: ~1e-16 for 0)
    fin = np.isfinite(dgr)  # (evaluation: inf where x - running_mean overflows too)
    assert np.array_equal(dgamma[~fin], dgr[~fin])
    assert float(np.abs(dgamma[fin] - dgr[fin]).max()) < 1e-5 * scale
    assert float(np.abs(dbeta - dbr).max()) < 1e-5 * scale
    assert _rel(c.invstd, cr.invstd) < 1e-12 and _rel(rv1, rvr) < 1e-6


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
def test_batchnorm_scale_beyond_float_in_a_network_is_the_twins(training):
    """The engine's BatchNorm op, float32, eps=1e-80: a constant input feature (BatchNorm
    first) and a unit whose weights are 0 (x == the folded bias's mean, and in evaluation
    x == running_mean with running_var 0), against the twin: no NaN, the same
    non-finite gradients; then train_step on the constant input feature."""
    rng = np.random.default_rng(3)
    X = rng.standard_normal((32, 6)).astype(np.float32)
    X[:, 2] = 0.75
    y = rng.integers(0, 3, 32)
    nets = []
    for mod in (fastact, ref):
        net = mod.Sequential(
            [
                BatchNorm(eps=1e-80),
                Dense(8, "tanh"),
                Dense(8),
                BatchNorm("tanh", eps=1e-80),
                Dense(3),
            ],
            n_in=6,
            dtype=np.float32,
            seed=1,
        )
        net.train(training)
        sd = net.state_dict()
        sd["0.running_mean"][2], sd["0.running_var"][2] = 0.75, 0.0
        nets.append(net)
    for zero_unit in (False, True):
        for net in nets:
            sd = net.state_dict()
            if zero_unit:
                sd["2.W"][:, 5] = 0.0
                sd["3.running_mean"][5], sd["3.running_var"][5] = sd["2.b"][5], 0.0
        losses = [net.compute_gradients(X, y) for net in nets]
        assert np.isfinite(losses[0]) and abs(losses[0] - losses[1]) < 1e-5
        ga, fin = nets[0].grad_flat, np.isfinite(nets[1].grad_flat)
        assert not np.isnan(ga).any() and np.array_equal(np.isfinite(ga), fin)
        for k, gk in nets[0].grad_dict().items():  # (2.W: ~1e38 with the zeroed unit)
            rk = nets[1].grad_dict()[k]
            assert _rel(gk, rk) < 1e-4 * (1 + (not training)) or not np.isfinite(rk).all(), k
        assert _rel(nets[0].forward(X), nets[1].forward(X)) < 1e-5
        assert np.array_equal(nets[0].predict(X), nets[1].predict(X))
        if not zero_unit:
            opts = [optim.SGD(0.05, momentum=0.9) for _ in nets]
            for _ in range(3):
                la, lr = (net.train_step(X, y, o) for net, o in zip(nets, opts))
                assert np.isfinite(la) and abs(la - lr) < 1e-5
            assert _rel(nets[0].theta, nets[1].theta) < 1e-5
            assert _rel(nets[0].state, nets[1].state) < 1e-5


def test_functional_errors_are_the_twins():
    """The same exception and message from the native function and its NumPy twin, also
    when n_threads is bad too (the arguments are checked first)."""
    calls = [
        (
            "batchnorm_forward",
            (np.zeros(3), np.ones(3), np.zeros(3)),
            dict(training=True, n_threads="2"),
        ),
        ("dropout_forward", (np.zeros(3, bool), 0.5), dict(seed=0, n_threads=0)),
        ("batchnorm_backward", (np.zeros(3), None), dict(n_threads=0)),
        ("dropout_backward", (np.zeros(3), None), dict(n_threads=0)),
    ]
    for name, args, kw in calls:
        errs = []
        for mod in (fastact, ref):
            with pytest.raises(Exception) as e:
                getattr(mod, name)(*args, **kw)
            errs.append((type(e.value), str(e.value)))
        assert errs[0] == errs[1], name
        assert "n_threads" not in errs[0][1], name


@pytest.mark.parametrize("mod", [fastact, ref], ids=["fastact", "reference"])
def test_hyperparameters_are_checked_as_the_floats_used(mod):
    from fractions import Fraction

    x = np.ones((4, 3))
    with pytest.raises(ValueError, match=esc("dropout_forward: p must be a probability in [0, 1)")):
        mod.dropout_forward(x, Fraction(2**60 - 1, 2**60), seed=0)  # rounds to 1.0
    g, b = np.ones(3), np.zeros(3)
    with pytest.raises(ValueError, match=esc("batchnorm_forward: eps must be > 0; got Fraction(")):
        mod.batchnorm_forward(x, g, b, training=True, eps=Fraction(1, 10**400))  # rounds to 0
    with pytest.raises(
        ValueError, match=esc("batchnorm_forward: eps must be a finite number; got 1000")
    ):
        mod.batchnorm_forward(x, g, b, training=True, eps=10**400)  # no float
    with pytest.raises(ValueError, match=esc("BatchNorm: momentum must be a finite number")):
        BatchNorm(momentum=10**400)
    y, _ = mod.batchnorm_forward(x, g, b, training=True, eps=10**30)  # a float: allowed
    assert np.array_equal(y, np.zeros_like(x))


@pytest.mark.parametrize("mod", [fastact, ref], ids=["fastact", "reference"])
def test_probability_labels_may_be_byte_swapped(mod):
    x = np.array([[2.0, 1.0, 0.1], [0.5, 2.5, 0.0]])
    p = np.eye(3)[[0, 1]]
    loss, grad = mod.softmax_cross_entropy(x, p)
    loss2, grad2 = mod.softmax_cross_entropy(x, p.astype(">f8"))
    assert loss2 == loss and np.array_equal(grad2, grad)


@pytest.mark.parametrize("mod", [fastact, ref], ids=["fastact", "reference"])
def test_dropout_errors(mod):
    x = np.ones(5)
    for p in (1.0, -0.1, 1.5, True, "0.5"):
        with pytest.raises(
            ValueError,
            match=esc(
                "dropout_forward: p must be a probability in "
                "[0, 1) (the fraction of units dropped); got"
            ),
        ):
            mod.dropout_forward(x, p, seed=0)
    with pytest.raises(
        ValueError, match=esc("dropout_forward: seed must be an integer in [0, 2**64); got -1.")
    ):
        mod.dropout_forward(x, 0.5, seed=-1)
    with pytest.raises(TypeError, match=esc("x must be float32 or float64")):
        mod.dropout_forward(np.ones(5, np.complex128), 0.5, seed=0)
    _, cache = mod.dropout_forward(x, 0.5, seed=0)
    with pytest.raises(
        ValueError,
        match=esc("dropout_backward: grad_y has shape (4,); the layer's output has shape (5,)."),
    ):
        mod.dropout_backward(np.ones(4), cache)
    with pytest.raises(TypeError, match=esc("dropout_backward: cache must be the DropoutCache")):
        mod.dropout_backward(x, "cache")


# ---- networks with every option: native against the twin, finite differences ------------

OPTIONS = [
    {"batchnorm": "before"},
    {"batchnorm": "after"},
    {"dropout": 0.3},
    {"residual": True},
    {"batchnorm": "before", "dropout": 0.2, "residual": True},
    {"batchnorm": "after", "dropout": 0.1, "residual": True},
]
OPT_IDS = ["bn-before", "bn-after", "dropout", "residual", "bn-drop-res", "bn-after-drop-res"]
ACTS = ["tanh", "relu", "gelu", "sigmoid", "prelu", ("prelu", {"per_unit": True}), "elu"]
ACT_IDS = ["tanh", "relu", "gelu", "sigmoid", "prelu", "prelu-per-unit", "elu"]


def _diag_vector(net):
    return np.concatenate(
        [[v for v in e.values() if isinstance(v, float)] for e in net.diagnostics()]
    )


@native_only
@pytest.mark.parametrize("act", ACTS, ids=ACT_IDS)
@pytest.mark.parametrize("opts", OPTIONS, ids=OPT_IDS)
def test_network_native_matches_reference_float64(act, opts):
    X, y = _data()
    sizes = [12, 16, 16, 16, 4]
    a = fastact.MLP(sizes, act, dtype=np.float64, seed=3, **opts)
    r = ref.MLP(sizes, act, dtype=np.float64, seed=3, **opts)
    assert np.array_equal(a.theta, r.theta) and np.array_equal(a.state, r.state)
    oa, orr = optim.SGD(0.1, momentum=0.9), optim.SGD(0.1, momentum=0.9)
    for _ in range(3):
        la, lr = a.train_step(X, y, oa), r.train_step(X, y, orr)
        assert abs(la - lr) <= 1e-12 * max(1, abs(lr))
    assert _rel(a.theta, r.theta) < 1e-10
    if a.state.size:
        assert _rel(a.state, r.state) < 1e-10
    la, lr = a.compute_gradients(X, y), r.compute_gradients(X, y)
    assert abs(la - lr) <= 1e-12 * max(1, abs(lr))
    assert _rel(a.grad_flat, r.grad_flat) < 1e-10
    assert np.allclose(_diag_vector(a), _diag_vector(r), rtol=1e-10, atol=1e-12)
    assert _rel(a.forward(X), r.forward(X)) < 1e-10  # evaluation mode
    a.eval()
    r.eval()
    assert abs(a.compute_gradients(X, y) - r.compute_gradients(X, y)) < 1e-12
    assert _rel(a.grad_flat, r.grad_flat) < 1e-10


@pytest.mark.parametrize(
    "act",
    ["tanh", "gelu", "prelu", ("prelu", {"per_unit": True})],
    ids=["tanh", "gelu", "prelu", "prelu-per-unit"],
)
@pytest.mark.parametrize("opts", OPTIONS + [{}], ids=OPT_IDS + ["plain"])
@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
def test_network_gradients_match_finite_differences(act, opts, training):
    """Whole networks with every option, float64, to 1e-10 relative: the dropout mask is
    held fixed by calling the engine with the same step number each time."""
    X, y = _data(n_in=5, rows=9, classes=3, seed=1)
    net = fastact.MLP(
        [5, 6, 6, 3], act, dtype=np.float64, seed=2, loss="softmax_cross_entropy", **opts
    )
    rng = np.random.default_rng(0)
    net.theta[...] += 0.05 * rng.standard_normal(net.theta.size)  # off the symmetric start
    if net.state.size:
        net.state[...] = np.abs(net.state + 0.3 * rng.standard_normal(net.state.size))
    labels, target = net._y(y, X.shape[0], "test")
    net._engine.reserve(X.shape[0])
    state0 = net.state.copy()

    def loss_at(theta):
        saved = net.theta.copy()
        net.theta[...] = theta
        net.state[...] = state0
        val = net._engine.step(X, labels, target, False, training=training, seed=7, counter=4)
        net.theta[...] = saved
        return val

    net.state[...] = state0
    net._engine.step(X, labels, target, False, training=training, seed=7, counter=4)
    grad = net.grad_flat.copy()
    fd = _fd4(loss_at, net.theta.copy())
    # ReLU-like kinks (prelu) can sit inside the difference stencil: compare to 1e-10 of
    # the gradient's scale where the function is smooth there, i.e. everywhere but a few
    # entries of a kinked activation
    err = np.abs(grad - fd) / np.max(np.abs(fd))
    if "prelu" in str(act):
        assert np.mean(err < 1e-8) > 0.97
    else:
        assert err.max() < 1e-9


@pytest.mark.parametrize("be", BACKENDS)
def test_evaluation_mode_is_deterministic_and_uses_running_statistics(be):
    mod, MLP, _ = be
    X, y = _data(dtype=np.float32)
    net = MLP([12, 16, 4], "tanh", batchnorm="before", dropout=0.5, seed=0)
    opt = optim.SGD(0.05)
    for _ in range(5):
        net.train_step(X, y, opt)
    out1 = net.forward(X)
    assert np.array_equal(out1, net.forward(X))
    assert np.array_equal(out1[:5], net.forward(X[:5]))  # rows independent in evaluation
    sd = net.state_dict()
    W, b = net.params[0]
    z = X.astype(np.float64) @ W + b
    h = np.tanh(
        sd["1.gamma"] * (z - sd["1.running_mean"]) / np.sqrt(sd["1.running_var"] + 1e-5)
        + sd["1.beta"]
    )
    want = h @ net.params[1][0] + net.params[1][1]
    np.testing.assert_allclose(out1, want, rtol=2e-4, atol=2e-5)
    # training-mode steps with dropout differ from step to step (the mask moves on)
    g1 = (net.compute_gradients(X, y), net.grad_flat.copy())
    g2 = (net.compute_gradients(X, y), net.grad_flat.copy())
    assert not np.array_equal(g1[1], g2[1])
    # the same seed and history give the same training, bit for bit
    twin = MLP([12, 16, 4], "tanh", batchnorm="before", dropout=0.5, seed=0)
    opt2 = optim.SGD(0.05)
    for _ in range(5):
        twin.train_step(X, y, opt2)
    assert (
        np.array_equal(
            twin.theta, MLP([12, 16, 4], "tanh", batchnorm="before", dropout=0.5, seed=0).theta
        )
        is False
    )
    twin.compute_gradients(X, y)
    twin.compute_gradients(X, y)
    assert np.array_equal(twin.grad_flat, g2[1])


@pytest.mark.parametrize("be", BACKENDS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_a_dense_bias_before_batchnorm_is_folded_into_it(be, dtype):
    """MLP(batchnorm="before"): the dense layer's bias pass is folded into the BatchNorm op
    (no op of its own).  The bias still shifts the running mean and the evaluation-mode
    output, as an explicit x W + b would; its training gradient is exactly 0 (the output
    does not depend on it) and its evaluation-mode gradient is sum_r dL/d(x W + b)."""
    _, MLP, Sequential = be
    X, y = _data(dtype=dtype)
    net = MLP([12, 16, 4], "tanh", batchnorm="before", dtype=dtype, seed=0)
    kinds = [o.kind for o in net._program.ops]
    assert kinds == ["gemm", "batchnorm", "gemm", "bias_act"]
    W, b = net.params[0]
    b[...] = np.linspace(-3.0, 3.0, b.size)  # a bias that moves the statistics
    momentum, eps = 0.1, 1e-5
    net.compute_gradients(X, y)  # training: batch statistics, running ones updated
    z = X.astype(np.float64) @ W.astype(np.float64) + b.astype(np.float64)
    sd = net.state_dict()
    tol = dict(rtol=1e-12, atol=1e-12) if dtype == np.float64 else dict(rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(sd["1.running_mean"], momentum * z.mean(axis=0), **tol)
    np.testing.assert_allclose(
        sd["1.running_var"], (1 - momentum) + momentum * z.var(axis=0, ddof=1), **tol
    )
    gb = net.grad_dict()["0.b"]
    assert np.array_equal(gb, np.zeros_like(gb))
    # evaluation: the running statistics normalise x W + b
    net.eval()
    h = np.tanh(
        sd["1.gamma"] * (z - sd["1.running_mean"]) / np.sqrt(sd["1.running_var"] + eps)
        + sd["1.beta"]
    )
    want = h @ net.params[1][0] + net.params[1][1]
    np.testing.assert_allclose(net.forward(X), want, **tol)
    # the evaluation-mode bias gradient: central differences of the loss (float64)
    if dtype == np.float64:
        net.compute_gradients(X, y)
        got = net.grad_dict()["0.b"].copy()
        assert np.abs(got).max() > 1e-3
        fd = np.empty_like(got)
        for j in range(b.size):
            old = b[j]
            b[j] = old + 1e-6
            lp = net.evaluate(X, y)["loss"]
            b[j] = old - 1e-6
            lm = net.evaluate(X, y)["loss"]
            b[j] = old
            fd[j] = (lp - lm) / 2e-6
        np.testing.assert_allclose(got, fd, rtol=1e-6, atol=1e-9)
    # a BatchNorm without its own activation folds the bias too, and a later activation
    # layer still names the dense layer's activation in the diagnostics
    seq = Sequential(
        [Dense(16), BatchNorm(), ActivationLayer("tanh"), Dense(4)], n_in=12, dtype=dtype
    )
    assert [o.kind for o in seq._program.ops] == [
        "gemm",
        "batchnorm",
        "bias_act",
        "gemm",
        "bias_act",
    ]
    assert seq._program.diag_rows[0]["activation"] == "tanh"


@pytest.mark.parametrize("be", BACKENDS)
def test_modes(be):
    _, MLP, _ = be
    net = MLP([4, 5, 3], "relu", dropout=0.5)
    assert net.training is True
    assert net.eval() is net and net.training is False
    assert net.train() is net and net.training is True
    net.train(False)
    assert net.training is False
    with pytest.raises(TypeError, match=esc("train: mode must be True or False; got 'no'.")):
        net.train("no")
    # fit trains in training mode and restores the mode
    X, y = _data(n_in=4, rows=20, classes=3, dtype=np.float32)
    net.eval()
    c0 = net._counter
    net.fit(X, y, epochs=1, batch_size=10, verbose=0)
    assert net.training is False and net._counter == c0 + 2


# ---- layout, naming, persistence ----------------------------------------------------


@pytest.mark.parametrize("be", BACKENDS)
def test_state_dict_params_and_n_params(be):
    _, MLP, _ = be
    net = MLP(
        [6, 8, 8, 3],
        ("prelu", {"per_unit": True}),
        batchnorm="after",
        dropout=0.1,
        residual=True,
        seed=1,
    )
    sd = net.state_dict()
    names = sorted(sd)
    assert names == sorted(
        [
            "0.W",
            "0.b",
            "0.slope",
            "1.gamma",
            "1.beta",
            "1.running_mean",
            "1.running_var",
            "3.0.W",
            "3.0.b",
            "3.0.slope",
            "3.1.gamma",
            "3.1.beta",
            "3.1.running_mean",
            "3.1.running_var",
            "4.W",
            "4.b",
        ]
    )
    assert net.n_params == 6 * 8 + 8 + 8 + 16 + 8 * 8 + 8 + 8 + 16 + 8 * 3 + 3
    assert len(net.params) == 3 and net.params[1][0].shape == (8, 8)
    assert np.shares_memory(sd["3.0.W"], net.theta) and sd["3.0.W"] is not None
    assert np.array_equal(sd["0.slope"], np.full(8, 0.25, np.float32))
    assert np.array_equal(sd["1.gamma"], np.ones(8)) and np.array_equal(
        sd["1.running_var"], np.ones(8)
    )
    sd["0.slope"][...] = 0.5
    assert np.all(net.theta[6 * 8 + 8 : 6 * 8 + 16] == 0.5)
    assert set(net.grad_dict()) == {k for k in names if "running" not in k}
    assert isinstance(net.layers[3], Residual)


@pytest.mark.parametrize("be", BACKENDS)
def test_save_load_round_trip_with_every_option(be, tmp_path):
    _, MLP, Seq = be
    X, y = _data(n_in=6, rows=40, classes=3, dtype=np.float32)
    net = MLP([6, 8, 8, 3], "prelu", batchnorm="before", dropout=0.2, residual=True, seed=4)
    net.fit(X, y, epochs=2, batch_size=16, verbose=0)
    p = tmp_path / "net.npz"
    net.save(p)
    back = MLP.load(p)
    assert np.array_equal(back.theta, net.theta) and np.array_equal(back.state, net.state)
    assert back.config() == net.config() and back._counter == net._counter
    assert np.array_equal(back.forward(X), net.forward(X))
    o1, o2 = optim.SGD(0.1), optim.SGD(0.1)
    assert net.train_step(X, y, o1) == back.train_step(X, y, o2)  # same dropout masks
    assert np.array_equal(back.theta, net.theta)
    # fit resumes bit for bit: the shuffling state is saved too
    net.save(p)
    back = MLP.load(p)
    net.fit(X, y, epochs=1, batch_size=16, optimizer=optim.SGD(0.1), verbose=0)
    back.fit(X, y, epochs=1, batch_size=16, optimizer=optim.SGD(0.1), verbose=0)
    assert np.array_equal(back.theta, net.theta) and np.array_equal(back.state, net.state)
    # NumPy scalars among the options, diagnostics and the mode round-trip
    net2 = MLP([6, 8, 8, 3], dropout=np.float32(0.25), residual=np.True_, diagnostics=True)
    net2.eval().save(p)
    back = MLP.load(p)
    assert back.config() == net2.config() and back.config()["dropout"] == 0.25
    assert back.record_diagnostics is True and back.training is False
    assert back.residual == [False, True]
    for twin in (copy.deepcopy(net), pickle.loads(pickle.dumps(net))):
        assert np.array_equal(twin.state, net.state) and twin._counter == net._counter
    seq = Seq(
        [
            Dense(8, "relu"),
            BatchNorm(),
            Dropout(0.1),
            Residual([Dense(8), BatchNorm("tanh")]),
            ActivationLayer(("prelu", {"per_unit": True})),
            Dense(3),
        ],
        n_in=6,
        seed=2,
    )
    seq.fit(X, y, epochs=1, batch_size=16, verbose=0)
    seq.save(p)
    back = Seq.load(p)
    assert np.array_equal(back.theta, seq.theta) and np.array_equal(back.state, seq.state)
    assert [l.config() for l in back.layers] == [l.config() for l in seq.layers]
    with pytest.raises(
        ValueError,
        match=esc(
            f"MLP.load: {str(p)!r} holds a fastact.Sequential (format "
            "'fastact.Sequential/1'); load it with fastact.Sequential.load."
        ),
    ):
        MLP.load(str(p))
    m = str(p).replace(".npz", "_mlp.npz")
    MLP([3, 4, 2]).save(m)
    with pytest.raises(
        ValueError,
        match=esc(
            f"Sequential.load: {m!r} holds a fastact.MLP (format 'fastact.MLP/2'); load it "
            "with fastact.MLP.load."
        ),
    ):
        Seq.load(m)


@pytest.mark.parametrize("be", BACKENDS)
def test_a_damaged_shuffling_state_is_refused(be, tmp_path):
    import json

    _, MLP, _ = be
    p = tmp_path / "net.npz"
    MLP([4, 5, 3], seed=1).save(p)
    with np.load(p) as f:
        arrays = dict(f)
    meta = json.loads(str(arrays["config"]))
    meta["rng"] = {"bit_generator": "PCG64", "state": "garbage"}
    arrays["config"] = np.array(json.dumps(meta))
    with open(p, "wb") as f:
        np.savez(f, **arrays)
    with pytest.raises(
        ValueError, match=esc(f"MLP.load: {str(p)!r} holds an unreadable shuffling state: ")
    ):
        MLP.load(str(p))


@pytest.mark.parametrize("be", BACKENDS)
def test_old_plain_files_still_load(be, tmp_path):
    """A plain MLP saved in the first format (no running statistics) loads."""
    import json

    _, MLP, _ = be
    net = MLP([4, 5, 3], "tanh", seed=1)
    meta = {
        "format": "fastact.MLP/1",
        "layer_sizes": [4, 5, 3],
        "activation": [["tanh", {}]],
        "init": "auto",
        "loss": "softmax_cross_entropy",
        "dtype": "float32",
        "seed": 1,
    }
    p = tmp_path / "old.npz"
    np.savez(p, config=np.array(json.dumps(meta)), theta=net.theta)
    assert np.array_equal(MLP.load(p).theta, net.theta)


# ---- the layer objects and their errors ------------------------------------------------


@pytest.mark.parametrize("be", BACKENDS)
def test_mlp_option_errors(be):
    _, MLP, _ = be
    with pytest.raises(
        ValueError,
        match=esc(
            "MLP: dropout must be a probability in [0, 1) (the fraction of units dropped); got 1.0."
        ),
    ):
        MLP([4, 5, 3], dropout=1.0)
    with pytest.raises(ValueError, match=esc("MLP: dropout[1] must be a probability in [0, 1)")):
        MLP([4, 5, 5, 3], dropout=[0.1, -0.2])
    with pytest.raises(
        ValueError,
        match=esc(
            "MLP: batchnorm must be None, 'before' or 'after' "
            "(relative to the activation); got True."
        ),
    ):
        MLP([4, 5, 3], batchnorm=True)
    with pytest.raises(
        ValueError, match=esc("MLP: residual is a list of 1 but the network has 2 hidden layer(s)")
    ):
        MLP([4, 5, 5, 3], residual=[True])
    with pytest.raises(
        ValueError,
        match=esc(
            "MLP: residual[1] is True but hidden layer 1 maps "
            "width 5 to 6; h + f(h) needs equal widths."
        ),
    ):
        MLP([4, 5, 6, 3], residual=[False, True])
    with pytest.raises(ValueError, match=esc("MLP: residual must be True or False; got 1.")):
        MLP([4, 5, 3], residual=1)
    with pytest.raises(
        ValueError,
        match=esc(
            "MLP: prelu takes the parameters 'per_unit' "
            "(bool) and 'init' (the initial slope); got "
            "['slope']."
        ),
    ):
        MLP([4, 5, 3], ("prelu", {"slope": 0.1}))
    with pytest.raises(
        ValueError, match=esc("MLP: prelu's per_unit must be True or False; got 'yes'.")
    ):
        MLP([4, 5, 3], ("prelu", {"per_unit": "yes"}))
    with pytest.raises(ValueError, match=esc("MLP: prelu's init must be a finite number")):
        MLP([4, 5, 3], ("prelu", {"init": float("nan")}))
    # residual=True network-wide: only where the widths match, never the first hidden layer
    net = MLP([5, 5, 7, 7, 3], "relu", residual=True)
    assert net.residual == [False, False, True]
    # BatchNorm in training with one row
    X = np.zeros((1, 4), np.float32)
    bn = MLP([4, 5, 3], batchnorm="before")
    with pytest.raises(
        ValueError,
        match=esc("compute_gradients: BatchNorm in training mode needs at least 2 rows per batch"),
    ):
        bn.compute_gradients(X, [0])
    with pytest.raises(
        ValueError,
        match=esc("train_step: BatchNorm in training mode needs at least 2 rows per batch"),
    ):
        bn.train_step(X, [0], optim.SGD(0.1))
    bn.eval()
    assert np.isfinite(bn.compute_gradients(X, [0]))


def test_layer_errors():
    with pytest.raises(ValueError, match=esc("Dense: n_out must be a positive integer; got 0.")):
        Dense(0)
    with pytest.raises(ValueError, match=esc("Dense: unknown init 'kaiming'")):
        Dense(3, init="kaiming")
    with pytest.raises(ValueError, match=esc("Dropout: p must be a probability in [0, 1)")):
        Dropout(1)
    with pytest.raises(ValueError, match=esc("BatchNorm: momentum must be in [0, 1]; got 2.")):
        BatchNorm(momentum=2)
    with pytest.raises(ValueError, match=esc("BatchNorm: eps must be > 0; got -1.")):
        BatchNorm(eps=-1)
    # a subnormal eps: flush_subnormals (a network's default) read it as 0, and a
    # constant feature then gave a NaN loss
    for make in (
        lambda: BatchNorm(eps=1e-310),
        lambda: fastact.batchnorm_forward(
            np.ones((4, 2)), np.ones(2), np.zeros(2), training=True, eps=1e-310
        ),
    ):
        with pytest.raises(
            ValueError, match=r"eps must be a normal number, at least 2\.2250738585072014e-308 "
        ):
            make()
    BatchNorm(eps=2.2250738585072014e-308)  # the smallest normal is taken
    with pytest.raises(
        ValueError, match=esc("Residual: the branch must begin with a Dense layer; got BatchNorm.")
    ):
        Residual([BatchNorm(), Dense(3)])
    with pytest.raises(ValueError, match=esc("Residual: needs at least one layer")):
        Residual([])
    with pytest.raises(TypeError, match=esc("Residual: 3 is not a layer")):
        Residual([Dense(3), 3])
    with pytest.raises(
        ValueError, match=esc("Residual: the branch maps width 4 to 5; x + f(x) needs equal widths")
    ):
        Sequential([Dense(4), Residual([Dense(5)]), Dense(2)], n_in=3)
    with pytest.raises(TypeError, match=esc("Sequential: 'dense' is not a layer")):
        Sequential(["dense"], n_in=3)
    with pytest.raises(ValueError, match=esc("Sequential: needs at least one layer.")):
        Sequential([], n_in=3)
    with pytest.raises(
        ValueError, match=esc("Sequential: n_in must be a positive integer; got 0.")
    ):
        Sequential([Dense(2)], n_in=0)
    with pytest.raises(
        ValueError, match=esc("Sequential: softmax_cross_entropy needs at least 2 outputs")
    ):
        Sequential([Dense(1)], n_in=3)
    with pytest.raises(
        ValueError, match=esc("dense_forward: prelu's learnable slope is a network option")
    ):
        fastact.dense_forward(np.ones((2, 2)), np.ones((2, 2)), np.ones(2), "prelu")


# ---- training: every combination learns digits ------------------------------------------


@pytest.mark.parametrize("opts", OPTIONS + [{}], ids=OPT_IDS + ["plain"])
def test_every_option_trains_on_digits(opts):
    datasets = pytest.importorskip("sklearn.datasets")
    d = datasets.load_digits()
    X = (d.data / 16.0).astype(np.float32)
    y = d.target
    rng = np.random.default_rng(0)
    idx = rng.permutation(len(y))
    tr, te = idx[:1400], idx[1400:]
    net = fastact.MLP([64, 64, 64, 10], "relu", seed=0, **opts)
    net.fit(X[tr], y[tr], epochs=25, batch_size=32, optimizer=optim.Adam(2e-3), verbose=0)
    acc = net.evaluate(X[te], y[te])["accuracy"]
    assert acc >= 0.94, acc  # the plain network reaches ~0.97 here


# ---- no allocation per step, with every option ---------------------------------------------


@native_only
def test_train_step_with_every_option_allocates_nothing():
    X, y = _data(n_in=32, rows=64, classes=5, dtype=np.float32)
    net = fastact.MLP(
        [32, 64, 64, 64, 5], "prelu", batchnorm="before", dropout=0.2, residual=True, seed=0
    )
    opt = optim.Adam()
    net.train_step(X, y, opt)
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        for _ in range(30):
            net.train_step(X, y, opt)
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    assert peak < 4096, peak  # one activation buffer is 16 KiB


def test_sequential_equals_the_mlp_it_describes():
    X, y = _data(dtype=np.float64)
    m = fastact.MLP(
        [12, 16, 16, 4],
        "tanh",
        batchnorm="after",
        dropout=0.2,
        residual=True,
        dtype=np.float64,
        seed=5,
    )
    s = fastact.Sequential(m.layers, n_in=12, dtype=np.float64, seed=5)
    assert np.array_equal(m.theta, s.theta)
    assert m.compute_gradients(X, y) == s.compute_gradients(X, y)
    assert np.array_equal(m.grad_flat, s.grad_flat)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_batchnorm_and_dropout_are_bit_identical_for_every_thread_count(dtype):
    """Threads split BatchNorm's columns and dropout's elements: the same bits for
    n_threads 1, 2, -1 and None (sizes past the serial threshold, ragged widths)."""
    rng = np.random.default_rng(6)
    x = (rng.standard_normal((300, 333)) * 2 + 1).astype(dtype)
    g = rng.standard_normal((300, 333)).astype(dtype)
    gamma, beta = rng.standard_normal(333).astype(dtype), rng.standard_normal(333).astype(dtype)
    runs = []
    for nt in (1, 2, -1, None):
        rm, rv = np.zeros(333, dtype), np.ones(333, dtype)
        y, c = fastact.batchnorm_forward(
            x, gamma, beta, training=True, running_mean=rm, running_var=rv, n_threads=nt
        )
        d = fastact.dropout_forward(x, 0.4, seed=3, n_threads=nt)
        runs.append(
            (
                y,
                rm,
                rv,
                *fastact.batchnorm_backward(g, c, n_threads=nt),
                d[0],
                fastact.dropout_backward(g, d[1], n_threads=nt),
            )
        )
    for other in runs[1:]:
        for a, b in zip(runs[0], other):
            assert np.array_equal(a, b)
    assert np.array_equal(runs[0][-2], ref.dropout_forward(x, 0.4, seed=3)[0])
    with pytest.raises(ValueError, match="n_threads"):
        fastact.batchnorm_forward(x, gamma, beta, training=True, n_threads=0)


@native_only
@pytest.mark.parametrize("variant", ["plain", "batchnorm", "residual", "batchnorm+residual"])
@pytest.mark.parametrize(
    "act", ["sigmoid", "tanh", "relu", "leaky_relu", "prelu", "elu", "gelu", "silu"]
)
def test_training_steps_match_pytorch_and_numpy(act, variant):
    """Three SGD steps of the benchmark's networks give the losses that PyTorch eager
    (autograd, BatchNorm1d, PReLU) and a hand-written NumPy step give from the same
    weights (float32 rounding)."""
    from fastact.nn import peers

    impls = ["fastact", "numpy"]
    try:
        import torch  # noqa: F401

        impls.append("torch")
    except ImportError:
        pass
    steps, X, y, _ = peers.candidates(3, 24, 16, act, variant, impls)
    losses = {k: [f(X, y), f(X, y), f(X, y)] for k, f in steps.items()}
    for k in impls[1:]:
        np.testing.assert_allclose(losses[k], losses["fastact"], rtol=2e-5)


# ---- loud failures: a non-finite loss or gradient ------------------------------------------


@pytest.mark.parametrize("be", BACKENDS)
def test_nonfinite_training_step_raises_and_keeps_the_last_finite_weights(be):
    _, MLP, _ = be
    X, y = _data(n_in=6, rows=20, classes=3, dtype=np.float32)
    net = MLP([6, 8, 8, 3], "relu", seed=0)
    opt = optim.Adam(1e-2)
    net.train_step(X, y, opt)
    m = opt.state[0].copy()
    net.params[1][0][0, 0] = np.inf  # the second dense layer's weight
    before = net.theta.copy()
    with pytest.raises(
        FloatingPointError,
        match=esc("train_step: the loss (")
        + ".*"
        + esc("is not finite at training step 1, first in layer 1 (Dense, its output)"),
    ):
        net.train_step(X, y, opt)
    assert np.array_equal(net.theta, before, equal_nan=True)  # no update
    assert np.array_equal(opt.state[0], m) and opt.t == 1
    with pytest.raises(FloatingPointError, match=esc("compute_gradients: the loss")):
        net.compute_gradients(X, y)
    net.on_nonfinite = "warn"
    with pytest.warns(RuntimeWarning, match=esc("is not finite at training step")):
        net.train_step(X, y, opt)
    assert opt.t == 1
    net.on_nonfinite = "ignore"
    net.train_step(X, y, opt)
    assert opt.t == 2 and not np.all(np.isfinite(net.theta))


@pytest.mark.parametrize("be", BACKENDS)
def test_fit_stops_on_a_nonfinite_loss_with_the_last_finite_weights(be):
    _, MLP, _ = be
    X, y = _data(n_in=6, rows=64, classes=3, dtype=np.float32)
    X[40] = 3e38  # overflows in the first layer
    net = MLP([6, 8, 3], "relu", seed=0)
    with pytest.raises(FloatingPointError, match=esc("first in layer 0 (Dense, its output)")):
        net.fit(X, y, epochs=2, batch_size=16, shuffle=False, optimizer=optim.SGD(0.1), verbose=0)
    assert np.all(np.isfinite(net.theta)) and net._counter == 3
    net = MLP([6, 8, 3], "relu", seed=0, on_nonfinite="warn")
    with pytest.warns(RuntimeWarning, match=esc("fit: the loss")) as rec:
        net.fit(X, y, epochs=2, batch_size=16, shuffle=False, optimizer=optim.SGD(0.1), verbose=0)
    assert rec[0].filename == __file__  # the user's line, as train_step's
    with pytest.warns(RuntimeWarning, match=esc("train_step: the loss")) as rec:
        net.train_step(X[32:48], y[32:48], optim.SGD(0.1))
    assert rec[0].filename == __file__
    with pytest.raises(
        ValueError, match=esc("MLP: on_nonfinite must be 'raise', 'warn' or 'ignore'; got 'stop'.")
    ):
        MLP([6, 8, 3], on_nonfinite="stop")


def test_batchnorm_statistics_survive_a_large_mean_and_constant_columns():
    """One-pass shifted sums: a mean 1e6 standard deviations away and a constant column
    keep their variance (no cancellation, no negative variance)."""
    rng = np.random.default_rng(7)
    x = np.empty((50, 3))
    x[:, 0] = 1e6 + rng.standard_normal(50)
    x[:, 1] = 42.0
    x[:, 2] = rng.standard_normal(50) * 1e-3
    y, c = fastact.batchnorm_forward(x, np.ones(3), np.zeros(3), training=True)
    np.testing.assert_allclose(1 / c.invstd**2 - 1e-5, x.var(axis=0), rtol=1e-9, atol=1e-15)
    np.testing.assert_allclose(c.mean, x.mean(axis=0), rtol=1e-13, atol=1e-18)
    assert np.array_equal(y[:, 1], np.zeros(50))
    yr, _ = ref.batchnorm_forward(x, np.ones(3), np.zeros(3), training=True)
    assert _rel(y, yr) < 1e-9


@pytest.mark.parametrize("be", BACKENDS)
@pytest.mark.parametrize(
    "opts",
    [{}, {"batchnorm": "before", "dropout": 0.3, "residual": True}],
    ids=["plain", "bn-drop-res"],
)
def test_fit_epochs_equal_train_steps_on_the_same_batches(be, opts):
    """fit runs each epoch as one native call (batches gathered in the engine): the same
    weights, bit for bit, as train_step on the batches that fit's shuffling picks, and a
    last single-row batch left out with BatchNorm."""
    _, MLP, _ = be
    X, y = _data(n_in=6, rows=49, classes=3, dtype=np.float32)
    a = MLP([6, 8, 8, 3], "tanh", seed=2, **opts)
    b = MLP([6, 8, 8, 3], "tanh", seed=2, **opts)
    oa, ob = optim.Adam(1e-2), optim.Adam(1e-2)
    hist = a.fit(X, y, epochs=3, batch_size=16, optimizer=oa, verbose=0)
    rng = np.random.default_rng((2, 1))
    for _ in range(3):
        order = rng.permutation(49)
        total = seen = 0
        for r0 in range(0, 49, 16):
            idx = order[r0 : r0 + 16]
            if len(idx) == 1 and opts:
                continue
            total += b.train_step(X[idx], y[idx], ob) * len(idx)
            seen += len(idx)
    assert np.array_equal(a.theta, b.theta) and np.array_equal(a.state, b.state)
    assert a._counter == b._counter and oa.t == ob.t
    assert hist["loss"][-1] == pytest.approx(total / seen, rel=1e-12)


@pytest.mark.parametrize("be", BACKENDS)
def test_misaligned_inputs_are_copied_before_the_engine(be):
    _, MLP, _ = be
    net = MLP([8, 16, 3], "relu", seed=0)
    buf = np.zeros(4 * 8 * 4 + 1, np.uint8)
    X = buf[1:].view(np.float32).reshape(4, 8)
    assert not X.flags.aligned
    X[...] = np.arange(32, dtype=np.float32).reshape(4, 8) / 10
    assert np.array_equal(net.forward(X), net.forward(np.ascontiguousarray(X).copy()))
    ybuf = np.zeros(4 * 8 + 1, np.uint8)
    y = ybuf[1:].view(np.int64)
    y[...] = [0, 1, 2, 1]
    assert np.isfinite(net.compute_gradients(X, y))


@pytest.mark.parametrize("be", BACKENDS)
def test_fit_with_batchnorm_on_a_single_row_is_refused(be):
    _, MLP, _ = be
    net = MLP([4, 5, 3], batchnorm="after").eval()
    with pytest.raises(
        ValueError, match=esc("fit: BatchNorm in training mode needs at least 2 rows per batch")
    ):
        net.fit(np.zeros((1, 4), np.float32), [0], verbose=0)
    assert net.training is False
    X = np.random.default_rng(0).standard_normal((8, 4)).astype(np.float32)
    state = net.state.copy()
    with pytest.raises(
        ValueError,
        match=esc(
            "fit: BatchNorm in training mode needs at least 2 rows per batch to estimate "
            "the batch variance; got 1 (use batch_size >= 2 and at least 2 rows: fit "
            "always trains)."
        ),
    ):
        net.fit(X, np.arange(8) % 3, batch_size=1, verbose=0)  # 8 rows, batches of one
    assert np.array_equal(net.state, state) and net._counter == 0
    h = net.fit(np.zeros((3, 4), np.float32), [0, 1, 2], batch_size=2, verbose=0)
    assert len(h["loss"]) == 1 and np.isfinite(h["loss"][0])  # the 1-row tail left out


@pytest.mark.parametrize("be", BACKENDS)
def test_a_nonfinite_step_leaves_the_running_statistics_too(be):
    _, MLP, _ = be
    X, y = _data(n_in=6, rows=20, classes=3, dtype=np.float32)
    net = MLP([6, 8, 8, 3], "relu", batchnorm="before", seed=0)
    opt = optim.SGD(0.1)
    net.train_step(X, y, opt)
    state = net.state.copy()
    net.params[1][0][0, 0] = np.inf
    with pytest.raises(
        FloatingPointError,
        match=esc(
            "the parameters, the running statistics and the optimizer were left as they were"
        ),
    ):
        net.train_step(X, y, opt)
    assert np.array_equal(net.state, state)
    with pytest.raises(FloatingPointError):
        net.fit(X, y, epochs=1, batch_size=10, optimizer=opt, verbose=0)
    assert np.array_equal(net.state, state)


# ---- a residual branch's last bias + activation pass with the add fused in ------------

FUSED_BRANCHES = {
    # name: (branch, the activation's output kept for the backward)
    "relu": (lambda: [Dense(8, "relu")], False),
    "leaky_relu": (lambda: [Dense(8, ("leaky_relu", {"negative_slope": 0.1}))], False),
    "gelu": (lambda: [Dense(8, "gelu")], False),
    "tanh": (lambda: [Dense(8, "tanh")], True),
    "elu": (lambda: [Dense(8, "elu")], True),
    "linear": (lambda: [Dense(8, "tanh"), Dense(8)], False),
    "activation-layer": (lambda: [Dense(8), ActivationLayer("sigmoid")], True),
}


def _fused_net(module, name, dtype, seed=4):
    branch, _ = FUSED_BRANCHES[name]
    return module.Sequential(
        [Residual(branch()), Dense(8, "tanh"), Residual(branch()), Dense(3)],
        n_in=8,  # the first skip connection is the network's input
        dtype=dtype,
        seed=seed,
    )


@pytest.mark.parametrize("name", list(FUSED_BRANCHES))
def test_residual_branch_compiles_to_one_fused_pass(name):
    net = _fused_net(fastact, name, np.float64)
    prog = net._program
    fused = [o for o in prog.ops if o.kind == "bias_act_add"]
    assert len(fused) == 2 and not [o for o in prog.ops if o.kind == "add"]
    keeps = FUSED_BRANCHES[name][1]
    for o in fused:
        assert (o.aux >= 0) == keeps and o.saves_in == (not keeps)
        if keeps:  # the activation's output over the GEMM's, as an unfused pass writes it
            assert prog.alias[o.aux] == o.in_
        # the skip connection shares the output's gradient slot (none for the input X)
        assert o.gin2 == (o.gout if o.in2 > 0 else -1) and o.gin != o.gout
    assert fused[0].in2 == 0 and fused[1].in2 > 0


@native_only
@pytest.mark.parametrize("name", list(FUSED_BRANCHES))
def test_fused_residual_pass_matches_the_twin_float64(name):
    X, y = _data(n_in=8, rows=40, classes=3, seed=5)
    a, r = _fused_net(fastact, name, np.float64), _fused_net(ref, name, np.float64)
    assert np.array_equal(a.theta, r.theta)
    a.record_diagnostics = r.record_diagnostics = True
    oa, orr = optim.SGD(0.1, momentum=0.9), optim.SGD(0.1, momentum=0.9)
    for _ in range(3):
        la, lr = a.train_step(X, y, oa), r.train_step(X, y, orr)
        assert abs(la - lr) <= 1e-12 * max(1, abs(lr))
    assert _rel(a.theta, r.theta) < 1e-10
    la, lr = a.compute_gradients(X, y), r.compute_gradients(X, y)
    assert abs(la - lr) <= 1e-12 * max(1, abs(lr))
    assert _rel(a.grad_flat, r.grad_flat) < 1e-10
    # the activation columns: the output's moments recomputed where it is not kept
    assert np.allclose(_diag_vector(a), _diag_vector(r), rtol=1e-10, atol=1e-12)
    assert _rel(a.forward(X), r.forward(X)) < 1e-10


@native_only
@pytest.mark.parametrize("name", ["relu", "tanh", "gelu", "linear"])
def test_fused_residual_pass_matches_the_twin_float32(name):
    X, y = _data(n_in=8, rows=1200, classes=3, seed=6, dtype=np.float32)  # several blocks
    a, r = _fused_net(fastact, name, np.float32), _fused_net(ref, name, np.float32)
    la, lr = a.compute_gradients(X, y), r.compute_gradients(X, y)
    assert la == pytest.approx(lr, rel=1e-5)
    assert _rel(a.grad_flat, r.grad_flat) < 1e-5
    assert _rel(a.forward(X), r.forward(X)) < 1e-6


@native_only
@pytest.mark.parametrize("name", ["tanh", "gelu", "linear", "activation-layer", "elu"])
def test_fused_residual_pass_gradients_match_finite_differences(name):
    X, y = _data(n_in=8, rows=7, classes=3, seed=1)
    net = _fused_net(fastact, name, np.float64, seed=2)
    rng = np.random.default_rng(0)
    net.theta[...] += 0.05 * rng.standard_normal(net.theta.size)
    net.compute_gradients(X, y)
    grad = net.grad_flat.copy()
    base = net.theta.copy()
    h = 1e-5
    fd = np.empty_like(grad)
    for i in range(base.size):
        vals = []
        for k in (-2, -1, 1, 2):
            net.theta[...] = base
            net.theta[i] += k * h
            vals.append(net.compute_gradients(X, y))
        fd[i] = (vals[0] - 8 * vals[1] + 8 * vals[2] - vals[3]) / (12 * h)
    net.theta[...] = base
    assert np.max(np.abs(grad - fd)) / np.max(np.abs(fd)) < 1e-9


# residual connections inside residual branches: the inner skip connection and the outer
# one cannot share a gradient slot (both are added to later, each by its branch's first
# GEMM; a shared slot counted the inner branch's term twice in the outer skip's gradient)
NESTED = {
    "fused-inner": lambda: [Residual([Dense(5, "tanh"), Residual([Dense(5, "tanh")])])],
    "batchnorm-inner": lambda: [
        Residual([Dense(5, "tanh"), Residual([Dense(5), BatchNorm("tanh")])])
    ],
    "dropout-inner": lambda: [
        Residual([Dense(5, "gelu"), Residual([Dense(5, "gelu"), Dropout(0.3)])])
    ],
    "prelu-inner": lambda: [
        Residual([Dense(5, "tanh"), Residual([Dense(5), ActivationLayer("prelu")])])
    ],
    "three-levels": lambda: [
        Residual([Dense(5, "tanh"), Residual([Dense(5, "silu"), Residual([Dense(5, "tanh")])])])
    ],
    "two-inner": lambda: [
        Residual([Dense(5, "tanh"), Residual([Dense(5, "tanh")]), Residual([Dense(5, "elu")])])
    ],
    "inner-then-dense": lambda: [
        Residual([Dense(5, "tanh"), Residual([Dense(5, "tanh")]), Dense(5, "tanh")])
    ],
}


def _nested(module, name, seed=3):
    layers = [Dense(5, "tanh"), *NESTED[name](), Dense(3)]
    return module.Sequential(layers, n_in=4, dtype=np.float64, seed=seed)


@pytest.mark.parametrize("name", list(NESTED))
def test_nested_residual_gradients_match_the_twin_and_finite_differences(name):
    X, y = _data(n_in=4, rows=7, classes=3, seed=1)
    net, twin = _nested(fastact, name), _nested(ref, name)
    rng = np.random.default_rng(0)
    net.theta[...] += 0.05 * rng.standard_normal(net.theta.size)
    twin.theta[...] = net.theta
    assert net.compute_gradients(X, y) == pytest.approx(twin.compute_gradients(X, y), rel=1e-13)
    assert _rel(net.grad_flat, twin.grad_flat) < 1e-12
    # the native gradient against finite differences, the dropout mask held (same step)
    labels, target = net._y(y, X.shape[0], "test")
    net._engine.reserve(X.shape[0])
    state0 = net.state.copy()

    def loss_at(theta):
        net.theta[...] = theta
        net.state[...] = state0
        return net._engine.step(X, labels, target, False, training=True, seed=7, counter=4)

    base = net.theta.copy()
    loss_at(base)
    grad = net.grad_flat.copy()
    fd = _fd4(loss_at, base)
    net.theta[...] = base
    err = np.abs(grad - fd) / np.max(np.abs(fd))
    if name == "prelu-inner":  # a kink may sit inside the stencil
        assert np.mean(err < 1e-8) > 0.97
    else:
        assert err.max() < 1e-9


@native_only
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [1, 31, 32, 64, 75])
def test_kept_derivative_backward_sums_are_the_row_by_row_sums(n, dtype):
    """The backward of a layer that kept f' (mul_colsum: dz = g d, its column sums in
    registers on every path of this CPU) gives dz = g d and the double sums of dz added
    row after row, bit for bit."""
    from fastact import _nn

    rng = np.random.default_rng(n)
    g = (rng.standard_normal((41, n)) * 1e3).astype(dtype)
    d = rng.uniform(-1.0, 2.0, (41, n)).astype(dtype)
    d.flat[::9] = -0.0
    want = np.zeros(n)
    for row in g * d:
        want += row.astype(np.float64)
    try:
        for path in (2, 1, 0):
            assert _nn._rsum_path(path) <= path
            dz, db = _nn._mul_colsum(g, d)
            np.testing.assert_array_equal(dz, g * d, err_msg=f"path {path}")
            np.testing.assert_array_equal(db, want, err_msg=f"path {path}")
    finally:
        _nn._rsum_path(-1)


@pytest.mark.parametrize("n", [1, 7, 8, 15, 16, 37, 64, 100])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("per_unit", [True, False])
def test_prelu_backward_register_sums_equal_the_plain_loop(n, bias, per_unit):
    """The float32 PReLU backward the engine runs (its column sums in registers on the
    AVX-512 and AVX2 paths) gives the plain loop's dz, bias and slope gradients bit for
    bit (whole column blocks and the last columns), zeros, negative zeros and NaN
    included, and the gradients are right."""
    from fastact import _nn

    rng = np.random.default_rng(n)
    rows = 9
    z = rng.standard_normal((rows, n)).astype(np.float32)
    z.flat[::7] = 0.0
    z.flat[3::11] = -0.0
    z.flat[5::13] = np.nan
    g = rng.standard_normal((rows, n)).astype(np.float32)
    b = rng.standard_normal(n).astype(np.float32) if bias else None
    a = rng.uniform(0.0, 0.5, n if per_unit else 1).astype(np.float32)
    want = _nn._prelu_bwd_f32(g, z, b, a, per_unit, True)
    try:
        for path in (2, 1, 0):  # each loop this CPU runs (a path it lacks runs its best)
            assert _nn._rsum_path(path) <= path
            got = _nn._prelu_bwd_f32(g, z, b, a, per_unit, False)
            for x, w in zip(got, want):
                np.testing.assert_array_equal(x, w, err_msg=f"path {path}")
    finally:
        _nn._rsum_path(-1)
    u = z + (b if bias else np.float32(0))
    neg = u <= 0
    dz = np.where(neg, (a if per_unit else a[0]) * g, g)
    np.testing.assert_array_equal(got[0], dz)
    np.testing.assert_allclose(got[1], dz.astype(np.float64).sum(0), rtol=1e-12, atol=1e-12)
    da = np.where(neg, g.astype(np.float64) * u, 0.0).sum(0)
    want_da = da if per_unit else np.concatenate([[da.sum()], got[2][1:]])
    np.testing.assert_allclose(got[2], want_da, rtol=1e-12, atol=1e-12)


# ---- stacks found in review: activations in a row, an activation first, reprs ----------

STACKS = {
    "relu-sigmoid": lambda: [Dense(5, "relu"), ActivationLayer("sigmoid"), Dense(3)],
    "sigmoid-sigmoid": lambda: [Dense(5, "sigmoid"), ActivationLayer("sigmoid"), Dense(3)],
    "bn-tanh-sigmoid": lambda: [Dense(5), BatchNorm("tanh"), ActivationLayer("sigmoid"), Dense(3)],
    "bn-sigmoid-tanh": lambda: [BatchNorm("sigmoid"), ActivationLayer("tanh"), Dense(3)],
    "branch-tanh-sigmoid": lambda: [
        Dense(5, "relu"),
        Residual([Dense(5, "tanh"), ActivationLayer("sigmoid")]),
        Dense(3),
    ],
    "act-first": lambda: [ActivationLayer("tanh"), Dense(3)],
    "identity-first": lambda: [ActivationLayer(None), Dense(5, "elu"), Dense(3)],
    "act-after-act-layer": lambda: [
        Dense(5),
        ActivationLayer("relu"),
        ActivationLayer("tanh"),
        Dense(3),
    ],
}


@pytest.mark.parametrize("name", list(STACKS))
def test_activation_stacks_match_the_twin_and_finite_differences(name):
    """An output-saving activation wrote its output over its input, which the activation
    (or BatchNorm) before it reads in its backward, or over the network's input itself
    (heap corruption when the first layer was one)."""
    rng = np.random.default_rng(0)
    for rows in (9, 100, 2000):
        X = rng.standard_normal((rows, 4))
        net = fastact.Sequential(STACKS[name](), n_in=4, dtype=np.float64, seed=1)
        twin = ref.Sequential(STACKS[name](), n_in=4, dtype=np.float64, seed=1)
        X0 = X.copy()
        assert _rel(net.forward(X), twin.forward(X)) < 1e-13
        assert np.array_equal(X, X0)  # the input is never written
    X, y = X[:9], np.arange(9) % 3
    assert net.compute_gradients(X, y) == pytest.approx(twin.compute_gradients(X, y), rel=1e-13)
    assert _rel(net.grad_flat, twin.grad_flat) < 1e-12
    base = net.theta.copy()
    grad = net.grad_flat.copy()
    h, fd = 1e-6, np.zeros_like(grad)
    for i in range(base.size):
        net.theta[...] = base
        net.theta[i] += h
        up = net.compute_gradients(X, y)
        net.theta[i] -= 2 * h
        fd[i] = (up - net.compute_gradients(X, y)) / (2 * h)
    net.theta[...] = base
    assert np.max(np.abs(grad - fd)) / np.max(np.abs(fd)) < 1e-6


def test_an_activation_after_a_residual_is_not_credited_to_its_branch():
    X, y = _data(n_in=4, rows=8, classes=3)
    net = fastact.Sequential(
        [Dense(4, "relu"), Residual([Dense(4)]), ActivationLayer("tanh"), Dense(3)],
        n_in=4,
        dtype=np.float64,
        diagnostics=True,
    )
    net.compute_gradients(X, y)
    d = net.diagnostics()
    sd = net.state_dict()
    h = np.maximum(X @ sd["0.W"] + sd["0.b"], 0)
    z = h @ sd["1.0.W"] + sd["1.0.b"]
    assert [r["activation"] for r in d] == ["relu", "identity", "identity"]
    assert d[1]["act_mean"] == pytest.approx(z.mean(), rel=1e-12)


def test_mlp_layers_config_and_repr_rebuild_the_same_network():
    m = fastact.MLP([4, 6, 3], "relu", batchnorm="before", seed=0, dtype=np.float64)
    s = fastact.Sequential(m.layers, 4, seed=0, dtype=np.float64)
    again = fastact.Sequential._from_config(s.config())
    assert np.array_equal(again.theta, m.theta) and np.array_equal(s.theta, m.theta)
    assert m.layers[0] == Dense(6, init_activation="relu")
    plain = fastact.Sequential([Dense(6), BatchNorm("relu"), Dense(3)], 4, seed=0, dtype=np.float64)
    assert m.layers[0] != plain.layers[0]  # the gain the init uses is part of the layer
    layers = [
        Dense(5, "relu"),
        Dense(64, ("leaky_relu", {"negative_slope": 0.2}), init="he_normal"),
        BatchNorm("tanh", momentum=0.2),
        ActivationLayer(("prelu", {"per_unit": True})),
        Residual([Dense(4, "relu"), Residual([Dense(4)]), Dropout(0.1)]),
        *m.layers,
    ]
    ns = {"Dense": Dense, "BatchNorm": BatchNorm, "Dropout": Dropout, "Residual": Residual}
    ns["ActivationLayer"] = ActivationLayer
    for layer in layers:
        assert eval(repr(layer), ns) == layer, repr(layer)
    with pytest.raises(ValueError, match=esc("Dense (init_activation)")):
        Dense(3, init_activation="nope")


@pytest.mark.parametrize("mod", [fastact, ref])
def test_mlp_repr_is_the_constructor_call(mod):
    """repr(MLP) rebuilds the same configuration: activation parameters (prelu's
    per_unit, leaky_relu's slope), per-layer lists and options were dropped, so two
    different networks printed the same; and it named the internal module."""
    nets = [
        mod.MLP([3, 4, 2], ("leaky_relu", {"negative_slope": 0.3}), on_nonfinite="ignore"),
        mod.MLP([3, 4, 2], "leaky_relu"),
        mod.MLP([3, 5, 5, 2], ["relu", ("prelu", {"per_unit": True})], dropout=[0.1, 0.0]),
        mod.MLP([3, 5, 5, 2], "tanh", batchnorm="after", residual=True, dtype=np.float64),
        mod.MLP([3, 4, 2], "gelu", diagnostics=True, init="he_normal", loss="mse", seed=3),
        mod.MLP([3, 2]),  # no hidden layer: activation=[] (an IndexError once)
    ]
    reprs = [repr(n) for n in nets]
    assert len(set(reprs)) == len(reprs)
    # (under FASTACT_PUREPYTHON=1 fastact.MLP is the twin's class)
    native = mod.MLP.__module__ == "fastact.nn.network"
    prefix = "fastact.MLP(" if native else "fastact.reference.MLP("
    for net, r in zip(nets, reprs):
        assert r.startswith(prefix), r
        again = eval(r, {"fastact": fastact, "np": np})
        assert type(again) is type(net)
        assert again.config() == net.config(), r
