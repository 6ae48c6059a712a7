"""Sanity checks of generated images."""

from __future__ import annotations

import numpy as np

from imagina.core.modality import SanityResult
from imagina.image.preprocess import as_nhwc


def image_sanity(X: np.ndarray, *, min_contrast: float = 4.0, max_extreme: float = 0.995) -> SanityResult:
    """Reject blank images (pixel std below ``min_contrast`` grey levels) and images whose pixels
    are almost all at one extreme (0 or 255 in more than ``max_extreme`` of them).

    Returns scores ``contrast`` (pixel std, 0–127.5) and ``extreme_fraction``.
    """
    X = as_nhwc(X)
    flat = X.reshape(len(X), -1)
    contrast = flat.std(axis=1).astype(np.float64)
    extreme = np.maximum((flat == 0).mean(axis=1), (flat == 255).mean(axis=1))
    reasons: list[str | None] = []
    for c, e in zip(contrast, extreme):
        if c < min_contrast:
            reasons.append(f"insane: blank image (contrast {c:.1f} < {min_contrast})")
        elif e > max_extreme:
            reasons.append(f"insane: {100 * e:.1f}% of pixels at one extreme")
        else:
            reasons.append(None)
    return SanityResult({"contrast": contrast, "extreme_fraction": extreme}, reasons)
