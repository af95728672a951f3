"""`fastact bench`: fastact against the NumPy a user would write, on this machine.

The expressions in NUMPY_EXPRESSIONS are the baseline of the issue's speed
floor ("the NumPy expression a user would write"): one line each, the way
tutorials write them, in the array's own dtype.  They are also used by
benches/bench_activations.py (pytest-benchmark).

Timing: each case runs fastact and NumPy interleaved, `rounds` times each,
and reports medians; one thread for fastact (n_threads=1); NumPy is
single-threaded for elementwise work anyway.
"""
from __future__ import annotations

import json
import platform
import statistics
import sys
import time

import numpy as np
from scipy import special

import fastact

_S2 = float(np.sqrt(2.0))
_S2PI = float(np.sqrt(2.0 * np.pi))
_K0 = float(np.sqrt(2.0 / np.pi))
_SA, _SS = 1.6732632423543772, 1.0507009873554805


def _gelu_np(x):
    return 0.5 * x * (1 + special.erf(x / _S2))


def _gelu_np_b(g, x):
    return g * (0.5 * (1 + special.erf(x / _S2)) + x * np.exp(-0.5 * x * x) / _S2PI)


def _gelu_tanh_np(x):
    return 0.5 * x * (1 + np.tanh(_K0 * (x + 0.044715 * x**3)))


def _gelu_tanh_np_b(g, x):
    t = np.tanh(_K0 * (x + 0.044715 * x**3))
    return g * (0.5 * (1 + t) + 0.5 * x * (1 - t * t) * _K0 * (1 + 3 * 0.044715 * x * x))


def _silu_np_b(g, x):
    s = 1 / (1 + np.exp(-x))
    return g * s * (1 + x * (1 - s))


def _mish_np_b(g, x):
    t = np.tanh(np.log1p(np.exp(x)))
    s = 1 / (1 + np.exp(-x))
    return g * (t + x * s * (1 - t * t))


# name -> (forward(x), backward(g, saved)); saved as ACTIVATIONS[name].saves says
NUMPY_EXPRESSIONS = {
    "identity": (lambda x: x.copy(), lambda g, y: g.copy()),
    "sigmoid": (lambda x: 1 / (1 + np.exp(-x)), lambda g, y: g * y * (1 - y)),
    "tanh": (lambda x: np.tanh(x), lambda g, y: g * (1 - y * y)),
    "relu": (lambda x: np.maximum(x, 0), lambda g, y: g * (y > 0)),
    "leaky_relu": (lambda x: np.where(x > 0, x, 0.01 * x),
                   lambda g, y: g * np.where(y > 0, 1.0, 0.01).astype(y.dtype)),
    "prelu": (lambda x: np.where(x > 0, x, 0.25 * x),
              lambda g, x: g * np.where(x > 0, 1.0, 0.25).astype(x.dtype)),
    "elu": (lambda x: np.where(x > 0, x, np.expm1(x)), lambda g, y: g * np.where(y > 0, 1, y + 1)),
    "selu": (lambda x: _SS * np.where(x > 0, x, _SA * np.expm1(x)),
             lambda g, y: g * np.where(y > 0, _SS, y + _SS * _SA)),
    "celu": (lambda x: np.where(x > 0, x, np.expm1(x)), lambda g, y: g * np.where(y > 0, 1, y + 1)),
    "gelu": (_gelu_np, _gelu_np_b),
    "gelu_tanh": (_gelu_tanh_np, _gelu_tanh_np_b),
    "silu": (lambda x: x / (1 + np.exp(-x)), _silu_np_b),
    "mish": (lambda x: x * np.tanh(np.log1p(np.exp(x))), _mish_np_b),
    "softplus": (lambda x: np.log1p(np.exp(x)), lambda g, x: g / (1 + np.exp(-x))),
    "softsign": (lambda x: x / (1 + np.abs(x)), lambda g, x: g / (1 + np.abs(x)) ** 2),
    "hardtanh": (lambda x: np.clip(x, -1, 1), lambda g, y: g * ((y > -1) & (y < 1))),
    "relu6": (lambda x: np.clip(x, 0, 6), lambda g, y: g * ((y > 0) & (y < 6))),
    "hardsigmoid": (lambda x: np.clip(x / 6 + 0.5, 0, 1), lambda g, x: g * ((x > -3) & (x < 3)) / 6),
    "hardswish": (lambda x: x * np.clip(x / 6 + 0.5, 0, 1),
                  lambda g, x: g * np.where(x < -3, 0, np.where(x <= 3, x / 3 + 0.5, 1))),
    "log_sigmoid": (lambda x: -np.log1p(np.exp(-x)), lambda g, x: g / (1 + np.exp(x))),
}

# piecewise-linear forwards: NumPy already runs them near copy speed (floor: >= 1x)
PIECEWISE_LINEAR = ("identity", "relu", "relu6", "leaky_relu", "hardtanh")

# the fastact call of each case: name -> (forward(x), backward(g, saved))
_PRELU_W = 0.25


def fastact_calls(nt: int = 1):
    calls = {}
    for name in NUMPY_EXPRESSIONS:
        if name == "gelu_tanh":
            calls[name] = (lambda x: fastact.gelu(x, "tanh", n_threads=nt),
                           lambda g, s: fastact.gelu_backward(g, s, "tanh", n_threads=nt))
        elif name == "prelu":
            calls[name] = (lambda x: fastact.prelu(x, _PRELU_W, n_threads=nt),
                           lambda g, s: fastact.prelu_backward(g, s, _PRELU_W, n_threads=nt)[0])
        else:
            f = getattr(fastact, name)
            b = getattr(fastact, name + "_backward")
            calls[name] = ((lambda f: lambda x: f(x, n_threads=nt))(f),
                           (lambda b: lambda g, s: b(g, s, n_threads=nt))(b))
    return calls


def saves(name: str) -> str:
    return "input" if name == "gelu_tanh" else fastact.ACTIVATIONS[name].saves


def make_inputs(name: str, n: int, dtype, seed: int = 0):
    """x ~ 3 N(0, 1), g ~ N(0, 1), and the saved array for the backward."""
    rng = np.random.default_rng(seed)
    x = (3 * rng.standard_normal(n)).astype(dtype)
    g = rng.standard_normal(n).astype(dtype)
    if saves(name) == "output":
        fwd = fastact.gelu if name == "gelu_tanh" else getattr(fastact, name)
        s = fwd(x)
    else:
        s = x
    return x, g, s


def _time_once(f, args, inner):
    t = time.perf_counter()
    for _ in range(inner):
        f(*args)
    return (time.perf_counter() - t) / inner


def compare(f_a, f_b, args, rounds=15, target=0.01):
    """Median seconds per call of f_a and f_b, interleaved round by round."""
    f_a(*args), f_b(*args)
    one = max(_time_once(f_a, args, 1), _time_once(f_b, args, 1), 1e-7)
    inner = max(1, int(target / one))
    ta, tb = [], []
    for _ in range(rounds):
        ta.append(_time_once(f_a, args, inner))
        tb.append(_time_once(f_b, args, inner))
    return statistics.median(ta), statistics.median(tb)


def run(sizes=(10**5, 10**6), dtype=np.float32, rounds=15, names=None, nt=1, out=sys.stdout):
    calls = fastact_calls(nt)
    rows = []
    for name in names or NUMPY_EXPRESSIONS:
        np_f, np_b = NUMPY_EXPRESSIONS[name]
        fa_f, fa_b = calls[name]
        for n in sizes:
            x, g, s = make_inputs(name, n, dtype)
            with np.errstate(all="ignore"):
                tf, tnf = compare(fa_f, np_f, (x,), rounds)
                tb, tnb = compare(fa_b, np_b, (g, s), rounds)
            rows.append({"activation": name, "n": n, "dtype": np.dtype(dtype).name,
                         "fwd_fastact_us": tf * 1e6, "fwd_numpy_us": tnf * 1e6,
                         "fwd_speedup": tnf / tf, "bwd_fastact_us": tb * 1e6,
                         "bwd_numpy_us": tnb * 1e6, "bwd_speedup": tnb / tb})
            if out is not None:
                r = rows[-1]
                print(f"{name:12s} {n:>9d}  fwd {r['fwd_fastact_us']:9.1f} us vs {r['fwd_numpy_us']:9.1f} us "
                      f"x{r['fwd_speedup']:5.2f}   bwd {r['bwd_fastact_us']:9.1f} us vs "
                      f"{r['bwd_numpy_us']:9.1f} us x{r['bwd_speedup']:5.2f}", file=out, flush=True)
    return rows


def machine() -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    from ._validate import usable_cores
    return {"cpu": cpu, "cores": usable_cores(), "numpy": np.__version__,
            "fastact": fastact.__version__, "python": platform.python_version()}


def main(argv=None) -> int:
    import argparse
    ap = argparse.ArgumentParser(prog="fastact bench",
                                 description="fastact vs the NumPy a user would write (one thread).")
    ap.add_argument("--quick", action="store_true", help="1e5 elements, float32, few rounds (< 1 min)")
    ap.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    ap.add_argument("--sizes", type=lambda s: [int(float(v)) for v in s.split(",")],
                    help="comma-separated sizes, e.g. 1e4,1e5,1e6")
    ap.add_argument("--only", help="comma-separated activation names")
    ap.add_argument("--rounds", type=int, help="interleaved rounds per case (default 15; --quick 5)")
    ap.add_argument("--json", metavar="PATH", help="also save the rows as JSON")
    ap.add_argument("--markdown", action="store_true", help="also print the rows as a Markdown table")
    a = ap.parse_args(argv)
    sizes = a.sizes or ((10**5,) if a.quick else (10**5, 10**6))
    rounds = a.rounds or (5 if a.quick else 15)
    names = a.only.split(",") if a.only else None
    m = machine()
    print(f"fastact {m['fastact']} vs NumPy {m['numpy']} on {m['cpu']} ({m['cores']} cores); "
          f"{a.dtype}, fastact n_threads=1, medians of {rounds} interleaved rounds")
    rows = run(sizes, np.dtype(a.dtype), rounds, names)
    worst = min(min(r["fwd_speedup"], r["bwd_speedup"]) for r in rows)
    print(f"smallest speed-up: x{worst:.2f}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"machine": m, "rows": rows}, f, indent=1)
    if a.markdown:
        print(markdown(rows))
    return 0


def markdown(rows) -> str:
    """Rows as a table: one line per activation, forward and backward per size."""
    sizes = sorted({r["n"] for r in rows})
    head = "| activation | " + " | ".join(
        f"fwd {n:.0e}: fastact / NumPy µs (x)" for n in sizes) + " | " + " | ".join(
        f"bwd {n:.0e}: fastact / NumPy µs (x)" for n in sizes) + " |"
    lines = [head, "|" + "---|" * (1 + 2 * len(sizes))]
    names = list(dict.fromkeys(r["activation"] for r in rows))
    for name in names:
        cells = []
        for d in ("fwd", "bwd"):
            for n in sizes:
                r = next(r for r in rows if r["activation"] == name and r["n"] == n)
                cells.append(f"{r[d + '_fastact_us']:.0f} / {r[d + '_numpy_us']:.0f} "
                             f"(**{r[d + '_speedup']:.2f}**)")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
