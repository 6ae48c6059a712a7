"""Fidelity and diversity metrics in any embedding space.

Every metric takes ``real`` of shape (n, d) and ``fake`` of shape (m, d), float32, and is computed
in chunks (:mod:`imagina.core.neighbors`), so its value does not depend on the chunk size. The
neighbour metrics equal a float64 brute-force computation: distances run on float32 matrix
multiplies and every pair within their error bound of a ball's radius is re-checked exactly.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy import linalg

from imagina.core.errors import InvalidInputError
from imagina.core.neighbors import DEFAULT_CHUNK, ball_stats, kth_neighbour_radius


def _check(name: str, X: np.ndarray, min_rows: int = 2) -> np.ndarray:
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or len(X) < min_rows:
        raise InvalidInputError(f"`{name}` must be a 2-D array with at least {min_rows} rows; got shape {X.shape}.")
    return X


def frechet_distance(real: np.ndarray, fake: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to ``real`` (n, d) and ``fake`` (m, d) (FID's formula)."""
    real, fake = _check("real", real), _check("fake", fake)
    mu1, mu2 = real.mean(0), fake.mean(0)
    s1, s2 = np.cov(real, rowvar=False), np.cov(fake, rowvar=False)
    with warnings.catch_warnings():  # near-singular covariances (few items) are handled below
        warnings.simplefilter("ignore", linalg.LinAlgWarning)
        covmean = linalg.sqrtm(s1 @ s2)
    if not np.isfinite(covmean).all():  # near-singular: regularise as pytorch-fid does
        offset = np.eye(len(s1)) * 1e-6
        covmean = linalg.sqrtm((s1 + offset) @ (s2 + offset))
    covmean = np.real(covmean)
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def prdc(real: np.ndarray, fake: np.ndarray, *, k: int = 5, chunk: int = DEFAULT_CHUNK) -> dict[str, float]:
    """Improved precision and recall (Kynkäänniemi et al. 2019), density and coverage (Naeem et al.
    2020) together, with each k-NN radius set computed once and one pass over the real × fake pairs.

    real : array of shape (n, d); fake : array of shape (m, d); both need more than ``k`` rows.
    Precision: share of fake items inside some real k-NN ball; recall: share of real items inside
    some fake k-NN ball; density: mean number of real balls holding a fake item, over k; coverage:
    share of real items whose ball holds at least one fake item. A point on a ball's boundary is
    inside. Returns ``{"precision", "recall", "density", "coverage"}``.
    """
    real, fake = _check("real", real, k + 1), _check("fake", fake, k + 1)
    return _ball_metrics(real, fake, k, chunk, recall=True)


def _ball_metrics(real: np.ndarray, fake: np.ndarray, k: int, chunk: int, *, recall: bool) -> dict[str, float]:
    r_real = kth_neighbour_radius(real, k, chunk=chunk)
    r_fake = kth_neighbour_radius(fake, k, chunk=chunk) if recall else None
    stats = ball_stats(fake, real, r_real, radii_A=r_fake, chunk=chunk)
    out = {"precision": float((stats.count > 0).mean())}
    if recall:
        out["recall"] = float(stats.inside.mean())
    out["density"] = float(stats.count.mean() / k)
    out["coverage"] = float(stats.covered.mean())
    return out


def precision_recall(real: np.ndarray, fake: np.ndarray, *, k: int = 5, chunk: int = DEFAULT_CHUNK) -> dict[str, float]:
    """Improved precision and recall (see :func:`prdc`) of ``real`` (n, d) and ``fake`` (m, d).

    Returns ``{"precision": p, "recall": r}``.
    """
    out = prdc(real, fake, k=k, chunk=chunk)
    return {"precision": out["precision"], "recall": out["recall"]}


def density_coverage(real: np.ndarray, fake: np.ndarray, *, k: int = 5, chunk: int = DEFAULT_CHUNK) -> dict[str, float]:
    """Density and coverage (see :func:`prdc`) of ``real`` (n, d) and ``fake`` (m, d); ``fake``
    needs a single row, as no fake ball is drawn. Returns ``{"density": d, "coverage": c}``.
    """
    real, fake = _check("real", real, k + 1), _check("fake", fake, 1)
    out = _ball_metrics(real, fake, k, chunk, recall=False)
    return {"density": out["density"], "coverage": out["coverage"]}


def mean_pairwise_distance(X: np.ndarray, *, max_items: int = 2000, seed: int = 0, chunk: int = DEFAULT_CHUNK) -> float:
    """Mean Euclidean distance between distinct items of ``X`` (n, d); a random subset of
    ``max_items`` bounds the cost. The within-class diversity measure (collapse → near 0)."""
    X = np.asarray(X, dtype=np.float32).reshape(len(X), -1)
    if len(X) < 2:
        return 0.0
    if len(X) > max_items:
        X = X[np.random.default_rng(seed).choice(len(X), max_items, replace=False)]
    # Matrix products in float64 (‖a‖² + ‖b‖² − 2a·b): float64 keeps the cancellation far below any
    # distance that matters for a mean, at a fraction of per-pair differences' cost (1,024-pixel images:
    # 3 s per run before).
    X = X.astype(np.float64)
    sq = np.einsum("ij,ij->i", X, X)
    total = 0.0
    for i0 in range(0, len(X), chunk):
        block = sq[i0 : i0 + chunk, None] + sq[None, :] - 2.0 * (X[i0 : i0 + chunk] @ X.T)
        np.maximum(block, 0.0, out=block)
        block[np.arange(len(block)), np.arange(i0, i0 + len(block))] = 0.0  # an item's distance to itself
        total += float(np.sqrt(block).sum())
    return total / (len(X) * (len(X) - 1))


def within_class_diversity(X: np.ndarray, y: np.ndarray, **kwargs) -> dict[str, float]:
    """:func:`mean_pairwise_distance` inside each class; keys are the class labels as strings."""
    y = np.asarray(y)
    X = np.asarray(X).reshape(len(X), -1)
    return {str(c): mean_pairwise_distance(X[y == c], **kwargs) for c in np.unique(y)}


def embedding_metrics(real: np.ndarray, fake: np.ndarray, *, k: int = 5) -> dict[str, float]:
    """FD, precision, recall, density and coverage together (skipping those the sizes do not allow)."""
    out: dict[str, float] = {}
    if len(real) > 2 and len(fake) > 2:
        out["frechet_distance"] = frechet_distance(real, fake)
    if len(real) > k and len(fake) > k:
        out.update(prdc(real, fake, k=k))
    return out
