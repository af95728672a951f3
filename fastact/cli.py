"""The `fastact` command: `fastact lab`, `fastact info`, `fastact bench [--quick]`."""

from __future__ import annotations

import sys


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    usage = (
        "usage: fastact {lab,info,bench} [options]\n"
        "  lab     the vanishing-gradient lab: activation x depth x init x variant, gradient\n"
        "          ratios, training, verdicts, fastact vs NumPy step times (fastact lab --help)\n"
        "  info    version, build flags, SIMD path, OpenMP and threads, BLAS\n"
        "  bench   speed-ups against the NumPy a user would write (--quick: < 1 minute;\n"
        "          fastact bench --help for options)"
    )
    if not argv or argv[0] in ("-h", "--help"):
        print(usage)
        return 0
    cmd, rest = argv[0], argv[1:]
    if cmd == "info":
        if rest in (["-h"], ["--help"]):
            print(
                "usage: fastact info\n\nthe build, the CPU and its SIMD path, the threads and BLAS"
            )
            return 0
        if rest:
            print(
                f"usage: fastact info\nfastact info: error: unexpected arguments {rest}",
                file=sys.stderr,
            )
            return 2
        from ._config import show_config

        show_config()
        return 0
    if cmd in ("lab", "bench"):
        if cmd == "lab":
            from .lab.cli import main as run
        else:
            from .bench import main as run
        try:
            return run(rest)
        except MemoryError as e:  # a --width, --sizes or --batch beyond this machine
            opts = "--width, --batch, --depths" if cmd == "lab" else "--sizes, or with --nn --width"
            print(
                f"fastact {cmd}: error: out of memory ({e}); use smaller sizes ({opts}).",
                file=sys.stderr,
            )
            return 2
    print(f"fastact: unknown command {cmd!r}\n{usage}", file=sys.stderr)
    return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
