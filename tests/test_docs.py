"""The API reference: every public name has a numpydoc docstring whose Examples run.

What "public" means here (and so what the API reference documents):

- the names in ``__all__`` of the public modules (PUBLIC_MODULES below), except the
  constants (ACTIVATIONS, INITS, PRESETS, ...) and the submodules, which carry no
  docstring of their own;
- the public methods and properties of the public classes: the ones defined in
  fastact itself (not inherited from object or scikit-learn), not starting with "_".

Every such object is checked twice:

1. its docstring's Examples run as doctests (NORMALIZE_WHITESPACE | ELLIPSIS, NumPy's
   print options pinned); they print rounded values, so they pass on every SIMD path
   (FASTACT_ISA) and under FASTACT_PUREPYTHON=1, as CI runs this file in each mode;
2. numpydoc.validate.validate passes the checks in CHECKS (skipped when numpydoc is
   not installed; it is in the [test] extra): a summary line, the Parameters matching
   the signature, a Returns section where the function returns, allowed sections in
   order, and for the module-level names an Examples section.

A "twin" (an object of fastact.reference whose docstring says it is the NumPy twin of
a native object, e.g. fastact.reference.dense_forward) may point at the native
object's docstring instead: it needs a summary naming that object, which must be
documented; the methods of a twin class are the native class's.
"""

from __future__ import annotations

import doctest
import importlib
import inspect
import io
import re

import numpy as np
import pytest

import fastact

PUBLIC_MODULES = (
    "fastact",
    "fastact.nn",
    "fastact.nn.init",
    "fastact.optim",
    "fastact.reference",
    "fastact.lab",
    "fastact.sklearn",
)

# numpydoc.validate error codes every public docstring must be free of
CHECKS = {
    "GL06",  # an unknown section
    "GL07",  # sections out of order
    "GL08",  # no docstring
    "SS01",  # no summary
    "PR01",  # a parameter of the signature not documented
    "PR02",  # a documented parameter not in the signature
    "PR03",  # parameters documented in another order
    "RT01",  # a function that returns something has no Returns section
}
# and the module-level names (functions and classes) must have an Examples section
CHECKS_TOP = CHECKS | {"EX01"}

TWIN = re.compile(r"NumPy twin of (fastact(?:\.\w+)+)")

DOCTEST_FLAGS = doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS


def _module(name):
    if name == "fastact.sklearn":
        pytest.importorskip("sklearn")
    return importlib.import_module(name)


def _target(value):
    """The function behind a method-like class attribute (for identity), or None."""
    if isinstance(value, property):
        return value.fget
    if isinstance(value, (classmethod, staticmethod)):
        return value.__func__
    if inspect.isfunction(value):
        return value
    fn = getattr(value, "fn", None)  # scikit-learn's available_if descriptor
    if inspect.isfunction(fn):
        return fn
    return None


def public_objects():
    """[(import path, object, top-level?)], each distinct object once (its first path)."""
    seen = set()
    found = []

    def add(path, obj, top):
        if id(obj) in seen:
            return False
        seen.add(id(obj))
        found.append((path, obj, top))
        return True

    for modname in PUBLIC_MODULES:
        try:
            mod = _module(modname)
        except pytest.skip.Exception:
            continue
        for name in mod.__all__:
            obj = getattr(mod, name)
            if not (inspect.isclass(obj) or callable(obj)) or inspect.ismodule(obj):
                continue  # constants and submodules
            path = f"{modname}.{name}"
            if not add(path, obj, True) or not inspect.isclass(obj):
                continue
            done = set()  # an attribute once: the one the class resolves it to
            for klass in obj.__mro__:
                if not klass.__module__.startswith("fastact"):
                    continue
                for attr, value in vars(klass).items():
                    fn = _target(value)
                    if attr.startswith("_") or attr in done or fn is None:
                        continue
                    done.add(attr)
                    add(f"{path}.{attr}", fn, False)
    return found


PUBLIC = public_objects()
PATHS = [p for p, _, _ in PUBLIC]


def test_public_names_are_found():
    # the registry-made activation functions, the networks, the lab and the estimators
    for name in ("fastact.gelu", "fastact.gelu_backward", "fastact.MLP", "fastact.MLP.fit"):
        assert name in PATHS
    assert "fastact.lab.run" in PATHS and "fastact.optim.Adam" in PATHS
    assert len(PATHS) >= 150


@pytest.fixture
def pinned_numpy(tmp_path, monkeypatch):
    """NumPy's print options at their defaults, a scratch working directory, the
    thread default restored: an example that writes files or pins threads leaves
    nothing behind."""
    monkeypatch.chdir(tmp_path)
    pinned = fastact._V.pinned_threads()
    with np.printoptions(
        precision=8, threshold=1000, edgeitems=3, linewidth=75, suppress=False, legacy=False
    ):
        yield
    fastact.set_num_threads(pinned)


@pytest.mark.parametrize("path", PATHS)
def test_examples_run(path, pinned_numpy):
    obj = dict((p, o) for p, o, _ in PUBLIC)[path]
    finder = doctest.DocTestFinder(recurse=False)
    runner = doctest.DocTestRunner(optionflags=DOCTEST_FLAGS)
    report = io.StringIO()
    for test in finder.find(obj, path, module=False, globs={}):
        runner.run(test, out=report.write)
    assert runner.failures == 0, report.getvalue()


def _resolve(path):
    """The object at a dotted path: the longest importable module, then attributes."""
    parts = path.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for attr in parts[i:]:
            obj = getattr(obj, attr)
        return obj
    raise ImportError(path)


def _in_reference(path, obj):
    return path.startswith("fastact.reference.") or (
        getattr(obj, "__module__", "") == "fastact.reference"
    )


def _twin_target(doc):
    m = TWIN.search(" ".join((doc or "").split()[:40]))
    return m.group(1) if m else None


@pytest.mark.parametrize("path", PATHS)
def test_docstring_is_valid_numpydoc(path):
    validate = pytest.importorskip("numpydoc.validate")
    obj, top = {p: (o, t) for p, o, t in PUBLIC}[path]
    owner = _resolve(path.rpartition(".")[0])
    if not top and _in_reference(path, owner) and _twin_target(inspect.getdoc(owner)):
        return  # a method of a twin class: documented on the native class
    doc = inspect.getdoc(obj)
    assert doc, f"{path} has no docstring"
    twin = (
        _twin_target(doc)
        if path.startswith("fastact.reference.")
        or (getattr(obj, "__module__", "") == "fastact.reference")
        else None
    )
    if twin is not None:
        # a twin's docstring points at the native object, which must be documented
        assert inspect.getdoc(_resolve(twin)), f"{path} points at {twin}, undocumented"
        return
    result = validate.validate(path)
    checks = CHECKS_TOP if top else CHECKS
    errors = [f"{code}: {msg}" for code, msg in result["errors"] if code in checks]
    assert not errors, f"{path}:\n" + "\n".join(errors)


# ---- what the docstrings promise that no other test checked --------------------------------


@pytest.mark.parametrize("mod", [fastact, fastact.reference], ids=["fastact", "reference"])
def test_networks_refuse_what_is_not_a_list_of_layers(mod):
    from fastact.nn import Dense, Residual

    with pytest.raises(
        TypeError, match=re.escape("Sequential: layers must be a list of layer objects; got 5.")
    ):
        mod.Sequential(5, n_in=3)
    with pytest.raises(
        TypeError, match=re.escape("Residual: layers must be a list of layer objects; got 5.")
    ):
        Residual(5)
    with pytest.raises(TypeError, match=re.escape("Residual: 'relu' is not a layer (Dense, ")):
        Residual([Dense(3), "relu"])


@pytest.mark.parametrize("mod", [fastact, fastact.reference], ids=["fastact", "reference"])
def test_batchnorm_running_statistics_must_be_arrays(mod):
    x, g, b = np.zeros((4, 3)), np.ones(3), np.zeros(3)
    with pytest.raises(
        TypeError,
        match=re.escape(
            "batchnorm_forward: running_mean must be a NumPy array (updated in place in "
            "training); got list."
        ),
    ):
        mod.batchnorm_forward(
            x, g, b, training=True, running_mean=[0.0] * 3, running_var=np.ones(3)
        )


def test_partial_fit_only_with_a_stochastic_solver():
    pytest.importorskip("sklearn")
    from fastact.sklearn import MLPClassifier, MLPRegressor

    for cls in (MLPClassifier, MLPRegressor):
        assert hasattr(cls(solver="adam"), "partial_fit")
        assert not hasattr(cls(solver="lbfgs"), "partial_fit")
