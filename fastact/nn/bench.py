"""`fastact bench --nn`: one training step of networks across depths x activations x
variants, fastact against its GEMMs (the limit), NumPy written well, fastact.reference and
PyTorch eager (when installed); interleaved rounds, medians.  benches/bench_nn.py's grid
times the same candidates (fastact.nn.peers) with pytest-benchmark."""

from __future__ import annotations

import contextlib
import json
import statistics
import time

import numpy as np

from . import peers


def _limits(threads):
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext(), False
    return threadpool_limits(threads), True


def _time(step, X, y, reps, clock=time.perf_counter):
    t = clock()
    for _ in range(reps):
        step(X, y)
    return (clock() - t) / reps


def run(
    depths,
    acts,
    variants,
    width,
    batch,
    rounds,
    threads=1,
    torch=True,
    reference=True,
    progress=None,
    bound=False,
    clock="wall",
):
    """One row per network: median seconds per step of each candidate and the ratios.
    bound: also time the step's elementwise ops and its update alone; the row gets
    bound_ms (GEMMs + those two: what a step cannot beat with these kernels),
    bound_vs_gemm and vs_bound (the step over it).  clock: "wall" (time.perf_counter) or
    "thread" (time.thread_time: the calling thread's CPU time, which other processes on a
    loaded machine do not inflate; it leaves out BLAS worker threads, so threads=1 only)."""
    if clock not in ("wall", "thread"):
        raise ValueError(f"clock must be 'wall' or 'thread'; got {clock!r}.")
    if clock == "thread" and threads != 1:
        raise ValueError("clock='thread' counts only the calling thread: use threads=1.")
    tick = time.perf_counter if clock == "wall" else time.thread_time
    impls = (
        ["gemm", "fastact", "numpy"]
        + (["kernels", "update"] if bound else [])
        + (["reference"] if reference else [])
        + (["torch"] if torch else [])
    )
    rows = []
    limits, limited = _limits(threads)
    with limits, np.errstate(all="ignore"):
        for depth in depths:
            for act in acts:
                for variant in variants:
                    steps, X, y, _ = peers.candidates(
                        depth, width, batch, act, variant, impls, threads
                    )
                    first = {k: s(X, y) for k, s in steps.items()}  # (warms up too)
                    _check_first_losses(first, variant)
                    est = _time(steps["fastact"], X, y, 3)
                    reps = max(1, min(50, int(0.02 / max(est, 1e-7))))
                    t = {k: [] for k in steps}
                    for _ in range(rounds):
                        for k, s in steps.items():
                            t[k].append(_time(s, X, y, reps if k != "reference" else 1, tick))
                    med = {k: statistics.median(v) for k, v in t.items()}
                    row = {
                        "depth": depth,
                        "width": width,
                        "batch": batch,
                        "activation": act,
                        "variant": variant,
                        "fastact_ms": med["fastact"] * 1e3,
                        "gemm_ms": med["gemm"] * 1e3,
                        "vs_gemm": med["fastact"] / med["gemm"],
                        "vs_numpy": med["numpy"] / med["fastact"],
                    }
                    if bound:
                        b = med["gemm"] + med["kernels"] + med["update"]
                        row["kernels_ms"] = med["kernels"] * 1e3
                        row["update_ms"] = med["update"] * 1e3
                        row["bound_ms"] = b * 1e3
                        row["bound_vs_gemm"] = b / med["gemm"]
                        row["vs_bound"] = med["fastact"] / b
                    if "reference" in med:
                        row["vs_reference"] = med["reference"] / med["fastact"]
                    if "torch" in med:
                        row["vs_torch"] = med["torch"] / med["fastact"]
                    rows.append(row)
                    if progress:
                        progress(row)
    return rows, limited


def _check_first_losses(first, variant):
    """Every candidate that returns a loss trains the same network: its first loss is
    fastact's (with dropout only the twin's is: NumPy and PyTorch draw their own masks)."""
    ref = first["fastact"]
    for k, v in first.items():
        if v is None or k == "fastact" or ("dropout" in variant and k != "reference"):
            continue
        if not abs(v - ref) <= 1e-4 * max(1.0, abs(ref)):
            raise RuntimeError(
                f"bench --nn: {k}'s first loss {v!r} is not fastact's {ref!r} ({variant}): "
                "the candidates do not train the same network, so their times say nothing."
            )


def _fmt(row):
    cells = [
        f"{row['depth']:>3d}x{row['width']}",
        f"{row['activation']:<10s}",
        f"{row['variant']:<9s}",
        f"{row['fastact_ms']:8.3f}",
        f"{row['vs_gemm']:6.2f}",
        f"{row['vs_numpy']:6.2f}",
    ]
    cells.append(f"{row['vs_reference']:7.2f}" if "vs_reference" in row else "      -")
    cells.append(f"{row['vs_torch']:6.2f}" if "vs_torch" in row else "     -")
    if "bound_ms" in row:
        cells.append(f"{row['bound_vs_gemm']:6.2f}  {row['vs_bound']:6.2f}")
    return "  ".join(cells)


HEADER = (
    "network  activation  variant    fastact ms  /gemm  xnumpy  xrefer  xtorch\n"
    "                                            (limit) (speed-up: peer time / fastact's)"
)


def main(argv=None) -> int:
    import argparse

    from .._validate import check_threads
    from ..bench import check_json_path, machine, pure_note

    ap = argparse.ArgumentParser(
        prog="fastact bench --nn",
        description="one SGD training step across depths x activations x variants: fastact "
        "against its GEMMs, NumPy, fastact.reference and PyTorch (when installed)",
    )
    ap.add_argument("--nn", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument(
        "--quick",
        action="store_true",
        help="depths 2,10, tanh and relu, every variant, 3 rounds (unless given)",
    )
    ap.add_argument("--depths", help="comma-separated (default 2,5,10,20,50)")
    ap.add_argument(
        "--activations",
        help="comma-separated (default " + ",".join(peers.GRID_ACTIVATIONS) + ")",
    )
    ap.add_argument("--variants", default=",".join(peers.VARIANTS))
    ap.add_argument("--width", type=int, default=256)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument(
        "--threads", type=int, default=1, help="BLAS and fastact threads (default 1; -1: all)"
    )
    ap.add_argument("--rounds", type=int)
    ap.add_argument("--no-torch", action="store_true")
    ap.add_argument(
        "--no-reference",
        action="store_true",
        help="leave out fastact.reference (the slowest candidate)",
    )
    ap.add_argument(
        "--bound",
        action="store_true",
        help="also time the elementwise ops and the update alone: the lower bound "
        "(GEMMs + those), as bound/gemm and the step over it",
    )
    ap.add_argument(
        "--clock",
        choices=("wall", "thread"),
        default="wall",
        help="wall: time.perf_counter (default); thread: the calling thread's CPU time "
        "(steadier on a loaded machine; one thread only)",
    )
    ap.add_argument("--json", metavar="PATH")
    a = ap.parse_args(argv)
    depth_text = a.depths or ("2,10" if a.quick else "2,5,10,20,50")
    try:
        depths = [int(v) for v in depth_text.split(",") if v]
    except ValueError:
        ap.error(f"--depths must be comma-separated integers; got {a.depths!r}")
    if not depths or min(depths) < 1:
        ap.error("--depths must be positive integers")
    acts = (a.activations or ("tanh,relu" if a.quick else ",".join(peers.GRID_ACTIVATIONS))).split(
        ","
    )
    bad = [x for x in acts if x not in peers.GRID_ACTIVATIONS]
    if bad:
        ap.error(f"unknown activation(s) {bad}; choose from {list(peers.GRID_ACTIVATIONS)}")
    variants = a.variants.split(",")
    bad = [x for x in variants if not x or any(p not in peers.VARIANTS for p in x.split("+"))]
    if bad:
        ap.error(
            f"unknown variant(s) {bad}; choose from {list(peers.VARIANTS)} (or several "
            "joined by '+', e.g. batchnorm+dropout)"
        )
    seen = {}
    for v in variants:  # as `fastact lab` checks them: each network once, each part once
        parts = v.split("+")
        if len(set(parts)) != len(parts) or ("plain" in parts and len(parts) > 1):
            ap.error(f"variant {v!r} repeats a part or joins 'plain' to another; give each once")
        if frozenset(parts) in seen:
            ap.error(f"variants {seen[frozenset(parts)]!r} and {v!r} are the same network")
        seen[frozenset(parts)] = v
    if a.width < 1 or a.batch < 2:
        ap.error("--width must be >= 1, --batch >= 2")
    try:
        threads = check_threads(a.threads)  # (-1: all usable cores; clamped to them)
    except (ValueError, TypeError) as e:
        ap.error(f"--threads: {e}")
    if a.clock == "thread" and threads != 1:
        ap.error("--clock thread counts only the calling thread: use --threads 1")
    if a.rounds is not None and a.rounds < 1:
        ap.error(f"--rounds must be >= 1; got {a.rounds}")
    rounds = a.rounds or (3 if a.quick else 7)
    check_json_path(ap, a.json)
    import fastact

    if fastact.PUREPYTHON:
        ap.error(
            "--nn times the native engine, which FASTACT_PUREPYTHON=1 leaves out; run it without."
        )
    torch = not a.no_torch
    if torch:
        try:
            import torch as _t  # noqa: F401
        except ImportError:
            torch = False
    m = machine()
    print(
        (pure_note() or "")
        + f"fastact {m['fastact']} on {m['cpu']}, NumPy {m['numpy']}"
        + (f", PyTorch {m['torch']}" if torch else "")
        + f"; float32, {threads} thread(s), width {a.width}, batch {a.batch}, medians of "
        f"{rounds} interleaved rounds" + (" (thread CPU time)." if a.clock == "thread" else ".")
    )
    print(HEADER + ("\n" + " " * 76 + "bound/gemm  /bound" if a.bound else ""))
    rows, limited = run(
        depths,
        acts,
        variants,
        a.width,
        a.batch,
        rounds,
        threads,
        torch=torch,
        reference=not a.no_reference,
        progress=lambda r: print(_fmt(r), flush=True),
        bound=a.bound,
        clock=a.clock,
    )
    if not limited:
        print("(threadpoolctl is not installed: the BLAS libraries used their default threads)")
    worst = max(rows, key=lambda r: r["vs_gemm"])
    print(
        f"largest ratio to the GEMMs: {worst['vs_gemm']:.2f} ({worst['depth']}x{worst['width']} "
        f"{worst['activation']} {worst['variant']})"
    )
    worst = min(rows, key=lambda r: r["vs_numpy"])
    print(
        f"smallest speed-up vs NumPy: x{worst['vs_numpy']:.2f} ({worst['depth']}x"
        f"{worst['width']} {worst['activation']} {worst['variant']})"
    )
    if any("vs_torch" in r for r in rows):
        worst = min((r for r in rows if "vs_torch" in r), key=lambda r: r["vs_torch"])
        print(
            f"smallest speed-up vs PyTorch: x{worst['vs_torch']:.2f} ({worst['depth']}x"
            f"{worst['width']} {worst['activation']} {worst['variant']})"
        )
    if a.json:
        with open(a.json, "w") as f:
            json.dump(
                {
                    "machine": m,
                    "threads": threads,
                    "rounds": rounds,
                    "clock": a.clock,
                    "rows": rows,
                },
                f,
                indent=1,
            )
        print(f"saved {a.json}")
    return 0
