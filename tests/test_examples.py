"""The scripts in ``examples/`` run as their docstrings say, in their ``--smoke`` mode (seconds each),
on tiny generated data or scikit-learn's digits: an example that rots is a broken promise."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from audio_factories import write_dataset
from text_factories import make_texts

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _run(script: str, *args: str, cwd: Path) -> str:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, str(EXAMPLES / script), "--smoke", *args], env=env, capture_output=True,
                          text=True, timeout=300, cwd=cwd)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout + proc.stderr


def _steps(out: Path) -> int:
    return json.loads((out / "run.json").read_text())["generator"]["config"]["steps"]


def test_image_example_smoke(tmp_path):
    log = _run("image_augmentation.py", "--out", str(tmp_path / "out"), cwd=tmp_path)
    assert (tmp_path / "out" / "report.md").is_file() and "(a) real" in log
    assert _steps(tmp_path / "out") == 2


def test_text_example_smoke(tmp_path):
    X, y = make_texts(12)
    seen: dict[str, int] = {}
    rows = {"train": ["text\tlabel"], "test": ["text\tlabel"]}
    for t, c in zip(X, y):  # 8 per class to train on, 4 to test on
        seen[c] = seen.get(c, 0) + 1
        rows["train" if seen[c] <= 8 else "test"].append(f"{t}\t{c}")
    for split, lines in rows.items():
        (tmp_path / f"{split}.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    log = _run("text_augmentation.py", "--data", "train.tsv", "--test", "test.tsv", "--out", "out", cwd=tmp_path)
    assert (tmp_path / "out" / "report.md").is_file() and "TF-IDF" in log
    assert _steps(tmp_path / "out") == 2


def test_audio_example_smoke(tmp_path):
    write_dataset(tmp_path / "clips", n_per_class=3)
    log = _run("audio_augmentation.py", "--data", "clips", "--split", "", "--real-per-class", "3", "--out", "out", cwd=tmp_path)
    assert (tmp_path / "out" / "report.md").is_file() and "report:" in log
    assert _steps(tmp_path / "out") == 2
