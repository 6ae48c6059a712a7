"""Tiny image data for tests."""

from __future__ import annotations

import numpy as np


def make_images(n_per_class: int = 12, n_classes: int = 3, size: int = 12, channels: int = 1, seed: int = 0):
    """Tiny labelled images: class k is a bright bar at a class-specific position plus noise.

    Returns X uint8 of shape (n, size, size, channels) and y int64 of shape (n,)."""
    rng = np.random.default_rng(seed)
    X = np.zeros((n_per_class * n_classes, size, size, channels), dtype=np.float64)
    y = np.repeat(np.arange(n_classes), n_per_class)
    for i, k in enumerate(y):
        X[i] = rng.uniform(0, 40, size=(size, size, channels))
        row = int((k + 0.5) * size / n_classes)
        width = 1 + int(rng.integers(0, 2))
        start = int(rng.integers(0, size // 3))
        X[i, max(0, row - width) : row + width, start : start + size // 2, :] = rng.uniform(180, 255)
    return X.clip(0, 255).astype(np.uint8), y
