"""Writing audio: 16-bit WAVs in class folders, and spectrogram grids for the report."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from imagina.core.errors import InvalidInputError, check_int
from imagina.core.export import unique_folder_names

logger = logging.getLogger(__name__)


#: WAV sample formats kept from the user's files; any other (a FLAC's, say) is written as PCM_16.
WAV_SUBTYPES = ("PCM_U8", "PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE")


def write_wavs(directory: Path, X: np.ndarray, y: np.ndarray, stems: list[str], *, sample_rate: int = 8000,
               source_format: dict | None = None) -> list[str]:
    """Write clips ``X`` (n, T) float in [-1, 1] as ``directory/<sanitised label>/<stem>.wav``
    (mono). Returns the paths relative to ``directory``.

    Without ``source_format`` the clips are written as given: PCM 16-bit at ``sample_rate``. With
    the loader's ``meta["source_format"]`` each clip goes through :func:`match_source_format`
    (the user's rate, level, silence and duration, per class) and is written in the user's
    sample format when WAV holds it. Samples beyond ±1 are clipped (none are: the generators
    peak-normalise to 0.9 and the level match caps the peak at 0.99)."""
    import soundfile as sf

    check_int("sample_rate", sample_rate, minimum=1)
    X = np.asarray(X, dtype=np.float32)
    if len(X) and X.ndim != 2:
        raise InvalidInputError(f"audio items must be waveforms of shape (n, T); got shape {X.shape}.")
    if len(stems) != len(X) or len(y) != len(X):
        raise InvalidInputError(f"`stems` and `y` must hold one entry per clip ({len(X)}); got {len(stems)} and {len(y)}.")
    subtype = (source_format or {}).get("subtype")
    subtype = subtype if subtype in WAV_SUBTYPES else "PCM_16"
    folders = unique_folder_names(list(np.unique(y).tolist())) if len(y) else {}
    paths = []
    for wave, label, stem in zip(X, np.asarray(y).tolist(), stems):
        rate = sample_rate
        if source_format:
            wave, rate = match_source_format(wave, label, source_format, sample_rate=sample_rate)
        rel = Path(folders[label]) / f"{stem}.wav"
        (directory / rel.parent).mkdir(parents=True, exist_ok=True)
        sf.write(str(directory / rel), np.clip(wave, -1.0, 1.0), rate, subtype=subtype)
        paths.append(rel.as_posix())
    return paths


def match_source_format(wave: np.ndarray, label: object, source_format: dict, *,
                        sample_rate: int) -> tuple[np.ndarray, int]:
    """Map one generated clip from the training view back to the format of its class's own clips.

    The training view is trimmed of silence, peak-normalised and ``n_samples`` long at
    ``sample_rate``; the user's clips are not. The clip's content (what is louder than
    ``trim_db`` below its peak) gets the class's median leading and trailing silence as zeros and
    is padded to the class's median duration (never cut: trailing silence gives way first), then
    resampled to the user's most common rate and scaled to the class's median RMS level, with
    the peak capped at 0.99. A label missing from ``source_format["per_class"]`` is only resampled.

    Parameters
    ----------
    wave : ndarray of shape (T,), float
        A generated clip at ``sample_rate``.
    source_format : dict
        ``meta["source_format"]`` from :func:`~imagina.audio.data.load_audio`.

    Returns
    -------
    wave : ndarray of shape (T',), float32
    rate : int
        The rate to write it at.
    """
    from imagina.audio.data import fix_length, resample, rms_db, silence_bounds

    wave = np.asarray(wave, dtype=np.float32)
    rate = int(source_format.get("sample_rate") or sample_rate)
    cls = (source_format.get("per_class") or {}).get(str(label))
    if cls is not None:
        trim_db = source_format.get("trim_db")
        start, stop = silence_bounds(wave, trim_db) if trim_db is not None else (0, len(wave))
        content = wave[start:stop]
        lead, trail = round(cls["lead_s"] * sample_rate), round(cls["trail_s"] * sample_rate)
        n = round(cls["duration_s"] * sample_rate)
        if trim_db is not None:  # the content is the model's; only the silence around it is ours to fit
            n = max(n, lead + len(content))
        wave = fix_length(np.concatenate([np.zeros(lead, np.float32), content, np.zeros(trail, np.float32)]), n)
    wave = resample(wave, sample_rate, rate)
    if cls is not None:
        peak = float(np.max(np.abs(wave))) if wave.size else 0.0
        if peak > 0:
            gain = 10 ** ((cls["rms_dbfs"] - float(rms_db(wave))) / 20)
            wave = wave * min(gain, 0.99 / peak)
    return wave.astype(np.float32), rate


def spectrogram_grid(path: Path, X: np.ndarray, y: np.ndarray, *, sample_rate: int = 8000, title: str = "",
                     per_row: int = 8) -> None:
    """A PNG grid of log-mel spectrograms (dB): one row per class (label on the left), up to
    ``per_row`` clips each. ``X``: (n, T) float waveforms."""
    import torch
    import torchaudio

    from imagina.core.export import new_figure

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
