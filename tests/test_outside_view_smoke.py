"""benchmarks/outside_view.py end to end on a tiny augment output (digits, --smoke)."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
ENV_THREADS = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def _run(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, **ENV_THREADS}
    return subprocess.run([sys.executable, *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)


def _add_dose(out: Path) -> int:
    """Put a few real digits, shifted by one pixel, into samples/ and manifest.csv (the smoke generator
    keeps nothing), so that the dose arms differ from real only."""
    from PIL import Image
    from sklearn.datasets import load_digits

    d = load_digits()
    rows = []
    for label in (0, 1, 2):
        folder = out / "samples" / str(label)
        folder.mkdir(parents=True, exist_ok=True)
        for k, i in enumerate(np.flatnonzero(d.target == label)[-3:]):
            img = np.roll((d.images[i] * 255 / 16).astype(np.uint8), 1, axis=1)
            Image.fromarray(img).save(folder / f"x{k}.png")
            rows.append({"path": f"samples/{label}/x{k}.png", "label": str(label), "value": 0.0})
    with open(out / "manifest.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["path", "label", "value"])
        writer.writeheader()
        writer.writerows(rows)
    return len(rows)


def test_outside_view_smoke(tmp_path):
    out = tmp_path / "aug"
    aug = _run(["-m", "imagina", "augment", "image", "--data", "digits", "--real-per-class", "5", "--steps", "2",
                "--per-class", "5", "--smoke", "--quiet", "--out", str(out)], tmp_path)
    assert aug.returncode == 0, aug.stderr
    record = json.loads((out / "run.json").read_text())
    assert record["recommendation"]["verdict"] in ("use", "don't use")
    n_dose = _add_dose(out)

    result_path = tmp_path / "result.json"
    bench = _run([str(REPO / "benchmarks" / "outside_view.py"), "--modality", "image", "--data", "digits",
                  "--test", "digits", "--real-per-class", "5", "--seed", "0", "--output", str(out), "--smoke",
                  "--json", str(result_path)], tmp_path)
    assert bench.returncode == 0, bench.stderr
    result = json.loads(result_path.read_text())
    assert result["real"]["items"] == 50
    assert "per class as run.json: True" in result["real"]["draw_check"]
    assert result["synthetic"]["dose"] == n_dose
    assert result["test_items"] == 1797 - 50                      # digits outside the k-shot draw
    assert result["recommendation"] == record["recommendation"]
    lenet = result["classifiers"]["LeNet"]
    assert lenet["classical"]["setting"].startswith("TrivialAugmentWide")
    arms = lenet["accuracy"]["arms"]
    assert set(arms) == {"real", "real+classical", "real+dose", "real+output", "real+best tried", "real+all kept",
                         "classical+dose", "classical+best tried"}
    views = len(list(csv.DictReader(open(out / "classical.csv")))) if (out / "classical.csv").exists() else 0
    assert result["synthetic"]["classical_views"] == views == record["recommendation"]["classical_views"] * 50
    if not views:  # no classical/: the output is samples/ alone, the same training set as real+dose
        assert arms["real+output"]["per_seed"] == arms["real+dose"]["per_seed"]
    assert all(0.0 <= a["mean"] <= 100.0 and len(a["per_seed"]) == 1 for a in arms.values())
    diff = lenet["accuracy"]["diffs"]["real+dose − real"]
    assert np.isclose(diff["mean"], arms["real+dose"]["mean"] - arms["real"]["mean"])
    assert "| real+dose |" in bench.stdout and "Verdict:" in bench.stdout


def _outside_view():
    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        import outside_view
    finally:
        sys.path.remove(str(REPO / "benchmarks"))
    return outside_view


def test_audio_features_of_a_clip_do_not_depend_on_its_batch():
    """The outside view's MFCCs of a clip are the same alone and beside a louder clip (torchaudio's
    decibel floor is per clip), so adding synthetic clips cannot change a real clip's features."""
    outside_view = _outside_view()
    rng = np.random.default_rng(0)
    t = np.arange(4000) / 8000
    quiet = (0.01 * np.sin(2 * np.pi * 440 * t) + 1e-4 * rng.normal(size=t.size)).astype(np.float32)
    loud = (0.9 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    bench = outside_view.AudioBench(steps=1, sample_rate=8000)
    alone = bench.mfccs(quiet[None])
    beside = bench.mfccs(np.stack([quiet, loud]))
    assert alone.shape == (1, 20, beside.shape[-1]) and beside.shape[0] == 2
    np.testing.assert_allclose(alone[0].numpy(), beside[0].numpy(), rtol=1e-5, atol=1e-4)


def test_feature_cache_embeds_each_distinct_item_once():
    """The held-out pretrained classifiers share features across arms: an item seen before is not
    embedded again, and rows come back in the order asked."""
    outside_view = _outside_view()
    calls = []

    class Lengths:
        def embed(self, items):
            calls.append(list(items))
            return np.array([[len(t), t.count("a")] for t in items], np.float32)

    cache = outside_view.FeatureCache(Lengths(), lambda x: x)
    first = cache(["a", "bb", "a"])
    again = cache(["bb", "ccc", "a"])
    assert calls == [["a", "bb"], ["ccc"]]
    np.testing.assert_array_equal(first, [[1, 1], [2, 0], [1, 1]])
    np.testing.assert_array_equal(again, [[2, 0], [3, 0], [1, 1]])


def test_heldout_image_copies_keep_shape_labels_and_seed():
    """Classical copies for the held-out image classifiers: COPIES per real image, same layout and
    dtype, labels tiled, the same copies for the same seed and different ones for another."""
    outside_view = _outside_view()
    from imagina.core.modality import LabeledData

    rng = np.random.default_rng(0)
    real = LabeledData(rng.integers(0, 256, (6, 16, 16, 1), dtype=np.uint8), np.array(list("aabbcc")))
    bench = outside_view.HeldoutImageBench(steps=1)               # the pretrained encoder loads on first use only
    one, same, other = (bench.expand(real, 1.0, seed) for seed in (0, 0, 1))
    assert one.X.shape == (6 * outside_view.COPIES, 16, 16, 1) and one.X.dtype == np.uint8
    assert list(one.y) == list(real.y) * outside_view.COPIES
    np.testing.assert_array_equal(one.X, same.X)
    assert not np.array_equal(one.X, other.X)
