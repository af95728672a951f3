"""`fastact lab`: the vanishing-gradient lab on the command line."""

from __future__ import annotations

import argparse
import os
import sys

from .config import DEFAULT_ACTIVATIONS
from .presets import PRESETS

EPILOG = """\
examples:
  fastact lab                                    9 activations x depths 2,5,10,20,50
  fastact lab --preset remedies                  what fixes a deep sigmoid network
  fastact lab --activations sigmoid,relu --depths 5,20 --inits standard,he_normal
  fastact lab --steps 0 --out results/           gradients at initialisation; json, csv, plots
  fastact lab --jobs 2 --seed 1                  two worker processes, same records as serial
  fastact lab --scheduler tcp://host:8786        on a Dask cluster

presets: """ + ", ".join(PRESETS)


def _parser():
    p = argparse.ArgumentParser(
        prog="fastact lab",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="How far does the gradient reach? Sweeps activation x depth x init x "
        "variant, measures ||dL/dW|| and ||dL/dz|| per layer at initialisation, "
        "trains each network, times fastact against pure NumPy, and prints "
        "verdicts computed from the numbers.",
    )
    p.add_argument("--preset", help="a fixed question: " + ", ".join(PRESETS))
    p.add_argument(
        "--activations", help="comma-separated (default: " + ",".join(DEFAULT_ACTIVATIONS) + ")"
    )
    p.add_argument("--depths", help="hidden layers, comma-separated (default: 2,5,10,20,50)")
    p.add_argument(
        "--inits",
        help="auto (matched, default), standard, xavier_uniform, "
        "xavier_normal, he_uniform, he_normal, lecun_normal, "
        "orthogonal",
    )
    p.add_argument(
        "--variants",
        help="plain (default), batchnorm, batchnorm_after, dropout, "
        "residual, or combinations such as batchnorm+residual",
    )
    p.add_argument(
        "--width", type=_int, help="units per hidden layer (default 64, glorot2010: 128)"
    )
    p.add_argument("--batch", type=_int, help="batch size (default 128)")
    p.add_argument(
        "--data",
        default="teacher",
        help="teacher (built in, default), digits (scikit-learn), or a .npz (X, y) "
        "/ .csv (last column y) file",
    )
    p.add_argument(
        "--steps",
        type=_int,
        help="training steps per configuration (default 300, glorot2010: 0; 0 = gradients "
        "at initialisation only)",
    )
    p.add_argument(
        "--seed", type=_int, default=0, help="seed of weights, batches and dropout (default 0)"
    )
    p.add_argument(
        "--lr", type=_float, help="learning rate (default: adam 1e-3, momentum 0.01, sgd 0.05)"
    )
    p.add_argument("--optimizer", help="adam (default), momentum (SGD + 0.9), sgd")
    p.add_argument("--dropout", type=_float, help="p of the dropout variants (default 0.5)")
    p.add_argument("--dtype", help="float32 (default) or float64 for training and timing")
    p.add_argument("--jobs", type=_int, default=1, help="worker processes (joblib); -1 = all cores")
    p.add_argument("--scheduler", help="address of a Dask scheduler (dask.distributed)")
    p.add_argument("--out", help="directory for results.json, results.csv and PNG plots")
    p.add_argument(
        "--no-timing", action="store_true", help="skip the fastact vs fastact.reference step timing"
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def _int(s):
    try:
        return int(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {s!r}") from None


def _float(s):
    try:
        return float(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {s!r}") from None


def _error(msg) -> int:
    print(f"fastact lab: error: {msg[5:] if msg.startswith('lab: ') else msg}", file=sys.stderr)
    return 2


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    from .presets import PRESETS
    from .sweep import run

    if args.preset in PRESETS:  # in the command line's words (run() names its arguments)
        for k in PRESETS[args.preset][2]:
            if getattr(args, k) is not None:
                return _error(f"preset {args.preset!r} fixes --{k}; drop --{k} or drop the preset.")

    if args.out is not None and not args.out.strip():  # ("" wrote nothing, silently)
        return _error("--out needs a directory name; got an empty one")
    if args.out:  # before the sweep: a bad directory must not cost the run
        try:
            os.makedirs(args.out, exist_ok=True)
            if not os.access(args.out, os.W_OK | os.X_OK):
                raise PermissionError(f"{args.out!r} is not writable")
        except OSError as e:
            return _error(f"--out {args.out!r}: {e.strerror or e}")
    try:
        res = run(
            args.activations,
            args.depths,
            args.inits,
            args.variants,
            preset=args.preset,
            width=args.width,
            batch=args.batch,
            data=args.data,
            steps=args.steps,
            seed=args.seed,
            lr=args.lr,
            optimizer=args.optimizer,
            dropout=args.dropout,
            dtype=args.dtype,
            jobs=args.jobs,
            scheduler=args.scheduler,
            timing=not args.no_timing,
            progress=False if args.quiet else "auto",
        )
    except (ValueError, TypeError, ImportError, OSError, ConnectionError) as e:
        return _error(str(e))
    try:
        print(res.report())  # first: a failure to write the files loses no result
        sys.stdout.flush()
    except BrokenPipeError:  # `fastact lab | head`: the reader left; not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    if args.out:
        try:
            written = res.save(args.out, plots=False)
            try:
                written += res.plot(args.out)
            except ImportError as e:
                print(f"note: {e}", file=sys.stderr)
        except OSError as e:
            return _error(f"writing to {args.out!r}: {e}")
        try:
            print("wrote " + ", ".join(written))
        except BrokenPipeError:
            pass
    return 0
