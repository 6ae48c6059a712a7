"""Audio sanity checks of candidate clips: not silent, not clipped, not noise-like.

* **rms_db** — RMS level of the clip's active part (frames within 40 dB of its loudest frame), dBFS.
  Below ``min_rms_db`` the clip is silent (a Griffin-Lim output of an empty spectrogram).
* **clipped_fraction** — share of samples at full scale (|x| >= 0.999).
* **spectral_flatness** — Wiener entropy (geometric / arithmetic mean of the power spectrum) averaged
  over active frames: about 0.5 for white noise, a few hundredths for voiced speech.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from imagina.core.errors import InvalidInputError, check_float
from imagina.core.modality import SanityResult


@dataclass(frozen=True, kw_only=True)
class AudioSanityConfig:
    """Thresholds of :func:`audio_sanity`."""

    min_rms_db: float = -45.0
    max_clipped: float = 0.01
    max_flatness: float = 0.4
    active_db: float = 40.0

    def __post_init__(self) -> None:
        check_float("min_rms_db", self.min_rms_db, maximum=0.0)
        check_float("max_clipped", self.max_clipped, minimum=0.0, maximum=1.0)
        check_float("max_flatness", self.max_flatness, minimum=0.0, maximum=1.0)
        check_float("active_db", self.active_db, minimum=1.0)


def frame_power_spectrum(X: np.ndarray, n_fft: int = 256, hop_length: int = 128) -> torch.Tensor:
    """Power spectra of Hann-windowed frames: (n, T) -> (n, frames, n_fft//2 + 1) float64."""
    x = torch.as_tensor(np.asarray(X, dtype=np.float64))
    S = torch.stft(x, n_fft, hop_length, window=torch.hann_window(n_fft, dtype=torch.float64), center=True, return_complex=True)
    return S.abs().pow(2).transpose(1, 2)


def audio_metrics(X: np.ndarray, *, active_db: float = 40.0, n_fft: int = 256, chunk_size: int = 512) -> dict[str, np.ndarray]:
    """Per clip: ``rms_db`` (active part), ``clipped_fraction`` and ``spectral_flatness``, each (n,) float32.
    Computed in chunks of ``chunk_size`` clips (the results do not depend on it)."""
    X = np.asarray(X, dtype=np.float32)
    if X.ndim != 2:
        raise InvalidInputError(f"audio items must be waveforms of shape (n, T); got shape {X.shape}.")
    names = ("rms_db", "clipped_fraction", "spectral_flatness")
    if len(X) == 0:
        return {k: np.zeros(0, dtype=np.float32) for k in names}
    parts = [_metrics(X[s : s + chunk_size], active_db, n_fft) for s in range(0, len(X), chunk_size)]
    return {k: np.concatenate([p[k] for p in parts]) for k in names}


def _metrics(X: np.ndarray, active_db: float, n_fft: int) -> dict[str, np.ndarray]:
    clipped = np.mean(np.abs(X) >= 0.999, axis=1)
    P = frame_power_spectrum(X, n_fft, n_fft // 2)                           # (n, frames, bins)
    energy = P.sum(dim=2)                                                    # (n, frames)
    level = 10 * torch.log10(energy.clamp_min(1e-20))
    active = level > level.amax(dim=1, keepdim=True) - active_db             # (n, frames)
    active &= energy > 0
    # RMS of the active frames (Parseval with the Hann window's energy)
    win = float(torch.hann_window(n_fft, dtype=torch.float64).pow(2).sum())
    frame_ms = energy / (n_fft * win)
    ms = (frame_ms * active).sum(1) / active.sum(1).clamp_min(1)
    rms_db = 10 * torch.log10(ms.clamp_min(1e-20))
    rms_db[energy.sum(1) == 0] = -200.0
    logP = torch.log(P.clamp_min(1e-20))
    flat = torch.exp(logP.mean(dim=2)) / P.mean(dim=2).clamp_min(1e-20)     # (n, frames)
    flatness = (flat * active).sum(1) / active.sum(1).clamp_min(1)
    return {
        "rms_db": rms_db.numpy().astype(np.float32),
        "clipped_fraction": clipped.astype(np.float32),
        "spectral_flatness": flatness.numpy().astype(np.float32),
    }


def audio_sanity(X: np.ndarray, config: AudioSanityConfig | None = None) -> SanityResult:
    """Sanity scores and the failure reason (or None) of every clip in ``X`` (n, T)."""
    cfg = config or AudioSanityConfig()
    m = audio_metrics(X, active_db=cfg.active_db)
    reasons: list[str | None] = []
    for rms, clip, flat in zip(m["rms_db"], m["clipped_fraction"], m["spectral_flatness"]):
        if not np.isfinite(rms) or rms < cfg.min_rms_db:
            reasons.append(f"silent: RMS {rms:.1f} dBFS < {cfg.min_rms_db:g}")
        elif clip > cfg.max_clipped:
            reasons.append(f"clipped: {100 * clip:.1f}% of samples at full scale")
        elif flat > cfg.max_flatness:
            reasons.append(f"noise-like: spectral flatness {flat:.2f} > {cfg.max_flatness:g}")
        else:
            reasons.append(None)
    return SanityResult(scores=m, reasons=reasons)
