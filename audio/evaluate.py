"""The audio reference classifier (a small log-mel CNN) and classical augmentation for
:func:`imagina.core.evaluation.evaluate`."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from imagina.audio.augment import classical_candidates
from imagina.core.errors import InvalidInputError
from imagina.core.evaluation import Augment, EvalTask


class LogMel(nn.Module):
    """Waveforms (B, T) -> log-mel spectrograms (B, 1, n_mels, T // hop + 1) (torchaudio inside).

    32 ms windows and 16 ms hops at the given rate (coarse, because every pixel costs on a CPU);
    the log of the power with a 1e-6 floor."""

    def __init__(self, sample_rate: int = 8000, n_mels: int = 32) -> None:
        super().__init__()
        import torchaudio

        n_fft = 2 ** round(np.log2(0.032 * sample_rate))
        self.mel = torchaudio.transforms.MelSpectrogram(sample_rate, n_fft=n_fft, hop_length=n_fft // 2, n_mels=n_mels, power=2.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.log(self.mel(x.float()) + 1e-6)[:, None]             # (B, 1, M, W)


def log_mel_cnn(sample_rate: int = 8000, width: int = 16, n_mels: int = 32) -> tuple[nn.Sequential, int]:
    """Log-mel front end and a 3-stage CNN: (B, T) -> (B, 4·width). Returns the body and its width."""
    body = nn.Sequential(
        LogMel(sample_rate, n_mels), nn.BatchNorm2d(1),                      # (B, 1, M, W)
        nn.Conv2d(1, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(width, 2 * width, 3, padding=1), nn.BatchNorm2d(2 * width), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(2 * width, 4 * width, 3, padding=1), nn.BatchNorm2d(4 * width), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(),                               # (B, 4·width)
    )
    return body, 4 * width


class ReferenceAudioCNN(nn.Module):
    """The fixed reference classifier: log-mel (32 bands, 32 ms / 16 ms), 3 conv stages (16-32-64,
    BN, ReLU, max-pool), global average pooling, dropout 0.3, linear. Input: waveforms (B, T)."""

    def __init__(self, n_classes: int, sample_rate: int = 8000) -> None:
        super().__init__()
        self.features, dim = log_mel_cnn(sample_rate)
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

    name = "ReferenceAudioCNN (log-mel 32, conv 16-32-64, BN, GAP, dropout 0.3)"
    steps = 300
    batch_size = 32
    lr = 3e-3

    def __init__(self, sample_rate: int = 8000) -> None:
        self.sample_rate = sample_rate

    def prepare(self, X: Any) -> torch.Tensor:
        return prepare_waveforms(X)

    def make_classifier(self, n_classes: int) -> nn.Module:
        return ReferenceAudioCNN(n_classes, self.sample_rate)

    def augmentations(self, prepared: torch.Tensor, y: np.ndarray) -> dict[str, Augment]:
        return classical_candidates()
