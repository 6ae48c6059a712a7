"""End-to-end: the text modality through the core Augmenter, export, and (on TREC) a smoke run."""

from pathlib import Path

import numpy as np
import pytest
from text_factories import TINY_VAE, make_texts

from imagina.core.modality import LabeledData
from imagina.text import MODALITY, distinct_n, self_bleu

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.mark.slow
def test_augment_export_tiny(tmp_path):
    from imagina.core.pipeline import AugmentConfig, Augmenter

    X, y = make_texts(10)
    options = {k: v for k, v in TINY_VAE.items() if k != "steps"}
    aug = Augmenter(MODALITY, AugmentConfig(per_class=4, oversample=2.0, steps=3, device="cpu", top_up_rounds=0),
                    generator_options=options, progress=False)
    result = aug.fit(LabeledData(X, y)).augment()
    assert len(result.labels) == 24 and set(result.screen.scores) >= {"words", "ngram_overlap", "fluency"}
    out = result.export(tmp_path / "out")
    assert (out / "manifest.csv").is_file() and (out / "model" / "tokenizer.json").is_file()
    if result.keep.any():
        assert (out / "samples" / "samples.csv").is_file()
    # distinct-n and self-BLEU of real, candidate and kept sets, in run.json and report.md
    stats = result.metrics["set_statistics"]
    assert set(stats) == {"real", "candidates"} | ({"kept"} if result.keep.any() else set())
    assert stats["real"]["distinct-2"] == pytest.approx(distinct_n(X, 2))
    assert stats["candidates"]["self-BLEU"] == pytest.approx(self_bleu(result.candidates))
    report = (out / "report.md").read_text(encoding="utf-8")
    assert "| set | distinct-1 | distinct-2 | self-BLEU |" in report
    assert f"kl_per_token {result.generator.diagnostics_['kl_per_token']:.3f}" in report  # collapse is visible
    # the sentences themselves, per class, with the reason of each rejection
    assert "Examples per class:" in report
    rows = [f"“{' '.join(result.candidates[i].split())}” | {r} |" for i, r in enumerate(result.screen.reasons) if r]
    assert sum(row in report for row in rows) >= min(len(rows), 1)


@pytest.mark.slow
@pytest.mark.shared_data
def test_trec_smoke(tmp_path):
    path = DATA / "trec" / "train.tsv"
    if not path.is_file():
        pytest.skip(f"shared data absent: {path}")
    data = MODALITY.load(str(path), per_class=20, seed=0)
    assert len(data) == 120 and sorted(np.unique(data.y)) == ["ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM"]
    vae = MODALITY.make_generator(steps=30, seed=0, device="cpu")
    vae.fit(data.X, data.y, progress=False)
    X, y = vae.sample(12, seed=0)
    assert len(X) == 12 and set(y) == set(np.unique(data.y))
    checks = MODALITY.sanity(X, y, generator=vae, real=data)
    assert len(checks.reasons) == 12 and "fluency" in checks.scores
    test = MODALITY.load(str(DATA / "trec" / "test.tsv"))
    assert len(test) == 500 - int(test.report.to_dict()["dropped"])


@pytest.mark.slow
def test_cli_augment_text(tmp_path):
    from imagina.core.cli import main

    X, y = make_texts(8)
    path = tmp_path / "d.tsv"
    path.write_text("cls\tsentence\n" + "".join(f"{c}\t{t}\n" for t, c in zip(X, y, strict=True)), encoding="utf-8")
    code = main(["augment", "text", "--data", str(path), "--text-column", "sentence", "--label-column", "cls",
                 "--out", str(tmp_path / "out"), "--steps", "2", "--per-class", "3", "--device", "cpu", "--quiet"])
    assert code == 0
    assert (tmp_path / "out" / "model" / "tokenizer.json").is_file()
    bad = main(["augment", "text", "--data", str(path), "--text-column", "nope", "--out", str(tmp_path / "o2"),
                "--steps", "2", "--device", "cpu", "--quiet"])
    assert bad == 2 and not (tmp_path / "o2").exists()
