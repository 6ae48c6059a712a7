"""Tiny audio for tests: tones and noise generated in milliseconds, and WAV writers for bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np

SR = 8000


def make_tones(n_per_class: int = 4, freqs: tuple[float, ...] = (300.0, 1200.0), *, n_samples: int = 2048,
               sr: int = SR, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Class ``k`` is a decaying tone near ``freqs[k]`` (±5 %) with a random onset: (n, T) float32, labels str."""
    rng = np.random.default_rng(seed)
    t = np.arange(n_samples) / sr
    X, y = [], []
    for k, f in enumerate(freqs):
        for _ in range(n_per_class):
            f0 = f * rng.uniform(0.95, 1.05)
            onset = rng.uniform(0.0, 0.1 * n_samples / sr)
            env = np.where(t >= onset, np.exp(-(t - onset) * 6.0), 0.0)
            X.append(0.8 * env * np.sin(2 * np.pi * f0 * t))
            y.append(f"c{k}")
    return np.asarray(X, dtype=np.float32), np.asarray(y)


def make_noise(n: int = 4, *, n_samples: int = 2048, level: float = 0.3, seed: int = 0) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal((n, n_samples)) * level).astype(np.float32)


def write_wav(path: Path, wave: np.ndarray, sr: int = SR, subtype: str = "PCM_16") -> Path:
    import soundfile as sf

    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), wave, sr, subtype=subtype)
    return path


def write_dataset(root: Path, *, layout: str = "folders", n_per_class: int = 3, sr: int = SR, seconds: float = 0.3) -> Path:
    """Write tones as ``root/<label>/<label>_<speaker>_<i>.wav`` (folders) or flat ``root/<label>_<speaker>_<i>.wav``."""
    X, y = make_tones(n_per_class, n_samples=int(seconds * sr), sr=sr)
    for i, (wave, label) in enumerate(zip(X, y)):
        name = f"{label}_spk{i % 2}_{i % n_per_class}.wav"
        write_wav(root / label / name if layout == "folders" else root / name, wave, sr)
    return root
