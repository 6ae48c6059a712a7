"""Writing images: PNGs in an ImageFolder tree and labelled sample grids."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from imagina.core.export import unique_folder_names
from imagina.image.preprocess import as_nhwc


def as_mode(img: np.ndarray, mode: str | None):
    """A PIL image of ``img`` (H, W, C) uint8 in the user's file mode: "RGBA" / "LA" gain an opaque
    alpha channel, "I;16" is scaled by 65535 / 255; otherwise L or RGB as the array is."""
    from PIL import Image

    if mode == "RGBA" and img.shape[-1] == 3:
        return Image.fromarray(np.dstack([img, np.full(img.shape[:2], 255, np.uint8)]), "RGBA")
    if mode == "LA" and img.shape[-1] == 1:
        return Image.fromarray(np.dstack([img[..., 0], np.full(img.shape[:2], 255, np.uint8)]), "LA")
    if mode == "I;16" and img.shape[-1] == 1:
        return Image.fromarray(img[..., 0].astype(np.uint16) * 257)
    return Image.fromarray(img[..., 0] if img.shape[-1] == 1 else img)


def write_pngs(directory: Path, X: np.ndarray, y: np.ndarray, stems: list[str], *, mode: str | None = None) -> list[str]:
    """Write ``X`` (n, H, W, C) uint8 as ``directory/<sanitised label>/<stem>.png`` in the user's file
    ``mode`` where one was recorded (:func:`as_mode`); returns relative paths."""
    X = as_nhwc(X) if len(X) else X
    folders = unique_folder_names(list(np.unique(y).tolist()))
    paths = []
    for img, label, stem in zip(X, y.tolist(), stems):
        rel = Path(folders[label]) / f"{stem}.png"
        (directory / rel.parent).mkdir(parents=True, exist_ok=True)
        as_mode(img, mode).save(directory / rel)
        paths.append(rel.as_posix())
    return paths


def sample_grid(path: Path, X: np.ndarray, y: np.ndarray, *, title: str = "", per_row: int = 8) -> None:
    """A PNG grid: one row per class (label on the left), up to ``per_row`` images each.

    The images are tiled into one array drawn by one ``imshow``, with a white 2-pixel gap between
    them: a subplot per image cost about a second of CPU per grid (80 axes laid out by matplotlib).
    X : ndarray of shape (n, H, W, C), uint8; y : (n,) labels.
    """
    from imagina.core.export import new_figure

    X = as_nhwc(X)
    classes = list(np.unique(y))
    n, H, W, C = X.shape
    gap = 2
    mosaic = np.full((len(classes) * (H + gap) - gap, per_row * (W + gap) - gap, C), 255, np.uint8)  # (R·H', K·W', C)
    for r, c in enumerate(classes):
        for k, i in enumerate(np.flatnonzero(y == c)[:per_row]):
            top, left = r * (H + gap), k * (W + gap)
            mosaic[top : top + H, left : left + W] = X[i]
    fig = new_figure((per_row * 0.8, len(classes) * 0.8 + 0.4))
    ax = fig.subplots()
    ax.imshow(mosaic[..., 0] if C == 1 else mosaic, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([r * (H + gap) + (H - 1) / 2 for r in range(len(classes))], [str(c) for c in classes])
    ax.tick_params(length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
