"""Augmentations for audio, all drawing randomness from a caller's :class:`torch.Generator`.

* :class:`SpecDiffAugment`: differentiable time shift and time / frequency masking of normalised
  spectrograms ``(B, 1, F, W)``, applied to every batch the SpecGAN discriminator sees
  (DiffAugment, Zhao et al. 2020, with SpecAugment's masks, Park et al. 2019).
* Classical waveform augmentation for the reference classifier, on batches ``(B, T)``: time shift
  without wrap-around, additive white noise at a signal-to-noise ratio, speed perturbation
  (resampling by a factor, which moves pitch and tempo together, Ko et al. 2015) and SpecAugment
  masks applied through the STFT. Ranges are kept small enough that a 0.4 s digit stays a digit.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from imagina.core.gan import PolicyAugment

Augment = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


def _uniform(rng: torch.Generator, n: int, lo: float, hi: float, device: torch.device) -> torch.Tensor:
    return (torch.rand(n, generator=rng) * (hi - lo) + lo).to(device)


def _band_mask(rng: torch.Generator, n: int, size: int, max_width: int, device: torch.device) -> torch.Tensor:
    """(n, size) bool: one random band of width 0..max_width per row."""
    width = torch.randint(0, max_width + 1, (n, 1), generator=rng)
    start = (torch.rand(n, 1, generator=rng) * (size - width + 1)).long()
    pos = torch.arange(size)[None]
    return ((pos >= start) & (pos < start + width)).to(device)


# --------------------------------------------------------------------------- spectrogram DiffAugment
def spec_time_shift(x: torch.Tensor, rng: torch.Generator, ratio: float = 0.125) -> torch.Tensor:
    """Shift each spectrogram (B, C, F, W) in time by up to ``ratio``·W frames, filling with its minimum."""
    B, C, Fq, W = x.shape
    s = max(1, int(W * ratio + 0.5))
    shift = torch.randint(-s, s + 1, (B, 1), generator=rng).to(x.device)
    src = torch.arange(W, device=x.device)[None] - shift                     # (B, W)
    valid = (src >= 0) & (src < W)
    idx = src.clamp(0, W - 1)[:, None, None, :].expand(B, C, Fq, W)
    floor = x.amin(dim=(1, 2, 3), keepdim=True)
    return torch.where(valid[:, None, None, :], x.gather(3, idx), floor)


def spec_time_mask(x: torch.Tensor, rng: torch.Generator, ratio: float = 0.25) -> torch.Tensor:
    """Blank one band of up to ``ratio``·W frames per spectrogram (set to its minimum)."""
    B, _, _, W = x.shape
    mask = _band_mask(rng, B, W, int(W * ratio), x.device)[:, None, None, :]  # (B, 1, 1, W)
    return torch.where(mask, x.amin(dim=(1, 2, 3), keepdim=True), x)


def spec_freq_mask(x: torch.Tensor, rng: torch.Generator, ratio: float = 0.125) -> torch.Tensor:
    """Blank one band of up to ``ratio``·F frequency bins per spectrogram (set to its minimum)."""
    B, _, Fq, _ = x.shape
    mask = _band_mask(rng, B, Fq, int(Fq * ratio), x.device)[:, None, :, None]  # (B, 1, F, 1)
    return torch.where(mask, x.amin(dim=(1, 2, 3), keepdim=True), x)


SPEC_POLICIES: dict[str, Augment] = {"time_shift": spec_time_shift, "time_mask": spec_time_mask, "freq_mask": spec_freq_mask}


class SpecDiffAugment(PolicyAugment):
    """Apply a comma-separated policy of :data:`SPEC_POLICIES` (``""`` turns it off)."""

    functions = SPEC_POLICIES
    default_policy = "time_shift,time_mask,freq_mask"


# --------------------------------------------------------------------------- waveform augmentation
def time_shift(max_fraction: float) -> Augment:
    """Shift each clip (B, T) by up to ±``max_fraction``·T samples, zero-filled (no wrap-around)."""

    def apply(x: torch.Tensor, rng: torch.Generator) -> torch.Tensor:
        B, T = x.shape
        s = int(T * max_fraction)
        shift = torch.randint(-s, s + 1, (B, 1), generator=rng).to(x.device)
        src = torch.arange(T, device=x.device)[None] - shift
        valid = (src >= 0) & (src < T)
        return torch.where(valid, x.gather(1, src.clamp(0, T - 1)), torch.zeros((), device=x.device))

    return apply


def add_noise(snr_db_low: float, snr_db_high: float) -> Augment:
    """Add white noise at an SNR drawn uniformly in [low, high] dB per clip (signal power from the clip)."""

    def apply(x: torch.Tensor, rng: torch.Generator) -> torch.Tensor:
        B, T = x.shape
        snr = _uniform(rng, B, snr_db_low, snr_db_high, x.device)[:, None]
        power = x.pow(2).mean(dim=1, keepdim=True)
        noise = torch.randn(B, T, generator=rng).to(x.device)
        return x + noise * torch.sqrt(power / 10 ** (snr / 10))

    return apply


def speed(low: float, high: float) -> Augment:
    """Resample each clip by a factor in [low, high] (linear interpolation; > 1 plays faster and
    higher), keeping the length T (cropped or zero-padded at the end)."""

    def apply(x: torch.Tensor, rng: torch.Generator) -> torch.Tensor:
        B, T = x.shape
        factor = _uniform(rng, B, low, high, x.device)[:, None]              # (B, 1)
        pos = torch.arange(T, device=x.device)[None] * factor                 # source sample of each output
        grid_x = pos / (T - 1) * 2 - 1                                        # [-1, 1] inside the clip
        grid = torch.stack([grid_x, torch.zeros_like(grid_x)], dim=-1)[:, None]  # (B, 1, T, 2)
        out = F.grid_sample(x[:, None, None, :], grid, mode="bilinear", padding_mode="zeros", align_corners=True)
        return out[:, 0, 0]

    return apply


def spec_augment(time_fraction: float, freq_fraction: float, n_fft: int = 256, hop_length: int = 64) -> Augment:
    """SpecAugment on waveforms: one time band (≤ ``time_fraction`` of the clip) and one frequency band
    (≤ ``freq_fraction`` of the bins) zeroed in the STFT, then resynthesised with the original phase."""

    def apply(x: torch.Tensor, rng: torch.Generator) -> torch.Tensor:
        B, T = x.shape
        window = torch.hann_window(n_fft, device=x.device)
        S = torch.stft(x, n_fft, hop_length, window=window, return_complex=True)  # (B, F, W)
        Fq, W = S.shape[1:]
        keep = ~(_band_mask(rng, B, W, int(W * time_fraction), x.device)[:, None, :]
                 | _band_mask(rng, B, Fq, int(Fq * freq_fraction), x.device)[:, :, None])
        return torch.istft(S * keep, n_fft, hop_length, window=window, length=T)

    return apply


def compose(*augments: Augment) -> Augment:
    """Apply several augmentations in order."""

    def apply(x: torch.Tensor, rng: torch.Generator) -> torch.Tensor:
        for a in augments:
            x = a(x, rng)
        return x

    return apply


def classical_candidates() -> dict[str, Augment]:
    """Candidate classical settings for the reference classifier, from mild to strong. The core
    picks one on a validation split. Shifts stay within ±10 % of a clip (no wrap-around)."""
    return {
        "shift ±10%": time_shift(0.10),
        "noise SNR 20-30 dB": add_noise(20.0, 30.0),
        "speed 0.9-1.1": speed(0.9, 1.1),
        "SpecAugment t10% f10%": spec_augment(0.10, 0.10),
        "shift ±10% + speed 0.9-1.1 + SpecAugment t10% f10%": compose(time_shift(0.10), speed(0.9, 1.1), spec_augment(0.10, 0.10)),
    }
