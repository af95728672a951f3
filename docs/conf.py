"""Sphinx configuration of fastact's documentation.

    make docs        # = python -m sphinx -W --keep-going -b html docs docs/_build/html

fastact must be importable: installed (`pip install -e ".[docs]"`) or built in place
(`python setup.py build_ext --inplace`) and the build run from the checkout's root.
The build runs the gallery (examples/) and writes the performance tables from
docs/bench/*.json (gen_performance.py); any warning fails it.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(DOCS))  # gen_performance

try:
    import fastact
except ImportError:  # an in-place build in the checkout, sphinx started elsewhere
    sys.path.insert(0, str(ROOT))
    import fastact

import gen_performance  # noqa: E402  (docs/ is on sys.path from above)

# the gallery's figures without a display; its timings on one thread (quiet CI logs)
os.environ.setdefault("MPLBACKEND", "Agg")

project = "fastact"
author = "the fastact developers"
copyright = "the fastact developers"
release = fastact.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "numpydoc",
    "myst_parser",
    "sphinx_gallery.gen_gallery",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = [
    "_build",
    "_generated",
    "_templates",
    "bench",
    "auto_examples/*.ipynb",
    "auto_examples/*.py",
    "auto_examples/*.zip",
    "auto_examples/*.md5",
    "auto_examples/*.json",
]
templates_path = ["_templates"]

# -- MyST ------------------------------------------------------------------------------
myst_enable_extensions = ["colon_fence", "deflist", "dollarmath"]
myst_heading_anchors = 3

# -- autodoc, autosummary, numpydoc -----------------------------------------------------
autosummary_generate = True
autosummary_imported_members = False
autodoc_typehints = "none"  # numpydoc's Parameters sections say the types
autodoc_preserve_defaults = True  # dtype=np.float32 as written, not <class ...>
autodoc_member_order = "bysource"
numpydoc_show_class_members = False  # the class template lists the members
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False
# No numpydoc validation checks: optional sections (See Also, Notes, ...) are not
# required, so a docstring without them is no warning.
numpydoc_validation_checks: set[str] = set()

# -- sphinx-gallery ----------------------------------------------------------------------
sphinx_gallery_conf = {
    "examples_dirs": str(ROOT / "examples"),
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",  # every example runs; they are named plot_*.py
    "within_subsection_order": "FileNameSortKey",
    "download_all_examples": False,
    "remove_config_comments": True,
    "abort_on_example_error": True,
    "only_warn_on_example_error": False,
    "show_memory": False,
    "plot_gallery": "True",
    "image_scrapers": ("matplotlib",),
    "matplotlib_animations": False,
    "min_reported_time": 0,
    "doc_module": (),
    "backreferences_dir": None,
    "first_notebook_cell": None,
}

# -- HTML ------------------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"fastact {release}"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "header_links_before_dropdown": 6,
    "secondary_sidebar_items": ["page-toc"],
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
}
html_sidebars = {"index": [], "install": [], "changelog": []}
html_static_path: list[str] = []
html_show_sourcelink = False


def _performance_tables(app):
    """Write _generated/performance_tables.md from bench/*.json (performance.md includes
    it) and warn, failing a -W build, when README.md's headline table is out of date."""
    from sphinx.util import logging

    gen_performance.write_tables()
    if not gen_performance.readme_is_current():
        logging.getLogger(__name__).warning(
            "README.md's headline table does not match docs/bench/*.json: run "
            "python docs/gen_performance.py --readme"
        )


PUBLIC_MODULES = (
    "fastact",
    "fastact.nn",
    "fastact.optim",
    "fastact.lab",
    "fastact.sklearn",
    "fastact.reference",
)


def _documented_names() -> set[str]:
    """Fully qualified names the API pages document: autosummary entries (under their
    ``currentmodule``) and the ````fastact.X```` constants described in prose."""
    import re

    names = set()
    for page in sorted((DOCS / "api").glob("*.rst")):
        module, in_autosummary = "fastact", False
        for line in page.read_text().splitlines():
            m = re.match(r"\.\. currentmodule:: (\S+)", line)
            if m:
                module = m.group(1)
            if line.startswith(".. "):
                in_autosummary = line.startswith(".. autosummary::")
            elif line and not line.startswith(" "):
                in_autosummary = False
            elif in_autosummary and re.match(r"   [A-Za-z_]\w*$", line):
                names.add(f"{module}.{line.strip()}")
            names.update(re.findall(r"``(fastact(?:\.\w+)+)``", line))
    return names


def _check_api_coverage(app):
    """Warn (failing a -W build) for a public name that no API page lists: every name in
    the ``__all__`` of the public modules, documented under its own module or under
    another name of the same object (fastact.nn.MLP is fastact.MLP)."""
    import importlib

    from sphinx.util import logging

    documented = _documented_names()
    objects = set()
    for fqn in documented:
        mod, _, attr = fqn.rpartition(".")
        try:
            obj = getattr(importlib.import_module(mod), attr)
        except (ImportError, AttributeError):
            logging.getLogger(__name__).warning(f"docs/api lists {fqn}, which does not exist")
            continue
        if callable(obj):
            objects.add(id(obj))
    for modname in PUBLIC_MODULES:
        mod = importlib.import_module(modname)
        for name in mod.__all__:
            obj = getattr(mod, name)
            if type(obj).__name__ == "module" or f"{modname}.{name}" in documented:
                continue
            if callable(obj) and id(obj) in objects:
                continue
            logging.getLogger(__name__).warning(
                f"{modname}.{name} is public but no page of docs/api lists it"
            )


def _skip_member(app, what, name, obj, skip, options):
    """Leave out scikit-learn's generated metadata-routing setters (set_fit_request, ...):
    their docstrings are scikit-learn's, with references into its own documentation."""
    if name.startswith("set_") and name.endswith("_request"):
        return True
    return None


def setup(app):
    app.connect("builder-inited", _performance_tables)
    app.connect("builder-inited", _check_api_coverage)
    app.connect("autodoc-skip-member", _skip_member)
