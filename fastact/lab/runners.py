"""Where the configurations run: in this process, in local processes (joblib), or on a
Dask cluster.  Every runner returns the records in the order of the configurations, and
each configuration runs with one BLAS thread and one OpenMP thread, so a record does not
depend on the runner: the same seed gives the same numbers, bit for bit, with any --jobs
or scheduler (the timing fields excepted: measure.TIMING_FIELDS).

    serial: needs nothing beyond fastact (threadpoolctl, when installed, limits BLAS)
    joblib: `jobs=N` worker processes (loky), each limited to one thread
    Dask:   `scheduler="tcp://host:8786"` (or a distributed.Client) sends each
            configuration to the cluster's workers as one task
"""

from __future__ import annotations

import contextlib
import os
import sys
import time

from .measure import run_config

_THREAD_VARS = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "BLIS_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)


@contextlib.contextmanager
def one_thread():
    """BLAS and OpenMP limited to one thread in this process for the block (threadpoolctl
    when installed; fastact's own default n_threads pinned to 1 always)."""
    import fastact

    with contextlib.ExitStack() as stack:
        try:
            from threadpoolctl import threadpool_limits
        except ImportError:  # pragma: no cover - threadpoolctl comes with the lab extra
            pass
        else:
            stack.enter_context(threadpool_limits(1))
        stack.enter_context(fastact.threads(1))
        yield


def _task(cfg, data, timing):
    """One configuration in a worker: one thread, records as plain Python objects."""
    with one_thread():
        return run_config(cfg, data, timing=timing)


class Progress:
    """A one-line progress bar on `stream` for sweeps that last: nothing is drawn before
    `after` seconds have passed, nothing when the stream is not a terminal (unless
    forced with enabled=True), and never more than 10 redraws a second."""

    def __init__(self, total, enabled="auto", stream=None, after=1.0):
        self.stream = sys.stderr if stream is None else stream
        if enabled == "auto":
            try:
                enabled = self.stream.isatty()
            except (AttributeError, ValueError):
                enabled = False
        self.enabled, self.total, self.after = bool(enabled), total, after
        self.t0 = time.perf_counter()
        self.last, self.done, self.drawn = 0.0, 0, False

    def update(self, n=1, label=""):
        self.done += n
        if not self.enabled:
            return
        now = time.perf_counter()
        if now - self.t0 < self.after or (self.done < self.total and now - self.last < 0.1):
            return
        self.last, self.drawn = now, True
        w = 30
        k = w * self.done // self.total
        el = now - self.t0
        eta = el / self.done * (self.total - self.done)
        self.stream.write(
            f"\rlab [{'=' * k}{' ' * (w - k)}] {self.done}/{self.total} "
            f"{el:.0f}s elapsed, ~{eta:.0f}s left  {label[:40]:<40}"
        )
        self.stream.flush()

    def close(self):
        if self.drawn:
            self.stream.write("\n")
            self.stream.flush()


def run_serial(configs, data, *, timing=True, progress=None):
    out = []
    with one_thread():
        for cfg in configs:
            out.append(run_config(cfg, data, timing=timing))
            if progress:
                progress.update(1, _label(cfg))
    return out


def run_joblib(configs, data, jobs, *, timing=True, progress=None):
    try:
        from joblib import Parallel, delayed
    except ImportError:
        raise ImportError(
            "lab: jobs > 1 needs joblib: pip install 'fastact[lab]' (or pip "
            "install joblib); jobs=1 runs without it."
        ) from None
    par = Parallel(n_jobs=jobs, backend="loky", inner_max_num_threads=1, return_as="generator")
    out = []
    for cfg, rec in zip(configs, par(delayed(_task)(c, data, timing) for c in configs)):
        out.append(rec)
        if progress:
            progress.update(1, _label(cfg))
    return out


def run_dask(configs, data, scheduler, *, timing=True, progress=None):
    try:
        from distributed import Client
    except ImportError:
        raise ImportError(
            "lab: scheduler= needs dask.distributed: pip install "
            "'fastact[dask]' (or pip install 'dask[distributed]')."
        ) from None
    own = not isinstance(scheduler, Client)
    if own and isinstance(scheduler, str):
        # a malformed address: refused before a Client is made (a half-made one waits
        # 60 s in its finaliser before the process can exit)
        from distributed.comm import parse_address
        from distributed.comm.addressing import parse_host_port
        from distributed.comm.registry import get_backend

        try:
            scheme, loc = parse_address(scheduler)
            get_backend(scheme)
            if scheme in ("tcp", "tls"):
                parse_host_port(loc)  # 'host' without a port
        except (ValueError, TypeError) as e:
            raise ConnectionError(
                f"lab: {scheduler!r} is not a Dask scheduler address ({e}); give "
                "'tcp://host:port' (or 'host:port')."
            ) from None
    try:
        client = Client(scheduler, set_as_default=False) if own else scheduler
    except (OSError, TimeoutError, ValueError) as e:
        raise ConnectionError(
            f"lab: cannot reach the Dask scheduler at {scheduler!r} ({e}); "
            "start one (dask scheduler / dask worker) or check the "
            "address."
        ) from None
    try:
        [shared] = client.scatter([data], broadcast=True)
        futures = [client.submit(_task, c, shared, timing, pure=False) for c in configs]
        out = []
        for cfg, fut in zip(configs, futures):  # in order: the bar advances as they land
            out.append(fut.result())
            if progress:
                progress.update(1, _label(cfg))
        return out
    finally:
        if own:
            client.close()


def _label(cfg):
    return f"{cfg.activation} depth {cfg.depth} {cfg.init} {cfg.variant}"


def usable_jobs(jobs) -> int:
    """joblib's convention: -1 all cores, -2 all but one; 0 is an error."""
    from .config import check_int

    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs == 0:
        raise ValueError(
            f"lab: jobs must be a positive integer, or -1 for every core; got {jobs!r}."
        )
    if jobs < 0:
        n = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        return max(1, (n or 1) + 1 + jobs)
    return check_int(jobs, "jobs")
