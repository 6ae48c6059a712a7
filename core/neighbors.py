"""Chunked nearest-neighbour primitives on matrix multiplies, exact where a decision is close.

Squared distances between a block of rows of ``A`` and a block of rows of ``B`` come from one
float32 GEMM, ``||a - b||² = ||a||² + ||b||² - 2 a·b``, with the norms folded into the product and
both sets centred on ``B``'s mean (smaller norms, smaller rounding). Each such value is within a
proven bound of the exact one (``margin``, from the dot-product error bound
γ_{d+2}·Σ|x_t y_t| plus the rounding of the inputs, taken twice over). A decision the float32 value
settles by more than that margin is final; the rare pairs within the margin of the boundary (a
ball radius, the k-th or the nearest neighbour) are re-checked on float64 direct differences of the
original rows. Results therefore equal a float64 brute-force reference whatever the chunk size,
while the bulk of the work runs at float32 GEMM speed (at d = 64 on one core of the project's CPU,
float64 GEMM takes 2× as long and ``torch.cdist`` without matrix multiplies 20× as long).

Memory is O(chunk² + n + m): a block holds at most chunk × chunk distances (256 × chunk, or
1024 × 1024 tiles for a set against itself) and no N×M matrix is ever held whole.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

DEFAULT_CHUNK = 2048
# Rows of A per block: a (256, chunk) float32 block stays in cache for the elementwise passes
# that follow the GEMM (1.6× faster than 2048-row blocks at 20k × 20k).
_ROWS = 256
_EPS32 = 2.0**-24  # unit roundoff of float32


def _t(x: np.ndarray | torch.Tensor) -> torch.Tensor:
    """A float32 or float64 tensor view of ``x`` (no copy when it already is one)."""
    if isinstance(x, torch.Tensor):
        return x if x.dtype in (torch.float32, torch.float64) else x.float()
    x = np.asarray(x)
    if x.dtype not in (np.float32, np.float64):
        x = x.astype(np.float32)
    return torch.from_numpy(np.ascontiguousarray(x))


@contextlib.contextmanager
def _exact_float32_matmul():
    """Full float32 products (no TF32 / bf16) while the error bound is in use, then restore."""
    before = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("highest")
    try:
        yield
    finally:
        torch.set_float32_matmul_precision(before)


class _GemmDistances:
    """Float32 GEMM squared distances from rows of ``A`` (n, d) to rows of ``B`` (m, d), with the
    error bound of each row block and exact float64 re-checks of chosen pairs."""

    def __init__(self, A: torch.Tensor, B: torch.Tensor) -> None:
        self.A, self.B = A, B
        self.centre = B.sum(0, dtype=torch.float64) / max(len(B), 1)  # (d,)
        b = B.double() - self.centre
        nb = (b * b).sum(1)  # (m,)
        ones = torch.ones(len(B), 1, dtype=torch.float64)
        self.Bx = torch.cat([-2 * b, ones, nb[:, None]], 1).float()  # (m, d + 2)
        self.nb_max = float(nb.max()) if len(nb) else 0.0
        # first-order bound (2d + 10)·u·(|a|² + |b|²) on |fl32 - exact|, taken 2× (>= 2(3d + 8)·u)
        self.tol = 2 * (3 * A.shape[1] + 8) * _EPS32

    def rows(self, which: slice | torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Augmented rows ``[a, |a|², 1]`` (r, d + 2) of ``A[which]``, float32, and each row's
        margin (r,), float64: no pair's float32 D² is farther than that from the exact one."""
        a = self.A[which].double() - self.centre
        na = (a * a).sum(1)
        ax = torch.cat([a, na[:, None], torch.ones(len(a), 1, dtype=torch.float64)], 1).float()
        return ax, self.tol * (na + self.nb_max)

    def block(self, ax: torch.Tensor, j0: int, j1: int) -> torch.Tensor:
        """Approximate squared distances (r, j1 - j0), float32."""
        return ax @ self.Bx[j0:j1].T

    def exact(self, i: torch.Tensor, j: torch.Tensor) -> torch.Tensor:
        """Squared distances of the pairs ``(A[i], B[j])`` (p,), float64, from direct differences
        (65,536 pairs at a time: memory stays O(chunk))."""
        out = torch.empty(len(i), dtype=torch.float64)
        for s in range(0, len(i), 65536):
            diff = self.A[i[s : s + 65536]].double() - self.B[j[s : s + 65536]].double()
            out[s : s + 65536] = (diff * diff).sum(1)
        return out


def _mask_self(D: torch.Tensor, i0: int, j0: int) -> None:
    """Set ``D[i, j] = inf`` where row ``i0 + i`` of A is row ``j0 + j`` of B (A and B the same set)."""
    rows = torch.arange(i0, i0 + D.shape[0])
    cols = rows - j0
    ok = (cols >= 0) & (cols < D.shape[1])
    D[torch.nonzero(ok).squeeze(1), cols[ok]] = float("inf")


def _collect_exact(g: _GemmDistances, rows: torch.Tensor, thr: torch.Tensor, k: int, exclude_self: bool,
                   chunk: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact k nearest rows of B for the rows ``rows`` of A whose approximate k-th distance is not
    settled: every j with approximate ``D² ≤ thr`` (thr = approximate k-th + 3 margins: this
    pass's float32 values may differ from the first pass's by 2) is re-checked in float64, and no
    j outside that set can beat the first pass's k.

    Returns ``(d2, index)``, each of shape (len(rows), k), float64 and int64, sorted ascending.
    """
    pair_r, pair_j = [], []
    for s0 in range(0, len(rows), _ROWS):
        sub = rows[s0 : s0 + _ROWS]
        ax, _ = g.rows(sub)
        for j0 in range(0, len(g.B), chunk):
            D = g.block(ax, j0, j0 + chunk)
            hit = D <= thr[s0 : s0 + _ROWS, None]
            if exclude_self:
                hit[sub[:, None] == torch.arange(j0, j0 + D.shape[1])[None]] = False
            r, j = torch.nonzero(hit, as_tuple=True)
            pair_r.append(r + s0)
            pair_j.append(j + j0)
    r, j = torch.cat(pair_r), torch.cat(pair_j)
    if bool((torch.bincount(r, minlength=len(rows)) < k).any()):  # the approximate top k are always in
        raise RuntimeError("exact neighbour re-check lost a candidate; please report this as a bug.")
    d2 = g.exact(rows[r], j)
    order = np.lexsort((d2.numpy(), r.numpy()))  # by row, then by exact distance
    r_sorted = r[order]
    starts = torch.searchsorted(r_sorted, torch.arange(len(rows)))
    pick = torch.as_tensor(order)[starts[:, None] + torch.arange(k)[None]]  # every row has >= k pairs
    return d2[pick], j[pick]


def _approx_topk(g: _GemmDistances, keep: int, exclude_self: bool, chunk: int):
    """The ``keep`` smallest float32 D² of every row of A, sorted ascending, with their indices.

    An item's first block goes through ``torch.topk``; later blocks only touch the entries below
    its current keep-th (:func:`_below`). With ``exclude_self`` (A is B) only the tiles on and
    above the diagonal are multiplied, each serving its rows and, transposed, its columns.
    Returns ``(d2, index, margin)`` of shapes (n, keep), (n, keep) and (n,): float32, int64, float64.
    """
    n, m = len(g.A), len(g.B)
    best_d = torch.full((n, keep), float("inf"))
    best_i = torch.zeros((n, keep), dtype=torch.long)
    margin = torch.empty(n, dtype=torch.float64)

    def merge(lo: int, hi: int, D: torch.Tensor, offset: int, cols: bool = False) -> None:
        """Fold a block's D² into the best lists of rows lo..hi: those of D's rows (columns
        offset..), or with ``cols`` those of D's columns (rows offset..)."""
        worst = best_d[lo:hi, -1]
        if bool(torch.isinf(worst).any()):  # an item's first block: a plain top-k
            D = D.T if cols else D
            d, j = torch.topk(D, min(keep, D.shape[1]), dim=1, largest=False, sorted=False)
            d, order = torch.topk(torch.cat([best_d[lo:hi], d], 1), keep, dim=1, largest=False)
            best_d[lo:hi], best_i[lo:hi] = d, torch.gather(torch.cat([best_i[lo:hi], j + offset], 1), 1, order)
            return
        # later blocks rarely beat an item's current k-th (about keep / blocks seen)
        r, c, v = _below(D, worst, cols)
        if len(r) == 0:
            return
        hit, r = torch.unique_consecutive(r, return_inverse=True)
        at = hit + lo
        start = torch.searchsorted(r, torch.arange(len(hit)))
        width = keep + int(torch.bincount(r, minlength=len(hit)).max())
        vals = torch.full((len(hit), width), float("inf"))
        idx = torch.zeros((len(hit), width), dtype=torch.long)
        vals[:, :keep], idx[:, :keep] = best_d[at], best_i[at]
        pos = keep + torch.arange(len(r)) - start[r]
        vals[r, pos], idx[r, pos] = v, c + offset
        d, order = torch.topk(vals, keep, dim=1, largest=False)
        best_d[at], best_i[at] = d, torch.gather(idx, 1, order)

    rows = min(chunk, _ROWS * 4) if exclude_self else min(chunk, _ROWS)  # square tiles when symmetric
    for i0 in range(0, n, rows):
        i1 = min(i0 + rows, n)
        ax, margin[i0:i1] = g.rows(slice(i0, i1))
        for j0 in range(i0, m, rows) if exclude_self else range(0, m, chunk):
            D = g.block(ax, j0, j0 + (rows if exclude_self else chunk))
            if exclude_self and j0 == i0:
                _mask_self(D, i0, j0)
            merge(i0, i1, D, j0)
            if exclude_self and j0 != i0:  # the same pairs seen from the column items
                merge(j0, j0 + D.shape[1], D, i0, cols=True)
    return best_d, best_i, margin


def _below(D: torch.Tensor, worst: torch.Tensor, cols: bool, group: int = 16):
    """Entries of ``D`` below their item's ``worst``: the items are D's rows, or with ``cols`` its
    columns. They are found through the minima of strided groups of the other axis
    ({t, t + w, ...}, a vectorised reduction in either orientation), so that only groups holding
    a hit are read again. Returns ``(item, other, value)`` sorted by item.
    """
    Dv = D.T if cols else D  # (items, others), a view
    w = Dv.shape[1] // group
    if cols:
        gm = D[: group * w].unflatten(0, (group, w)).amin(0).T
    else:
        gm = D[:, : group * w].unflatten(1, (group, w)).amin(1)
    i, t = torch.nonzero(gm < worst[:, None], as_tuple=True)
    others = t[:, None] + w * torch.arange(group)  # (p, group)
    vals = Dv[i[:, None], others]
    keep = vals < worst[i, None]
    r, c, v = i[:, None].expand_as(others)[keep], others[keep], vals[keep]
    tail = Dv[:, group * w :]
    if tail.shape[1]:
        ti, tc = torch.nonzero(tail < worst[:, None], as_tuple=True)
        r, c, v = torch.cat([r, ti]), torch.cat([c, tc + group * w]), torch.cat([v, tail[ti, tc]])
    order = torch.sort(r, stable=True).indices
    return r[order], c[order], v[order]


def knn(A, B, k: int, *, exclude_self: bool = False, chunk: int = DEFAULT_CHUNK) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` nearest rows of ``B`` for every row of ``A``, exactly.

    A : array of shape (n, d); B : array of shape (m, d), float32 or float64.
    ``exclude_self`` treats ``A`` and ``B`` as the same set and skips each item itself.
    Returns ``(dist, index)``, each of shape (n, k'), k' = min(k, available), float64 and int64,
    sorted ascending; ``dist`` comes from float64 differences of the chosen pairs.
    """
    A, B = _t(A), _t(B)
    n = len(A)
    k_eff = min(k, len(B) - (1 if exclude_self else 0))
    if n == 0 or k_eff <= 0:
        return np.zeros((n, 0), np.float64), np.zeros((n, 0), np.int64)
    keep = min(k_eff + 1, len(B) - (1 if exclude_self else 0))  # one spare shows whether the k-th is settled
    g = _GemmDistances(A, B)
    with _exact_float32_matmul():
        best_d, best_i, margin = _approx_topk(g, keep, exclude_self, chunk)
        idx = best_i[:, :k_eff]
        d2 = g.exact(torch.arange(n).repeat_interleave(k_eff), idx.reshape(-1)).reshape(n, k_eff)
        # a row is settled when every item beyond the approximate top k is farther by > 2 margins
        # (then its exact distance exceeds the exact distances of all k kept ones)
        unsettled = torch.zeros(n, dtype=torch.bool)
        if keep > k_eff:
            unsettled = (best_d[:, k_eff].double() - best_d[:, k_eff - 1].double()) <= 2 * margin
        rows = torch.nonzero(unsettled).squeeze(1)
        if len(rows):
            thr = best_d[rows, k_eff - 1].double() + 3 * margin[rows]
            d2[rows], idx[rows] = _collect_exact(g, rows, thr.float(), k_eff, exclude_self, chunk)
    d2, order = torch.sort(d2, dim=1, stable=True)
    return d2.sqrt().numpy(), torch.gather(idx, 1, order).numpy()


def kth_neighbour_radius(X, k: int, *, chunk: int = DEFAULT_CHUNK) -> np.ndarray:
    """Distance of every row of ``X`` (n, d) to its k-th nearest other row (the k-NN ball radius).

    Returns an array of shape (n,), float64; ``inf`` when ``X`` has a single row.
    """
    d, _ = knn(X, X, k, exclude_self=True, chunk=chunk)
    if d.shape[1] == 0:
        return np.full(len(d), np.inf)
    return d[:, -1]


@dataclass
class BallStats:
    """What one pass over the pairs of ``A`` (n rows) and ``B`` (m rows) tells about k-NN balls.

    count : ndarray of shape (n,), int64 — balls of B (centre ``B[j]``, radius ``radii_B[j]``)
        holding each row of A (Naeem et al.'s density × k; > 0 is improved precision's test).
    covered : ndarray of shape (m,), bool — whether each ball of B holds some row of A (coverage).
    inside : ndarray of shape (m,), bool, or None — whether each row of B lies in some ball of A
        (radius ``radii_A``; improved recall's test).
    nearest_dist, nearest_index : ndarrays of shape (n,), float64 and int64, or None — each row
        of A's nearest row of B.
    """

    count: np.ndarray
    covered: np.ndarray
    inside: np.ndarray | None = None
    nearest_dist: np.ndarray | None = None
    nearest_index: np.ndarray | None = None


def ball_stats(A, B, radii_B, *, radii_A=None, nearest: bool = False, chunk: int = DEFAULT_CHUNK) -> BallStats:
    """Ball memberships (and optionally nearest neighbours) between ``A`` (n, d) and ``B`` (m, d)
    in one chunked pass; a pair is inside a ball when ``||a - b|| <= radius``.

    radii_B : array of shape (m,), the radius of the ball around each row of B.
    radii_A : array of shape (n,) or None, the radius of the ball around each row of A.
    nearest : also find each row of A's nearest row of B.
    Returns a :class:`BallStats`.
    """
    A, B = _t(A), _t(B)
    n, m = len(A), len(B)
    rB = torch.as_tensor(np.asarray(radii_B, dtype=np.float64))
    rA = None if radii_A is None else torch.as_tensor(np.asarray(radii_A, dtype=np.float64))
    r2B, r2A = rB**2, None if rA is None else rA**2
    count = torch.zeros(n, dtype=torch.long)
    covered = torch.zeros(m, dtype=torch.bool)
    inside = None if r2A is None else torch.zeros(m, dtype=torch.bool)
    best = torch.full((n, 2), float("inf"), dtype=torch.float64)  # the two smallest approximate D²
    best_i = torch.zeros(n, dtype=torch.long)
    margin = torch.empty(n, dtype=torch.float64)
    checks: dict[str, list[tuple[torch.Tensor, torch.Tensor]]] = {"A": [], "B": []}  # pairs to re-check
    g = _GemmDistances(A, B)
    with _exact_float32_matmul():
        for i0 in range(0, n, min(chunk, _ROWS)):
            i1 = min(i0 + min(chunk, _ROWS), n)
            ax, margin[i0:i1] = g.rows(slice(i0, i1))
            mb = float(margin[i0:i1].max())  # one margin per block keeps the thresholds vectors
            for j0 in range(0, m, chunk):
                D = g.block(ax, j0, j0 + chunk)
                j1 = j0 + D.shape[1]
                E = D - r2B[j0:j1].float()  # D² minus each ball's radius²: <= -mb surely inside
                sure = E <= -mb
                count[i0:i1] += sure.view(torch.uint8).sum(1, dtype=torch.int32)
                covered[j0:j1] |= E.amin(0) <= -mb
                gap = E.abs_()  # E is not needed past here
                if float(gap.amin()) <= mb:  # a pair within the margin of its ball's boundary
                    r, j = torch.nonzero(gap <= mb, as_tuple=True)
                    checks["B"].append((r + i0, j + j0))
                if r2A is not None:
                    E = D - r2A[i0:i1, None].float()  # (r, c): D² minus each row of A's radius²
                    low = E.amin(0)
                    inside[j0:j1] |= low <= -mb
                    odd = torch.nonzero((low > -mb) & (low <= mb)).squeeze(1)
                    if len(odd):
                        r, j = torch.nonzero(E[:, odd].abs() <= mb, as_tuple=True)
                        checks["A"].append((r + i0, odd[j] + j0))
                if nearest:  # the two smallest per row: the nearest is settled when they are far apart
                    v, a = D.min(1)
                    D[torch.arange(len(D)), a] = float("inf")
                    v2 = D.amin(1)
                    v, v2, run = v.double(), v2.double(), best[i0:i1]
                    better = v < run[:, 0]
                    run[:, 1] = torch.where(better, torch.minimum(run[:, 0], v2), torch.minimum(run[:, 1], v))
                    run[:, 0] = torch.minimum(run[:, 0], v)
                    best_i[i0:i1] = torch.where(better, a + j0, best_i[i0:i1])
        # the pairs near a boundary, compared as distances, as a brute-force reference does
        if checks["B"]:
            i, j = (torch.cat(t) for t in zip(*checks["B"]))
            ok = g.exact(i, j).sqrt() <= rB[j]
            count.index_add_(0, i[ok], torch.ones(int(ok.sum()), dtype=torch.long))
            covered[j[ok]] = True
        if checks["A"]:
            i, j = (torch.cat(t) for t in zip(*checks["A"]))
            inside[j[g.exact(i, j).sqrt() <= rA[i]]] = True
        out = BallStats(count.numpy(), covered.numpy(), None if inside is None else inside.numpy())
        if nearest and n and m:
            d2 = g.exact(torch.arange(n), best_i)
            rows = torch.nonzero(best[:, 1] - best[:, 0] <= 2 * margin).squeeze(1)
            if len(rows):
                thr = (best[rows, 0] + 3 * margin[rows]).float()
                d2[rows], best_i[rows] = (t[:, 0] for t in _collect_exact(g, rows, thr, 1, False, chunk))
            out.nearest_dist, out.nearest_index = d2.sqrt().numpy(), best_i.numpy()
    return out


def count_within(A, B, radii_B: np.ndarray, *, chunk: int = DEFAULT_CHUNK) -> np.ndarray:
    """For every row of ``A`` (n, d): how many rows ``j`` of ``B`` (m, d) have
    ``||A[i] - B[j]|| <= radii_B[j]``. Returns an array of shape (n,), int64."""
    return ball_stats(A, B, radii_B, chunk=chunk).count


def distance_blocks(A, B, chunk: int = DEFAULT_CHUNK) -> Iterator[tuple[int, int, torch.Tensor]]:
    """Yield ``(i0, j0, D)`` with ``D[i, j] = ||A[i0+i] - B[j0+j]||`` for blocks of at most chunk×chunk.

    Exact per-pair differences (no matrix multiply): for sums of small distances, where GEMM's
    cancellation would show, on at most a few thousand rows.
    """
    A, B = _t(A).float(), _t(B).float()
    for i0 in range(0, len(A), chunk):
        a = A[i0 : i0 + chunk]
        for j0 in range(0, len(B), chunk):
            yield i0, j0, torch.cdist(a, B[j0 : j0 + chunk], compute_mode="donot_use_mm_for_euclid_dist")
