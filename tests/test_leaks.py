"""No leaks: resident memory stays flat over many calls of every public function (error
paths included) and many training steps, and calls leave the reference counts of their
arguments as they found them.

Kept small for the suite (a few thousand calls, ~2 s); tools/leaks.py runs the same calls
1e5 times (and 1e4 training steps) and can run under valgrind.  The memory check is a
count, not a timing: after a warm-up (caches, allocator pools), a further batch of calls
may not grow the peak resident memory by more than a small fraction of what the calls
allocate in total, so a per-call leak of even one small array fails it.
"""

from __future__ import annotations

import gc
import io
import sys

import numpy as np
import pytest
from conftest import CASES

import fastact

# under tools/sanitize.sh (libasan preloaded) resident memory measures ASan's quarantine of
# freed blocks, not leaks: the RSS tests stand down there (LeakSanitizer covers leaks)
_ASAN = "libasan" in __import__("os").environ.get("LD_PRELOAD", "")
rss_test = pytest.mark.skipif(
    _ASAN, reason="under AddressSanitizer, resident memory holds its quarantine of freed blocks"
)


def _rss_bytes() -> int:
    """Current resident set size (Linux /proc; 0 elsewhere, which skips the test)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * 4096
    except OSError:
        return 0


def _calls():
    """(name, callable) for every public function, normal and error paths; arrays of
    4096 float64 (32 KiB): a leak of one array per call is 32 KiB x calls."""
    r = np.random.default_rng(0)
    x = r.standard_normal((64, 64))
    g = r.standard_normal((64, 64))
    x32 = x.astype(np.float32)
    out = np.empty_like(x)
    b = r.standard_normal(64)
    lab = r.integers(0, 64, 64)
    W = r.standard_normal((64, 64)) / 8
    calls = []
    for case in CASES:
        kw = {k: (np.full(64, 0.25) if k == "weight" else v) for k, v in case.params.items()}
        if case.name == "prelu" and not kw:
            kw = {"weight": 0.25}
        f = getattr(fastact, case.name)
        fb = getattr(fastact, case.name + "_backward")
        calls.append((case.id, lambda f=f, kw=kw: f(x, **kw)))
        calls.append((case.id + " out=", lambda f=f, kw=kw: f(x, out=out, **kw)))
        calls.append(
            (
                case.id + " f32 strided",
                lambda f=f, kw=kw: f(
                    x32[:, ::2],
                    **{
                        k: (v[::2].astype(np.float32) if isinstance(v, np.ndarray) else v)
                        for k, v in kw.items()
                    },
                ),
            )
        )
        calls.append((case.id + "_backward", lambda fb=fb, kw=kw: fb(g, x, **kw)))
        # error paths: wrong dtype, wrong shape
        calls.append((case.id + " TypeError", lambda f=f, kw=kw: f(x.astype(np.complex64), **kw)))
        calls.append((case.id + "_backward ValueError", lambda fb=fb, kw=kw: fb(g, x[:3], **kw)))
    calls += [
        ("bias_act", lambda: fastact.bias_act(x, b, "gelu")),
        ("bias_act_backward", lambda: fastact.bias_act_backward(g, x, "gelu", bias=b)),
        ("bias_act ValueError", lambda: fastact.bias_act(x, b[:3], "relu")),
        ("bias_act unknown", lambda: fastact.bias_act(x, b, "nope")),
        ("softmax_cross_entropy", lambda: fastact.softmax_cross_entropy(x, lab)),
        ("softmax_cross_entropy probs", lambda: fastact.softmax_cross_entropy(x, np.abs(g))),
        ("softmax_cross_entropy bad label", lambda: fastact.softmax_cross_entropy(x, lab + 64)),
        ("dense_forward", lambda: fastact.dense_forward(x, W, b, "tanh")),
        (
            "dense_backward",
            lambda: fastact.dense_backward(g, fastact.dense_forward(x, W, b, "gelu")[1]),
        ),
        ("dense_forward ValueError", lambda: fastact.dense_forward(x, W[:3], b, "tanh")),
    ]
    return calls


def _run(call, n):
    for _ in range(n):
        try:
            call()
        except (TypeError, ValueError):
            pass


@rss_test
def test_resident_memory_is_flat_over_calls_of_every_public_function():
    """Per function: after a warm-up, 40 more calls may not grow the resident memory by
    half of what leaking one of its 32 KiB arrays per call would (640 KiB)."""
    if not _rss_bytes():
        pytest.skip("no /proc/self/statm")
    reps = 40
    grew = {}
    for name, call in _calls():
        _run(call, 10)  # warm-up: caches, allocator pools, first-call paths
        before = _rss_bytes()
        _run(call, reps)
        grown = _rss_bytes() - before
        if grown >= reps * 16 * 1024:
            grew[name] = grown
    assert not grew, grew


@rss_test
def test_resident_memory_is_flat_over_training_steps(tmp_path):
    if not _rss_bytes():
        pytest.skip("no /proc/self/statm")
    r = np.random.default_rng(1)
    X = r.standard_normal((64, 32)).astype(np.float32)
    y = r.integers(0, 10, 64)
    net = fastact.MLP([32, 64, 64, 10], "gelu", seed=0)
    opt = fastact.optim.SGD(0.1)
    path = tmp_path / "net.npz"

    def round_():
        net.train_step(X, y, opt)
        net.compute_gradients(X, y)
        net.forward(X)
        net.predict(X)
        net.evaluate(X, y)
        try:
            net.train_step(X[:, :3], y, opt)
        except ValueError:
            pass

    for _ in range(50):
        round_()
    net.save(path)
    fastact.MLP.load(path)
    gc.collect()
    before = _rss_bytes()
    for _ in range(300):
        round_()
    for _ in range(20):
        net.save(path)
        fastact.MLP.load(path)
        net.fit(X, y, epochs=1, batch_size=16, verbose=0)
    gc.collect()
    grown = _rss_bytes() - before
    # the step allocates nothing; forward/evaluate allocate 64 x 10 outputs: a leak of one
    # buffer per round (>= 2.5 KiB, the step's own buffers ~100 KiB) shows as > 1 MiB
    assert grown < 2 << 20, grown


def test_reference_counts_of_arguments_are_unchanged():
    r = np.random.default_rng(2)
    x = r.standard_normal((8, 5))
    g = r.standard_normal((8, 5))
    out = np.empty_like(x)
    b = r.standard_normal(5)
    w = np.full(5, 0.2)
    lab = np.array([0, 1, 2, 3, 4, 0, 1, 2])
    slope = 0.3
    W = r.standard_normal((5, 5))
    objs = [x, g, out, b, w, lab, W]
    calls = []
    for case in CASES:
        f = getattr(fastact, case.name)
        fb = getattr(fastact, case.name + "_backward")
        kw = {"weight": w} if case.name == "prelu" else {}
        calls += [
            lambda f=f, kw=kw: f(x, **kw),
            lambda f=f, kw=kw: f(x, out=out, **kw),
            lambda fb=fb, kw=kw: fb(g, x, **kw),
            lambda fb=fb, kw=kw: fb(g, x, out=out, **kw),
            lambda f=f, kw=kw, name=case.name: f(x.T, **kw) if name != "prelu" else None,
            lambda f=f: f(x, out=x[:2]),
        ]  # error path
    calls += [
        lambda: fastact.leaky_relu(x, slope),
        lambda: fastact.prelu(x, slope),
        lambda: fastact.prelu_backward(g, x, slope),
        lambda: fastact.bias_act(x, b, "elu"),
        lambda: fastact.bias_act_backward(g, x, "gelu", bias=b),
        lambda: fastact.softmax_cross_entropy(x, lab),
        lambda: fastact.softmax_cross_entropy(x, lab[:3]),
        lambda: fastact.dense_backward(g, fastact.dense_forward(x, W, b, "relu")[1]),
    ]
    for call in calls:  # warm the parameter caches
        try:
            call()
        except (TypeError, ValueError):
            pass
    gc.collect()
    before = [sys.getrefcount(o) for o in objs] + [sys.getrefcount(slope)]
    for call in calls:
        for _ in range(3):
            try:
                call()
            except (TypeError, ValueError):
                pass
    gc.collect()
    after = [sys.getrefcount(o) for o in objs] + [sys.getrefcount(slope)]
    assert after == before


def test_reference_counts_after_training_steps():
    r = np.random.default_rng(3)
    X = r.standard_normal((16, 4)).astype(np.float32)
    y = r.integers(0, 3, 16)
    net = fastact.MLP([4, 8, 3], "tanh", seed=0)
    opt = fastact.optim.SGD(0.1)
    net.train_step(X, y, opt)
    net.evaluate(X, y)
    gc.collect()
    before = (sys.getrefcount(X), sys.getrefcount(y), sys.getrefcount(opt))
    for _ in range(5):
        net.train_step(X, y, opt)
        net.compute_gradients(X, y)
        net.forward(X)
        net.evaluate(X, y)
        buf = io.BytesIO()
        net.save(buf)
    gc.collect()
    assert (sys.getrefcount(X), sys.getrefcount(y), sys.getrefcount(opt)) == before
