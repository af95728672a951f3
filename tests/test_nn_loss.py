"""The network engine's own softmax cross-entropy loop (src/fa_nn_loops.h fa_xent_*).

The engine computes its loss with a fused loop of its own (one exp per element, float
arithmetic for float32), not with the public fastact.softmax_cross_entropy kernel; these
tests hold it to float64 truth and to the public kernel's handling of non-finite logits.
fastact._nn._engine_softmax_xent runs the loop alone: summed row losses, and the gradient
scale (softmax - onehot).
"""

from __future__ import annotations

import numpy as np
import pytest

import fastact
from fastact import reference as ref

_nn = pytest.importorskip("fastact._nn")


def engine_xent(x, labels, scale=None):
    x = np.ascontiguousarray(x)
    labels = np.ascontiguousarray(labels, dtype=np.int64)
    scale = 1.0 / x.shape[0] if scale is None else scale
    g = np.empty_like(x)
    return _nn._engine_softmax_xent(x, labels, g, scale), g


def truth(x, labels, scale):
    """float64 (row losses, gradient), the label's element formed without cancellation
    (-sum of the other probabilities)."""
    x = np.asarray(x, np.float64)
    r = np.arange(x.shape[0])
    with np.errstate(all="ignore"):
        m = x.max(axis=1, keepdims=True)
        e = np.exp(x - m)
        s = e.sum(axis=1)
        g = e / s[:, None]
        others = np.where(np.arange(x.shape[1]) == labels[:, None], 0.0, e).sum(axis=1)
        g[r, labels] = -others / s
        loss = np.log(s) - (x[r, labels] - m[:, 0])
    return loss, g * scale


def assert_grad_close(g, want, dtype):
    """float64: 1e-12 relative (+ 1e-300); float32: within 4 ulp of the float32 rounding
    of the float64 truth (measured: 2.75 at most)"""
    if dtype == np.float64:
        np.testing.assert_allclose(g, want, rtol=1e-12, atol=1e-300)
    else:
        ulp = np.spacing(np.abs(want).astype(np.float32)).astype(np.float64)
        err = np.abs(g.astype(np.float64) - want)
        assert (err <= 4 * ulp).all(), (err / ulp).max()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("C", [1, 2, 3, 10, 17, 32, 33, 100, 1000])
@pytest.mark.parametrize("spread", [0.1, 3.0, 30.0])
def test_engine_xent_matches_truth(dtype, C, spread):
    rng = np.random.default_rng(C * 7 + int(spread))
    rows = 67
    x = (rng.standard_normal((rows, C)) * spread).astype(dtype)
    x[::5, 0] = x[::5].max(axis=1)  # tied maxima
    labels = rng.integers(0, C, rows)
    labels[::3] = x[::3].argmax(axis=1)  # confident rows: p_label near 1
    total, g = engine_xent(x, labels)
    loss, want = truth(x, labels, 1.0 / rows)
    rel = 1e-12 if dtype == np.float64 else 1e-6
    assert total == pytest.approx(loss.sum(), rel=rel, abs=1e-300)
    assert_grad_close(g, want, dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_engine_xent_against_the_reference_twin(dtype):
    """the network's loss as the NumPy twin computes it (fastact.reference)"""
    rng = np.random.default_rng(3)
    x = (rng.standard_normal((64, 10)) * 4).astype(dtype)
    labels = rng.integers(0, 10, 64)
    total, g = engine_xent(x, labels)
    rloss, rgrad = ref.softmax_cross_entropy(x.astype(np.float64), labels)
    assert total / 64 == pytest.approx(rloss, rel=1e-12 if dtype == np.float64 else 1e-6)
    # the twin's p - 1 cancels near p = 1: an absolute term of its rounding
    tol = 1e-12 if dtype == np.float64 else 4 * 2.0**-24
    np.testing.assert_allclose(g, rgrad, rtol=tol, atol=4e-16 / 64)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_engine_xent_confident_row_keeps_its_small_gradient(dtype):
    """p_label = 1 - 2e-13: the label's gradient is -2e-13 (scale 1), to full relative
    accuracy, and the loss 2e-13 (log1p, not log)"""
    x = np.array([[30.0, 0.0, 0.0]], dtype)
    total, g = engine_xent(x, np.array([0]), 1.0)
    loss, want = truth(x, np.array([0]), 1.0)
    assert want[0, 0] == pytest.approx(-2 * np.exp(-30.0), rel=1e-15)
    assert total == pytest.approx(loss[0], rel=1e-12 if dtype == np.float64 else 1e-6)
    assert_grad_close(g, want, dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_engine_xent_one_class(dtype):
    x = np.array([[5.0], [-1e30], [0.0]], dtype)
    total, g = engine_xent(x, np.zeros(3, np.int64))
    assert total == 0.0
    np.testing.assert_array_equal(g, np.zeros((3, 1), dtype))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_engine_xent_extreme_finite_logits(dtype):
    """+-1e30: finite losses (2e30 for a label at -1e30), probabilities 0 and 1 exactly"""
    x = np.array(
        [[1e30, -1e30, 0.0], [1e30, -1e30, 0.0], [-1e30, -1e30, 1e30], [1e30, 1e30, -1e30]],
        dtype,
    )
    labels = np.array([0, 1, 0, 1])
    total, g = engine_xent(x, labels, 1.0)
    loss, want = truth(x, labels, 1.0)
    np.testing.assert_allclose(loss, [0.0, 2e30, 2e30, np.log(2)], rtol=1e-7)
    assert total == pytest.approx(loss.sum(), rel=1e-12)
    np.testing.assert_allclose(g, want, rtol=1e-7, atol=0)
    assert g[3, 1] == pytest.approx(-0.5) and g[3, 0] == pytest.approx(0.5)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_engine_xent_nonfinite_logits_as_the_public_kernel(dtype):
    """NaN or +inf in a row: its loss and gradient NaN; an all -inf row: NaN; -inf among
    finite logits: probability 0 (loss inf when it is the label's), as
    fastact.softmax_cross_entropy's kernel gives them"""
    inf, nan = np.inf, np.nan
    rows = [
        ([inf, 0.0, 1.0], 0),
        ([inf, 0.0, 1.0], 1),
        ([0.0, nan, 1.0], 2),
        ([nan, 0.0, 1.0], 0),
        ([-inf, -inf, -inf], 1),
        ([-inf, 0.0, 1.0], 2),
        ([-inf, 0.0, 1.0], 0),
        ([inf, inf, 1.0], 2),
    ]
    for row, label in rows:
        x = np.array([row], dtype)
        lab = np.array([label])
        total, g = engine_xent(x, lab, 1.0)
        with np.errstate(all="ignore"):
            want_loss, want_g = fastact.softmax_cross_entropy(x, lab)
        assert np.isnan(total) == np.isnan(want_loss), (row, label, total, want_loss)
        if not np.isnan(want_loss):
            assert total == pytest.approx(want_loss, rel=1e-6), (row, label)
        np.testing.assert_array_equal(np.isnan(g), np.isnan(want_g), err_msg=str((row, label)))
        ok = ~np.isnan(want_g)
        np.testing.assert_allclose(g[ok], want_g[ok], rtol=1e-6, atol=0)
    # the loss is +inf, exactly, when the label's logit is -inf among finite ones
    assert engine_xent(np.array([[-inf, 0.0]], dtype), np.array([0]), 1.0)[0] == np.inf


def test_engine_xent_many_rows_cross_blocks():
    """rows beyond one block of the loop (about 1024 elements), few and many classes"""
    rng = np.random.default_rng(5)
    for rows, C in ((700, 3), (300, 10), (5, 3000)):
        x = (rng.standard_normal((rows, C)) * 5).astype(np.float32)
        labels = rng.integers(0, C, rows)
        total, g = engine_xent(x, labels)
        loss, want = truth(x, labels, 1.0 / rows)
        assert total == pytest.approx(loss.sum(), rel=1e-6)
        assert_grad_close(g, want, np.float32)


@pytest.mark.parametrize(
    "args",
    [
        (np.zeros((2, 3), np.int64), np.zeros(2, np.int64), np.zeros((2, 3), np.int64)),
        (np.zeros((2, 3)), np.zeros(2, np.int32), np.zeros((2, 3))),
        (np.zeros((2, 3)), np.zeros(3, np.int64), np.zeros((2, 3))),
        (np.zeros((2, 3)), np.zeros(2, np.int64), np.zeros((2, 3), np.float32)),
        (np.zeros((2, 0)), np.zeros(2, np.int64), np.zeros((2, 0))),
        (np.zeros(6), np.zeros(2, np.int64), np.zeros(6)),
    ],
)
def test_engine_xent_rejects_bad_arrays(args):
    with pytest.raises(ValueError, match="_engine_softmax_xent: x must be a C-contiguous 2-D"):
        _nn._engine_softmax_xent(*args, 1.0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_network_loss_is_the_engine_loop(dtype):
    """a network's reported loss and output-layer gradient: the twin's, through the
    engine's loop"""
    sizes = [5, 7, 4]
    rng = np.random.default_rng(2)
    X = rng.standard_normal((20, 5)).astype(dtype)
    y = rng.integers(0, 4, 20)
    nat = fastact.MLP(sizes, "tanh", seed=1, dtype=dtype)
    twin = ref.MLP(sizes, "tanh", seed=1, dtype=dtype)
    ln = nat.compute_gradients(X, y)
    lt = twin.compute_gradients(X, y)
    rel = 1e-12 if dtype == np.float64 else 1e-5
    assert ln == pytest.approx(lt, rel=rel)
    for (gw, gb), (tw, tb) in zip(nat.grads, twin.grads):
        np.testing.assert_allclose(gw, tw, rtol=rel * 10, atol=rel * 1e-3)
        np.testing.assert_allclose(gb, tb, rtol=rel * 10, atol=rel * 1e-3)
