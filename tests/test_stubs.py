"""The type stubs of the compiled modules (fastact/_activations.pyi, fastact/_nn.pyi).

Editors and type checkers read the signatures of fastact._activations and fastact._nn
from these stubs, so they must ship next to the extensions (with fastact/py.typed) and
name exactly what the compiled modules export, with the same parameters.  The
introspection test needs nothing but the built extensions; mypy's stubtest (in the
[test] extra) checks the types too.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import os
import site
import subprocess
import sys
from pathlib import Path

import pytest

COMPILED = ("fastact._activations", "fastact._nn")
# Cython's own module attributes: not part of the interface
CYTHON_NAMES = {"__test__", "__reduce_cython__", "__setstate_cython__"}


def _module(name):
    try:
        return importlib.import_module(name)
    except ImportError:  # pragma: no cover - a pure-Python install without the build
        pytest.skip(f"{name} is not built")


def _stub(mod):
    path = Path(mod.__file__).with_name(mod.__name__.rpartition(".")[2] + ".pyi")
    assert path.is_file(), f"{path.name} does not ship next to {Path(mod.__file__).name}"
    return ast.parse(path.read_text(encoding="utf-8"))


def _stub_names(body):
    """{name: node} of a stub's module or class body (functions, classes, annotated names)."""
    out = {}
    for node in body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            out[node.name] = node
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            out[node.target.id] = node
    return out


def _params(node):
    a = node.args
    names = [p.arg for p in a.posonlyargs + a.args + a.kwonlyargs]
    return names[1:] if names and names[0] == "self" else names


def _runtime_public(mod):
    return {n for n, v in vars(mod).items() if not n.startswith("_") and not inspect.ismodule(v)}


@pytest.mark.parametrize("name", COMPILED)
def test_stub_names_match_the_module(name):
    mod = _module(name)
    stub = _stub_names(_stub(mod).body)
    public_stub = {n for n in stub if not n.startswith("_")}
    runtime = _runtime_public(mod)
    fix = f" (update fastact/{name.rpartition('.')[2]}.pyi, the module's type stub)"
    assert public_stub == runtime, (
        f"{name}: in the module, not the stub: {sorted(runtime - public_stub)}; "
        f"in the stub, not the module: {sorted(public_stub - runtime)}" + fix
    )
    for n in sorted(runtime):
        obj, node = getattr(mod, n), stub[n]
        if inspect.isclass(obj):
            assert isinstance(node, ast.ClassDef), f"{name}.{n} is a class"
            members = _stub_names(node.body)
            public = {m for m in vars(obj) if not m.startswith("_")}
            assert {m for m in members if not m.startswith("_")} == public, f"{name}.{n}{fix}"
            for m in sorted(public):
                attr = inspect.getattr_static(obj, m)
                if callable(attr) and not isinstance(attr, property):
                    expected = list(inspect.signature(attr).parameters)[1:]  # self
                    assert _params(members[m]) == expected, f"{name}.{n}.{m}{fix}"
        elif callable(obj):
            assert isinstance(node, ast.FunctionDef), f"{name}.{n} is a function"
            assert _params(node) == list(inspect.signature(obj).parameters), f"{name}.{n}{fix}"
        else:
            assert isinstance(node, ast.AnnAssign), f"{name}.{n} is a value"


def test_package_is_typed():
    import fastact

    assert (Path(fastact.__file__).parent / "py.typed").is_file()


def test_mypy_stubtest(tmp_path):
    """mypy's stubtest: the stubs' types against the compiled modules (when mypy is there).

    It runs without an allowlist and must report Cython's own attributes and nothing
    else: so the test also sees that stubtest found and checked both modules.
    """
    pytest.importorskip("mypy.stubtest")
    for name in COMPILED:
        _module(name)
    import fastact

    root = str(Path(fastact.__file__).parent.parent)
    config = tmp_path / "mypy.ini"
    # the package's own modules are not annotated: only the stubs are under test
    config.write_text(
        "[mypy]\nignore_missing_imports = True\n[mypy-fastact.*]\nignore_errors = True\n"
    )
    env = dict(os.environ, MYPY_CACHE_DIR=str(tmp_path / "c"))
    norm = lambda p: os.path.normcase(os.path.realpath(p))
    if norm(root) not in {norm(p) for p in site.getsitepackages() + [site.getusersitepackages()]}:
        # a source tree (built in place); an installed package is found as installed,
        # through its py.typed (mypy refuses site-packages on MYPYPATH)
        env.update(PYTHONPATH=root, MYPYPATH=root)
    proc = subprocess.run(
        [sys.executable, "-m", "mypy.stubtest", *COMPILED, "--concise"]
        + ["--mypy-config-file", str(config)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=600,
    )
    lines = proc.stdout.splitlines()
    reported = {line.split()[0] for line in lines if line.strip()}
    expected = {f"{m}.{n}" for m in COMPILED for n in CYTHON_NAMES}
    assert reported and reported <= expected, proc.stdout + proc.stderr
    assert all(line.endswith("is not present in stub") for line in lines), proc.stdout
