"""`fastact bench`: fastact against the NumPy a user would write, on this machine.

The expressions in NUMPY_EXPRESSIONS are the baseline of the issue's speed
floor ("the NumPy expression a user would write"): one line each, the way
tutorials write them, in the array's own dtype.  They are also used by
benches/bench_activations.py (pytest-benchmark).

Timing: each case runs fastact, NumPy, the roofline (np.copyto of the same
bytes) and PyTorch CPU (when installed) interleaved, `rounds` times each, and
reports medians; fastact and PyTorch on --threads threads (default 1); NumPy
is single-threaded for elementwise work anyway.
"""

from __future__ import annotations

import contextlib
import json
import math
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
    "leaky_relu": (
        lambda x: np.where(x > 0, x, 0.01 * x),
        lambda g, y: g * np.where(y > 0, 1.0, 0.01).astype(y.dtype),
    ),
    "prelu": (
        lambda x: np.where(x > 0, x, 0.25 * x),
        lambda g, x: g * np.where(x > 0, 1.0, 0.25).astype(x.dtype),
    ),
    "elu": (lambda x: np.where(x > 0, x, np.expm1(x)), lambda g, y: g * np.where(y > 0, 1, y + 1)),
    "selu": (
        lambda x: _SS * np.where(x > 0, x, _SA * np.expm1(x)),
        lambda g, y: g * np.where(y > 0, _SS, y + _SS * _SA),
    ),
    "celu": (lambda x: np.where(x > 0, x, np.expm1(x)), lambda g, y: g * np.where(y > 0, 1, y + 1)),
    "gelu": (_gelu_np, _gelu_np_b),
    "gelu_tanh": (_gelu_tanh_np, _gelu_tanh_np_b),
    "silu": (lambda x: x / (1 + np.exp(-x)), _silu_np_b),
    "mish": (lambda x: x * np.tanh(np.log1p(np.exp(x))), _mish_np_b),
    "softplus": (lambda x: np.log1p(np.exp(x)), lambda g, x: g / (1 + np.exp(-x))),
    "softsign": (lambda x: x / (1 + np.abs(x)), lambda g, x: g / (1 + np.abs(x)) ** 2),
    "hardtanh": (lambda x: np.clip(x, -1, 1), lambda g, y: g * ((y > -1) & (y < 1))),
    "relu6": (lambda x: np.clip(x, 0, 6), lambda g, y: g * ((y > 0) & (y < 6))),
    "hardsigmoid": (
        lambda x: np.clip(x / 6 + 0.5, 0, 1),
        lambda g, x: g * ((x > -3) & (x < 3)) / 6,
    ),
    "hardswish": (
        lambda x: x * np.clip(x / 6 + 0.5, 0, 1),
        lambda g, x: g * np.where(x < -3, 0, np.where(x <= 3, x / 3 + 0.5, 1)),
    ),
    "log_sigmoid": (lambda x: -np.log1p(np.exp(-x)), lambda g, x: g / (1 + np.exp(x))),
}

# piecewise-linear forwards: NumPy already runs them near copy speed (floor: >= 1x)
PIECEWISE_LINEAR = ("identity", "relu", "relu6", "leaky_relu", "hardtanh")

# the fastact call of each case: name -> (forward(x), backward(g, saved))
_PRELU_W = 0.25


def fastact_calls(nt: int = 1, out=None):
    """name -> (forward(x), backward(g, saved)) of fastact on nt threads; out: a
    preallocated result array passed as out= (None: a new array per call)."""
    calls = {}
    for name in NUMPY_EXPRESSIONS:
        if name == "gelu_tanh":
            calls[name] = (
                lambda x: fastact.gelu(x, "tanh", out=out, n_threads=nt),
                lambda g, s: fastact.gelu_backward(g, s, "tanh", out=out, n_threads=nt),
            )
        elif name == "prelu":
            calls[name] = (
                lambda x: fastact.prelu(x, _PRELU_W, out=out, n_threads=nt),
                lambda g, s: fastact.prelu_backward(g, s, _PRELU_W, out=out, n_threads=nt)[0],
            )
        else:
            f = getattr(fastact, name)
            b = getattr(fastact, name + "_backward")
            calls[name] = (
                (lambda f: lambda x: f(x, out=out, n_threads=nt))(f),  # noqa: B023 (bound now)
                (lambda b: lambda g, s: b(g, s, out=out, n_threads=nt))(b),  # noqa: B023
            )
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


# clock: "wall" (time.perf_counter) or "thread" (time.thread_time: the CPU time of the
# calling thread, which leaves out the time other processes hold the CPU; only for one
# thread, where fastact and PyTorch both run on the calling thread)
CLOCKS = {"wall": time.perf_counter, "thread": time.thread_time}


def _time_once(f, args, inner, clock=time.perf_counter):
    t = clock()
    for _ in range(inner):
        f(*args)
    return (clock() - t) / inner


def compare_many(funcs: dict, args, rounds=15, target=0.01, clock="wall") -> dict:
    """Median seconds per call of each function, interleaved round by round (each round
    runs every function `inner` times, inner sized so the slowest takes ~target s)."""
    ck = CLOCKS[clock]
    for f in funcs.values():
        f(*args)
    inner = {k: max(1, int(target / max(_time_once(f, args, 1), 1e-7))) for k, f in funcs.items()}
    times = {k: [] for k in funcs}
    for _ in range(rounds):
        for k, f in funcs.items():
            times[k].append(_time_once(f, args, inner[k], ck))
    return {k: statistics.median(v) for k, v in times.items()}


def compare(f_a, f_b, args, rounds=15, target=0.01):
    """Median seconds per call of f_a and f_b, interleaved round by round."""
    t = compare_many({"a": f_a, "b": f_b}, args, rounds, target)
    return t["a"], t["b"]


def run(
    sizes=(10**5, 10**6),
    dtype=np.float32,
    rounds=15,
    names=None,
    nt=1,
    out=sys.stdout,
    torch=None,
    prealloc=False,
    clock="wall",
):
    """One row per (activation, size, direction): fastact, the NumPy expression, the
    roofline (np.copyto of the same bytes forward, np.add backward) and PyTorch CPU (when
    installed and torch is not False), all interleaved; fastact and PyTorch on nt threads.
    prealloc: fastact, the roofline and PyTorch write into a preallocated array (out=;
    PyTorch through its out= overloads where it has one, row["torch_out"]), so the kernel
    is timed without the allocation of a new result (NumPy still allocates, as users'
    code does).  clock: "wall" or "thread" (CLOCKS)."""
    from . import _peers as peers
    from ._validate import check_threads

    nt = check_threads(nt)
    calls = fastact_calls(nt)
    roof_f, roof_b = peers.roofline()
    tcalls = None
    if torch is not False and peers.available("torch"):
        tcalls = peers.torch_calls()
    elif torch:
        raise ImportError("PyTorch is not installed: pip install torch==2.13.0")
    ctx = peers.torch_threads(nt) if tcalls else contextlib.nullcontext()
    rows = []
    itemsize = np.dtype(dtype).itemsize
    if out is not None:
        print(
            f"{'activation':12s} {'n':>9s} dir  {'fastact µs':>10s} {'GB/s':>6s} {'copy':>5s}  "
            f"{'numpy µs':>9s} {'x':>6s}" + (f"  {'torch µs':>9s} {'x':>6s}" if tcalls else ""),
            file=out,
            flush=True,
        )
    with ctx:
        for name in names or NUMPY_EXPRESSIONS:
            np_f, np_b = NUMPY_EXPRESSIONS[name]
            fa_f, fa_b = calls[name]
            t_f, t_b = tcalls[name] if tcalls else (None, None)
            for n in sizes:
                x, g, s = make_inputs(name, n, dtype)
                t_out = (None, None)
                if prealloc:
                    buf = np.empty_like(x)
                    fa_f, fa_b = fastact_calls(nt, out=buf)[name]
                    roof_f = (lambda b: lambda x: np.copyto(b, x))(buf)
                    roof_b = (lambda b: lambda g, s: np.add(g, s, out=b))(buf)
                    if tcalls:
                        t_out = peers.torch_out_calls(buf)[name]
                for d, fa, nf, rf, tf, to, args in (
                    ("fwd", fa_f, np_f, roof_f, t_f, t_out[0], (x,)),
                    ("bwd", fa_b, np_b, roof_b, t_b, t_out[1], (g, s)),
                ):
                    funcs = {"fastact": fa, "numpy": nf, "copy": rf}
                    if tf is not None:
                        funcs["torch"] = to if to is not None else tf
                    with np.errstate(all="ignore"):
                        t = compare_many(funcs, args, rounds, clock=clock)
                    nbytes = (2 if d == "fwd" else 3) * n * itemsize
                    r = {
                        "activation": name,
                        "n": n,
                        "dtype": np.dtype(dtype).name,
                        "direction": d,
                        "n_threads": nt,
                        "bytes": nbytes,
                        "out": prealloc,
                        "fastact_us": t["fastact"] * 1e6,
                        "numpy_us": t["numpy"] * 1e6,
                        "copy_us": t["copy"] * 1e6,
                        "vs_numpy": t["numpy"] / t["fastact"],
                        "GB_per_s": nbytes / t["fastact"] / 1e9,
                        "copy_fraction": t["copy"] / t["fastact"],
                    }
                    if "torch" in t:
                        r["torch_us"] = t["torch"] * 1e6
                        r["vs_torch"] = t["torch"] / t["fastact"]
                        r["torch_out"] = to is not None
                    rows.append(r)
                    if out is not None:
                        line = (
                            f"{name:12s} {n:>9d} {d}  {r['fastact_us']:10.1f} "
                            f"{r['GB_per_s']:6.1f} {r['copy_fraction']:5.2f}  "
                            f"{r['numpy_us']:9.1f} {r['vs_numpy']:6.2f}"
                        )
                        if "torch" in t:
                            line += f"  {r['torch_us']:9.1f} {r['vs_torch']:6.2f}"
                        print(line, file=out, flush=True)
    return rows


def call_overhead(dtype=np.float32, rounds=15) -> dict:
    """Median ns of one call on 16 elements: fastact against NumPy's own ufunc call."""
    x = np.linspace(-3, 3, 16).astype(dtype)
    y = np.empty_like(x)
    funcs = {
        "np.tanh(x, out=y)": lambda: np.tanh(x, out=y),
        "fastact.relu(x, out=y)": lambda: fastact.relu(x, out=y),
        "fastact.sigmoid(x, out=y)": lambda: fastact.sigmoid(x, out=y),
        "fastact.sigmoid(x)": lambda: fastact.sigmoid(x),
    }
    t = compare_many(funcs, (), rounds, target=0.005)
    return {k: v * 1e9 for k, v in t.items()}


def _isa() -> str:
    """the SIMD path the kernels use; "none (NumPy twin)" in pure-NumPy mode"""
    if fastact.PUREPYTHON:
        return "none (NumPy twin)"
    from . import _activations as ext

    return ext.get_isa()


def pure_note() -> str | None:
    """the header line of a run in pure-NumPy mode, else None"""
    if not fastact.PUREPYTHON:
        return None
    return (
        "FASTACT_PUREPYTHON=1: fastact is the NumPy twin here; its rows time NumPy, "
        "not the native kernels.\n"
    )


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
    import os

    from ._validate import usable_cores

    flags = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = line
                    break
    except OSError:
        pass
    info = {
        "cpu": cpu,
        "cores": usable_cores(),
        "cpu_avx512": " avx512f " in flags,
        "numpy": np.__version__,
        "fastact": fastact.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "backend": "reference" if fastact.PUREPYTHON else "native",
        "fastact_isa": _isa(),
        "FASTACT_ISA": os.environ.get("FASTACT_ISA", ""),
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    try:
        import torch

        info["torch"] = torch.__version__
        info["torch_cpu_capability"] = torch.backends.cpu.get_cpu_capability()
        info["ATEN_CPU_CAPABILITY"] = os.environ.get("ATEN_CPU_CAPABILITY", "")
    except ImportError:
        pass
    return info


def _physical_memory():
    """bytes of RAM, or None where the OS does not say"""
    import os

    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def _sizes(text):
    """--sizes: comma-separated element counts >= 1 (1e5 notation allowed)."""
    import argparse

    out = []
    for v in text.split(","):
        if not v.strip():
            continue
        try:
            f = float(v)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{v!r} is not a number") from None
        if not (math.isfinite(f) and f >= 1 and f == int(f)):
            raise argparse.ArgumentTypeError(f"{v!r} is not a whole count of elements >= 1")
        out.append(int(f))
    if not out:
        raise argparse.ArgumentTypeError(f"{text!r} holds no size")
    return out


def check_json_path(ap, path) -> None:
    """--json: the folder must exist and be writable before the run, not after it."""
    if path is None:
        return
    import os

    folder = os.path.dirname(os.path.abspath(path)) or "."
    if os.path.isdir(path):
        ap.error(f"--json {path!r} is a directory; give a file name")
    if not os.path.isdir(folder):
        ap.error(f"--json {path!r}: the folder {folder!r} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        ap.error(f"--json {path!r}: the folder {folder!r} is not writable")


def main(argv=None) -> int:
    import argparse

    if argv is not None and "--nn" in argv:
        from .nn.bench import main as nn_main

        return nn_main(argv)
    ap = argparse.ArgumentParser(
        prog="fastact bench",
        description="fastact vs the NumPy a user would write and PyTorch CPU (when installed), "
        "with GB/s and the fraction of np.copyto's bandwidth.",
    )
    ap.add_argument(
        "--nn",
        action="store_true",
        help="training steps of networks instead (fastact bench --nn --help)",
    )
    ap.add_argument(
        "--quick", action="store_true", help="1e5 elements, float32, 5 rounds (under a minute)"
    )
    ap.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    ap.add_argument("--sizes", type=_sizes, help="comma-separated sizes, e.g. 1e4,1e5,1e6,1.6e7")
    ap.add_argument("--only", help="comma-separated activation names")
    ap.add_argument(
        "--threads",
        type=int,
        default=1,
        help="n_threads of fastact and torch.set_num_threads (default 1; -1: all cores)",
    )
    ap.add_argument("--no-torch", action="store_true", help="leave PyTorch out even if installed")
    ap.add_argument(
        "--out",
        action="store_true",
        help="fastact, the np.copyto roofline and PyTorch (its out= overloads, where it has "
        "them) write into a preallocated array: the kernel without allocation and page faults",
    )
    ap.add_argument(
        "--rounds", type=int, help="interleaved rounds per case (default 15; --quick 5)"
    )
    ap.add_argument(
        "--clock",
        choices=("wall", "thread"),
        default="wall",
        help="wall: elapsed time (default); thread: CPU time of the calling thread, "
        "steadier on a shared machine (one thread only)",
    )
    ap.add_argument("--json", metavar="PATH", help="also save the rows as JSON")
    ap.add_argument(
        "--markdown", action="store_true", help="also print the rows as a Markdown table"
    )
    a = ap.parse_args(argv)
    sizes = a.sizes or ((10**5,) if a.quick else (10**4, 10**5, 10**6))
    ram = _physical_memory()
    need = max(sizes) * np.dtype(a.dtype).itemsize * 6  # x, y, g, out and the peers' arrays
    if ram and need > ram:
        ap.error(
            f"--sizes: {max(sizes):.3g} elements of {a.dtype} need about {need / 2**30:.3g} GiB "
            f"(six arrays); this machine has {ram / 2**30:.3g} GiB"
        )
    if a.rounds is not None and a.rounds < 1:
        ap.error(f"--rounds must be >= 1; got {a.rounds}")
    rounds = a.rounds or (5 if a.quick else 15)
    names = a.only.split(",") if a.only else None
    if names:
        unknown = [n for n in names if n not in NUMPY_EXPRESSIONS]
        if unknown:
            ap.error(f"unknown activation(s) {unknown}; choose from {list(NUMPY_EXPRESSIONS)}")
    from ._validate import check_threads

    try:
        nt = check_threads(a.threads)
    except (ValueError, TypeError) as e:
        ap.error(f"--threads: {e}")
    if a.clock == "thread" and nt != 1:
        ap.error("--clock thread counts only the calling thread: use --threads 1")
    check_json_path(ap, a.json)
    m = machine()
    print(
        (pure_note() or "")
        + f"fastact {m['fastact']} on {m['cpu']} ({m['cores']} usable cores), NumPy {m['numpy']}"
        + (f", PyTorch {m['torch']}" if m.get("torch") and not a.no_torch else "")
        + f"; {a.dtype}, n_threads={nt}, medians of {rounds} interleaved rounds"
        + (", fastact, copy and PyTorch into a preallocated out=" if a.out else "")
        + (", CPU time of the calling thread" if a.clock == "thread" else "")
        + ".\n"
        "x = the peer's time / fastact's (above 1: fastact is faster); GB/s = bytes read and "
        "written / fastact's time;\ncopy = np.copyto time of the same bytes (backward: "
        "np.add(g, s, out=o)) / fastact's (1.0: at copy speed)."
    )
    rows = run(
        sizes,
        np.dtype(a.dtype),
        rounds,
        names,
        nt,
        torch=False if a.no_torch else None,
        prealloc=a.out,
        clock=a.clock,
    )
    over = call_overhead(np.dtype(a.dtype), rounds)
    print("call overhead, 16 elements: " + ", ".join(f"{k} {v:.0f} ns" for k, v in over.items()))
    worst = min(rows, key=lambda r: r["vs_numpy"])
    print(
        f"smallest speed-up vs NumPy: x{worst['vs_numpy']:.2f} ({worst['activation']} "
        f"{worst['direction']} {worst['n']})"
    )
    if any("vs_torch" in r for r in rows):
        worst = min((r for r in rows if "vs_torch" in r), key=lambda r: r["vs_torch"])
        print(
            f"smallest speed-up vs PyTorch: x{worst['vs_torch']:.2f} ({worst['activation']} "
            f"{worst['direction']} {worst['n']})"
        )
    if a.json:
        import os

        env = " ".join(
            f"{k}={os.environ[k]}"
            for k in ("FASTACT_ISA", "FASTACT_PUREPYTHON", "ATEN_CPU_CAPABILITY")
            + ("ONEDNN_MAX_CPU_ISA",)
            + ("MKL_ENABLE_INSTRUCTIONS", "OMP_WAIT_POLICY", "OMP_NUM_THREADS")
            if os.environ.get(k)
        )
        args = [v for v in (argv if argv is not None else sys.argv[1:])]
        if "--json" in args:  # the file name is the reader's own
            i = args.index("--json")
            del args[i : i + 2]
        command = (env + " " if env else "") + "fastact bench " + " ".join(args)
        with open(a.json, "w") as f:
            json.dump(
                {
                    "machine": m,
                    "dtype": a.dtype,
                    "n_threads": nt,
                    "out": bool(a.out),
                    "clock": a.clock,
                    "command": command,
                    "rounds": rounds,
                    "rows": rows,
                    "call_overhead_ns": over,
                },
                f,
                indent=1,
            )
        print(f"saved {a.json}")
    if a.markdown:
        print(markdown(rows))
    return 0


def markdown(rows) -> str:
    """Rows as a table: one line per activation, one cell per (direction, size):
    fastact µs, then x NumPy and x PyTorch."""
    keys = list(dict.fromkeys((r["direction"], r["n"]) for r in rows))
    head = "| activation | " + " | ".join(f"{d} {n:.0e}" for d, n in keys) + " |"
    lines = [head, "|" + "---|" * (1 + len(keys))]
    for name in dict.fromkeys(r["activation"] for r in rows):
        cells = []
        for d, n in keys:
            r = next(
                r for r in rows if r["activation"] == name and r["n"] == n and r["direction"] == d
            )
            c = f"{r['fastact_us']:.3g} µs, np x{r['vs_numpy']:.2f}"
            if "vs_torch" in r:
                c += f", pt x{r['vs_torch']:.2f}"
            cells.append(c)
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
