"""Writing audio: 16-bit WAVs in class folders, and spectrogram grids for the report."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from imagina.core.errors import InvalidInputError, check_int
from imagina.core.export import unique_folder_names

logger = logging.getLogger(__name__)


def write_wavs(directory: Path, X: np.ndarray, y: np.ndarray, stems: list[str], *, sample_rate: int = 8000) -> list[str]:
    """Write clips ``X`` (n, T) float in [-1, 1] as ``directory/<sanitised label>/<stem>.wav``
    (PCM 16-bit, mono, ``sample_rate``). Samples beyond ±1 are clipped; our generators peak-normalise
    to 0.9 so nothing is. Returns the paths relative to ``directory``."""
    import soundfile as sf

    check_int("sample_rate", sample_rate, minimum=1)
    X = np.asarray(X, dtype=np.float32)
    if len(X) and X.ndim != 2:
        raise InvalidInputError(f"audio items must be waveforms of shape (n, T); got shape {X.shape}.")
    if len(stems) != len(X) or len(y) != len(X):
        raise InvalidInputError(f"`stems` and `y` must hold one entry per clip ({len(X)}); got {len(stems)} and {len(y)}.")
    folders = unique_folder_names(list(np.unique(y).tolist())) if len(y) else {}
    paths = []
    for wave, label, stem in zip(X, np.asarray(y).tolist(), stems):
        rel = Path(folders[label]) / f"{stem}.wav"
        (directory / rel.parent).mkdir(parents=True, exist_ok=True)
        sf.write(str(directory / rel), np.clip(wave, -1.0, 1.0), sample_rate, subtype="PCM_16")
        paths.append(rel.as_posix())
    return paths


def spectrogram_grid(path: Path, X: np.ndarray, y: np.ndarray, *, sample_rate: int = 8000, title: str = "",
                     per_row: int = 8) -> None:
    """A PNG grid of log-mel spectrograms (dB): one row per class (label on the left), up to
    ``per_row`` clips each. ``X``: (n, T) float waveforms."""
    from imagina.core.export import new_figure
    import torch
    import torchaudio

    X = np.asarray(X, dtype=np.float32)
    classes = list(np.unique(y))
    n_fft = 2 ** round(np.log2(0.032 * sample_rate))
    mel = torchaudio.transforms.MelSpectrogram(sample_rate, n_fft=n_fft, hop_length=n_fft // 4, n_mels=64)
    db = (10 * torch.log10(mel(torch.from_numpy(X)) + 1e-10)).numpy() if len(X) else np.zeros((0, 64, 1))
    fig = new_figure((per_row * 1.1, len(classes) * 0.9 + 0.4))
    axes = fig.subplots(len(classes), per_row, squeeze=False)
    for r, c in enumerate(classes):
        rows = np.flatnonzero(np.asarray(y) == c)[:per_row]
        for k in range(per_row):
            ax = axes[r, k]
            ax.set_xticks([])
            ax.set_yticks([])
            for side in ax.spines.values():
                side.set_visible(False)
            if k < len(rows):
                img = db[rows[k]]
                ax.imshow(img, origin="lower", aspect="auto", cmap="magma", vmin=img.max() - 80, vmax=img.max())
        axes[r, 0].set_ylabel(str(c), rotation=0, ha="right", va="center", fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
