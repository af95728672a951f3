"""The code on the documentation pages runs: every ```python block of the user guide and
the getting-started page, in order, one namespace per page.

The pages show the calls, not the data they are called on; PRELUDE gives every page the
same names (X, y and X_test, y_test from scikit-learn's digits; x and w for the kernel
and threading snippets), so what a page says is what runs.  Blocks that a page marks as
shell (```bash) are not run.  The README's tour is run by tests/test_nn.py.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
import pytest

import fastact

DOCS = Path(__file__).resolve().parent.parent / "docs"
PAGES = sorted(
    p
    for p in [*DOCS.glob("*.md"), *DOCS.glob("guide/*.md")]
    if "```python" in p.read_text(encoding="utf-8")
)
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def prelude():
    datasets = pytest.importorskip("sklearn.datasets")
    X_all, y_all = datasets.load_digits(return_X_y=True)
    X_all = (X_all / 16).astype(np.float32)
    rng = np.random.default_rng(0)
    return {
        "np": np,
        "fastact": fastact,
        "X": X_all[:1400],
        "y": y_all[:1400],
        "X_test": X_all[1400:],
        "y_test": y_all[1400:],
        "x": rng.standard_normal((256, 1024), dtype=np.float32),
        "w": rng.standard_normal((1024, 64), dtype=np.float32),
    }


needs_docs = pytest.mark.skipif(
    not (DOCS / "guide").is_dir(), reason="docs/ is not beside the tests (installed package)"
)


@needs_docs
def test_pages_are_found():
    names = {p.name for p in PAGES}
    assert {"getting_started.md", "kernels.md", "networks.md"} <= names


@pytest.mark.parametrize("page", PAGES, ids=[p.stem for p in PAGES])
def test_page_code_runs(page, tmp_path, monkeypatch):
    blocks = BLOCK.findall(page.read_text(encoding="utf-8"))
    assert blocks, page
    if any("fastact.lab" in b for b in blocks):
        pytest.importorskip("matplotlib")
    if any("to_pandas" in b for b in blocks):
        pytest.importorskip("pandas")  # in the [test] extra; LabResult.to_pandas needs it
    monkeypatch.chdir(tmp_path)  # the pages save files (net.npz, r.json, out/)
    ns = prelude()
    pinned = fastact._V.pinned_threads()
    try:
        with warnings.catch_warnings():
            # a page's short fit may stop at max_iter (scikit-learn's ConvergenceWarning):
            # not an error of the page
            warnings.filterwarnings("ignore", message=".*Maximum iterations.*")
            for i, code in enumerate(blocks):
                exec(compile(code, f"{page.name}, block {i + 1}", "exec"), ns)
    finally:
        fastact.set_num_threads(pinned)
