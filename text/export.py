"""Writing sentences: ``samples.csv`` and ``samples.jsonl`` (id, label, text, scores), and a preview PNG."""

from __future__ import annotations

import csv
import json
import logging
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from imagina.core.errors import InvalidInputError

logger = logging.getLogger(__name__)

CSV_NAME = "samples.csv"
JSONL_NAME = "samples.jsonl"


def _plain(value: object) -> object:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return round(value, 6)
    return value


def write_items(directory: str | Path, X: Sequence[str], y: np.ndarray, stems: Sequence[str], *,
                scores: Mapping[str, np.ndarray] | None = None) -> list[str]:
    """Write sentences as ``samples.csv`` and ``samples.jsonl`` under ``directory``.

    Parameters
    ----------
    X : list of n str
    y : ndarray of shape (n,), labels
    stems : list of n str, item ids (the ``id`` column)
    scores : dict of name -> ndarray (n,), optional extra columns

    Returns
    -------
    list of n str
        Each item's reference relative to ``directory``: ``samples.csv#row=K`` (K = 1-based data row).
    """
    n = len(X)
    if len(y) != n or len(stems) != n:
        raise InvalidInputError(f"`X`, `y` and `stems` must have the same length; got {n}, {len(y)}, {len(stems)}.")
    scores = dict(scores or {})
    for k, v in scores.items():
        if len(v) != n:
            raise InvalidInputError(f"score {k!r} must hold {n} values; got {len(v)}.")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    rows = [{"id": stems[i], "label": _plain(np.asarray(y)[i]), "text": X[i],
             **{k: _plain(np.asarray(v)[i]) for k, v in scores.items()}} for i in range(n)]
    fields = ["id", "label", "text", *scores]
    with open(directory / CSV_NAME, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    with open(directory / JSONL_NAME, "w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    return [f"{CSV_NAME}#row={i + 1}" for i in range(n)]


def preview(path: str | Path, X: Sequence[str], y: np.ndarray, *, title: str = "", per_class: int = 5,
            width: int = 70) -> None:
    """A PNG table: for every class, its first ``per_class`` sentences (wrapped at ``width`` characters)."""
    from imagina.core.export import new_figure

    y = np.asarray(y)
    classes = list(dict.fromkeys(y.tolist()))
    lines: list[tuple[str, str]] = []  # (kind, text)
    for c in classes:
        lines.append(("class", str(c)))
        for i in np.flatnonzero(y == c)[:per_class]:
            wrapped = textwrap.wrap(str(X[i]), width) or [""]
            lines.append(("text", "• " + wrapped[0]))
            lines.extend(("text", "  " + w) for w in wrapped[1:])
    n_lines = max(len(lines), 1) + (2 if title else 0)
    fig = new_figure((8.5, 0.24 * n_lines + 0.4))
    ax = fig.add_axes([0, 0, 1, 1])
    ax.axis("off")
    step = 1.0 / n_lines
    pos = 1.0 - step
    if title:
        ax.text(0.02, pos, title, fontsize=11, weight="bold", va="top")
        pos -= 2 * step
    for kind, text in lines:
        if kind == "class":
            ax.text(0.02, pos, text, fontsize=9.5, weight="bold", color="#1f4e79", va="top")
        else:
            ax.text(0.04, pos, text, fontsize=8.5, va="top", family="DejaVu Sans")
        pos -= step
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
