"""ConditionalSpecGAN: the generator contract on tiny tones (a handful of steps)."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch
from audio_factories import make_tones

from imagina.audio.model import ConditionalSpecGAN, SpecGANConfig, grid_shape
from imagina.core.errors import InvalidInputError, NotFittedError
from imagina.core.gan import ConditionalGANTask, ConditionalGenerator, recalibrate_batchnorm
from imagina.core.generator import load_model

TINY = SpecGANConfig(steps=3, batch_size=4, n_fft=64, base_channels=8, latent_dim=16, label_dim=4, griffin_lim_iters=4)


@pytest.fixture(scope="module")
def fitted():
    X, y = make_tones(3)
    return ConditionalSpecGAN(TINY, device="cpu").fit(X, y, progress=False), X, y


def test_fit_returns_self_and_sets_state(fitted):
    gan, X, y = fitted
    assert gan.classes_.tolist() == ["c0", "c1"]
    assert gan.config.image_size == 32 and gan.config.n_samples == 2048 and gan.config.hop_length == 32
    assert len(gan.history_) >= 1 and {"loss_d", "loss_g"} <= set(gan.history_[-1])
    assert gan.transform_.config.shape == (32, 64)


def test_sample_before_fit():
    with pytest.raises(NotFittedError):
        ConditionalSpecGAN(TINY).sample(2)


def test_sample_shape_dtype_labels_and_seed(fitted):
    gan = fitted[0]
    X, y = gan.sample(5, seed=1)
    assert X.shape == (5, 2048) and X.dtype == np.float32 and np.isfinite(X).all()
    assert y.tolist() == ["c0", "c1", "c0", "c1", "c0"]
    assert np.abs(X).max() <= 0.9 + 1e-5
    X2, _ = gan.sample(5, seed=1)
    np.testing.assert_array_equal(X, X2)
    X3, _ = gan.sample(5, seed=2)
    assert not np.array_equal(X, X3)
    Xc, yc = gan.sample(3, labels="c1", seed=0)
    assert yc.tolist() == ["c1"] * 3
    with pytest.raises(InvalidInputError, match="not a class"):
        gan.sample(2, labels="c9")
    S, _ = gan.sample_spectrograms(2, seed=0)
    assert S.shape == (2, 32, 64) and S.min() >= -1 and S.max() <= 1


def test_same_seed_same_model():
    X, y = make_tones(2)
    a = ConditionalSpecGAN(TINY, device="cpu").fit(X, y, progress=False).sample(3, seed=0)[0]
    b = ConditionalSpecGAN(TINY, device="cpu").fit(X, y, progress=False).sample(3, seed=0)[0]
    np.testing.assert_array_equal(a, b)


def test_save_load_sample_identical(fitted, tmp_path):
    gan = fitted[0]
    gan.save(tmp_path / "m")
    cfg = json.loads((tmp_path / "m" / "config.json").read_text())
    assert cfg["model"] == "ConditionalSpecGAN" and cfg["config"]["n_fft"] == 64
    loaded = load_model(tmp_path / "m", device="cpu")
    assert isinstance(loaded, ConditionalSpecGAN)
    a, ya = gan.sample(4, seed=3)
    b, yb = loaded.sample(4, seed=3)
    np.testing.assert_array_equal(a, b)
    assert ya.tolist() == yb.tolist()


def test_inputs_not_modified():
    X, y = make_tones(2)
    X0, y0 = X.copy(), y.copy()
    ConditionalSpecGAN(dataclasses.replace(TINY, steps=1), device="cpu").fit(X, y, progress=False)
    np.testing.assert_array_equal(X, X0)
    assert y.tolist() == y0.tolist()


def test_mel_and_wgan_gp_variants():
    X, y = make_tones(2)
    cfg = dataclasses.replace(TINY, spectrogram="mel", n_mels=32, loss="wgan-gp", spectral_norm=False, d_steps=2, steps=2)
    gan = ConditionalSpecGAN(cfg, device="cpu").fit(X, y, progress=False)
    assert gan.transform_.config.shape == (32, 64)
    out, _ = gan.sample(2, seed=0)
    assert out.shape == (2, 2048) and np.isfinite(out).all()


def test_bad_inputs():
    X, y = make_tones(2)
    gan = ConditionalSpecGAN(TINY, device="cpu")
    with pytest.raises(InvalidInputError, match=r"waveforms of shape \(n, T\)"):
        gan.fit(X[0], y)
    bad = X.copy()
    bad[1, 5] = np.nan
    with pytest.raises(InvalidInputError, match="NaN or infinite samples in 1 clips"):
        gan.fit(bad, y)
    with pytest.raises(InvalidInputError, match="one label per item"):
        gan.fit(X, y[:-1])
    with pytest.raises(InvalidInputError, match="powers of two"):
        ConditionalSpecGAN(dataclasses.replace(TINY, n_fft=96, hop_length=48), device="cpu").fit(X, y, progress=False)
    with pytest.raises(InvalidInputError, match="`spectrogram` must be one of"):
        SpecGANConfig(spectrogram="cqt")
    with pytest.raises(InvalidInputError, match="diffaugment"):
        SpecGANConfig(diffaugment="color")


def test_grid_shape_and_non_square_networks():
    assert grid_shape((64, 128)) == (64, (4, 8))
    assert grid_shape((128, 64)) == (64, (8, 4))
    assert grid_shape((64, 64)) == (64, (4, 4))
    size, base = grid_shape((32, 64))
    cfg = dataclasses.replace(TINY, image_size=size)
    task = ConditionalGANTask(cfg, 3, base=base)
    z, lab = torch.randn(2, cfg.latent_dim), torch.tensor([0, 2])
    out = task.G(z, lab)
    assert out.shape == (2, 1, 32, 64)
    assert task.D(out, lab)[0].shape == (2,)


def test_batchnorm_recalibration_restores_output_variety():
    cfg = dataclasses.replace(TINY, image_size=32)
    torch.manual_seed(0)
    G = ConditionalGenerator(cfg, 2, (4, 8)).eval()
    z, lab = torch.randn(8, cfg.latent_dim), torch.arange(8) % 2
    with torch.no_grad():
        before = G(z, lab).std(0).mean()
    recalibrate_batchnorm(G, 2, cfg.latent_dim, batches=2, batch_size=8, seed=0)
    with torch.no_grad():
        after = G(z, lab).std(0).mean()
    assert not G.training and after > 5 * before
    state = {k: v.clone() for k, v in G.state_dict().items()}
    recalibrate_batchnorm(G, 2, cfg.latent_dim, batches=2, batch_size=8, seed=0)
    assert all(torch.equal(state[k], v) for k, v in G.state_dict().items())
    assert all(m.momentum == 0.1 for m in G.modules() if isinstance(m, torch.nn.BatchNorm2d))


def test_specgan_with_a_transposed_output_layer_samples_waveforms():
    """``output_layer="transposed"`` works on spectrogram grids too (non-square base)."""
    t = np.arange(2048) / 8000
    X = np.stack([np.sin(2 * np.pi * f * t) for f in (300, 320, 900, 950)]).astype("float32")
    cfg = SpecGANConfig(steps=2, n_fft=64, base_channels=8, output_layer="transposed")
    gan = ConditionalSpecGAN(cfg, device="cpu").fit(X, ["low", "low", "high", "high"], progress=False)
    waves, labels = gan.sample(4, seed=0)
    assert waves.shape == (4, 2048) and gan.generator_.to_out is None
    assert np.isfinite(waves).all() and sorted(set(labels.tolist())) == ["high", "low"]


def test_clips_of_different_lengths_are_a_clear_error():
    from imagina.audio.model import as_waveforms

    with pytest.raises(InvalidInputError, match=r"clips of different lengths \(100 to 300 samples\)"):
        as_waveforms([np.zeros(100, np.float32), np.zeros(300, np.float32)])
    assert as_waveforms([np.zeros(100, np.float32), np.ones(100, np.float32)]).shape == (2, 100)
