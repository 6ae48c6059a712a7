"""Integration on the Free Spoken Digit Dataset (../shared/data/fsdd); skipped when it is absent."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import shared_data

from imagina.audio import MODALITY, round_trip
from imagina.audio.data import load_audio
from imagina.audio.model import ConditionalSpecGAN, SpecGANConfig

PATTERN = "{label}_{speaker}_{index}"


@pytest.mark.shared_data
@pytest.mark.slow
def test_fsdd_splits_and_cleaning():
    root = shared_data("fsdd")
    train = load_audio(root, pattern=PATTERN, split="train", per_class=5, seed=0)
    test = load_audio(root, pattern=PATTERN, split="test")
    assert train.X.shape == (50, 8192) and test.X.shape == (300, 8192)
    assert set(np.unique(test.y, return_counts=True)[1]) == {30}
    assert not set(train.sources) & set(test.sources)
    assert all(int(s.rsplit("_", 1)[1].split(".")[0]) <= 4 for s in test.sources)
    assert all(int(s.rsplit("_", 1)[1].split(".")[0]) >= 5 for s in train.sources)
    assert train.report.dropped == [] and train.meta["sample_rate"] == 8000


@pytest.mark.shared_data
@pytest.mark.slow
def test_fsdd_specgan_smoke_and_round_trip(tmp_path):
    root = shared_data("fsdd")
    data = MODALITY.load(str(root), pattern=PATTERN, split="train", per_class=3, seed=0)
    gan = ConditionalSpecGAN(SpecGANConfig(steps=2, base_channels=8, griffin_lim_iters=8), device="cpu").fit(data.X, data.y, progress=False)
    assert gan.transform_.config.shape == (64, 128)
    X, y = gan.sample(10, seed=0)
    assert X.shape == (10, 8192) and sorted(y.tolist()) == [str(d) for d in range(10)]
    _, sc = round_trip(gan.transform_, data.X[:10], seed=0)
    assert float(sc.mean()) < 0.2
    paths = MODALITY.write_items(tmp_path, X, y, [f"s{i}" for i in range(10)])
    assert all((tmp_path / p).exists() for p in paths)
