"""What each synthetic candidate does to classifying real items it was not fitted on.

A candidate is useful when it moves a classifier towards the right label of real items, not when
it merely looks real. Two cross-fitted measures value every candidate in the screen's embedding
space (``real`` of shape (n, d), ``cand`` of shape (m, d), float32):

* **Marginal k-NN value** (the decision): what adding the candidate alone to the real training
  items does to a k-NN classifier's votes on held-out real items. Where the candidate enters a
  held-out item's k nearest real neighbours it displaces the k-th one, so its effect on that item's
  vote share is ``(1[label matches] − 1[k-th neighbour's label matches]) / k``; elsewhere it is 0.
  Exact, local, and in the units of held-out accuracy: a negative value means the real data would
  classify its neighbourhood worse with the candidate than without it; the candidate is rejected as
  harmful when the probe influence below is negative too (with a few items per class either sign
  alone is noisy). A candidate far from every held-out item is worth 0, neither good nor bad.
* **KNN-Shapley** (Jia et al. 2019, "Efficient task-specific data valuation for nearest neighbor
  algorithms"): the exact Shapley value of each training item for a k-NN classifier's accuracy on
  held-out items, computed by their closed-form recursion over the items sorted by distance
  (O(N log N) per held-out item), over the pool of real training items and candidates. It credits
  every item, near or far, with its share of the pool's accuracy, so it ranks candidates (ties in
  the marginal value) but does not decide harm: in a pool of thousands of candidates and a hundred
  real items the sign of a far candidate's share is noise.
* **Probe influence** (TracIn, Pruthi et al. 2020, at one checkpoint): a softmax linear probe is
  fitted on the real training part; a candidate's influence is the dot product of its loss gradient
  with the summed loss gradients of the held-out real items — positive when a gradient step on it
  lowers their loss. For a linear softmax model ``∇ℓ = (p − e_y) x̃ᵀ`` (``x̃`` with a bias 1), so
  the sum over held-out items folds into one (classes, d + 1) matrix: O(n + m) work, no pairs.

Cross-fitting: the real items are split into ``folds`` stratified folds; for each fold the
candidates value against the fold's items with the other folds (and the candidates) as the
training pool. The generator and embedder saw every real item, so a candidate that echoes a
held-out item would be rewarded for the echo; each candidate is therefore attributed to its
nearest real item of its own class and takes part only in the folds where that item is in the
training pool. Candidates within ``copy_ratio`` of the class's median real nearest-neighbour
distance to a real item add nothing the real set lacks and get value 0 and no part in any pool.
Memory is O(chunk · (n + m)): held-out items are processed in blocks, never an n × m matrix whole.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from imagina.core.errors import InvalidInputError, check_float, check_int

logger = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class ValuationConfig:
    """Settings of :func:`value_candidates`.

    k : neighbours of the k-NN classifier that KNN-Shapley values items for.
    folds : cross-fitting folds over the real items (fewer where a class has fewer items).
    copy_ratio : candidates nearer than this × the class's median real nearest-neighbour distance
        to a real item are copies (value 0).
    probe_c : inverse L2 strength of the softmax probe (on standardised embeddings).
    max_pairs : bound on the distance block (held-out items × pool) held at once.
    max_real : at most this many real items (a stratified random subset) value the candidates: the
        values are means over held-out items, which a few thousand estimate well, and exact
        KNN-Shapley costs O(N log N) per held-out item.
    seed : seed of the fold split and of the subset.
    """

    k: int = 5
    folds: int = 5
    copy_ratio: float = 0.2
    probe_c: float = 1.0
    max_pairs: int = 4_000_000
    max_real: int = 2000
    seed: int = 0

    def __post_init__(self) -> None:
        check_int("k", self.k, minimum=1)
        check_int("folds", self.folds, minimum=2)
        check_float("copy_ratio", self.copy_ratio, minimum=0.0)
        check_float("probe_c", self.probe_c, minimum=1e-6)
        check_int("max_pairs", self.max_pairs, minimum=1000)
        check_int("max_real", self.max_real, minimum=10)
        check_int("seed", self.seed, minimum=0)


@dataclass
class Valuation:
    """Per-candidate utility, cross-fitted. Arrays of shape (m,).

    marginal : mean marginal k-NN value per held-out real item of the folds it took part in.
    knn_shapley : mean KNN-Shapley value per held-out item (same folds).
    probe : mean probe influence per held-out item (same folds).
    nearest_real : index of the candidate's nearest real item of its class (its attribution).
    copy : True where the candidate is a copy of a real item (value 0 by definition).
    seconds : wall time of the valuation.
    """

    marginal: np.ndarray
    knn_shapley: np.ndarray
    probe: np.ndarray
    nearest_real: np.ndarray
    copy: np.ndarray
    seconds: float = 0.0
    folds: list[np.ndarray] = field(default_factory=list)

    def harmful_reasons(self) -> list[str | None]:
        """Per candidate: ``"harmful: value -0.0310 ..."`` where its marginal k-NN value is negative
        and the probe agrees that it works against held-out items (influence < 0), else None."""
        out: list[str | None] = [None] * len(self.marginal)
        for i in np.flatnonzero((self.marginal < 0) & (self.probe < 0)).tolist():
            out[i] = (f"harmful: value {self.marginal[i]:.4f} on held-out real items "
                      f"(probe influence {self.probe[i]:.4f})")
        return out


def stratified_subsample(y: np.ndarray, n: int, seed: int) -> np.ndarray:
    """Sorted indices of at most ``n`` items, every class keeping its share (at least one item);
    all indices when ``len(y) <= n``."""
    y = np.asarray(y)
    if len(y) <= n:
        return np.arange(len(y))
    rng = np.random.default_rng(seed)
    keep = []
    for c in np.unique(y):
        rows = np.flatnonzero(y == c)
        keep.extend(rng.permutation(rows)[: max(1, int(round(n * len(rows) / len(y))))].tolist())
    return np.sort(np.asarray(keep, dtype=np.int64))


def stratified_folds(y: np.ndarray, folds: int, seed: int) -> list[np.ndarray]:
    """``folds`` disjoint index arrays, each holding about 1/folds of every class (shuffled by ``seed``).
    A class with fewer items than folds spreads its items over the first folds."""
    rng = np.random.default_rng(seed)
    parts: list[list[int]] = [[] for _ in range(folds)]
    offset = 0
    for c in np.unique(y):
        rows = rng.permutation(np.flatnonzero(y == c))
        for j, i in enumerate(rows.tolist()):
            parts[(j + offset) % folds].append(i)
        offset += len(rows)
    return [np.sort(np.asarray(p, dtype=np.int64)) for p in parts]


def knn_shapley(train: np.ndarray, train_y: np.ndarray, test: np.ndarray, test_y: np.ndarray, *, k: int = 5,
                max_pairs: int = 4_000_000) -> np.ndarray:
    """Exact KNN-Shapley values of every training item, summed over the test items.

    Parameters
    ----------
    train : ndarray of shape (N, d); train_y : labels of shape (N,).
    test : ndarray of shape (T, d); test_y : labels of shape (T,).

    Returns
    -------
    ndarray of shape (N,), float64: Σ over test items of each training item's Shapley value for the
    k-NN classifier's accuracy on that item (Jia et al. 2019, Theorem 1). Ties in distance keep
    training order (a stable sort), so results do not depend on ``max_pairs``.
    """
    N = len(train)
    total = np.zeros(N, dtype=np.float64)
    if N == 0 or len(test) == 0:
        return total
    tr = torch.as_tensor(np.asarray(train, dtype=np.float64))
    tr_sq = (tr * tr).sum(1)
    codes = {c: i for i, c in enumerate(np.unique(np.concatenate([np.asarray(train_y), np.asarray(test_y)])).tolist())}
    ty = torch.as_tensor([codes[c] for c in np.asarray(train_y).tolist()])
    vy = torch.as_tensor([codes[c] for c in np.asarray(test_y).tolist()])
    rank = torch.arange(1, N + 1, dtype=torch.float64)
    # weight of the step from sorted position i to i+1 (1-based): min(k, i) / (k · i)
    step = torch.minimum(rank, torch.tensor(float(k))) / (k * rank)
    block = max(1, max_pairs // N)
    te = torch.as_tensor(np.asarray(test, dtype=np.float64))
    for s in range(0, len(te), block):
        v = te[s : s + block]
        d2 = (v * v).sum(1, keepdim=True) + tr_sq[None, :] - 2.0 * v @ tr.T  # (b, N), float64
        order = torch.sort(d2, dim=1, stable=True).indices
        match = (ty[order] == vy[s : s + block, None]).to(torch.float64)  # (b, N) in sorted order
        diff = (match[:, :-1] - match[:, 1:]) * step[:-1]  # (b, N-1)
        # s_N = match_N / N; s_i = s_{i+1} + diff_i  →  a reversed cumulative sum
        vals = torch.empty_like(match)
        vals[:, -1] = match[:, -1] / N
        if N > 1:
            vals[:, :-1] = vals[:, -1:] + torch.flip(torch.cumsum(torch.flip(diff, [1]), 1), [1])
        total += torch.zeros(N, dtype=torch.float64).index_add_(0, order.reshape(-1), vals.reshape(-1)).numpy()
    return total


def knn_marginal(train: np.ndarray, train_y: np.ndarray, test: np.ndarray, test_y: np.ndarray,
                 cand: np.ndarray, cand_y: np.ndarray, *, k: int = 5, max_pairs: int = 4_000_000) -> np.ndarray:
    """Marginal k-NN value of each candidate added alone to ``train``, summed over the test items.

    Returns ndarray of shape (len(cand),), float64: Σ over test items v, where the candidate is
    nearer to v than v's k-th nearest training item, of ``(1[cand label = y_v] − 1[k-th label = y_v]) / k``.
    """
    from imagina.core.neighbors import knn

    out = np.zeros(len(cand), dtype=np.float64)
    if len(cand) == 0 or len(test) == 0:
        return out
    test_y, train_y, cand_y = np.asarray(test_y), np.asarray(train_y), np.asarray(cand_y)
    d, idx = knn(test, train, k)
    if d.shape[1] < k:  # fewer than k training items: the candidate fills an empty seat
        radius, kth_match = np.full(len(test), np.inf), np.zeros(len(test))
    else:
        radius, kth_match = d[:, -1].astype(np.float64), (train_y[idx[:, -1]] == test_y).astype(np.float64)
    c = torch.as_tensor(np.asarray(cand, dtype=np.float64))
    c_sq = (c * c).sum(1)
    codes = {v: i for i, v in enumerate(np.unique(np.concatenate([cand_y, test_y])).tolist())}
    cy = torch.as_tensor([codes[v] for v in cand_y.tolist()])
    block = max(1, max_pairs // len(cand))
    for s in range(0, len(test), block):
        v = torch.as_tensor(np.asarray(test[s : s + block], dtype=np.float64))
        d2 = (v * v).sum(1, keepdim=True) + c_sq[None, :] - 2.0 * v @ c.T                 # (b, m)
        inside = d2 < torch.as_tensor(radius[s : s + block] ** 2)[:, None]
        vy = torch.as_tensor([codes[y] for y in test_y[s : s + block].tolist()])
        gain = (cy[None, :] == vy[:, None]).double() - torch.as_tensor(kth_match[s : s + block])[:, None]
        out += ((gain * inside) / k).sum(0).numpy()
    return out


def probe_influence(train: np.ndarray, train_y: np.ndarray, test: np.ndarray, test_y: np.ndarray,
                    cand: np.ndarray, cand_y: np.ndarray, *, c: float = 1.0) -> np.ndarray:
    """TracIn influence of each candidate on the test items' loss under a softmax probe fitted on ``train``.

    Returns ndarray of shape (len(cand),): Σ over test items of ∇ℓ(test) · ∇ℓ(candidate), divided
    by the number of test items; positive where a gradient step on the candidate lowers the test loss.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    classes = np.unique(train_y)
    out = np.zeros(len(cand), dtype=np.float64)
    if len(classes) < 2 or len(cand) == 0 or len(test) == 0:
        return out
    scaler = StandardScaler().fit(train)
    probe = LogisticRegression(C=c, max_iter=1000).fit(scaler.transform(train), train_y)

    def residual(X, y):  # (n, C) rows p − e_y, and x̃ = [x, 1] of shape (n, d + 1)
        Z = scaler.transform(X)
        a = probe.predict_proba(Z)
        col = {k: i for i, k in enumerate(probe.classes_.tolist())}
        known = np.array([v in col for v in np.asarray(y).tolist()])
        idx = np.array([col.get(v, 0) for v in np.asarray(y).tolist()])
        a[np.flatnonzero(known), idx[known]] -= 1.0
        return a, np.hstack([Z, np.ones((len(Z), 1))])

    a_t, x_t = residual(test, test_y)
    M = a_t.T @ x_t  # (C, d + 1): the summed test gradients
    a_c, x_c = residual(cand, cand_y)
    out[:] = np.einsum("nc,cd,nd->n", a_c, M, x_c) / len(test)
    return out


def attribute(real: np.ndarray, real_y: np.ndarray, cand: np.ndarray, cand_y: np.ndarray, *,
              copy_ratio: float = 0.2) -> tuple[np.ndarray, np.ndarray]:
    """Each candidate's nearest real item of its own class, and whether it is a copy of it.

    Returns ``(nearest, copy)``: int64 indices into ``real`` and a bool mask, each of shape (m,); a
    copy lies nearer than ``copy_ratio`` × the class's median real nearest-neighbour distance.
    """
    from imagina.core.neighbors import knn

    nearest = np.zeros(len(cand), dtype=np.int64)
    copy = np.zeros(len(cand), dtype=bool)
    for c in np.unique(cand_y):
        rows, pool = np.flatnonzero(cand_y == c), np.flatnonzero(real_y == c)
        d, idx = knn(cand[rows], real[pool], 1)
        nearest[rows] = pool[idx[:, 0]]
        nn_real, _ = knn(real[pool], real[pool], 1, exclude_self=True)
        finite = nn_real[:, 0][np.isfinite(nn_real[:, 0])] if nn_real.shape[1] else np.zeros(0)
        scale = max(float(np.median(finite)) if len(finite) else 1.0, 1e-8)
        copy[rows] = d[:, 0] < copy_ratio * scale
    return nearest, copy


def value_candidates(real: np.ndarray, real_y: np.ndarray, cand: np.ndarray, cand_y: np.ndarray,
                     config: ValuationConfig | None = None) -> Valuation:
    """Cross-fitted marginal k-NN value, KNN-Shapley value and probe influence of every candidate
    (see the module doc).

    Parameters
    ----------
    real : ndarray of shape (n, d), float32; real_y : labels of shape (n,).
    cand : ndarray of shape (m, d), float32; cand_y : labels of shape (m,), each a class of ``real_y``.
    """
    cfg = config or ValuationConfig()
    start = time.perf_counter()
    real, cand = np.asarray(real, np.float32), np.asarray(cand, np.float32)
    real_y, cand_y = np.asarray(real_y), np.asarray(cand_y)
    if real.ndim != 2 or cand.ndim != 2 or (len(cand) and cand.shape[1] != real.shape[1]):
        raise InvalidInputError(f"`real` and `cand` must be 2-D with the same width; got {real.shape} and {cand.shape}.")
    unknown = set(np.unique(cand_y).tolist()) - set(np.unique(real_y).tolist())
    if unknown:
        raise InvalidInputError(f"candidate labels {sorted(map(str, unknown))[:5]} are not classes of the real data.")
    m = len(cand)
    subset = stratified_subsample(real_y, cfg.max_real, cfg.seed)
    real, real_y = real[subset], real_y[subset]
    nearest, copy = attribute(real, real_y, cand, cand_y, copy_ratio=cfg.copy_ratio)

    folds = stratified_folds(real_y, min(cfg.folds, max(2, int(np.unique(real_y, return_counts=True)[1].min()))), cfg.seed)
    marginal, shapley, probe = np.zeros(m), np.zeros(m), np.zeros(m)
    held = np.zeros(m)  # held-out items each candidate was valued on
    fold_of = np.empty(len(real_y), dtype=np.int64)
    for f, rows in enumerate(folds):
        fold_of[rows] = f
    for f, test_rows in enumerate(folds):
        train_rows = np.flatnonzero(fold_of != f)
        members = np.flatnonzero((fold_of[nearest] != f) & ~copy)
        if len(test_rows) == 0 or len(members) == 0:
            continue
        pool = np.concatenate([real[train_rows], cand[members]])
        pool_y = np.concatenate([real_y[train_rows], cand_y[members]])
        values = knn_shapley(pool, pool_y, real[test_rows], real_y[test_rows], k=cfg.k, max_pairs=cfg.max_pairs)
        shapley[members] += values[len(train_rows):]
        marginal[members] += knn_marginal(real[train_rows], real_y[train_rows], real[test_rows], real_y[test_rows],
                                          cand[members], cand_y[members], k=cfg.k, max_pairs=cfg.max_pairs)
        probe[members] += len(test_rows) * probe_influence(real[train_rows], real_y[train_rows], real[test_rows],
                                                           real_y[test_rows], cand[members], cand_y[members], c=cfg.probe_c)
        held[members] += len(test_rows)
    seen = held > 0
    for values in (marginal, shapley, probe):
        values[seen] /= held[seen]
    seconds = time.perf_counter() - start
    logger.info("valued %d candidates against %d real items in %d folds (%.1f s)", m, len(real_y), len(folds), seconds)
    return Valuation(marginal, shapley, probe, subset[nearest], copy, seconds, [subset[f] for f in folds])
