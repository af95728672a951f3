"""Training-step timings of two fastact checkouts, alternated, for a before/after on a
shared (loaded) machine: docs/guide/performance_journal.md, "The network step" (issue 8).

    git worktree add ../before main && (cd ../before && python setup.py build_ext --inplace)
    python tools/step_ab.py --before ../before --after . --net 8x64x64 --processes 4

Each process (a fresh interpreter with PYTHONPATH set to one checkout) times, on one
thread, the GEMMs alone (`Engine.gemms_only`, one network of the shape) and a
`train_step` of every activation x variant (fastact.nn.peers' networks, SGD), with the
calling thread's CPU time (`time.thread_time`), candidates in a new shuffled order every
round, medians over the rounds.  With --warm, each candidate's timed calls in a round
follow one untimed call of it: a network trained step after step, as a user trains it,
finds its buffers in cache, which a single call after the other candidates' calls does
not (at 8x256 a step is one call: its working set of several MB is then refilled from
memory on every timed call).  A checkout with `Engine.kernels_only` / `update_only`
also gives the lower bound (GEMMs + elementwise ops alone + update alone).  The
processes alternate before, after, before, ...; a ratio (step / GEMMs, variant / plain)
is the median over the processes of each process's ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

ACTS = "sigmoid,tanh,relu,leaky_relu,prelu,elu,gelu,silu"


def worker(depth, width, batch, rounds, variants, acts, warm=False):
    import random
    import time

    import numpy as np
    from threadpoolctl import threadpool_limits

    import fastact
    from fastact.nn import peers

    clock = time.thread_time
    with threadpool_limits(1), np.errstate(all="ignore"):
        X, y = peers.data(width, batch)
        c = {}
        g = peers.make_net(fastact.MLP, depth, width, "relu", "plain")
        g._engine.reserve(batch)
        c["gemm"] = (lambda e: lambda: e.gemms_only(X))(g._engine._e)
        bound = hasattr(g._engine._e, "kernels_only")
        for v in variants:
            for a in acts:
                n = peers.make_net(fastact.MLP, depth, width, a, v)
                opt = fastact.optim.SGD(peers.LR)
                c[f"{a}|{v}"] = (lambda n, o: lambda: n.train_step(X, y, o))(n, opt)  # noqa: B023
                if bound:
                    k = peers.make_net(fastact.MLP, depth, width, a, v)
                    k._engine.reserve(batch)
                    c[f"kern|{a}|{v}"] = (lambda e: lambda: e.kernels_only(X))(k._engine._e)
        if bound:
            u = peers.make_net(fastact.MLP, depth, width, "relu", "plain")
            o = fastact.optim.SGD(peers.LR)
            o._bind(u.theta)
            c["update"] = (lambda e, h: lambda: e.update_only(1, h))(u._engine._e, o._hyper)
        for f in c.values():
            f()
            f()
        t0 = time.perf_counter()
        c["gemm"]()
        reps = max(1, min(20, int(0.004 / (time.perf_counter() - t0))))
        res = {k: [] for k in c}
        rnd = random.Random(1)
        for _ in range(rounds):
            items = list(c.items())
            rnd.shuffle(items)
            for k, f in items:
                if warm:
                    f()
                t = clock()
                for _ in range(reps):
                    f()
                res[k].append((clock() - t) / reps * 1e3)
    return {k: statistics.median(v) for k, v in res.items()}


def report(before, after, variants, acts):
    med = statistics.median
    print(
        f"{'activation':11s} {'variant':18s} {'before/gemm':>11s} {'after/gemm':>10s} "
        f"{'after/before':>12s} {'bound/gemm':>10s} {'after/bound':>11s}"
    )
    for v in variants:
        for a in acts:
            k = f"{a}|{v}"
            line = (
                f"{a:11s} {v:18s} {med([b[k] / b['gemm'] for b in before]):11.3f} "
                f"{med([n[k] / n['gemm'] for n in after]):10.3f} "
                f"{med([n[k] / b[k] for n, b in zip(after, before)]):12.3f}"
            )
            if "update" in after[0]:

                def bound(n, k=k):
                    return n["gemm"] + n["kern|" + k] + n["update"]

                line += (
                    f" {med([bound(n) / n['gemm'] for n in after]):10.3f}"
                    f" {med([n[k] / bound(n) for n in after]):11.3f}"
                )
            print(line)
    for v in variants[1:]:
        print(f"{v} / plain:")
        for a in acts:
            rb = med([b[f"{a}|{v}"] / b[f"{a}|plain"] for b in before])
            ra = med([n[f"{a}|{v}"] / n[f"{a}|plain"] for n in after])
            print(f"  {a:11s} before {rb:.3f}  after {ra:.3f}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--before", required=True, help="checkout (built in place)")
    ap.add_argument("--after", required=True, help="checkout (built in place)")
    ap.add_argument("--net", default="8x64x64", help="depth x width x batch")
    ap.add_argument("--variants", default="plain", help="comma-separated; plain first")
    ap.add_argument("--activations", default=ACTS)
    ap.add_argument("--processes", type=int, default=3, help="per checkout")
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument(
        "--warm", action="store_true", help="one untimed call before each candidate's timed ones"
    )
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--json", metavar="PATH", help="save every process's medians")
    a = ap.parse_args(argv)
    try:
        depth, width, batch = (int(v) for v in a.net.split("x"))
    except ValueError:
        ap.error(f"--net must be depth x width x batch, e.g. 20x64x128; got {a.net!r}")
    if min(depth, width) < 1 or batch < 2:
        ap.error(f"--net needs depth and width >= 1 and a batch >= 2; got {a.net!r}")
    if a.processes < 1 or a.rounds < 1:
        ap.error("--processes and --rounds must be >= 1")
    variants, acts = a.variants.split(","), a.activations.split(",")
    if variants[0] != "plain":
        ap.error("--variants must start with plain (the ratios are to it)")
    for side in ("before", "after"):
        if not os.path.isfile(os.path.join(getattr(a, side), "fastact", "__init__.py")):
            ap.error(f"--{side} {getattr(a, side)!r} is not a fastact checkout")
    sys.path.insert(0, os.path.abspath(a.after))  # (the names the workers will know)
    from fastact.nn import peers

    bad = [v for v in variants if any(p not in peers.VARIANTS for p in v.split("+"))]
    bad += [x for x in acts if x not in peers.GRID_ACTIVATIONS]
    if bad:
        ap.error(
            f"unknown variant(s) or activation(s) {bad}; variants: {list(peers.VARIANTS)} "
            f"(joined by '+'), activations: {list(peers.GRID_ACTIVATIONS)}"
        )
    if a.worker:
        print(json.dumps(worker(depth, width, batch, a.rounds, variants, acts, a.warm)))
        return 0
    runs = {"before": [], "after": []}
    for _ in range(a.processes):
        for tag in ("before", "after"):
            env = dict(os.environ, PYTHONPATH=os.path.abspath(getattr(a, tag)))
            r = subprocess.run(
                [sys.executable, os.path.abspath(__file__), "--worker", *(argv or sys.argv[1:])],
                env=env,
                capture_output=True,
                text=True,
            )
            if r.returncode != 0:  # the worker's own error, not a bare CalledProcessError
                sys.stderr.write(r.stderr)
                ap.exit(1, f"step_ab: the {tag} worker failed (its stderr is above)\n")
            runs[tag].append(json.loads(r.stdout.strip().splitlines()[-1]))
    print(
        f"{a.net}: {a.processes} processes per checkout, {a.rounds} rounds each, thread CPU "
        f"time{', warm' if a.warm else ''}"
    )
    report(runs["before"], runs["after"], variants, acts)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(runs, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
