"""The generator contract, the same for every modality (tiny data, a handful of steps)."""

from __future__ import annotations

import numpy as np
import pytest
from image_factories import make_images

from imagina.core.errors import NotFittedError
from imagina.core.generator import load_model


def image_case():
    from imagina.image.model import ConditionalDCGAN, DCGANConfig

    X, y = make_images()
    return ConditionalDCGAN(DCGANConfig(steps=3, batch_size=8, base_channels=8, latent_dim=8, ema_decay=0.0, lr_g=0.02, lr_d=0.02), device="cpu"), X, y


def text_case():
    from text_factories import TINY_VAE, make_texts

    from imagina.text.model import ConditionalSeqVAE, SeqVAEConfig

    X, y = make_texts()
    return ConditionalSeqVAE(SeqVAEConfig(**TINY_VAE), device="cpu"), X, y


def audio_case():
    from audio_factories import make_tones

    from imagina.audio.model import ConditionalSpecGAN, SpecGANConfig

    X, y = make_tones(4)
    cfg = SpecGANConfig(steps=3, batch_size=4, base_channels=4, latent_dim=8, n_fft=64, griffin_lim_iters=2, ema_decay=0.0)
    return ConditionalSpecGAN(cfg, device="cpu"), X, y


CASES = {"image": image_case, "text": text_case, "audio": audio_case}


def _equal(a, b) -> bool:
    if isinstance(a, np.ndarray):
        return a.shape == b.shape and bool(np.array_equal(a, b))
    return list(a) == list(b)


@pytest.fixture(params=sorted(CASES))
def case(request):
    return CASES[request.param]()


def test_fit_returns_self_and_does_not_modify_inputs(case):
    model, X, y = case
    X_before = X.copy() if isinstance(X, np.ndarray) else list(X)
    y_before = y.copy()
    assert model.fit(X, y, progress=False) is model
    assert _equal(X, X_before) and np.array_equal(y, y_before)
    assert model.history_ and "step" in model.history_[-1]


def test_sample_before_fit_raises(case):
    model, _, _ = case
    with pytest.raises(NotFittedError, match="not fitted"):
        model.sample(2)


def test_labels_length_and_seed(case):
    model, X, y = case
    model.fit(X, y, progress=False)
    label = np.unique(y)[1]
    Xs, ys = model.sample(5, labels=label, seed=3)
    assert len(Xs) == 5 and ys.tolist() == [label] * 5
    again, _ = model.sample(5, labels=label, seed=3)
    assert _equal(Xs, again)
    other, _ = model.sample(5, labels=label, seed=4)
    assert not _equal(Xs, other)
    _, cycled = model.sample(6)
    assert set(cycled.tolist()) == set(np.unique(y).tolist())


def test_save_load_sample_identical(case, tmp_path):
    model, X, y = case
    model.fit(X, y, progress=False)
    model.save(tmp_path / "m")
    loaded = load_model(tmp_path / "m", device="cpu")
    assert type(loaded) is type(model)
    a, la = model.sample(4, seed=1)
    b, lb = loaded.sample(4, seed=1)
    assert _equal(a, b) and np.array_equal(la, lb)


def test_same_seed_same_model(case):
    model, X, y = case
    model.fit(X, y, progress=False)
    a, _ = model.sample(4, seed=0)
    twin = type(model)(model.config.__class__(**{**model.config.__dict__}), device="cpu")
    b, _ = twin.fit(X, y, progress=False).sample(4, seed=0)
    assert _equal(a, b)
