"""Issue 10's goal grid: fastact against PyTorch CPU on every path, from `fastact bench --json`.

    # one file per (CPU path, dtype, thread count); the AVX2 path like-for-like on an
    # AVX-512 CPU: both libraries forced down
    fastact bench --sizes 1e4,1e5,1e6 --threads 1 --json avx512_float32_1t.json
    fastact bench --sizes 1e4,1e5,1e6 --threads -1 --dtype float64 --json avx512_float64_2t.json
    FASTACT_ISA=avx2 ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 \\
        fastact bench --sizes 1e4,1e5,1e6 --threads 1 --json avx2_float32_1t.json
    python tools/goal_grid.py docs/bench/kernels_goal_2026-12-01d_*.json [--markdown] [--all]

Goals (issue 10), each cell = (activation, direction, size, thread count) of one file:
  float32, 1e4, 1e5 and 1e6 elements: fastact >= 1.0x PyTorch (torch time / fastact
    time); gelu (both forms), silu and sigmoid >= 1.2x; the copy-bound ones (identity,
    relu, leaky_relu, hardtanh, relu6, hardsigmoid, hardswish) at 1e6: >= 0.95x.
  float64, 1e5 and 1e6 elements: >= 1.0x (1e4 rows are shown, not counted).
A file's path is fastact's ISA (machine.fastact_isa) and PyTorch's
(machine.torch_cpu_capability); a file where they differ is reported as unmatched.
Files with "out": true (fastact bench --out: both libraries write into a preallocated
array) are graded the same way, in their own lines.

JSON schema (written by fastact.bench.main; keep it stable, docs are generated from it):
  {
   "machine": {"cpu", "cores", "cpu_avx512", "numpy", "fastact", "python", "platform",
               "fastact_isa" ("avx512" | "avx2+fma" | "baseline"), "FASTACT_ISA",
               "date" (UTC, ISO 8601), "torch", "torch_cpu_capability" ("AVX512" |
               "AVX2" | "DEFAULT"), "ATEN_CPU_CAPABILITY"},
   "dtype": "float32" | "float64", "n_threads": int, "out": bool, "rounds": int,
   "clock": "wall" | "thread" (fastact bench --clock), "command" (the command line, with
   the ISA-forcing environment variables in front),
   "rows": [{"activation", "n", "dtype", "direction" ("fwd" | "bwd"), "n_threads",
             "bytes" (read + written by the kernel), "out" (bool),
             "fastact_us", "numpy_us", "copy_us" (np.copyto of the same bytes forward,
             np.add(g, s, out=o) backward: the roofline), "torch_us" (absent without
             PyTorch), "torch_out" (PyTorch wrote into out=; false where it has no
             out= overload and allocated), "vs_numpy", "vs_torch" (peer time / fastact),
             "GB_per_s", "copy_fraction" (copy_us / fastact_us)}],
   "call_overhead_ns": {call: ns}
  }
Timing: medians of interleaved rounds (fastact, NumPy, roofline, PyTorch in turn).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict

COPY_BOUND = ("identity", "relu", "leaky_relu", "hardtanh", "relu6", "hardsigmoid", "hardswish")
FAST_GOAL = ("gelu", "gelu_tanh", "silu", "sigmoid")
PATH_NAMES = {
    "avx512": "AVX-512",
    "avx2+fma": "AVX2+FMA",
    "avx2": "AVX2+FMA",
    "baseline": "baseline",
}


def goal(row):
    """The goal ratio of a row (torch / fastact), or None when the row is not a goal cell."""
    name, n = row["activation"], row["n"]
    if row["dtype"] == "float64":
        return 1.0 if n in (10**5, 10**6) else None
    if n not in (10**4, 10**5, 10**6):
        return None
    if name in COPY_BOUND and n == 10**6:
        return 0.95
    return 1.2 if name in FAST_GOAL else 1.0


def path_of(m):
    fa = PATH_NAMES.get(m.get("fastact_isa", "?"), m.get("fastact_isa", "?"))
    pt = {"AVX512": "AVX-512", "AVX2": "AVX2+FMA"}.get(m.get("torch_cpu_capability"), "?")
    return fa if fa == pt else f"fastact {fa} / torch {pt} (unmatched)"


def grade(doc):
    """(met, total, misses) of one bench file; misses: (row, goal) sorted by ratio."""
    met, total, misses = 0, 0, []
    for r in doc["rows"]:
        need = goal(r)
        if need is None or "vs_torch" not in r:
            continue
        total += 1
        if r["vs_torch"] >= need:
            met += 1
        else:
            misses.append((r, need))
    misses.sort(key=lambda m: m[0]["vs_torch"] / m[1])
    return met, total, misses


def key_of(doc):
    m = doc["machine"]
    return (path_of(m), doc["dtype"], doc["n_threads"], bool(doc.get("out", False)))


def miss_line(r, need):
    return (
        f"  {r['activation']:12s} {r['direction']} {r['n']:>8.0e}: {r['vs_torch']:.2f}x "
        f"(goal {need:.2f}x; fastact {r['fastact_us']:.1f} us, torch {r['torch_us']:.1f} us, "
        f"roofline {r['copy_us']:.1f} us = {r['copy_fraction']:.2f} of fastact's time)"
    )


def markdown_grid(docs):
    """One table per file: activation rows, (direction, size) columns, torch/fastact."""
    out = []
    for doc in docs:
        path, dtype, nt, o = key_of(doc)
        rows = doc["rows"]
        keys = list(dict.fromkeys((r["direction"], r["n"]) for r in rows))
        met, total, _ = grade(doc)
        out.append(
            f"#### {path}, {dtype}, {nt} thread{'s' if nt > 1 else ''}"
            + (", out=" if o else "")
            + f": {met} of {total} goal cells met\n"
        )
        out.append("| activation | " + " | ".join(f"{d} {n:.0e}" for d, n in keys) + " |")
        out.append("|---" * (1 + len(keys)) + "|")
        for name in dict.fromkeys(r["activation"] for r in rows):
            cells = []
            for d, n in keys:
                r = next(
                    (
                        r
                        for r in rows
                        if r["activation"] == name and r["n"] == n and r["direction"] == d
                    ),
                    None,
                )
                if r is None or "vs_torch" not in r:
                    cells.append("")
                    continue
                need = goal(r)
                c = f"{r['vs_torch']:.2f}"
                if need is not None and r["vs_torch"] < need:
                    c = f"**{c}** (<{need:g})"
                cells.append(c)
            out.append(f"| {name} | " + " | ".join(cells) + " |")
        out.append("")
    return "\n".join(out)


def summary_markdown(docs):
    """Met / total per CPU path (rows) and dtype x threads (columns), allocating and out=."""
    cells = defaultdict(lambda: [0, 0])
    for doc in docs:
        path, dtype, nt, o = key_of(doc)
        met, total, _ = grade(doc)
        c = cells[(path, o, dtype, nt)]
        c[0] += met
        c[1] += total
    cols = sorted({(k[2], k[3]) for k in cells})
    out = [
        "| path | result | "
        + " | ".join(f"{d} {nt} thread{'s' if nt > 1 else ''}" for d, nt in cols)
        + " | all |",
        "|---" * (3 + len(cols)) + "|",
    ]
    for path, o in sorted({(k[0], k[1]) for k in cells}):
        row, tm, tt = [], 0, 0
        for d, nt in cols:
            m, t = cells.get((path, o, d, nt), (0, 0))
            tm, tt = tm + m, tt + t
            row.append(f"{m}/{t}" if t else "")
        out.append(
            f"| {path} | {'out=' if o else 'new array'} | " + " | ".join(row) + f" | {tm}/{tt} |"
        )
    return "\n".join(out)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("files", nargs="+", help="fastact bench --json files")
    ap.add_argument("--markdown", action="store_true", help="also print per-file ratio tables")
    ap.add_argument("--all", action="store_true", help="list every miss (default: all anyway)")
    a = ap.parse_args(argv)
    docs = []
    for p in a.files:
        with open(p) as f:
            d = json.load(f)
        d["_file"] = p
        docs.append(d)
    docs.sort(key=key_of)
    summary = defaultdict(lambda: [0, 0])
    for doc in docs:
        met, total, misses = grade(doc)
        k = key_of(doc)
        summary[k][0] += met
        summary[k][1] += total
        path, dtype, nt, o = k
        print(
            f"{path:10s} {dtype} {nt}t{' out=' if o else ''}: {met} of {total} met "
            f"({doc['_file']}, {doc['machine'].get('date', '?')})"
        )
        for r, need in misses:
            print(miss_line(r, need))
    tm = sum(v[0] for k, v in summary.items() if not k[3])
    tt = sum(v[1] for k, v in summary.items() if not k[3])
    print(f"\nall allocating files: {tm} of {tt} goal cells met")
    if any(k[3] for k in summary):
        om = sum(v[0] for k, v in summary.items() if k[3])
        ot = sum(v[1] for k, v in summary.items() if k[3])
        print(f"all out= files: {om} of {ot} goal cells met")
    if a.markdown:
        print()
        print(summary_markdown(docs))
        print()
        print(markdown_grid(docs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
