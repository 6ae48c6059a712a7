"""Cleaning (with a reason for every dropped item) and invertible scalers fitted on the data.

The modality packages compose these: they decide *what* an item's statistics are (mean intensity,
length, RMS) and *how* raw items become arrays; the rules themselves live here once.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from imagina.core.errors import InvalidInputError, NotFittedError


# --------------------------------------------------------------------------- cleaning report
@dataclass(frozen=True)
class DroppedItem:
    """One item removed from the data, with the reason and, when known, where it came from."""

    index: int
    reason: str
    source: str | None = None


@dataclass
class CleaningReport:
    """Every item dropped by cleaning, with its reason. ``kept`` counts the survivors."""

    dropped: list[DroppedItem] = field(default_factory=list)
    kept: int = 0

    def drop(self, index: int, reason: str, source: str | None = None) -> None:
        self.dropped.append(DroppedItem(int(index), reason, source))

    def reasons(self) -> Counter:
        """How many items each kind of reason dropped (the text before the first ':')."""
        return Counter(item.reason.split(":")[0] for item in self.dropped)

    def to_dict(self) -> dict:
        return {
            "kept": self.kept,
            "dropped": len(self.dropped),
            "by_reason": dict(self.reasons()),
            "items": [{"index": d.index, "reason": d.reason, "source": d.source} for d in self.dropped],
        }

    def summary(self) -> str:
        if not self.dropped:
            return f"kept {self.kept} items, dropped none"
        parts = ", ".join(f"{n} {why}" for why, n in self.reasons().most_common())
        return f"kept {self.kept} items, dropped {len(self.dropped)} ({parts})"


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


def encode_labels(y: Sequence | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(classes, index)`` with ``classes[index] == y``; refuses fewer than two classes."""
    y = np.asarray(y)
    if y.ndim != 1 or len(y) == 0:
        raise InvalidInputError(f"`y` must be a non-empty 1-D array of labels; got shape {y.shape}.")
    classes, index = np.unique(y, return_inverse=True)
    if len(classes) < 2:
        raise InvalidInputError(
            f"`y` must hold at least 2 classes; got only {classes[0]!r}. A conditional generator needs several."
        )
    return classes, index.astype(np.int64)
