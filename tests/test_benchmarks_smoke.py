"""The durable benchmarks run in their ``--smoke`` mode (tiny sizes, seconds), as a user would."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import shared_data

from imagina.core.runtime import limit_threads, usable_cores

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def _run(script: str, *args: str) -> list[str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, str(BENCHMARKS / script), *args], env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip().splitlines()


def test_prdc_compare_smoke():
    lines = _run("prdc_compare.py", "--smoke")
    rows = [json.loads(line) for line in lines if line.startswith("{")]
    ours = next(r for r in rows if r.get("arm") == "imagina")
    assert ours["n"] == 300 and 0 <= ours["precision"] <= 1 and ours["peak_rss_mb"] > 0
    theirs = [r for r in rows if r.get("arm") == "prdc"]
    if theirs:  # prdc installed: both arms agree
        assert next(r for r in rows if "max_abs_diff" in r)["max_abs_diff"] < 1e-6
    else:
        assert any(line.startswith("prdc is not installed") for line in lines)


def test_screen_scaling_smoke():
    (line,) = _run("screen_scaling.py", "--smoke")
    row = json.loads(line)
    assert row["candidates"] == 3000 and row["kept"] <= 10 * 20
    assert row["peak_rss_mb"] > 0 and row["threads"] == 1


@pytest.fixture
def _restore_threads():
    from threadpoolctl import threadpool_limits

    before = torch.get_num_threads()
    with threadpool_limits(limits=None):  # restores the BLAS / OpenMP pools on exit
        yield
    torch.set_num_threads(before)


@pytest.mark.usefixtures("_restore_threads")
def test_limit_threads_respects_affinity_and_omp_num_threads(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2}, raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert usable_cores() == 3
    torch.set_num_threads(8)
    assert limit_threads() == 3 and torch.get_num_threads() == 3
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    assert limit_threads() == 2 and torch.get_num_threads() == 2
    assert limit_threads(max_threads=1) == 1 and torch.get_num_threads() == 1
    monkeypatch.setenv("OMP_NUM_THREADS", "bogus")  # ignored, as OpenMP itself would
    assert limit_threads() == 3 and torch.get_num_threads() == 1  # only lowers, never raises


@pytest.mark.usefixtures("_restore_threads")
def test_one_blas_thread_caps_openblas_inside_the_block_only():
    from threadpoolctl import threadpool_info, threadpool_limits

    from imagina.core.runtime import one_blas_thread

    def blas() -> list[int]:
        return [p["num_threads"] for p in threadpool_info() if p["internal_api"] in ("openblas", "blis")]

    if not blas():
        pytest.skip("numpy here has no OpenBLAS / BLIS pool to cap")
    threadpool_limits(limits={"blas": 2})
    outside = blas()
    torch_threads = torch.get_num_threads()
    with one_blas_thread():
        assert blas() == [1] * len(outside)
        assert torch.get_num_threads() == torch_threads  # torch's pools are not touched
    assert blas() == outside


def test_dcgan_step_smoke():
    row = json.loads("\n".join(_run("dcgan_step.py", "--smoke", "--threads", "1")))
    assert row["steps"] == 2 and row["batch"] == 8
    assert row["plain_images_per_s"] > 0 and row["imagina_images_per_s"] > 0


def test_gpu_check_smoke_on_the_cpu(tmp_path):
    """The prepared GPU script runs every section; CPU against CPU, its checks must find exact equality."""
    out = tmp_path / "gpu.json"
    _run("gpu_check.py", "--smoke", "--device", "cpu", "--modalities", "image,text", "--json", str(out))
    res = json.loads(out.read_text())
    for name in ("image", "text"):
        r = res[name]
        assert all("error" not in r[k] for k in ("first_step", "sampling", "screen", "pipeline")), r
        assert r["first_step"]["match"] and set(r["first_step"]["abs_diff"].values()) == {0.0}
        assert r["sampling"]["match"] and r["screen"]["decisions_agree"] == 1.0
        assert r["pipeline"]["generator_steps"] == 4 and r["pipeline"]["verdict"] in ("use", "don't use")
    (mfu,) = res["dcgan_mfu"]
    assert mfu["gflop_per_step"] > 0 and mfu["step_ms"] > 0


@pytest.mark.slow
def test_digits_default_smoke(tmp_path):
    row = json.loads("\n".join(_run("digits_default.py", "--smoke", "--out", str(tmp_path / "digits"))))
    assert sorted(row["kept_per_class"]) == [str(d) for d in range(10)] and row["wall_s"] > 0
    assert "fit_generator_s" in row["timings"]


def _smoke_summary(script: str, dataset: str, out: Path) -> dict:
    """``script --smoke`` on ../shared/data/``dataset`` (skipped when absent): its summary.json."""
    _run(script, "--smoke", "--data", str(shared_data(dataset)), "--out", str(out))
    return json.loads((out / "summary.json").read_text())


@pytest.mark.slow
@pytest.mark.shared_data
def test_audio_fsdd_smoke(tmp_path):
    summary = _smoke_summary("audio_fsdd.py", "fsdd", tmp_path)
    assert summary["augment"]["generator"]["steps"] == 2
    assert summary["evaluation_fit"]["real"] + summary["evaluation_fit"]["validation"] == 50
    assert "real" in summary["evaluation"]["conditions"] and (tmp_path / "evaluation.md").exists()


@pytest.mark.slow
@pytest.mark.shared_data
def test_text_trec_smoke(tmp_path):
    summary = _smoke_summary("text_trec.py", "trec", tmp_path)
    assert summary["evaluation_augment"]["real"] + summary["evaluation_augment"]["validation"] == 60
    assert "real" in summary["evaluation"]["conditions"] and summary["tfidf_logreg"]["real"] > 0


@pytest.mark.slow
def test_image_run_smoke(tmp_path):
    row = json.loads(_run("image_run.py", "--smoke", "--n", "40", "--threads", "1", "--out", str(tmp_path / "run"))[-1])
    assert row["generator_steps"] == 2 and row["threads"] == "1" and row["wall_s"] > 0
    assert row["kept"] <= row["candidates"] and set(row) >= {"generator", "embedder", "generation", "screen"}


@pytest.mark.slow
def test_verdict_draws_smoke(tmp_path):
    out = tmp_path / "v"
    lines = _run("verdict_draws.py", "--smoke", "--out", str(out), "--json", str(tmp_path / "rows.json"))
    rows = json.loads((tmp_path / "rows.json").read_text())
    assert [r["draw"] for r in rows] == ["digits:5:0"] and rows[0]["classifier"] == "LeNet"
    assert rows[0]["outcome"] in {"won", "lost", "protected", "missed gain", "no clear effect"}
    steps = json.loads((out / "digits_k5_s0" / "commands.json").read_text())
    assert steps["augment"]["exit"] == 0 and steps["outside_view"]["exit"] == 0
    assert any("On top of classical augmentation" in line for line in lines)
    again = _run("verdict_draws.py", "--smoke", "--out", str(out))  # read back, not rerun
    assert json.loads((out / "digits_k5_s0" / "commands.json").read_text()) == steps and again[-1] == lines[-1]
    # the held-out classifiers judge the same output: augment is not run again
    held = _run("verdict_draws.py", "--smoke", "--out", str(out), "--classifiers", "heldout", "--json", str(tmp_path / "h.json"))
    rows = json.loads((tmp_path / "h.json").read_text())
    assert [r["classifier"] for r in rows] == ["pixels-RF", "EffNet-LR"] and rows[0]["output_vs_classical"] is not None
    after = json.loads((out / "digits_k5_s0" / "commands.json").read_text())
    assert after["augment"] == steps["augment"] and after["outside_view_heldout"]["exit"] == 0
    assert (out / "digits_k5_s0" / "outside_heldout.json").exists() and "output − classical" in held[0]


def test_verdict_draws_tally_rules():
    """A "use" that cost most seeds on top of classical is "lost"; a "don't use" whose best tried dose
    would have helped most seeds is a "missed gain"; a split vote is "no clear effect"."""
    sys.path.insert(0, str(BENCHMARKS))
    try:
        import verdict_draws
    finally:
        sys.path.remove(str(BENCHMARKS))

    def diff(mean, wins, losses):
        return {"mean": mean, "std": 1.0, "wins": wins, "losses": losses}

    def result(verdict, on_classical, on_real, balanced=None):
        names = ("classical+dose − real+classical", "real+dose − real") if verdict == "use" else \
            ("classical+best tried − real+classical", "best tried − real")
        diffs = {names[0]: on_classical, names[1]: on_real}
        scores = {"accuracy": {"diffs": diffs}}
        if balanced is not None:
            scores["balanced"] = {"diffs": {names[0]: balanced, names[1]: on_real}}
        return {"recommendation": {"verdict": verdict, "ratio": 2.0}, "seeds": [0, 1, 2, 3, 4],
                "synthetic": {"best_tried_ratio": 2.0}, "classifiers": {"c": scores}}

    lost = verdict_draws.tally("d", result("use", diff(-2.0, 1, 4), diff(+1.0, 3, 2)))[0]
    assert (lost["outcome"], lost["outcome_on_real"]) == ("lost", "won")
    missed = verdict_draws.tally("d", result("don't use", diff(+1.5, 4, 1), diff(-0.5, 2, 3)))[0]
    assert (missed["outcome"], missed["outcome_on_real"]) == ("missed gain", "protected")
    split = verdict_draws.tally("d", result("don't use", diff(+0.4, 2, 2), diff(-0.4, 2, 2)))[0]
    assert split["outcome"] == split["outcome_on_real"] == "no clear effect"
    assert split["outcome_balanced"] is None and "balanced accuracy" not in verdict_draws.markdown([split])
    # a gain in plain accuracy that balanced accuracy does not share: judged apart, both reported
    prior = verdict_draws.tally("d", result("don't use", diff(+3.0, 4, 1), diff(+3.0, 4, 1), diff(-0.6, 1, 4)))[0]
    assert (prior["outcome"], prior["outcome_balanced"]) == ("missed gain", "protected")
    assert "on balanced accuracy (mean per-class recall): protected 1." in verdict_draws.markdown([prior, split])
    # a "use" under check_rule "sign" whose network interval did not clear zero is the default rule's "don't use"
    signed = result("use", diff(+1.5, 4, 1), diff(+1.0, 3, 2))
    signed["recommendation"]["check"] = {"rule": "sign", "lift": 0.03, "low": -0.01, "high": 0.07}
    row = verdict_draws.tally("d", signed)[0]
    assert (row["outcome"], row["verdict_interval"], row["outcome_interval"]) == ("won", "don't use", "missed gain")
    assert "Under the default check rule" in verdict_draws.markdown([row, lost])
    assert lost["outcome_interval"] == "lost" and "Under the default" not in verdict_draws.markdown([lost])
    with pytest.raises(SystemExit, match="DATA:K:SEED"):
        verdict_draws.parse_draw("trec:50")
