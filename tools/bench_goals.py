"""Check issue 3's speed goals against `fastact bench --json` files and print Markdown.

    fastact bench --sizes 1e3,1e4,1e5,1e6 --threads 1 --json 1t.json
    fastact bench --sizes 1.6e7 --threads -1 --json all.json
    fastact bench --sizes 1.6e7 --threads -1 --out --json all_out.json
    python tools/bench_goals.py 1t.json all.json [all_out.json]

Goals (float32, one run side by side):
  A. vs the NumPy expression, 1 thread, 1e4..1e6, fwd and bwd: >= 3x for the
     transcendental activations (tanh forward: >= 2x), >= 2x for the others.
  B. vs PyTorch CPU on the same threads: >= 1.0x from 1e4 up, >= 3x at 1e3.
  C. 1.6e7 elements, all threads: relu and leaky_relu forward within 1.25x of
     np.copyto of the same bytes, every other forward within 2x.
"""

from __future__ import annotations

import json
import sys

TRANSCENDENTAL = (
    "sigmoid",
    "tanh",
    "elu",
    "selu",
    "celu",
    "gelu",
    "gelu_tanh",
    "silu",
    "mish",
    "softplus",
    "log_sigmoid",
)


def load(path):
    with open(path) as f:
        return json.load(f)


def goal_a(rows):
    misses, total = [], 0
    for r in rows:
        if not 10**4 <= r["n"] <= 10**6:
            continue
        name, d = r["activation"], r["direction"]
        need = (2.0 if (name, d) == ("tanh", "fwd") else 3.0) if name in TRANSCENDENTAL else 2.0
        total += 1
        if r["vs_numpy"] < need:
            misses.append((name, d, r["n"], r["vs_numpy"], need))
    return misses, total


def goal_b(rows):
    misses, total = [], 0
    for r in rows:
        if "vs_torch" not in r:
            continue
        need = 3.0 if r["n"] < 10**4 else 1.0
        total += 1
        if r["vs_torch"] < need:
            misses.append((r["activation"], r["direction"], r["n"], r["vs_torch"], need))
    return misses, total


def goal_c(rows):
    misses, total = [], 0
    for r in rows:
        if r["direction"] != "fwd" or r["n"] < 10**7:  # (goal C is about 1.6e7 elements)
            continue
        need = 1 / 1.25 if r["activation"] in ("relu", "leaky_relu") else 0.5
        total += 1
        if r["copy_fraction"] < need:
            misses.append((r["activation"], "fwd", r["n"], 1 / r["copy_fraction"], 1 / need))
    return misses, total


def fmt_misses(misses, what):
    return "\n".join(
        f"- {n} {d} {size:.0e}: {got:.2f}{what} (goal {need:.2f}{what})"
        for n, d, size, got, need in misses
    )


def table(rows1, rows_all, rows_out):
    """One line per activation: the smallest ratios of each goal."""
    names = list(dict.fromkeys(r["activation"] for r in rows1))
    head = (
        "| activation | vs NumPy 1e4-1e6 fwd / bwd (min) | vs PyTorch 1e3 fwd / bwd | "
        "vs PyTorch 1e4-1e6 fwd / bwd (min) | 1.6e7, all threads: vs PyTorch fwd / bwd | "
        "1.6e7 fwd time / copy time (new array; out=) |"
    )
    lines = [head, "|---|---|---|---|---|---|"]

    def pick(rows, name, d, lo, hi, key):
        v = [
            r[key]
            for r in rows
            if r["activation"] == name and r["direction"] == d and lo <= r["n"] <= hi and key in r
        ]
        return min(v) if v else float("nan")

    for name in names:
        c = [
            f"{pick(rows1, name, 'fwd', 1e4, 1e6, 'vs_numpy'):.2f} / "
            f"{pick(rows1, name, 'bwd', 1e4, 1e6, 'vs_numpy'):.2f}",
            f"{pick(rows1, name, 'fwd', 1e3, 1e3, 'vs_torch'):.2f} / "
            f"{pick(rows1, name, 'bwd', 1e3, 1e3, 'vs_torch'):.2f}",
            f"{pick(rows1, name, 'fwd', 1e4, 1e6, 'vs_torch'):.2f} / "
            f"{pick(rows1, name, 'bwd', 1e4, 1e6, 'vs_torch'):.2f}",
            f"{pick(rows_all, name, 'fwd', 1e7, 1e8, 'vs_torch'):.2f} / "
            f"{pick(rows_all, name, 'bwd', 1e7, 1e8, 'vs_torch'):.2f}",
        ]
        cf = pick(rows_all, name, "fwd", 1e7, 1e8, "copy_fraction")
        co = pick(rows_out, name, "fwd", 1e7, 1e8, "copy_fraction") if rows_out else float("nan")
        c.append(f"{1 / cf:.2f}; {1 / co:.2f}")
        lines.append(f"| {name} | " + " | ".join(c) + " |")
    return "\n".join(lines)


def main(argv):
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("one_thread", help="fastact bench --json file, one thread")
    ap.add_argument("all_threads", help="fastact bench --json file, all threads")
    ap.add_argument("out", nargs="?", help="optional: the same with --out")
    a = ap.parse_args(argv)
    argv = [a.one_thread, a.all_threads] + ([a.out] if a.out else [])
    try:
        one, allt = load(argv[0]), load(argv[1])
        out = load(argv[2]) if len(argv) > 2 else None
    except (OSError, ValueError) as e:
        ap.error(f"cannot read a `fastact bench --json` file: {e}")
    for path, data, want in ((argv[0], one, 1), (argv[1], allt, None)):
        if data.get("dtype", "float32") != "float32":
            ap.error(f"{path}: the goals are float32; this file is {data['dtype']}")
        if want is not None and data.get("n_threads") != want:
            ap.error(
                f"{path}: the first file must be a 1-thread run; it has {data.get('n_threads')}"
            )
    rows1, rows_all = one["rows"], allt["rows"]
    rows_out = out["rows"] if out else None
    print(table(rows1, rows_all, rows_out))
    print()
    m, t = goal_a(rows1)
    print(f"Goal A (vs NumPy, 1 thread, 1e4-1e6): {t - len(m)} of {t} cases met")
    print(fmt_misses(m, "x"))
    m, t = goal_b(rows1)
    m2, t2 = goal_b(rows_all)
    print(
        f"\nGoal B (vs PyTorch, same threads): {t - len(m)} of {t} cases met at 1 thread "
        f"(1e3-1e6), {t2 - len(m2)} of {t2} at 1.6e7 on all threads"
    )
    print(fmt_misses(m + m2, "x"))
    for label, rows in (("a new result array", rows_all), ("out=", rows_out)):
        if rows is None:
            continue
        m, t = goal_c(rows)
        print(
            f"\nGoal C (1.6e7, all threads, forward time / np.copyto time, {label}): "
            f"{t - len(m)} of {t} met"
        )
        print(fmt_misses(m, "x of copy"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
