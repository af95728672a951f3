"""fastact.show_config() / fastact.config(), the ISA switch, and the `fastact` CLI."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
from importlib import metadata

import numpy as np
import pytest
from conftest import PURE, native_only

import fastact


def _printed(capsys):
    fastact.show_config()
    out = capsys.readouterr().out
    lines = [ln for ln in out.splitlines() if ln.strip()]
    return out, lines


def test_show_config_prints_every_config_entry(capsys):
    info = fastact.config()
    out, lines = _printed(capsys)
    assert len(lines) == len(info)
    width = max(len(k) for k in info)
    for line, (key, value) in zip(lines, info.items()):
        assert line == f"{key:<{width}}  {value}"


def test_show_config_expected_keys(capsys):
    out, lines = _printed(capsys)
    keys = {ln[: max(len(k) for k in fastact.config())].strip() for ln in lines}
    for key in (
        "fastact",
        "python",
        "numpy",
        "backend",
        "usable cores",
        "default n_threads",
        "BLAS (numpy)",
    ):
        assert key in keys, key
    if PURE:
        assert "SIMD path in use" not in keys and "OpenMP" not in keys
    else:
        assert {"OpenMP", "SIMD path in use", "compiler", "build flags"} <= keys


def _declared_version():
    """The installed distribution's version, or (run from an uninstalled source tree with
    an in-place build) the one pyproject.toml next to the package declares."""
    try:
        return metadata.version("fastact")
    except metadata.PackageNotFoundError:
        from pathlib import Path

        import tomllib

        pyproject = Path(fastact.__file__).resolve().parent.parent / "pyproject.toml"
        with open(pyproject, "rb") as f:
            return tomllib.load(f)["project"]["version"]


def test_config_values():
    info = fastact.config()
    assert info["fastact"] == fastact.__version__ == _declared_version()
    assert info["python"] == platform.python_version()
    assert info["numpy"] == np.__version__
    assert info["usable cores"] == len(os.sched_getaffinity(0))
    assert info["default n_threads"] == fastact.get_num_threads()
    assert info["BLAS (numpy)"] and info["BLAS (numpy)"] != "unknown"
    if PURE:
        assert info["backend"] == "pure NumPy (FASTACT_PUREPYTHON)"
    else:
        assert info["backend"] == "native"
        assert info["OpenMP"] == "on" or info["OpenMP"].startswith("off")


def test_config_reports_a_pinned_count_as_it_is_used():
    cores = len(os.sched_getaffinity(0))
    assert fastact.config()["threads pinned"].startswith("no (")
    with fastact.threads(1):
        assert fastact.config()["threads pinned"] == 1
    with fastact.threads(cores + 62):
        assert fastact.config()["threads pinned"] == (
            f"{cores + 62} (used as {cores}: the usable cores)"
        )
        openmp = PURE or fastact.config()["OpenMP"] == "on"
        assert fastact.get_num_threads() == (cores if openmp else 1)


@native_only
def test_config_reports_the_isa_in_use():
    from fastact import _activations as ext

    isa = fastact.config()["SIMD path in use"]
    assert isa == ext.get_isa()
    assert isa in ext.ISA_NAMES.values()
    env = os.environ.get("FASTACT_ISA", "auto").lower()
    if env == "baseline":
        assert isa == "baseline"
    elif env == "avx2":
        assert isa == ("avx2+fma" if ext.cpu_has_avx2_fma() else "baseline")
    if isa != "baseline":
        assert ext.cpu_has_avx2_fma()


def _isa_in_subprocess(value):
    env = {k: v for k, v in os.environ.items() if k != "FASTACT_PUREPYTHON"}
    env["FASTACT_ISA"] = value
    r = subprocess.run(
        [
            sys.executable,
            "-c",
            "import fastact; print(fastact.config()['SIMD path in use']); "
            "from fastact import _activations as e; print(int(e.cpu_has_avx2_fma()))",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    isa, has_avx2 = r.stdout.split()
    return isa, has_avx2 == "1"


@native_only
def test_isa_environment_variable():
    assert _isa_in_subprocess("baseline")[0] == "baseline"
    assert _isa_in_subprocess("BASELINE")[0] == "baseline"  # case-insensitive
    isa, has_avx2 = _isa_in_subprocess("avx2")
    assert isa == ("avx2+fma" if has_avx2 else "baseline")


@native_only
def test_a_cpu_without_avx2_gets_the_baseline_loops():
    """What the dispatcher picks from the CPU's features (fa_pick_isa, the function
    fa_set_isa runs on cpuid's answer): a pre-AVX2 x86-64 (or an AVX-512 flag without
    AVX2+FMA) gets the portable loops under every cap; AVX2+FMA and AVX-512 CPUs get theirs
    when this build has them (FASTACT_AVX2=0: never)."""
    from fastact import _activations as ext

    for cap in ("avx512", "avx2", "baseline"):
        assert ext.pick_isa(cap, False, False) == "baseline"
        assert ext.pick_isa(cap, False, True) == "baseline"
    fast = ext.avx2_compiled()
    assert ext.pick_isa("baseline", True, True) == "baseline"
    assert ext.pick_isa("avx2", True, True) == ("avx2+fma" if fast else "baseline")
    assert ext.pick_isa("avx512", True, False) == ("avx2+fma" if fast else "baseline")
    assert ext.pick_isa("avx512", True, True) == ("avx512" if fast else "baseline")
    # and this CPU got what its features say (under the cap FASTACT_ISA sets)
    cap = {"auto": "avx512", "avx512": "avx512", "avx2": "avx2", "baseline": "baseline"}[
        os.environ.get("FASTACT_ISA", "auto").lower()
    ]
    assert ext.get_isa() == ext.pick_isa(cap, ext.cpu_has_avx2_fma(), ext.cpu_has_avx512())


# ---- the command line (skipped until fastact/cli.py exists) -------------------------


def _cli_env():
    return dict(os.environ)


def _check_info_output(out):
    for key in ("fastact", "backend", "numpy", "BLAS (numpy)"):
        assert any(ln.startswith(key) for ln in out.splitlines()), (key, out)
    assert fastact.__version__ in out
    if not PURE:
        assert "SIMD path in use" in out and "OpenMP" in out


def test_python_m_fastact_info():
    pytest.importorskip("fastact.cli")
    r = subprocess.run(
        [sys.executable, "-m", "fastact", "info"],
        env=_cli_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    _check_info_output(r.stdout)


def test_cli_main_info(capsys):
    cli = pytest.importorskip("fastact.cli")
    rc = cli.main(["info"])
    assert rc in (0, None)
    _check_info_output(capsys.readouterr().out)


def test_cli_info_takes_no_arguments(capsys):
    from fastact import cli

    assert cli.main(["info", "bogus"]) == 2
    assert "fastact info: error: unexpected arguments ['bogus']" in capsys.readouterr().err
    assert cli.main(["info", "--help"]) == 0
    assert capsys.readouterr().out.startswith("usage: fastact info")


def test_fastact_console_script_info():
    pytest.importorskip("fastact.cli")
    exe = shutil.which("fastact")
    if exe is None:
        pytest.skip("the `fastact` console script is not installed (reinstall the package)")
    r = subprocess.run([exe, "info"], env=_cli_env(), capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    _check_info_output(r.stdout)


def test_cli_unknown_command_fails():
    pytest.importorskip("fastact.cli")
    r = subprocess.run(
        [sys.executable, "-m", "fastact", "no-such-command"],
        env=_cli_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode != 0
