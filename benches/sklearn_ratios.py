"""Issue 12's ratios, measured interleaved (bench_sklearn.py's cases; a script, not a test).

    python benches/sklearn_ratios.py [--reps 7] [--cases digits-1,digits-2,big64,big32]

Each round runs every candidate once, in turn (scikit-learn's fit, fastact's fit, and
for the 20000x100 cases the GEMMs alone: Engine.gemms_only over the same number of
steps on a fresh network), so a load change on a shared machine hits all of them; the
first round is a warm-up.  For the 20000x100 cases two more columns give the fit's
decomposition: `epochs`, the part of fastact's fit spent in its native epochs
(`Engine.sk_epoch`; the rest is the estimator's Python: validation, labels, the network's
construction, the shuffles), and `gemms+kern`, the GEMMs and the elementwise ops
(`Engine.kernels_only`: bias + activation forward and backward) of the same steps, the
step's floor without the loss, the gather and the update.  Prints the medians of wall
time and of the calling thread's CPU time (with BLAS at one thread, all of a one-thread
fit's work is on that thread, so CPU time is the steadier measure where other processes
share the cores), the ratios sklearn / fastact, fastact / gemms, epochs / gemms and
(gemms+kern) / gemms, and the test (digits) or training accuracy.
Each timed call starts after a pause (--pause, 0.3 s): OpenBLAS's threads spin for a
while after a call, and at 2 threads scikit-learn's (NumPy's OpenBLAS) kept a core busy
into the next candidate's fit, doubling fastact's wall time on this 2-core machine.
"""

import argparse
import time
import warnings

import numpy as np
from sklearn.datasets import load_digits, make_classification
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier as SKClassifier
from threadpoolctl import threadpool_limits

import fastact
from fastact import sklearn as fsk
from fastact.sklearn import MLPClassifier

_EPOCHS = [0.0, 0.0]  # the native epochs' wall and CPU time in the last fastact fit


def _timed_run(run):
    def timed(self, *args, **kwargs):
        w, c = time.perf_counter(), time.thread_time()
        try:
            return run(self, *args, **kwargs)
        finally:
            _EPOCHS[0] += time.perf_counter() - w
            _EPOCHS[1] += time.thread_time() - c

    return timed


def _data(case):
    if case.startswith("digits"):
        X, y = load_digits(return_X_y=True)
        Xtr, Xte, ytr, yte = train_test_split(X / 16.0, y, test_size=0.25, random_state=42)
        kw = dict(hidden_layer_sizes=(64, 64), batch_size=64, max_iter=50)
        return Xtr, ytr, Xte, yte, kw
    X, y = make_classification(20000, 100, n_informative=30, n_classes=4, random_state=0)
    X = X.astype(np.float32 if case == "big32" else np.float64)
    kw = dict(hidden_layer_sizes=(256, 256), batch_size=200, max_iter=5)
    return X, y, X, y, kw


def run(case, reps, pause):
    threads = 2 if case == "digits-2" else 1
    X, y, Xte, yte, kw = _data(case)
    kw.update(activation="relu", solver="adam", random_state=0)
    bs = kw["batch_size"]
    steps = kw["max_iter"] * -(-X.shape[0] // bs)
    cands = {
        "sklearn": lambda: SKClassifier(**kw).fit(X, y),
        "fastact": lambda: MLPClassifier(n_threads=threads, **kw).fit(X, y),
    }
    if case.startswith("big"):
        sizes = [X.shape[1], *kw["hidden_layer_sizes"], len(np.unique(y))]
        engine = fastact.MLP(sizes, dtype=np.float32)._engine
        engine.reserve(bs)
        xb = np.ascontiguousarray(X[:bs], dtype=np.float32)

        def gemms():
            for _ in range(steps):
                engine.gemms_only(xb)

        kernels = engine._e.kernels_only

        def gemms_kernels():
            for _ in range(steps):
                engine.gemms_only(xb)
                kernels(xb)

        cands["gemms"] = gemms
        cands["gemms+kern"] = gemms_kernels
    wall = {k: [] for k in cands}
    cpu = {k: [] for k in cands}
    if case.startswith("big"):
        wall["epochs"], cpu["epochs"] = [], []
    acc = {}
    run0 = fsk._NativeEpochs._run
    fsk._NativeEpochs._run = _timed_run(run0)
    try:
        with warnings.catch_warnings(), threadpool_limits(threads):
            warnings.simplefilter("ignore", ConvergenceWarning)
            for r in range(reps + 1):
                for k, fit in cands.items():
                    time.sleep(pause)  # the previous candidate's BLAS threads stop spinning
                    _EPOCHS[:] = [0.0, 0.0]
                    w, c = time.perf_counter(), time.thread_time()
                    est = fit()
                    c, w = time.thread_time() - c, time.perf_counter() - w
                    if r:
                        wall[k].append(w)
                        cpu[k].append(c)
                        if k == "fastact" and "epochs" in wall:
                            wall["epochs"].append(_EPOCHS[0])
                            cpu["epochs"].append(_EPOCHS[1])
                    if est is not None:
                        acc[k] = round(float(est.score(Xte, yte)), 4)
    finally:
        fsk._NativeEpochs._run = run0
    for name, t in (("wall", wall), ("cpu", cpu)):
        m = {k: float(np.median(v)) * 1e3 for k, v in t.items()}
        line = f"{case:9s} {threads}t {name:4s} " + " ".join(
            f"{k} {v:8.1f} ms" for k, v in m.items()
        )
        line += f"  sklearn/fastact {m['sklearn'] / m['fastact']:.2f}"
        if "gemms" in m:
            line += f"  fastact/gemms {m['fastact'] / m['gemms']:.3f}"
            line += f"  epochs/gemms {m['epochs'] / m['gemms']:.3f}"
            line += f"  (gemms+kern)/gemms {m['gemms+kern'] / m['gemms']:.3f}"
        print(line + ("" if name == "wall" else f"  accuracy {acc}"), flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--cases", default="digits-1,digits-2,big64,big32")
    ap.add_argument("--pause", type=float, default=0.3, help="seconds of sleep before each fit")
    args = ap.parse_args()
    cases = args.cases.split(",")
    known = ("digits-1", "digits-2", "big64", "big32")
    if set(cases) - set(known) or args.reps < 1 or args.pause < 0:
        ap.error(f"--cases from {known}, --reps >= 1, --pause >= 0")
    for case in cases:
        run(case, args.reps, args.pause)


if __name__ == "__main__":
    main()
