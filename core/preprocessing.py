"""Cleaning (with a reason for every dropped item) and invertible scalers fitted on the data.

The modality packages compose these: they decide *what* an item's statistics are (mean intensity,
length, RMS) and *how* raw items become arrays; the rules themselves live here once.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from collections import Counter
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from imagina.core.errors import InvalidInputError, NotFittedError, check_int

logger = logging.getLogger(__name__)


# --------------------------------------------------------------------------- cleaning report
@dataclass(frozen=True)
class DroppedItem:
    """One item removed from the data, with the reason and, when known, where it came from."""

    index: int
    reason: str
    source: str | None = None


@dataclass
class CleaningReport:
    """Every item dropped by cleaning, with its reason, and every item flagged but kept (a statistical
    outlier is real data a small dataset cannot spare). ``kept`` counts the survivors; ``used``, when
    set, counts the items a per-class draw took from them (the items a run actually uses)."""

    dropped: list[DroppedItem] = field(default_factory=list)
    kept: int = 0
    used: int | None = None
    flagged: list[DroppedItem] = field(default_factory=list)

    def drop(self, index: int, reason: str, source: str | None = None) -> None:
        self.dropped.append(DroppedItem(int(index), reason, source))

    def flag(self, index: int, reason: str, source: str | None = None) -> None:
        """Record an item that is kept but looks unusual (its index before cleaning, as for drops)."""
        self.flagged.append(DroppedItem(int(index), reason, source))

    def drawn(self, used: int) -> CleaningReport:
        """A copy that records a per-class draw of ``used`` items from the ``kept`` ones."""
        return replace(self, dropped=list(self.dropped), flagged=list(self.flagged), used=int(used))

    def reasons(self) -> Counter:
        """How many items each kind of reason dropped (the text before the first ':')."""
        return Counter(item.reason.split(":")[0] for item in self.dropped)

    def to_dict(self) -> dict:
        return {
            "kept": self.kept,
            "used": self.kept if self.used is None else self.used,
            "dropped": len(self.dropped),
            "by_reason": dict(self.reasons()),
            "items": [{"index": d.index, "reason": d.reason, "source": d.source} for d in self.dropped],
            "flagged": [{"index": d.index, "reason": d.reason, "source": d.source} for d in self.flagged],
        }

    def summary(self) -> str:
        """One line: ``kept 60 items, dropped 2 (2 duplicate)``; after a per-class draw it starts
        with the items used: ``using 50 of 1794 clean items (a draw per class); ...``."""
        dropped = (f"dropped {len(self.dropped)} (" + ", ".join(f"{n} {why}" for why, n in self.reasons().most_common()) + ")"
                   if self.dropped else "dropped none")
        if self.flagged:
            dropped += f", flagged {len(self.flagged)} kept as possible outliers"
        if self.used is None:
            return f"kept {self.kept} items, {dropped}"
        return f"using {self.used} of {self.kept} clean items (a draw per class); cleaning {dropped}"


# --------------------------------------------------------------------------- cleaning rules
def nonfinite_mask(X: np.ndarray) -> np.ndarray:
    """Items (first axis) holding any NaN or infinity. Returns bool of shape (n,)."""
    X = np.asarray(X)
    if not np.issubdtype(X.dtype, np.floating):
        return np.zeros(len(X), dtype=bool)
    return ~np.isfinite(X.reshape(len(X), -1)).all(axis=1)


def content_key(item: np.ndarray | str | bytes) -> bytes:
    """A digest of an item's exact content (array bytes with shape and dtype, or a string)."""
    if isinstance(item, str):
        item = item.encode("utf-8")
    if isinstance(item, bytes):
        return hashlib.blake2b(item, digest_size=16).digest()
    arr = np.ascontiguousarray(item)
    h = hashlib.blake2b(digest_size=16)
    h.update(str((arr.shape, arr.dtype.str)).encode())
    h.update(arr.tobytes())
    return h.digest()


def duplicate_of(keys: Sequence[Hashable]) -> dict[int, int]:
    """Map the index of every repeated key to the index of its first occurrence."""
    first: dict[Hashable, int] = {}
    dups: dict[int, int] = {}
    for i, key in enumerate(keys):
        if key in first:
            dups[i] = first[key]
        else:
            first[key] = i
    return dups


def robust_outlier_mask(
    stats: np.ndarray, groups: np.ndarray | None = None, *, threshold: float = 3.5, min_group: int = 8
) -> np.ndarray:
    """Outliers by the modified z-score (Iglewicz & Hoaglin): ``0.6745·|x − median| / MAD > threshold``.

    Parameters
    ----------
    stats : ndarray of shape (n,) or (n, k)
        Per-item statistics (e.g. mean intensity and contrast); an item is an outlier if any column is.
    groups : ndarray of shape (n,), optional
        Apply the rule within each group (class); groups smaller than ``min_group`` are left alone.

    Returns
    -------
    ndarray of shape (n,), bool
    """
    stats = np.asarray(stats, dtype=np.float64)
    if stats.ndim == 1:
        stats = stats[:, None]
    n = len(stats)
    groups = np.zeros(n, dtype=int) if groups is None else np.asarray(groups)
    mask = np.zeros(n, dtype=bool)
    for g in np.unique(groups):
        rows = np.flatnonzero(groups == g)
        if len(rows) < min_group:
            continue
        s = stats[rows]
        med = np.median(s, axis=0)
        mad = np.median(np.abs(s - med), axis=0)
        with np.errstate(divide="ignore", invalid="ignore"):
            z = np.where(mad > 0, 0.6745 * np.abs(s - med) / mad, 0.0)
        mask[rows] = (z > threshold).any(axis=1)
    return mask


def overlap(train: Iterable, test: Iterable) -> np.ndarray:
    """Indices of ``test`` items whose exact content (:func:`content_key`) is also in ``train``."""
    seen = {content_key(x) for x in train}
    return np.array([i for i, x in enumerate(test) if content_key(x) in seen], dtype=np.int64)


_SURROGATES = re.compile(r"[\ud800-\udfff]")


def valid_unicode(text: str) -> str:
    """``text`` with every lone surrogate (an undecodable byte of a file name, a ``"\\ud800"`` JSON
    escape) replaced by U+FFFD, so that it can be written as UTF-8."""
    return _SURROGATES.sub("\ufffd", text)


# --------------------------------------------------------------------------- dataset layout
#: Top-level folder names that make a folder a split dataset (``root/train/<class>/...``).
SPLIT_NAMES = ("train", "test", "val", "valid", "validation", "dev")


def split_folders(root: str | Path) -> dict[str, Path]:
    """The split sub-folders of ``root`` by lower-case name when every visible sub-folder is a split
    name (:data:`SPLIT_NAMES`) and one is ``train`` or ``test``; else ``{}`` (class folders)."""
    root = Path(root)
    try:
        subdirs = {p.name.lower(): p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")}
    except OSError:  # not a folder, or not readable: the loader says which
        return {}
    if subdirs and set(subdirs) <= set(SPLIT_NAMES) and {"train", "test"} & set(subdirs):
        return subdirs
    return {}


def visible_files(root: str | Path) -> list[Path]:
    """Every file under ``root`` whose name and folders do not start with '.', sorted; links to
    folders (and link loops) are not followed."""
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        out.extend(Path(dirpath) / f for f in sorted(filenames) if not f.startswith("."))
    return out


def check_source(source: object, per_class: object = None) -> None:
    """The arguments every loader shares, checked before any file is read: a path (arrays and lists go
    straight to ``Augmenter.fit((X, y))`` instead) and, when given, a positive ``per_class``."""
    if not isinstance(source, (str, os.PathLike)):
        raise InvalidInputError(f"`source` must be a path (str or Path); got {type(source).__name__}. Items already in "
                                "memory need no loader: pass (X, y) to Augmenter.fit or LabeledData(X, y).")
    if per_class is not None:
        check_int("per_class", per_class, minimum=1)


def resolve_split(root: str | Path, split: str | None) -> tuple[Path, str | None]:
    """The folder to read for ``split`` and the split it holds (None: ``root`` has no splits and is
    used whole, whatever ``split`` asks). A split folder read without ``split`` gives ``train``."""
    splits = split_folders(root)
    if not splits:
        return Path(root), None
    name = (split or "train").lower()
    if name not in splits:
        raise InvalidInputError(
            f"{root} is split into {', '.join(sorted(splits))}; it has no {name!r} split. "
            f"Choose one of them, or point at a folder of class sub-folders."
        )
    return splits[name], name


# --------------------------------------------------------------------------- scalers
class Standardizer:
    """``(x − μ) / σ`` with μ, σ fitted over ``axes`` (kept dims broadcast); invertible; JSON state.

    Parameters
    ----------
    axes : tuple of int
        Axes reduced when fitting, e.g. ``(0, 2)`` on spectrograms ``(n, freq, time)`` gives one μ, σ
        per frequency bin (SpecGAN's normalisation). ``None`` reduces all axes.
    """

    def __init__(self, axes: tuple[int, ...] | None = None, eps: float = 1e-6) -> None:
        self.axes = axes
        self.eps = eps
        self.mean_: np.ndarray | None = None
        self.std_: np.ndarray | None = None

    def fit(self, X: np.ndarray) -> Standardizer:
        X = np.asarray(X, dtype=np.float64)
        self.mean_ = X.mean(axis=self.axes, keepdims=self.axes is not None)
        self.std_ = X.std(axis=self.axes, keepdims=self.axes is not None)
        self.std_ = np.maximum(self.std_, self.eps)
        return self

    def _check(self) -> None:
        if self.mean_ is None:
            raise NotFittedError("This Standardizer is not fitted yet; call `fit` before using it.")

    def transform(self, X: np.ndarray) -> np.ndarray:
        self._check()
        return ((np.asarray(X, dtype=np.float64) - self.mean_) / self.std_).astype(np.float32)

    def inverse_transform(self, Z: np.ndarray) -> np.ndarray:
        self._check()
        return (np.asarray(Z, dtype=np.float64) * self.std_ + self.mean_).astype(np.float32)

    def get_state(self) -> dict:
        self._check()
        return {"kind": "standardizer", "axes": self.axes, "eps": self.eps,
                "mean": np.asarray(self.mean_).tolist(), "std": np.asarray(self.std_).tolist()}

    @classmethod
    def from_state(cls, state: dict) -> Standardizer:
        obj = cls(tuple(state["axes"]) if state["axes"] is not None else None, state["eps"])
        obj.mean_, obj.std_ = np.asarray(state["mean"]), np.asarray(state["std"])
        return obj


class RangeScaler:
    """Affine map of the fitted data range ``[lo, hi]`` onto ``feature_range`` (default ``[-1, 1]``).

    ``data_range`` fixes the input range instead of fitting it (``(0, 255)`` for uint8 images).
    ``clip`` clips transformed values into ``feature_range`` (and inverse inputs likewise).
    """

    def __init__(
        self,
        feature_range: tuple[float, float] = (-1.0, 1.0),
        data_range: tuple[float, float] | None = None,
        clip: bool = True,
    ) -> None:
        if feature_range[0] >= feature_range[1]:
            raise InvalidInputError(f"`feature_range` must be increasing; got {feature_range!r}.")
        self.feature_range = tuple(feature_range)
        self.data_range = tuple(data_range) if data_range is not None else None
        self.clip = clip
        self.lo_: float | None = None
        self.hi_: float | None = None

    def fit(self, X: np.ndarray) -> RangeScaler:
        if self.data_range is not None:
            self.lo_, self.hi_ = map(float, self.data_range)
        else:
            X = np.asarray(X)
            self.lo_, self.hi_ = float(X.min()), float(X.max())
        if self.hi_ <= self.lo_:
            self.hi_ = self.lo_ + 1.0
        return self

    def _check(self) -> None:
        if self.lo_ is None:
            raise NotFittedError("This RangeScaler is not fitted yet; call `fit` before using it.")

    def transform(self, X: np.ndarray) -> np.ndarray:
        self._check()
        a, b = self.feature_range
        Z = (np.asarray(X, dtype=np.float64) - self.lo_) / (self.hi_ - self.lo_) * (b - a) + a
        if self.clip:
            Z = np.clip(Z, a, b)
        return Z.astype(np.float32)

    def inverse_transform(self, Z: np.ndarray) -> np.ndarray:
        self._check()
        a, b = self.feature_range
        Z = np.asarray(Z, dtype=np.float64)
        if self.clip:
            Z = np.clip(Z, a, b)
        return ((Z - a) / (b - a) * (self.hi_ - self.lo_) + self.lo_).astype(np.float32)

    def get_state(self) -> dict:
        self._check()
        return {"kind": "range", "feature_range": list(self.feature_range),
                "data_range": list(self.data_range) if self.data_range else None,
                "clip": self.clip, "lo": self.lo_, "hi": self.hi_}

    @classmethod
    def from_state(cls, state: dict) -> RangeScaler:
        obj = cls(tuple(state["feature_range"]), state["data_range"], state["clip"])
        obj.lo_, obj.hi_ = state["lo"], state["hi"]
        return obj


class ScalerChain:
    """Scalers applied in order; ``inverse_transform`` undoes them in reverse. JSON-serialisable."""

    _KINDS = {"standardizer": Standardizer, "range": RangeScaler}

    def __init__(self, steps: Iterable[Standardizer | RangeScaler]) -> None:
        self.steps = list(steps)

    def fit(self, X: np.ndarray) -> ScalerChain:
        for step in self.steps:
            X = step.fit(X).transform(X)
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        for step in self.steps:
            X = step.transform(X)
        return X

    def inverse_transform(self, Z: np.ndarray) -> np.ndarray:
        for step in reversed(self.steps):
            Z = step.inverse_transform(Z)
        return Z

    def get_state(self) -> list[dict]:
        return [s.get_state() for s in self.steps]

    @classmethod
    def from_state(cls, state: list[dict]) -> ScalerChain:
        return cls(cls._KINDS[s["kind"]].from_state(s) for s in state)


def check_no_missing_labels(y: Sequence | np.ndarray, name: str = "y") -> None:
    """Refuse None or NaN among labels: ``np.unique`` fails on None and would make NaN a class."""
    missing = [i for i, v in enumerate(np.asarray(y).tolist()) if v is None or (isinstance(v, float) and v != v)]
    if missing:
        raise InvalidInputError(f"`{name}` holds {len(missing)} missing label(s) (None or NaN), the first at position "
                                f"{missing[0]}; drop those items or give them a label.")


def encode_labels(y: Sequence | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(classes, index)`` with ``classes[index] == y``; refuses fewer than two classes."""
    y = np.asarray(y)
    if y.ndim != 1 or len(y) == 0:
        raise InvalidInputError(f"`y` must be a non-empty 1-D array of labels; got shape {y.shape}.")
    check_no_missing_labels(y)
    classes, index = np.unique(y, return_inverse=True)
    if len(classes) < 2:
        raise InvalidInputError(
            f"`y` must hold at least 2 classes; got only {classes[0]!r}. A conditional generator needs several."
        )
    return classes, index.astype(np.int64)


def drop_small_classes(labels: Sequence[object], report: CleaningReport, sources: Sequence[str | None] | None = None,
                       *, minimum: int = 2, noun: str = "example") -> list[int]:
    """Positions of the items to keep after dropping every class with fewer than ``minimum`` items.

    A class with a single example can be neither learned as a class by a conditional generator nor
    validated, but it should not cost the user the rest of the run: its items are dropped, each with
    the reason ``singleton class`` (or ``small class`` below a larger ``minimum``) in the cleaning
    report, and one warning names the classes. The caller decides what too few classes left means.
    """
    names = [str(label) for label in labels]
    counts = Counter(names)
    small = {c for c, n in counts.items() if n < minimum}
    for i, name in enumerate(names):
        if name in small:
            n = counts[name]
            reason = (f"singleton class: label {name!r} has only 1 {noun}" if n == 1
                      else f"small class: label {name!r} has {n} {noun}s, fewer than {minimum}")
            report.drop(-1, reason, None if sources is None else sources[i])
    if small:
        logger.warning("dropped %d class(es) with fewer than %d %ss: %s", len(small), minimum, noun, sorted(small))
    return [i for i, name in enumerate(names) if name not in small]
