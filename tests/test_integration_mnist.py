"""MNIST from ../shared/data: loading and a short pipeline run (skipped when absent)."""

import numpy as np
import pytest
from conftest import shared_data

from imagina.core.pipeline import AugmentConfig, Augmenter
from imagina.image.data import load_images


@pytest.mark.shared_data
@pytest.mark.slow
def test_mnist_small_pipeline(tmp_path):
    root = shared_data("mnist")
    train = load_images(str(root), per_class=10, seed=0)
    test = load_images(str(root), split="test", clean=False)
    # 10 per class are drawn, then cleaned: every dropped item is accounted for with its reason
    assert len(train) + len(train.report.dropped) == 100 and train.X.shape[1:] == (28, 28, 1)
    assert len(test) == 10000
    result = Augmenter("image", AugmentConfig(per_class=5, steps=20, device="cpu", top_up_rounds=0), progress=False).fit(train).augment()
    assert len(result.labels) == 10 * 15
    assert result.record["screen"]["candidates"] == 150
    out = result.export(tmp_path / "out")
    assert (out / "report.md").exists()
    assert np.isfinite(result.metrics["all_candidates"]["frechet_distance"])
