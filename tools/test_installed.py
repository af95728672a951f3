"""Run the whole test suite against the *installed* fastact (a wheel), not the source tree.

    python tools/test_installed.py [pytest arguments]

Copies tests/ and the pytest configuration (pyproject.toml: filterwarnings=error, ...)
into a temporary directory, checks there that `import fastact` resolves inside this
Python environment (sys.prefix) and not inside the source tree, then runs pytest there.
.ci/run and cibuildwheel (pyproject.toml, .github/workflows/wheels.yml) use this same
command, so a wheel is tested the same way everywhere.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _inside(path: Path, root: Path) -> bool:
    try:
        path.resolve().relative_to(root.resolve())
        return True
    except ValueError:
        return False


def main(argv: list[str]) -> int:
    with tempfile.TemporaryDirectory(prefix="fastact-installed-") as d:
        work = Path(d)
        shutil.copytree(
            ROOT / "tests",
            work / "tests",
            ignore=shutil.ignore_patterns("__pycache__", ".hypothesis"),
        )
        shutil.copy(ROOT / "pyproject.toml", work / "pyproject.toml")
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        where = subprocess.run(
            [
                sys.executable,
                "-c",
                "import fastact; print(fastact.__file__); fastact.show_config()",
            ],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
        )
        if where.returncode != 0:
            print(where.stdout + where.stderr, file=sys.stderr)
            return 1
        first, _, config = where.stdout.partition("\n")
        location = Path(first.strip())
        print(f"fastact imported from {location}")
        print(config.rstrip())
        if _inside(location, ROOT):
            print(
                f"error: fastact was imported from the source tree {ROOT}, not from an "
                "installed wheel",
                file=sys.stderr,
            )
            return 1
        if not _inside(location, Path(sys.prefix)):
            print(
                f"error: fastact is not installed in this environment ({sys.prefix})",
                file=sys.stderr,
            )
            return 1
        cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests", *argv]
        return subprocess.call(cmd, cwd=work, env=env)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
