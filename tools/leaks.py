"""Leak check at scale: every public function (error paths included) called N times, and
S training steps, printing the resident memory after each stage (it must stay flat).

    python tools/leaks.py                      # N = 100000 calls per function, S = 10000 steps
    python tools/leaks.py --n 2000 --steps 200
    valgrind --leak-check=full --errors-for-leak-kinds=definite --error-exitcode=3 \\
        python tools/leaks.py --n 50 --steps 20   # (PYTHONMALLOC=malloc for valgrind)

The calls are those of tests/test_leaks.py (which runs a few thousand of them in the suite).
Exit status 1 when the resident memory grew by more than --max-growth MiB after warm-up.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests"))
sys.path.append(ROOT)  # the in-place build, when fastact is not installed

import numpy as np  # noqa: E402
from test_leaks import _calls, _rss_bytes, _run  # noqa: E402

import fastact  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=100_000, help="calls per function")
    ap.add_argument("--steps", type=int, default=10_000, help="training steps")
    ap.add_argument("--max-growth", type=float, default=8.0, help="MiB allowed after warm-up")
    a = ap.parse_args()
    mib = 1 << 20
    calls = _calls()
    for _, call in calls:
        _run(call, 10)
    gc.collect()
    base = _rss_bytes()
    t0 = time.perf_counter()
    print(f"fastact {fastact.__file__}; {len(calls)} calls x {a.n}; rss {base / mib:.1f} MiB")
    for _name, call in calls:
        _run(call, a.n)
    gc.collect()
    after_calls = _rss_bytes()
    print(
        f"after the calls: rss {after_calls / mib:.1f} MiB (+{(after_calls - base) / mib:.2f}), "
        f"{time.perf_counter() - t0:.0f} s"
    )
    r = np.random.default_rng(1)
    X = r.standard_normal((64, 32)).astype(np.float32)
    y = r.integers(0, 10, 64)
    net = fastact.MLP([32, 64, 64, 10], "gelu", seed=0)
    opt = fastact.optim.Adam()
    for _ in range(min(50, a.steps)):
        net.train_step(X, y, opt)
    gc.collect()
    before_steps = _rss_bytes()
    for i in range(a.steps):
        net.train_step(X, y, opt)
        if i % 10 == 0:
            net.evaluate(X, y)
    gc.collect()
    end = _rss_bytes()
    print(
        f"after {a.steps} training steps: rss {end / mib:.1f} MiB "
        f"(+{(end - before_steps) / mib:.2f})"
    )
    grown = max(after_calls - base, 0) + max(end - before_steps, 0)
    if grown > a.max_growth * mib:
        print(f"resident memory grew by {grown / mib:.1f} MiB > {a.max_growth} MiB")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
