"""Threads: the default n_threads of every call, and how it meets OpenMP and threadpoolctl.

Which thread count a call uses, first match wins:

1. its own ``n_threads=`` argument (k > 0: k, clamped to the usable cores;
   -1: all usable cores, -2: all but one; 0 is an error);
2. the count pinned by ``fastact.set_num_threads(k)`` or inside
   ``with fastact.threads(k):``;
3. the usable cores (CPU affinity), at most the OpenMP runtime's
   ``omp_get_max_threads()`` *of the calling thread, read at each call*, and at
   most ``omp_get_thread_limit()``: so ``OMP_NUM_THREADS``, ``OMP_THREAD_LIMIT``
   and ``threadpoolctl.threadpool_limits(n,
   user_api="openmp")`` (or ``threadpool_limits(n)``, which also limits BLAS)
   limit it.  Like every OpenMP setting, a threadpoolctl limit applies to the
   Python thread that set it.

Arrays below ``fastact._activations.SERIAL_BELOW`` (65,536) elements run on
the calling thread whatever the count.  Results do not depend on the count.
fastact never calls omp_set_num_threads itself.  Without OpenMP
(``FASTACT_OPENMP=0`` builds) every call runs on one thread and the default
is 1.  In pure-NumPy mode (``FASTACT_PUREPYTHON=1``) counts are checked the
same way and otherwise ignored.

The pinned default is process-wide (like ``torch.set_num_threads``), not per
Python thread.  A ``threads()`` block restores on exit the count in force when it
was entered; blocks that overlap in time in several Python threads share the one
setting (while they overlap, each entry and exit sets it), and when the last of
them exits the setting from before the first comes back.

The usable cores (CPU affinity) are read at import and again by every
get_num_threads / set_num_threads / ``threads()`` call: after
``os.sched_setaffinity`` call one of them.  In a child made by ``fork()`` after
import (multiprocessing's "fork" start method) every call runs on one thread:
the OpenMP runtime's thread pool does not survive fork().
"""

from __future__ import annotations

import functools
import threading

from . import _validate as V


@functools.cache
def _openmp() -> bool:
    """the build has OpenMP (fixed per process)"""
    from . import PUREPYTHON

    if PUREPYTHON:
        return True  # (counts are checked and otherwise ignored there)
    from . import _activations as ext

    return bool(ext.build_info()["openmp"])


def _sync_native() -> None:
    from . import PUREPYTHON

    if not PUREPYTHON:
        from . import _activations as ext

        cap = V.thread_cap()  # the usable cores, at most OMP_THREAD_LIMIT
        pinned = V.pinned_threads()
        ext.set_default_threads(min(pinned, cap) if pinned else 0, cap)


def get_num_threads() -> int:
    """Return the thread count a call with ``n_threads=None`` uses now.

    The count pinned by set_num_threads or a ``threads()`` block, else the usable cores
    (CPU affinity), at most the OpenMP runtime's omp_get_max_threads() of the calling
    thread (``OMP_NUM_THREADS``, a threadpoolctl limit), read at each call.

    Returns
    -------
    int
        The default thread count, >= 1.

    See Also
    --------
    fastact.set_num_threads : Pin the default.
    fastact.threads : Pin it for the calls inside a ``with`` block.

    Examples
    --------
    >>> import fastact
    >>> fastact.get_num_threads() >= 1
    True
    """
    _sync_native()  # (the usable cores, read again)
    return V.get_default_threads() if _openmp() else 1


def set_num_threads(n_threads) -> None:
    """Pin the default n_threads of every call, process-wide.

    Parameters
    ----------
    n_threads : int or None
        k > 0: k threads (clamped to the usable cores); -1 all usable cores, -2 all but
        one; None follows the OpenMP runtime again (all usable cores, at most
        omp_get_max_threads(): ``OMP_NUM_THREADS``, threadpoolctl).

    Raises
    ------
    TypeError
        If n_threads is not an int or None.
    ValueError
        If n_threads is 0, or negative beyond the usable cores.

    See Also
    --------
    fastact.get_num_threads : The default now.
    fastact.threads : The same for a ``with`` block, restored on exit.

    Examples
    --------
    >>> import fastact
    >>> fastact.set_num_threads(1)
    >>> fastact.get_num_threads()
    1
    >>> fastact.set_num_threads(None)  # follow the OpenMP runtime again
    """
    V.set_default_threads(n_threads)
    _sync_native()


class threads:
    """Context manager: run the calls of a ``with`` block with a default n_threads.

    On exit the previous default (pinned or not) comes back.  The count is checked when
    the object is made (``threads(0)`` raises at once); ``None`` means "follow the
    OpenMP runtime" inside the block.  Re-entrant and nestable; process-wide, not per
    Python thread.

    Parameters
    ----------
    n_threads : int or None
        As for set_num_threads: k > 0, -1 all usable cores, -2 all but one, or None.

    Raises
    ------
    TypeError
        If n_threads is not an int or None.
    ValueError
        If n_threads is 0, or negative beyond the usable cores.

    See Also
    --------
    fastact.set_num_threads : Pin the default until changed.

    Examples
    --------
    >>> import fastact
    >>> with fastact.threads(1):
    ...     fastact.get_num_threads()
    1
    """

    __slots__ = ("n_threads", "_saved")

    # the blocks open in the process (any Python thread) and the pinned count before the
    # first of them; the lock is made anew in a forked child (fastact/__init__.py)
    _depth = 0
    _outer = None
    # re-entrant: a block suspended in a generator may be closed by the garbage collector
    # while this thread runs another block's __enter__ (a plain Lock hung there)
    _lock = threading.RLock()

    def __init__(self, n_threads):
        if n_threads is not None:
            V.check_threads(n_threads)
        self.n_threads = n_threads
        self._saved = []  # the pinned count (resolved) at each entry of this object

    def __enter__(self):
        with threads._lock:
            # the bookkeeping first, allocating nothing: a block that the garbage collector
            # closes from inside set_num_threads (a suspended generator's) then exits into
            # a consistent state (recorded after it, its exit left a stale _outer behind)
            saved = V.pinned_threads()
            if threads._depth == 0:
                threads._outer = saved
            threads._depth += 1
            self._saved.append(saved)
            try:
                set_num_threads(self.n_threads)
            except BaseException:  # refused (or interrupted): as if never entered
                self._saved.pop()
                threads._depth = max(threads._depth - 1, 0)
                set_num_threads(threads._outer if threads._depth == 0 else saved)
                raise
        return self

    def __exit__(self, *exc):
        with threads._lock:
            saved = self._saved.pop()
            threads._depth = max(threads._depth - 1, 0)
            # nested in one thread: the count in force at this block's entry; the last of
            # blocks that overlapped in several threads: the setting from before the first
            set_num_threads(threads._outer if threads._depth == 0 else saved)
        return False

    def __repr__(self):
        return f"fastact.threads({self.n_threads!r})"
