"""`fastact bench`: runs, prints the summary columns, saves JSON (timings are not checked)."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from fastact import _peers as peers
from fastact import bench as fb


def test_bench_quick_json_and_markdown(tmp_path, capsys):
    path = tmp_path / "b.json"
    assert (
        fb.main(
            [
                "--quick",
                "--only",
                "relu,sigmoid",
                "--sizes",
                "1e3",
                "--rounds",
                "1",
                "--no-torch",
                "--json",
                str(path),
                "--markdown",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "smallest speed-up vs NumPy" in out and "call overhead, 16 elements" in out
    assert "| relu |" in out
    data = json.loads(path.read_text())
    assert data["n_threads"] == 1 and data["dtype"] == "float32"
    rows = data["rows"]
    assert [(r["activation"], r["direction"]) for r in rows] == [
        ("relu", "fwd"),
        ("relu", "bwd"),
        ("sigmoid", "fwd"),
        ("sigmoid", "bwd"),
    ]
    for r in rows:
        assert r["n"] == 1000 and r["bytes"] == (8000 if r["direction"] == "fwd" else 12000)
        for k in ("fastact_us", "numpy_us", "copy_us", "vs_numpy", "GB_per_s", "copy_fraction"):
            assert r[k] > 0
        assert "vs_torch" not in r
    assert set(data["call_overhead_ns"]) >= {"np.tanh(x, out=y)", "fastact.relu(x, out=y)"}


def test_bench_rejects_unknown_names(capsys):
    with pytest.raises(SystemExit):
        fb.main(["--only", "nope"])
    assert "unknown activation(s) ['nope']" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv, msg",
    [
        (["--threads", "0"], "fastact bench: error: --threads: n_threads=0 is not allowed"),
        (["--rounds", "0"], "fastact bench: error: --rounds must be >= 1; got 0"),
        (["--rounds", "-1"], "fastact bench: error: --rounds must be >= 1; got -1"),
        (["--nn", "--rounds", "0"], "fastact bench --nn: error: --rounds must be >= 1; got 0"),
        (["--sizes", "-5"], "argument --sizes: '-5' is not a whole count of elements >= 1"),
        (["--sizes", "inf"], "argument --sizes: 'inf' is not a whole count of elements >= 1"),
        (["--sizes", "1.5"], "argument --sizes: '1.5' is not a whole count of elements >= 1"),
        (["--sizes", "x"], "argument --sizes: 'x' is not a number"),
        (["--sizes", ","], "argument --sizes: ',' holds no size"),
        (
            ["--sizes", "1e20", "--only", "relu"],
            "fastact bench: error: --sizes: 1e+20 elements of float32 need about 2.24e+12 GiB",
        ),
        (
            ["--sizes", "1e3", "--json", "no/such/folder/x.json"],
            "fastact bench: error: --json 'no/such/folder/x.json': the folder ",
        ),
        (
            ["--nn", "--json", "no/such/folder/x.json"],
            "fastact bench --nn: error: --json 'no/such/folder/x.json': the folder ",
        ),
        (["--json", "."], "fastact bench: error: --json '.' is a directory; give a file name"),
        (["--nn", "--threads", "0"], "fastact bench --nn: error: --threads: n_threads=0"),
        (
            ["--nn", "--variants", "dropout+dropout"],
            "fastact bench --nn: error: variant 'dropout+dropout' repeats a part or joins",
        ),
        (
            ["--nn", "--variants", "plain+batchnorm"],
            "fastact bench --nn: error: variant 'plain+batchnorm' repeats a part or joins 'plain'",
        ),
        (
            ["--nn", "--variants", "batchnorm+dropout,dropout+batchnorm"],
            "error: variants 'batchnorm+dropout' and 'dropout+batchnorm' are the same network",
        ),
    ],
)
def test_bench_argument_errors_are_usage_errors(argv, msg, capsys):
    with pytest.raises(SystemExit) as e:
        fb.main(argv)
    assert e.value.code == 2 and msg in capsys.readouterr().err


def test_bench_with_torch_has_the_torch_columns():
    pytest.importorskip("torch")
    rows = fb.run((1000,), np.float32, 1, ["tanh"], 1, out=None)
    assert all(r["vs_torch"] > 0 for r in rows)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_every_peer_computes_what_fastact_computes(dtype):
    """The peers of the benchmarks compute the same function (else the timings lie)."""
    calls = {"scipy": peers.scipy_calls(), "roofline": None}
    for mod in ("numexpr", "torch"):
        if peers.available(mod):
            calls[mod] = getattr(peers, mod + "_calls")()
    for name in fb.NUMPY_EXPRESSIONS:
        x, g, s = fb.make_inputs(name, 1000, dtype)
        ff, bb = fb.fastact_calls(1)[name]
        want = (ff(x), bb(g, s))
        peer_calls = [(p, c.get(name, (None, None))) for p, c in calls.items() if c]
        peer_calls.append(("numpy", fb.NUMPY_EXPRESSIONS[name]))
        for peer, fns in peer_calls:
            for fn, args, w in zip(fns, ((x,), (g, s)), want):
                if fn is None:
                    continue
                with np.errstate(all="ignore"):
                    got = fn(*args)
                assert got.dtype == dtype and got.shape == x.shape, (peer, name)
                np.testing.assert_allclose(got, w, rtol=2e-3, atol=2e-3, err_msg=f"{peer} {name}")


# ---- `fastact bench --nn`: the lower bound and the thread clock --------------------------


@pytest.mark.skipif(
    __import__("fastact").PUREPYTHON, reason="FASTACT_PUREPYTHON=1: no native engine"
)
def test_bench_nn_bound_and_thread_clock(tmp_path, capsys):
    path = tmp_path / "nn.json"
    argv = ["--nn", "--depths", "2", "--width", "16", "--batch", "8", "--activations", "tanh"]
    argv += ["--variants", "plain,batchnorm+dropout", "--rounds", "1", "--no-torch"]
    argv += ["--no-reference", "--bound", "--clock", "thread", "--json", str(path)]
    assert fb.main(argv) == 0
    out = capsys.readouterr().out
    assert "(thread CPU time)" in out and "bound/gemm" in out
    data = json.loads(path.read_text())
    assert data["clock"] == "thread"
    rows = data["rows"]
    assert [r["variant"] for r in rows] == ["plain", "batchnorm+dropout"]
    for r in rows:
        parts = r["gemm_ms"] + r["kernels_ms"] + r["update_ms"]
        assert r["bound_ms"] == pytest.approx(parts)
        assert r["bound_vs_gemm"] == pytest.approx(parts / r["gemm_ms"])
        assert r["vs_bound"] == pytest.approx(r["fastact_ms"] / parts)


@pytest.mark.skipif(
    __import__("fastact").PUREPYTHON, reason="FASTACT_PUREPYTHON=1: no native engine"
)
def test_bench_nn_quick_keeps_explicit_options_and_takes_negative_threads(tmp_path, capsys):
    """--quick sets the depths and activations only when they are not given (it replaced
    them); --threads -1 means all usable cores, as in `fastact bench` (it was refused)."""
    path = tmp_path / "nn.json"
    argv = ["--nn", "--quick", "--depths", "3", "--activations", "gelu", "--variants"]
    argv += ["plain", "--width", "16", "--batch", "8", "--rounds", "1", "--no-torch"]
    argv += ["--no-reference", "--threads", "-1", "--json", str(path)]
    assert fb.main(argv) == 0
    data = json.loads(path.read_text())
    assert [(r["depth"], r["activation"]) for r in data["rows"]] == [(3, "gelu")]
    assert data["threads"] == __import__("fastact")._validate.usable_cores()
    assert data["machine"]["backend"] == "native"


def test_bench_nn_clock_errors(capsys):
    from fastact.nn import bench as nb

    with pytest.raises(ValueError, match="clock must be 'wall' or 'thread'; got 'cpu'"):
        nb.run([2], ["relu"], ["plain"], 8, 4, 1, clock="cpu")
    with pytest.raises(ValueError, match="clock='thread' counts only the calling thread"):
        nb.run([2], ["relu"], ["plain"], 8, 4, 1, threads=2, clock="thread")
    if __import__("fastact")._validate.usable_cores() < 2:
        return  # (--threads 2 is one thread here)
    with pytest.raises(SystemExit):
        fb.main(["--nn", "--clock", "thread", "--threads", "2"])
    assert "--clock thread counts only the calling thread: use --threads 1" in (
        capsys.readouterr().err
    )


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_torch_out_calls_write_into_out(dtype):
    """PyTorch's out= overloads (fastact bench --out) compute what its allocating calls do,
    into the given array; None where PyTorch has no out= overload."""
    pytest.importorskip("torch")
    alloc = peers.torch_calls()
    for name in fb.NUMPY_EXPRESSIONS:
        x, g, s = fb.make_inputs(name, 1000, dtype)
        o = np.empty_like(x)
        outs = peers.torch_out_calls(o)[name]
        for fn, ref, args in zip(outs, alloc[name], ((x,), (g, s))):
            if fn is None:
                continue
            got = fn(*args)
            assert got is o, name
            np.testing.assert_allclose(o, ref(*args), rtol=1e-6, atol=1e-7, err_msg=name)


def test_bench_out_and_thread_clock_json(tmp_path):
    pytest.importorskip("torch")
    path = tmp_path / "o.json"
    argv = ["--only", "gelu,prelu", "--sizes", "1e3", "--rounds", "1", "--out"]
    assert fb.main(argv + ["--clock", "thread", "--json", str(path)]) == 0
    data = json.loads(path.read_text())
    assert data["out"] is True and data["clock"] == "thread"
    assert "fastact bench --only gelu,prelu" in data["command"]
    if __import__("fastact").PUREPYTHON:
        assert data["machine"]["fastact_isa"] == "none (NumPy twin)"
        assert data["machine"]["backend"] == "reference"
    else:
        assert data["machine"]["fastact_isa"] in ("avx512", "avx2+fma", "baseline")
    torch_out = {(r["activation"], r["direction"]): r["torch_out"] for r in data["rows"]}
    assert torch_out == {
        ("gelu", "fwd"): True,
        ("gelu", "bwd"): True,
        ("prelu", "fwd"): False,
        ("prelu", "bwd"): False,
    }


def test_bench_nn_refuses_candidates_that_train_another_network():
    """`fastact bench --nn` checks each candidate's first loss against fastact's before
    timing (the docs said so; nothing checked): a wrong step is an error, not a speed-up."""
    from fastact.nn import bench as nb

    nb._check_first_losses({"fastact": 2.5, "numpy": 2.5000001, "gemm": None}, "plain")
    with pytest.raises(
        RuntimeError,
        match=re.escape(
            "bench --nn: numpy's first loss 102.5 is not fastact's 2.5 (plain): the "
            "candidates do not train the same network, so their times say nothing."
        ),
    ):
        nb._check_first_losses({"fastact": 2.5, "numpy": 102.5}, "plain")
    # with dropout the NumPy and PyTorch steps draw their own masks; the twin does not
    nb._check_first_losses({"fastact": 2.5, "numpy": 2.9, "torch": 2.8}, "dropout")
    with pytest.raises(RuntimeError, match="reference's first loss 3.0 is not fastact's"):
        nb._check_first_losses({"fastact": 2.5, "reference": 3.0}, "batchnorm+dropout")


def test_bench_nn_in_pure_mode_is_a_usage_error(capsys, monkeypatch):
    """The --nn rows time the native engine against its GEMMs; the twin has neither (it
    crashed with NotImplementedError)."""
    monkeypatch.setattr(__import__("fastact"), "PUREPYTHON", True)
    with pytest.raises(SystemExit) as e:
        fb.main(["--nn", "--quick"])
    assert e.value.code == 2
    assert (
        "fastact bench --nn: error: --nn times the native engine, which "
        "FASTACT_PUREPYTHON=1 leaves out; run it without." in capsys.readouterr().err
    )


def test_out_of_memory_is_a_usage_error(capsys, monkeypatch):
    """--width 1000000 raised NumPy's _ArrayMemoryError as a traceback."""
    from fastact.cli import main
    from fastact.lab import sweep

    def run(*a, **k):
        raise MemoryError("Unable to allocate 7.28 TiB")

    monkeypatch.setattr(sweep, "run", run)
    assert main(["lab", "--activations", "relu", "--depths", "2", "--width", "1000000"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(
        "fastact lab: error: out of memory (Unable to allocate 7.28 TiB); use smaller sizes (--width, --batch, --depths)."
    )
