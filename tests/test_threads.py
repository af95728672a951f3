"""Threads: fastact.threads() / set_num_threads, OpenMP and threadpoolctl, GIL release,
and results that do not depend on the thread count (more in test_activations.py)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import numpy as np
import pytest
from conftest import PURE, native_only, rng

import fastact
from fastact._validate import usable_cores

CORES = usable_cores()
# what get_num_threads() reports for a pinned count of CORES: without OpenMP every call
# runs on one thread, whatever is pinned
PINNED_CORES = CORES if PURE or fastact._activations.build_info()["openmp"] else 1
BIG = 300_001  # > SERIAL_BELOW = 65536: the kernels really split the work


def esc(s):
    import re

    return re.escape(s)


def _ext():
    from fastact import _activations

    return _activations


def _openmp():
    return not PURE and _ext().openmp_enabled()


# ---- fastact.threads() ------------------------------------------------------------


def test_threads_context_manager_sets_and_restores():
    assert fastact.get_num_threads() >= 1
    before = fastact.get_num_threads()
    with fastact.threads(1) as t:
        assert fastact.get_num_threads() == 1
        assert repr(t) == "fastact.threads(1)"
        with fastact.threads(-1):
            assert fastact.get_num_threads() == PINNED_CORES
        assert fastact.get_num_threads() == 1
        with fastact.threads(None):  # None inside: follow the runtime again
            assert fastact.get_num_threads() == before
        assert fastact.get_num_threads() == 1
    assert fastact.get_num_threads() == before
    from fastact import _validate as V

    assert V.pinned_threads() is None  # unpinned again, not pinned to `before`


def test_threads_restores_a_pinned_default_and_survives_exceptions():
    try:
        fastact.set_num_threads(1)
        with pytest.raises(RuntimeError, match="inside"):
            with fastact.threads(-1):
                assert fastact.get_num_threads() == PINNED_CORES
                raise RuntimeError("inside")
        assert fastact.get_num_threads() == 1
    finally:
        fastact.set_num_threads(None)


def test_threads_object_is_reusable_and_nestable():
    t = fastact.threads(1)
    before = fastact.get_num_threads()
    with t:
        with t:
            assert fastact.get_num_threads() == 1
        assert fastact.get_num_threads() == 1
    assert fastact.get_num_threads() == before
    with t:
        assert fastact.get_num_threads() == 1
    assert fastact.get_num_threads() == before


def test_threads_checks_at_construction():
    before = fastact.get_num_threads()
    with pytest.raises(ValueError, match=esc("n_threads=0 is not allowed")):
        fastact.threads(0)
    with pytest.raises(TypeError, match=esc("n_threads must be an int or None; got float 2.0.")):
        fastact.threads(2.0)
    with pytest.raises(TypeError, match=esc("n_threads must be an int or None; got bool True.")):
        fastact.threads(True)
    with pytest.raises(ValueError, match=esc(f"n_threads={-(CORES + 1)} leaves no thread")):
        fastact.threads(-(CORES + 1))
    assert fastact.get_num_threads() == before
    with fastact.threads(10**6):  # clamped to the usable cores, like n_threads=
        assert fastact.get_num_threads() == PINNED_CORES


def test_calls_inside_threads_block_give_the_same_results():
    x = rng(81).standard_normal(BIG).astype(np.float32)
    want = fastact.silu(x, n_threads=1)
    for nt in (1, -1, None):
        with fastact.threads(nt):
            np.testing.assert_array_equal(fastact.silu(x), want)
            np.testing.assert_array_equal(fastact.silu(x, out=np.empty_like(x)), want)


@native_only
def test_native_fast_path_follows_the_default():
    ext = _ext()
    before = ext.default_threads()
    with fastact.threads(1):
        assert ext.default_threads() == 1
    with fastact.threads(-1):
        assert ext.default_threads() == CORES
    assert ext.default_threads() == before == fastact.get_num_threads()


# ---- OpenMP runtime, OMP_NUM_THREADS, threadpoolctl -------------------------------


@native_only
def test_without_openmp_everything_runs_on_one_thread():
    ext = _ext()
    if ext.openmp_enabled():
        pytest.skip("this build has OpenMP (the FASTACT_OPENMP=0 wheel runs this test in CI)")
    assert ext.omp_library() is None
    assert fastact.get_num_threads() == 1 == ext.default_threads()
    with fastact.threads(2):  # a pinned count cannot make threads that do not exist
        assert fastact.get_num_threads() == 1
    assert fastact.config()["OpenMP"].startswith("off")
    x = rng(82).standard_normal(BIG)
    np.testing.assert_array_equal(fastact.gelu(x, n_threads=-1), fastact.gelu(x, n_threads=1))


def _run(code, **env):
    e = dict(os.environ)
    e.update(env)
    r = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=e, timeout=120
    )
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


@pytest.mark.skipif(PURE, reason="OMP_NUM_THREADS concerns the native build")
def test_omp_num_threads_limits_the_default_but_not_a_pinned_count():
    if not _openmp():
        pytest.skip("built without OpenMP")
    code = (
        "import fastact; a = fastact.get_num_threads(); "
        "from fastact import _activations as e; b = e.default_threads(); "
        "fastact.set_num_threads(-1); print(a, b, fastact.get_num_threads())"
    )
    assert _run(code, OMP_NUM_THREADS="1") == f"1 1 {CORES}"


@native_only
def test_threadpoolctl_sees_the_openmp_runtime_of_the_kernels():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    if not _openmp():
        pytest.skip("built without OpenMP")
    lib = _ext().omp_library()
    assert lib and os.path.exists(lib)
    found = [i for i in threadpoolctl.threadpool_info() if i["user_api"] == "openmp"]
    assert any(os.path.samefile(i["filepath"], lib) for i in found), (lib, found)


@native_only
def test_threadpoolctl_limits_the_default_thread_count():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    if not _openmp():
        pytest.skip("built without OpenMP")
    ext = _ext()
    before = fastact.get_num_threads()
    x = rng(83).standard_normal(BIG).astype(np.float32)
    want = fastact.gelu(x, n_threads=1)
    for kw in ({"user_api": "openmp"}, {}):
        with threadpoolctl.threadpool_limits(1, **kw):
            assert fastact.get_num_threads() == 1
            assert ext.default_threads() == 1
            assert ext.omp_max_threads() == 1
            np.testing.assert_array_equal(fastact.gelu(x), want)
            # an explicit count (argument or pinned) is the user's word and wins
            with fastact.threads(-1):
                assert fastact.get_num_threads() == CORES == ext.default_threads()
            np.testing.assert_array_equal(fastact.gelu(x, n_threads=-1), want)
        assert fastact.get_num_threads() == before == ext.default_threads()
    # threadpoolctl reports what the runtime holds; fastact never calls omp_set_num_threads
    lib = ext.omp_library()
    info = [
        i
        for i in threadpoolctl.threadpool_info()
        if i["user_api"] == "openmp" and os.path.samefile(i["filepath"], lib)
    ]
    assert info[0]["num_threads"] == ext.omp_max_threads()
    with fastact.threads(1):
        info = [
            i
            for i in threadpoolctl.threadpool_info()
            if i["user_api"] == "openmp" and os.path.samefile(i["filepath"], lib)
        ]
        assert info[0]["num_threads"] == ext.omp_max_threads()


# ---- GIL release --------------------------------------------------------------------


def _gil_seen_released(kernel, calls=10):
    """True when another Python thread ran while `kernel()` was running on a worker.

    No timing threshold: the switch interval is raised to 5 s, so a worker that held the
    GIL through its calls (well under 5 s in all) would never hand it to the main thread
    before it finished; a kernel that releases the GIL lets the main thread, blocked in
    started.wait(), run at once and set `seen`, which the worker reads after the call.
    (The old test compared the main thread's largest stall with half a call's duration,
    and failed when the machine's load descheduled the main thread.)"""
    seen = threading.Event()
    started = threading.Event()
    result = []

    def work():
        for _ in range(calls):
            started.set()
            kernel()
            if seen.is_set():
                result.append(True)
                return
        result.append(False)

    old = sys.getswitchinterval()
    sys.setswitchinterval(5.0)
    try:
        w = threading.Thread(target=work)
        w.start()
        started.wait()
        seen.set()
        w.join()
    finally:
        sys.setswitchinterval(old)
    return result == [True]


@native_only
def test_kernels_release_the_gil_on_one_thread():
    """While one Python thread runs long single-threaded kernels, another Python thread
    runs."""
    n = 1 << 22
    x = rng(84).standard_normal(n)
    y = np.empty_like(x)
    assert _gil_seen_released(lambda: fastact.gelu(x, out=y, n_threads=1))
    assert _gil_seen_released(lambda: fastact.silu_backward(x, x, out=y, n_threads=1))


def test_gil_check_detects_a_call_that_holds_the_gil():
    """The check above can fail: a pure-Python loop (which holds the GIL) is caught."""

    def busy():
        t = 0
        for i in range(200_000):
            t += i

    assert not _gil_seen_released(busy, calls=3)


@native_only
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_concurrent_python_threads_every_kind_of_kernel(dtype):
    """Python threads calling every kind of kernel at once (each with its own arrays,
    serial and threaded) get exactly the single-threaded results."""
    r = rng(85)
    shape = (1001, 130)  # > SERIAL_BELOW elements
    xs = [(r.standard_normal(shape) * 3).astype(dtype) for _ in range(4)]
    b = r.standard_normal(shape[1]).astype(dtype)
    lab = r.integers(0, shape[1], shape[0])

    def calls(x, nt):
        return [
            fastact.sigmoid(x, n_threads=nt),
            fastact.mish_backward(x, x, n_threads=nt),
            fastact.softmax(x, n_threads=nt),
            fastact.log_softmax_backward(x, x, n_threads=nt),
            *fastact.bias_act_backward(x, x, "gelu", bias=b, n_threads=nt),
            *fastact.prelu_backward(x, x, b, n_threads=nt),
            fastact.softmax_cross_entropy(x, lab, n_threads=nt)[1],
        ]

    want = [calls(x, 1) for x in xs]
    got = [None] * len(xs)
    barrier = threading.Barrier(len(xs))

    def work(i):
        barrier.wait()
        for _ in range(3):
            got[i] = calls(xs[i], 1 + i % 2)

    ts = [threading.Thread(target=work, args=(i,)) for i in range(len(xs))]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    for w, g in zip(want, got):
        for a, c in zip(w, g):
            np.testing.assert_array_equal(c, a)


# ---- thread-count invariance of the reductions and row-wise kernels ---------------

THREAD_COUNTS = (1, 2, -1, None)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("shape", [(70_001,), (4099, 33), (9, 40_000)], ids=str)
def test_every_thread_count_gives_the_same_bits(dtype, shape):
    r = rng(86)
    z = (r.standard_normal(shape) * 3).astype(dtype)
    g = r.standard_normal(shape).astype(dtype)
    b = r.standard_normal(shape[-1]).astype(dtype)
    lab = r.integers(0, shape[-1], shape[0]) if len(shape) == 2 else None

    def results(nt):
        out = [
            fastact.bias_act(z, b, "softplus", n_threads=nt),
            *fastact.bias_act_backward(g, z, "silu", bias=b, n_threads=nt),
            *fastact.bias_act_backward(g, z, "relu", n_threads=nt),
            *fastact.prelu_backward(g, z, b, n_threads=nt),
            *fastact.prelu_backward(g, z, 0.3, n_threads=nt),  # one slope: rows of 1024
            fastact.prelu(z, 0.3, n_threads=nt),
            fastact.softmax(z, n_threads=nt),
            fastact.softmax_backward(g, fastact.softmax(z, n_threads=1), n_threads=nt),
            fastact.log_softmax(z, n_threads=nt),
            fastact.log_softmax_backward(g, z, n_threads=nt),
            fastact.tanh_backward(g, z, n_threads=nt),
        ]
        if lab is not None:
            loss, grad = fastact.softmax_cross_entropy(z, lab, n_threads=nt)
            out += [np.float64(loss), grad]
        return out

    want = results(1)
    gx, gw = fastact.reference.prelu_backward(g, z, 0.3)
    np.testing.assert_array_equal(want[7], gx)
    np.testing.assert_allclose(want[8], gw, rtol=1e-5)
    np.testing.assert_array_equal(want[9], fastact.reference.prelu(z, 0.3))
    for nt in THREAD_COUNTS[1:]:
        for a, c in zip(want, results(nt)):
            np.testing.assert_array_equal(c, a)
    with fastact.threads(-1):
        for a, c in zip(want, results(None)):
            np.testing.assert_array_equal(c, a)


# ---- found in review: fork, overlapping blocks, affinity ------------------------------


def _run_py(code, env=None, timeout=120):
    e = dict(os.environ, **(env or {}))
    root = os.path.dirname(os.path.dirname(os.path.abspath(fastact.__file__)))
    e["PYTHONPATH"] = root + os.pathsep + e.get("PYTHONPATH", "")
    return subprocess.run(
        [sys.executable, "-c", code], env=e, capture_output=True, text=True, timeout=timeout
    )


@native_only
@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork() here")
def test_a_forked_child_runs_on_one_thread_instead_of_hanging():
    """libgomp's pool does not survive fork(): a child whose parent used it hung."""
    code = """
import os, sys, numpy as np, fastact
x = np.ones(1_000_000, np.float32)
fastact.sigmoid(x, n_threads=2)
fastact.set_num_threads(2)
pid = os.fork()
if pid == 0:
    ok = fastact.get_num_threads() == 1 and fastact.sigmoid(x)[0] == fastact.sigmoid(x[:1])[0]
    fastact.tanh(x, n_threads=2)
    os._exit(0 if ok else 3)
_, status = os.waitpid(pid, 0)
sys.exit(os.waitstatus_to_exitcode(status))
"""
    r = _run_py(code, timeout=60)
    assert r.returncode == 0, r.stderr


@native_only
@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork() here")
def test_threads_blocks_work_in_forked_children():
    """A child forked while another thread held threads()'s lock, or inside a block of
    a count the child cannot have (-2 with one core), runs its own blocks."""
    code = """
import os, signal, sys, threading, numpy as np, fastact
x = np.ones(100_000, np.float32)
stop = False
def spin():
    while not stop:
        with fastact.threads(1):
            pass
t = threading.Thread(target=spin); t.start()
bad = 0
with fastact.threads(-2 if fastact._validate.usable_cores() >= 2 else 1):
    for _ in range(5):
        pid = os.fork()
        if pid == 0:
            signal.alarm(20)
            with fastact.threads(1):
                fastact.tanh(x)
            with fastact.threads(-1):
                fastact.tanh(x)
            os._exit(0)
        _, status = os.waitpid(pid, 0)
        bad += os.waitstatus_to_exitcode(status) != 0
stop = True; t.join()
sys.exit(bad)
"""
    r = _run_py(code, timeout=120)
    assert r.returncode == 0, (r.returncode, r.stderr)


def test_overlapping_threads_blocks_restore_the_setting_from_before():
    V = fastact._validate
    fastact.set_num_threads(None)
    a, b = fastact.threads(1), fastact.threads(2)
    a.__enter__()
    try:
        b.__enter__()
        try:
            assert V.pinned_threads() == 2  # (as given; clamped when used)
            want = min(2, V.usable_cores()) if (PURE or _openmp()) else 1
            assert fastact.get_num_threads() == want
        finally:
            a.__exit__(None, None, None)  # the first exits first (as another thread would)
    finally:
        b.__exit__(None, None, None)
    assert V.pinned_threads() is None  # the last one out: the setting from before the first
    # nested in one thread: each exit restores what was in force at its entry
    with fastact.threads(2):
        fastact.set_num_threads(1)
        with fastact.threads(2):
            pass
        assert V.pinned_threads() == 1
    assert V.pinned_threads() is None
    # a refused entry records nothing
    bad = fastact.threads(-1)
    bad.n_threads = -(V.usable_cores() + 5)
    with pytest.raises(ValueError, match="leaves no thread"):
        bad.__enter__()
    with fastact.threads(1):
        pass
    assert V.pinned_threads() is None and fastact.threads._depth == 0
    errors = []

    def work():
        try:
            for _ in range(50):
                with fastact.threads(1):
                    fastact.tanh(np.ones(100, np.float32))
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    ts = [threading.Thread(target=work) for _ in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors and fastact._validate.pinned_threads() is None
    assert fastact.threads._depth == 0


@native_only
@pytest.mark.skipif(
    not hasattr(os, "sched_setaffinity") or len(os.sched_getaffinity(0)) < 2,
    reason="needs affinity control and 2 cores",
)
def test_thread_control_calls_read_the_affinity_again():
    code = """
import os, fastact
from fastact import _activations as ext
os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
assert fastact.get_num_threads() == 1
assert ext.default_threads() == 1, ext.default_threads()
print("ok")
"""
    r = _run_py(code)
    assert r.returncode == 0 and "ok" in r.stdout, r.stderr


@native_only
@pytest.mark.skipif(
    not hasattr(os, "sched_setaffinity") or len(os.sched_getaffinity(0)) < 2,
    reason="needs affinity control and 2 cores",
)
def test_a_pinned_count_survives_a_shrunk_affinity():
    """set_num_threads(2) then an affinity of one core: the count reported and used is 1
    (get_num_threads said 2), and a threads() block inside no longer turns the user's 2
    into 1 for good: it is back when the affinity grows again."""
    if not _openmp():
        pytest.skip("without OpenMP the default is 1 whatever is pinned")
    code = """
import os, fastact
from fastact import _activations as ext
cores = os.sched_getaffinity(0)
fastact.set_num_threads(2)
os.sched_setaffinity(0, {sorted(cores)[0]})
assert fastact.get_num_threads() == 1, fastact.get_num_threads()
assert ext.default_threads() == 1, ext.default_threads()
with fastact.threads(1):
    pass
os.sched_setaffinity(0, cores)
assert fastact.get_num_threads() == 2, fastact.get_num_threads()
print("ok")
"""
    r = _run_py(code)
    assert r.returncode == 0 and "ok" in r.stdout, r.stderr


@native_only
@pytest.mark.skipif(
    not hasattr(os, "sched_getaffinity") or len(os.sched_getaffinity(0)) < 2,
    reason="needs 2 cores",
)
def test_omp_thread_limit_limits_the_default():
    if not _openmp():
        pytest.skip("without OpenMP the default is 1 anyway")
    r = _run_py("import fastact; print(fastact.get_num_threads())", {"OMP_THREAD_LIMIT": "1"})
    assert r.returncode == 0 and r.stdout.strip() == "1", (r.stdout, r.stderr)
    # a pinned or explicit count above the limit runs on the limit's threads, and says so
    # (get_num_threads() said 2 inside threads(2) while the kernels ran on one)
    code = """
import fastact
from fastact import _config, _validate as V
with fastact.threads(2):
    print(fastact.get_num_threads(), V.check_threads(2), _config._pinned(V))
"""
    r = _run_py(code, {"OMP_THREAD_LIMIT": "1"})
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "1 1 2 (used as 1: OMP_THREAD_LIMIT)", r.stdout


@native_only
@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork() here")
@pytest.mark.skipif(
    not hasattr(os, "sched_getaffinity") or len(os.sched_getaffinity(0)) < 2,
    reason="needs 2 cores (-2 is valid with 2)",
)
def test_negative_counts_stay_valid_in_a_forked_child():
    """In a forked child every call runs on one thread; n_threads=-2, valid in the
    parent, raised 'leaves no thread' there (the child counted one core)."""
    code = """
import os, sys, numpy as np, fastact
x = np.ones(100_000, np.float32)
pid = os.fork()
if pid == 0:
    fastact.gelu(x, n_threads=-2)
    with fastact.threads(-2):
        ok = fastact.get_num_threads() == 1
    os._exit(0 if ok else 3)
_, status = os.waitpid(pid, 0)
sys.exit(os.waitstatus_to_exitcode(status))
"""
    r = _run_py(code, timeout=60)
    assert r.returncode == 0, (r.returncode, r.stderr)


def test_a_block_closed_by_the_garbage_collector_inside_another_does_not_hang():
    """A threads() block suspended in a generator, closed by the garbage collector while
    this thread is inside another block's __enter__ (holding the lock): a plain Lock
    hung for good; the lock is re-entrant."""
    code = """
import gc, fastact, fastact._threads as T
def gen():
    with fastact.threads(1):
        yield 1
g = gen(); next(g)
cycle = [g]; cycle.append(cycle); del g, cycle
real = T.set_num_threads
def collecting(n):
    gc.collect()  # (what an allocation inside __enter__ may trigger)
    real(n)
T.set_num_threads = collecting
with fastact.threads(2):
    pass
T.set_num_threads = real
print("ok", fastact.threads._depth, fastact._validate.pinned_threads())
"""
    r = _run_py(code, timeout=60)
    # and nothing stays pinned once every block has closed
    assert r.returncode == 0 and r.stdout.split() == ["ok", "0", "None"], (r.stdout, r.stderr)


@pytest.mark.parametrize(
    "env, out",
    [
        ({"FASTACT_PUREPYTHON": "false"}, "False"),
        ({"FASTACT_PUREPYTHON": " Off "}, "False"),
        ({"FASTACT_PUREPYTHON": "YES"}, "True"),
        ({"FASTACT_ISA": ""}, None),
    ],
)
def test_environment_values(env, out):
    r = _run_py("import fastact; print(fastact.PUREPYTHON)", env)
    assert r.returncode == 0, r.stderr
    if out is not None:
        assert r.stdout.strip() == out


def test_environment_errors():
    r = _run_py("import fastact", {"FASTACT_PUREPYTHON": "maybe"})
    assert "FASTACT_PUREPYTHON='maybe' is not understood; use 1" in r.stderr
    r = _run_py("import fastact", {"FASTACT_PUREPYTHON": "1", "FASTACT_ISA": "sse9"})
    assert "FASTACT_ISA='sse9' is not understood" in r.stderr
    r = _run_py(
        "import fastact; print(fastact.nn.MLP is fastact.reference.MLP, "
        "fastact.nn.dropout_forward is fastact.reference.dropout_forward)",
        {"FASTACT_PUREPYTHON": "1"},
    )
    assert r.stdout.strip() == "True True", r.stderr


@native_only
def test_a_missing_extension_says_how_to_build_it(tmp_path):
    import shutil

    pkg = os.path.dirname(os.path.abspath(fastact.__file__))
    # under another name: an editable install's import hook would find the built one first
    dst = tmp_path / "fastact_unbuilt"
    shutil.copytree(pkg, dst, ignore=shutil.ignore_patterns("*.so", "*.pyd"))
    r = subprocess.run(
        [sys.executable, "-c", "import fastact_unbuilt"],
        cwd=tmp_path,
        env=dict(os.environ, PYTHONPATH=str(tmp_path)),
        capture_output=True,
        text=True,
        timeout=120,
    )
    # not "could not be imported: ... partially initialized module ... (most likely due to
    # a circular import)", Python's own words, which pointed the wrong way
    assert (
        "fastact's native extension (fastact._activations) is not built (no compiled "
        "_activations module beside this file). Build it with `pip install .`"
    ) in r.stderr, r.stderr
    assert "circular import" not in r.stderr
    assert "FASTACT_PUREPYTHON=1" in r.stderr
