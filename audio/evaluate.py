"""The audio reference classifier (a small log-mel CNN) and classical augmentation for
:func:`imagina.core.evaluation.evaluate`."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from imagina.audio.augment import classical_candidates
from imagina.core.errors import InvalidInputError, check_int
from imagina.core.evaluation import Augment, EvalTask


class LogMel(nn.Module):
    """Waveforms (B, T) -> log-mel spectrograms (B, 1, n_mels, T // hop + 1) (torchaudio inside).

    32 ms windows and 16 ms hops at the given rate (coarse, because every pixel costs on a CPU);
    the log of the power with a 1e-6 floor, and with ``top_db`` each clip's values are clamped to
    at most ``top_db`` decibels below its own maximum (as ``librosa.power_to_db(top_db=...)``), so
    digital silence and a faint noise floor look alike."""

    def __init__(self, sample_rate: int = 8000, n_mels: int = 32, top_db: float | None = None) -> None:
        super().__init__()
        import torchaudio

        n_fft = 2 ** round(np.log2(0.032 * sample_rate))
        self.mel = torchaudio.transforms.MelSpectrogram(sample_rate, n_fft=n_fft, hop_length=n_fft // 2, n_mels=n_mels, power=2.0)
        self.top_db = top_db

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.log(self.mel(x.float()) + 1e-6)[:, None]              # (B, 1, M, W)
        if self.top_db is not None:
            floor = out.amax(dim=(1, 2, 3), keepdim=True) - self.top_db * float(np.log(10.0)) / 10.0
            out = torch.maximum(out, floor)
        return out


def log_mel_cnn(sample_rate: int = 8000, width: int = 16, n_mels: int = 32, *, top_db: float | None = None,
                instance_norm: bool = False) -> tuple[nn.Sequential, int]:
    """Log-mel front end and a 3-stage CNN: (B, T) -> (B, 4·width). Returns the body and its width.

    The log-mel input is normalised by batch norm, or with ``instance_norm`` per clip (mean 0, std 1
    over the clip's spectrogram: level-independent, as cepstral mean-variance normalisation)."""
    body = nn.Sequential(
        LogMel(sample_rate, n_mels, top_db), nn.InstanceNorm2d(1) if instance_norm else nn.BatchNorm2d(1),
        nn.Conv2d(1, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(width, 2 * width, 3, padding=1), nn.BatchNorm2d(2 * width), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(2 * width, 4 * width, 3, padding=1), nn.BatchNorm2d(4 * width), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(),                               # (B, 4·width)
    )
    return body, 4 * width


class ReferenceAudioCNN(nn.Module):
    """The fixed reference classifier: log-mel (32 bands, 32 ms / 16 ms) with batch norm, 3 conv stages
    (``width``-2·width-4·width, default 16-32-64; BN, ReLU, max-pool), global average pooling,
    dropout 0.3, linear. Input: waveforms (B, T)."""

    def __init__(self, n_classes: int, sample_rate: int = 8000, *, width: int = 16, top_db: float | None = None,
                 instance_norm: bool = False) -> None:
        super().__init__()
        self.features, dim = log_mel_cnn(sample_rate, width, top_db=top_db, instance_norm=instance_norm)
        self.head = nn.Linear(dim, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(F.dropout(self.features(x), 0.3, self.training))


def prepare_waveforms(X: Any) -> torch.Tensor:
    """Waveforms (n, T) -> float32 CPU tensor (n, T); one-line error for anything else."""
    arr = np.asarray(X, dtype=np.float32) if not isinstance(X, torch.Tensor) else X.float().numpy()
    if arr.ndim != 2:
        raise InvalidInputError(f"audio items must be waveforms of shape (n, T); got shape {arr.shape}.")
    return torch.from_numpy(np.ascontiguousarray(arr))


class AudioEvalTask(EvalTask):
    """Reference log-mel CNN on waveforms; classical augmentation candidates: time shift (±10 %,
    zero-filled), white noise at 20-30 dB SNR, speed 0.9-1.1, SpecAugment masks, and their combination."""

    batch_size = 32

    #: 600 training steps: on a few hundred clips a shorter-trained classifier is both less accurate
    #: and noisier across seeds, and a noisy reference hides what augmentation adds. Cross-validation on
    #: FSDD training clips (never the test split) ranks 600 steps above 300 steps and above a wider
    #: network; per-clip normalisation and a top-dB floor cost accuracy, so neither is on (evidence:
    #: docs/history.md, `benchmarks/experiments/classifier_tune.py`).
    def __init__(self, sample_rate: int = 8000, *, steps: int = 600, lr: float = 3e-3, width: int = 16,
                 top_db: float | None = None, instance_norm: bool = False) -> None:
        self.sample_rate = check_int("sample_rate", sample_rate, minimum=1000)
        self.steps = check_int("steps", steps, minimum=1)
        self.lr = lr
        self.width = check_int("width", width, minimum=1)
        self.top_db = top_db
        self.instance_norm = instance_norm
        self.name = (f"ReferenceAudioCNN (log-mel 32{f', top {top_db:g} dB' if top_db else ''}, "
                     f"{'per-clip norm' if instance_norm else 'BN'}, conv {width}-{2 * width}-{4 * width}, GAP, dropout 0.3)")

    def prepare(self, X: Any) -> torch.Tensor:
        return prepare_waveforms(X)

    def make_classifier(self, n_classes: int) -> nn.Module:
        return ReferenceAudioCNN(n_classes, self.sample_rate, width=self.width, top_db=self.top_db,
                                 instance_norm=self.instance_norm)

    def augmentations(self, prepared: torch.Tensor, y: np.ndarray) -> dict[str, Augment]:
        return classical_candidates()


def probe_log_mel(X: np.ndarray, sample_rate: int = 8000) -> np.ndarray:
    """Waveforms (n, T) -> (n, 64): the mean and standard deviation over time of 32 log-mel bands
    (a summary that does not depend on where in the clip the word sits)."""
    with torch.no_grad():
        S = LogMel(sample_rate, 32)(torch.as_tensor(np.asarray(X, dtype=np.float32)))[:, 0]   # (n, 32, W)
    return torch.cat([S.mean(-1), S.std(-1)], dim=1).numpy()


def probe_log_mel_grid(X: np.ndarray, sample_rate: int = 8000, bands: int = 16, frames: int = 8) -> np.ndarray:
    """Waveforms (n, T) -> (n, bands·frames + 64): the log-mel spectrogram averaged onto a coarse
    ``bands`` × ``frames`` grid (where in the clip each sound sits), with the band statistics of
    :func:`probe_log_mel`. A stronger linear probe than the statistics alone (FSDD, 20 clips per digit,
    5-fold: 88 % against 82 %)."""
    with torch.no_grad():
        S = LogMel(sample_rate, 32)(torch.as_tensor(np.asarray(X, dtype=np.float32)))           # (n, 1, 32, W)
    grid = F.adaptive_avg_pool2d(S, (bands, frames)).reshape(len(S), -1)
    return torch.cat([grid, S[:, 0].mean(-1), S[:, 0].std(-1)], dim=1).numpy()


def probe_features(sample_rate: int = 8000) -> dict:
    """Log-mel band statistics, and a coarse time-frequency grid, each standardised: the fast probes
    that choose the synthetic dose (the best on real data alone is used)."""
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer, StandardScaler

    return {"log-mel statistics": make_pipeline(FunctionTransformer(probe_log_mel, kw_args={"sample_rate": sample_rate}),
                                                StandardScaler()),
            "log-mel grid": make_pipeline(FunctionTransformer(probe_log_mel_grid, kw_args={"sample_rate": sample_rate}),
                                          StandardScaler())}


#: Shift (± share of the clip), speed range and noise SNR range (dB) of a classical view, by
#: :data:`~imagina.core.modality.CLASSICAL_STRENGTHS`.
VIEW_SETTINGS = {"mild": (0.05, (0.95, 1.05), (25.0, 35.0)), "default": (0.10, (0.9, 1.1), (20.0, 30.0)),
                 "strong": (0.20, (0.8, 1.2), (10.0, 20.0))}


def classical_views(X: np.ndarray, n_views: int, seed: int, strength: str = "default") -> np.ndarray:
    """``n_views`` classical views of every clip (by default a shift of up to ±10 %, speed 0.9-1.1,
    noise at 20-30 dB SNR; :data:`VIEW_SETTINGS` for each strength): X (n, T) float32 -> (n·n_views, T),
    view-major."""
    from imagina.audio.augment import add_noise, compose, speed, time_shift
    from imagina.core.errors import check_choice
    from imagina.core.runtime import torch_rng

    shift, (slow, fast), (snr_low, snr_high) = VIEW_SETTINGS[check_choice("strength", strength, tuple(VIEW_SETTINGS))]
    op = compose(time_shift(shift), speed(slow, fast), add_noise(snr_low, snr_high))
    x = torch.as_tensor(np.asarray(X, dtype=np.float32))
    return torch.cat([op(x, torch_rng(seed, "classical-views", v)) for v in range(n_views)]).numpy()
