"""Spectrograms, Griffin-Lim inversion, augmentations and sanity checks on tones and noise."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from audio_factories import make_noise, make_tones

from imagina.audio.augment import (
    SpecDiffAugment,
    add_noise,
    classical_candidates,
    spec_augment,
    speed,
    time_shift,
)
from imagina.audio.features import (
    SpectrogramConfig,
    SpectrogramTransform,
    peak_normalize,
    round_trip,
    spectral_convergence,
    stft_magnitude,
)
from imagina.audio.sanity import audio_sanity
from imagina.core.errors import InvalidInputError, NotFittedError

SMALL = SpectrogramConfig(n_samples=2048, n_fft=64, hop_length=32)


def test_scaled_config_follows_specgan_tiling():
    assert SpectrogramConfig.scaled(16000, 16384).n_fft == 256  # SpecGAN: 256 / 128 at 16 kHz -> 128 x 128
    c = SpectrogramConfig.scaled(16000, 16384)
    assert (c.hop_length, c.shape) == (128, (128, 128))
    c = SpectrogramConfig.scaled(8000, 8192)
    assert (c.n_fft, c.hop_length, c.shape) == (128, 64, (64, 128))
    assert SpectrogramConfig(kind="mel", n_fft=256, hop_length=128, n_mels=64).shape == (64, 64)


def test_transform_shape_range_and_state():
    X, _ = make_tones(3)
    t = SpectrogramTransform(SMALL).fit(X)
    S = t.transform(X)
    assert S.shape == (6, 32, 64) and S.dtype == np.float32
    assert S.min() >= -1 and S.max() <= 1
    # per-frequency-bin normalisation: one mean per bin
    assert np.asarray(t.scaler_.steps[0].mean_).shape == (1, 32, 1)
    t2 = SpectrogramTransform.from_state(t.get_state())
    np.testing.assert_array_equal(t2.transform(X), S)
    with pytest.raises(NotFittedError):
        SpectrogramTransform(SMALL).transform(X)
    with pytest.raises(InvalidInputError, match="must hold 2048 samples"):
        t.transform(X[:, :1000])


@pytest.mark.parametrize("kind", ["linear", "mel"])
def test_griffin_lim_round_trip(kind):
    X, y = make_tones(2)
    cfg = SpectrogramConfig(kind=kind, n_samples=2048, n_fft=128, hop_length=32, n_mels=48, griffin_lim_iters=32)
    t = SpectrogramTransform(cfg).fit(X)
    inv, sc = round_trip(t, X, seed=0)
    assert inv.shape == X.shape and inv.dtype == np.float32
    assert np.abs(inv).max() <= 0.9 + 1e-5 and np.isfinite(inv).all()
    assert sc.shape == (4,) and np.all(sc < (0.35 if kind == "mel" else 0.25))
    # the pitch survives the inversion
    for a, b in zip(X, inv):
        fa, fb = np.argmax(np.abs(np.fft.rfft(a))), np.argmax(np.abs(np.fft.rfft(b)))
        assert abs(int(fa) - int(fb)) <= 3
    # reproducible for a seed, and the global RNG is left alone
    state = torch.random.get_rng_state()
    inv2, _ = round_trip(t, X, seed=0)
    np.testing.assert_array_equal(inv, inv2)
    assert torch.equal(state, torch.random.get_rng_state())


def test_spectral_convergence_and_peak_normalize():
    M = stft_magnitude(make_tones(1)[0], 64, 32)
    assert np.allclose(spectral_convergence(M, M), 0)
    assert np.allclose(spectral_convergence(M, torch.zeros_like(M)), 1)
    w = np.array([[0.0, 2.0, -4.0], [0, 0, 0]], np.float32)
    out = peak_normalize(w, 0.9)
    np.testing.assert_allclose(out[0], [0, 0.45, -0.9])
    assert (out[1] == 0).all()


def test_spec_diffaugment_is_seeded_and_differentiable():
    x = torch.rand(4, 1, 32, 64, requires_grad=True)
    aug = SpecDiffAugment()
    a = aug(x, torch.Generator().manual_seed(0))
    b = aug(x, torch.Generator().manual_seed(0))
    assert torch.equal(a, b) and a.shape == x.shape
    a.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    with pytest.raises(InvalidInputError, match="diffaugment"):
        SpecDiffAugment("time_warp")


@pytest.mark.parametrize("name", list(classical_candidates()))
def test_classical_augmentations_keep_shape_and_are_seeded(name):
    X, _ = make_tones(2)
    x = torch.from_numpy(X)
    aug = classical_candidates()[name]
    a, b = aug(x, torch.Generator().manual_seed(1)), aug(x, torch.Generator().manual_seed(1))
    assert a.shape == x.shape and torch.equal(a, b) and torch.isfinite(a).all()
    assert not torch.equal(a, x)
    assert torch.equal(x, torch.from_numpy(X))  # input untouched


def test_waveform_augmentation_semantics():
    x = torch.zeros(1, 100)
    x[0, 50] = 1.0
    shifted = time_shift(0.1)(x, torch.Generator().manual_seed(0))
    assert shifted.sum() == 1.0 and 40 <= int(shifted.argmax()) <= 60  # moved, not wrapped, not lost
    tone = torch.from_numpy(make_tones(1)[0][:1])
    noisy = add_noise(20.0, 20.0)(tone, torch.Generator().manual_seed(0))
    snr = 10 * torch.log10(tone.pow(2).mean() / (noisy - tone).pow(2).mean())
    assert abs(float(snr) - 20.0) < 1.0
    fast = speed(1.1, 1.1)(tone, torch.Generator())
    f0 = np.argmax(np.abs(np.fft.rfft(tone[0].numpy())))
    f1 = np.argmax(np.abs(np.fft.rfft(fast[0].numpy())))
    assert 1.05 < f1 / f0 < 1.15
    masked = spec_augment(0.0, 0.0)(tone, torch.Generator())
    assert torch.allclose(masked, tone, atol=1e-4)


def test_sanity_flags_silence_noise_and_clipping():
    X, _ = make_tones(2)
    clipped = np.clip(X[:1] * 5, -1, 1)
    items = np.concatenate([X, make_noise(2), np.zeros((1, 2048), np.float32), X[:1] * 1e-4, clipped])
    res = audio_sanity(items)
    kinds = [r.split(":")[0] if r else None for r in res.reasons]
    assert kinds == [None] * 4 + ["noise-like"] * 2 + ["silent", "silent", "clipped"]
    assert set(res.scores) == {"rms_db", "clipped_fraction", "spectral_flatness"}
    assert all(v.shape == (9,) for v in res.scores.values())
