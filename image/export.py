"""Writing images: PNGs in an ImageFolder tree and labelled sample grids."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from imagina.core.export import unique_folder_names
from imagina.image.preprocess import as_nhwc


def write_pngs(directory: Path, X: np.ndarray, y: np.ndarray, stems: list[str]) -> list[str]:
    """Write ``X`` (n, H, W, C) uint8 as ``directory/<sanitised label>/<stem>.png``; returns relative paths."""
    from PIL import Image

    X = as_nhwc(X) if len(X) else X
    folders = unique_folder_names(list(np.unique(y).tolist()))
    paths = []
    for img, label, stem in zip(X, y.tolist(), stems):
        rel = Path(folders[label]) / f"{stem}.png"
        (directory / rel.parent).mkdir(parents=True, exist_ok=True)
        Image.fromarray(img[..., 0] if img.shape[-1] == 1 else img).save(directory / rel)
        paths.append(rel.as_posix())
    return paths


def sample_grid(path: Path, X: np.ndarray, y: np.ndarray, *, title: str = "", per_row: int = 8) -> None:
    """A PNG grid: one row per class (label on the left), up to ``per_row`` images each."""
    from imagina.core.export import new_figure

    X = as_nhwc(X)
    classes = list(np.unique(y))
    fig = new_figure((per_row * 0.8, len(classes) * 0.8 + 0.4))
    axes = fig.subplots(len(classes), per_row, squeeze=False)
    for r, c in enumerate(classes):
        rows = np.flatnonzero(y == c)[:per_row]
        for k in range(per_row):
            ax = axes[r, k]
            ax.set_xticks([]), ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(False)
            if k < len(rows):
                img = X[rows[k]]
                ax.imshow(img[..., 0] if img.shape[-1] == 1 else img, cmap="gray", vmin=0, vmax=255)
        axes[r, 0].set_ylabel(str(c), rotation=0, ha="right", va="center")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
