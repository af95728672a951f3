"""docs/gen_performance.py: the benchmark files under docs/bench/ become the performance
page's tables and the README's headline table (the docs build runs it; these tests keep
its reading tolerant of the three file kinds and of missing optional keys)."""

import importlib.util
import json
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "docs" / "gen_performance.py"
if not SCRIPT.exists():
    pytest.skip("docs/ is not beside the tests (installed package)", allow_module_level=True)

spec = importlib.util.spec_from_file_location("gen_performance", SCRIPT)
gp = importlib.util.module_from_spec(spec)
spec.loader.exec_module(gp)

KERNELS = {
    "machine": {"cpu": "Some CPU", "cores": 2, "numpy": "2.4", "fastact": "0.1.0"},
    "dtype": "float32",
    "n_threads": 1,
    "rounds": 5,
    "rows": [
        {"activation": a, "n": n, "direction": d, "fastact_us": 10.0, "vs_numpy": 2.5}
        for a in ("sigmoid", "relu")
        for n in (10_000, 100_000)
        for d in ("fwd", "bwd")
    ],
}
NN = {
    "machine": {"cpu": "Some CPU", "simd_path": "avx2"},
    "threads": 1,
    "rows": [
        {
            "depth": 2,
            "width": 64,
            "batch": 64,
            "activation": "tanh",
            "variant": "plain",
            "fastact_ms": 0.05,
            "vs_gemm": 1.5,
            "vs_numpy": 2.0,
            "vs_torch": 5.0,
        },
    ],
}
PYTEST = {
    "machine_info": {"cpu": {"brand_raw": "Some CPU"}, "python_version": "3.11"},
    "datetime": "2026-01-01T00:00:00",
    "benchmarks": [
        {"group": "fit digits", "params": {"impl": "fastact"}, "stats": {"median": 0.1}},
        {"group": "fit digits", "params": {"impl": "sklearn"}, "stats": {"median": 0.3}},
    ],
}


@pytest.fixture
def bench_dir(tmp_path):
    for name, data in [("k.json", KERNELS), ("nn.json", NN), ("pb.json", PYTEST)]:
        (tmp_path / name).write_text(json.dumps(data))
    (tmp_path / "broken.json").write_text("{not json")
    (tmp_path / "other.json").write_text(json.dumps({"rows": [{"x": 1}]}))
    return tmp_path


def test_every_kind_is_read_and_the_rest_skipped(bench_dir, capsys):
    runs = gp.load(bench_dir)
    assert sorted(r["kind"] for r in runs) == ["kernels", "nn", "pytest"]
    err = capsys.readouterr().err
    assert "broken.json" in err and "other.json" in err


def test_tables_name_machine_date_and_settings(bench_dir):
    text = gp.tables_markdown(gp.load(bench_dir))
    assert "Some CPU" in text and "SIMD path avx2" in text
    assert "date not recorded" in text and "2026-01-01" in text
    assert "| sigmoid | 10 µs / 10 µs | 10 µs / 10 µs |" in text
    assert "2.50x / 2.50x" in text  # x NumPy; no PyTorch column without PyTorch rows
    assert "PyTorch's time over" not in text.split("### Training")[0]
    assert "| fit digits | 100 ms | 300 ms (3.00x) |" in text


def test_headline_table_and_readme_markers(bench_dir, tmp_path):
    table = gp.headline_markdown(gp.load(bench_dir))
    assert "`sigmoid` forward / backward, 1e5 float32 | 2.50x / 2.50x | - / -" in table
    assert "training step, 2 x 64 tanh MLP, batch 64 | 2.00x | 5.00x" in table
    readme = f"intro\n{gp.README_BEGIN}\nold\n{gp.README_END}\noutro\n"
    new = gp.readme_with_table(readme, table)
    assert new.startswith("intro\n") and new.endswith("outro\n") and table in new
    assert gp.readme_with_table(new, table) == new
    with pytest.raises(ValueError, match="no headline-table markers"):
        gp.readme_with_table("no markers", table)


def test_no_files_gives_a_note_not_an_error(tmp_path):
    assert "No benchmark files" in gp.tables_markdown(gp.load(tmp_path))
    assert "no benchmark files" in gp.headline_markdown([])


def test_fields_of_newer_bench_files(tmp_path):
    """`fastact bench` files that record the SIMD path, date, clock and out= in other keys."""
    data = dict(KERNELS, out=True, clock="thread")
    data["machine"] = dict(KERNELS["machine"], fastact_isa="avx2", date="2026-12-01T12:00:00Z")
    (tmp_path / "k.json").write_text(json.dumps(data))
    text = gp.tables_markdown(gp.load(tmp_path))
    assert "SIMD path avx2" in text and "2026-12-01T12:00:00Z" in text
    assert "clock: thread" in text and "preallocated `out=`" in text
