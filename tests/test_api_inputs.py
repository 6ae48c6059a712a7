"""What users coming from scikit-learn or torchvision hand the Python API: every input either works
or is a one-line imagina error naming the argument, before anything trains (no raw numpy, sklearn
or torch traceback, no silent wrong result)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_digits

from imagina.core.errors import InvalidInputError, check_int
from imagina.core.evaluation import EvalConfig, Experiment, smoke_setup
from imagina.core.pipeline import AugmentConfig, Augmenter


@pytest.fixture(scope="module")
def digits():
    d = load_digits()
    return (d.images[:90] * 255 / 16).astype(np.uint8), d.target[:90] % 3  # (n, 8, 8) grey, 3 classes


def test_grey_images_without_a_channel_axis_are_held_as_nhwc(digits):
    """(n, H, W) images met the generator's (n, H, W, 1) output in the dose and failed after training."""
    X, y = digits
    modality, config, _ = smoke_setup("image")
    aug = Augmenter(modality, config, progress=False).fit((X, y))
    assert aug.data_.X.shape == (90, 8, 8, 1) and X.shape == (90, 8, 8)  # the caller's array is untouched


def test_the_proof_takes_pairs_and_matches_the_test_images_channels(digits):
    X, y = digits
    modality, config, evaluation = smoke_setup("image")
    rgb = np.repeat(X[:30, ..., None], 3, axis=-1)
    exp = Experiment(modality, config, evaluation, progress=False).fit((X[30:], y[30:]), (rgb, y[:30]))
    assert exp.test_.X.shape == (30, 8, 8, 1) and exp.train_.X.ndim == 4


@pytest.mark.parametrize("labels", [[None] + [0, 1, 2] * 29 + [0, 1], np.r_[np.nan, (np.arange(89) % 3).astype(float)]])
def test_missing_labels_are_refused(digits, labels):
    X, _ = digits
    with pytest.raises(InvalidInputError, match=r"missing label\(s\) \(None or NaN\), the first at position 0"):
        Augmenter("image", AugmentConfig(steps=2), progress=False).fit((X, labels))


def test_images_of_different_sizes_are_named(digits):
    X, y = digits
    with pytest.raises(InvalidInputError, match="different sizes"):
        Augmenter("image", AugmentConfig(steps=2), progress=False).fit(([np.pad(X[0], 1), *X[1:]], y))


@pytest.mark.parametrize("make", [
    lambda: AugmentConfig(dose="auto"),
    lambda: AugmentConfig(screen={}),
    lambda: Augmenter("image", {"steps": 2}),
    lambda: EvalConfig(seeds=0),
    lambda: EvalConfig(seeds=(-1,)),
    lambda: EvalConfig(synthetic_shares=0.5),
    lambda: EvalConfig(tune_classifier="no"),
    lambda: Experiment("image", eval_config={"seeds": (0,)}),
])
def test_settings_of_the_wrong_type_are_refused_at_once(make):
    with pytest.raises(InvalidInputError):
        make()


def test_generator_settings_of_the_wrong_kind(digits):
    from imagina.image import ConditionalDCGAN, DCGANConfig

    X, y = digits
    with pytest.raises(InvalidInputError, match="must be a DCGANConfig"):
        ConditionalDCGAN({"steps": 2})
    with pytest.raises(InvalidInputError, match="image_size"):
        DCGANConfig(image_size=20)
    with pytest.raises(InvalidInputError, match="`channels` is 3 but the images have 1"):
        ConditionalDCGAN(DCGANConfig(steps=1, channels=3), device="cpu").fit(X, y, progress=False)


def test_loaders_read_paths_and_name_what_else_to_do():
    from imagina.audio import load_audio
    from imagina.image import load_images
    from imagina.text import load_texts

    for load, items in ((load_images, np.zeros((3, 8, 8), np.uint8)), (load_texts, ["a b", "c d"]),
                        (load_audio, np.zeros((3, 100), np.float32))):
        with pytest.raises(InvalidInputError, match=r"`source` must be a path .*Augmenter.fit"):
            load(items)
    with pytest.raises(InvalidInputError, match="per_class"):
        load_images("digits", per_class="5")


def test_numpy_integers_are_ints():
    assert check_int("n", np.int64(3)) == 3 and type(check_int("n", np.int64(3))) is int
    assert AugmentConfig(per_class=np.int64(5)).per_class == 5
    with pytest.raises(InvalidInputError):
        check_int("n", np.bool_(True))


def test_clips_given_as_arrays_take_the_generators_sample_rate():
    """(X, y) arrays carry no rate: the generator's stands for it, so files are not written at 8 kHz."""
    t = np.arange(4096) / 16000
    X = np.stack([0.5 * np.sin(2 * np.pi * f * t) for f in [300.0] * 6 + [900.0] * 6]).astype(np.float32)
    y = np.repeat(["a", "b"], 6)
    modality, config, _ = smoke_setup("audio")
    aug = Augmenter(modality, config, generator_options={"sample_rate": 16000}, progress=False).fit((X, y))
    assert modality.sample_rate(aug.data_.meta) == 16000
