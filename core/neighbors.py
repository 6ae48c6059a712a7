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

Memory is O(chunk² + n + m): a block holds at most chunk × chunk distances (256 × chunk, about
2^19 values when B is small, or 1024 × 1024 tiles for a set against itself) and no N×M matrix is
ever held whole. Blocks go into reused buffers, and the work after each GEMM is a few full passes
of fast float reductions (sign sums, minima, group minima over strided columns); boolean masks and
index gathers only touch the rare entries these select.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import numpy as np
import torch

DEFAULT_CHUNK = 2048
# Rows of A per block: a (256, chunk) float32 block stays in cache for the elementwise passes
# that follow the GEMM (1.6× faster than 2048-row blocks at 20k × 20k).
_ROWS = 256
_EPS32 = 2.0**-24  # unit roundoff of float32
_BALL_ROWS = 256  # rows of A per ball_stats block: 512 or 1024 widen the blocks radius ranges (more recall work) for no gain


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
    error bound of each row block and exact float64 re-checks of chosen pairs.

    ``shift`` (m,), float64, optional: a value folded into B's augmented column, so that a block
    holds ``D² - shift[j]`` straight from the GEMM (a ball radius² per column saves a full pass
    over every block); it enters the error bound as one more term of the dot product.
    """

    def __init__(self, A: torch.Tensor, B: torch.Tensor, shift: torch.Tensor | None = None) -> None:
        self.A, self.B = A, B
        self.centre = B.sum(0, dtype=torch.float64) / max(len(B), 1)  # (d,)
        b = B.double() - self.centre
        nb = (b * b).sum(1)  # (m,)
        ones = torch.ones(len(B), 1, dtype=torch.float64)
        col = nb if shift is None else nb - shift
        self.Bx = torch.cat([-2 * b, ones, col[:, None]], 1).float()  # (m, d + 2)
        self.nb_max = float(nb.max()) if len(nb) else 0.0
        if shift is not None and len(shift):
            self.nb_max += float(shift.abs().max())  # |nb - shift| <= nb + |shift|
        # first-order bound (2d + 10)·u·(|a|² + |b|² + |shift|) on |fl32 - exact|, taken 2×
        # (>= 2(3d + 8)·u); the factor 2 also covers the float32 roundings of values added to
        # a block afterwards (a margin, a radius²), each u·(that value) at most
        self.tol = 2 * (3 * A.shape[1] + 8) * _EPS32

    def rows(self, which: slice | torch.Tensor, add: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
        """Augmented rows ``[a, |a|² + add, 1]`` (r, d + 2) of ``A[which]``, float32, and each row's
        margin (r,), float64: no pair's float32 value is farther than that from the exact one.
        ``add`` (a scalar folded into every product of the block) must be small next to |a|²."""
        a = self.A[which].double() - self.centre
        na = (a * a).sum(1)
        ax = torch.cat([a, (na + add)[:, None], torch.ones(len(a), 1, dtype=torch.float64)], 1).float()
        return ax, self.tol * (na + self.nb_max)

    def block(self, ax: torch.Tensor, j0: int, j1: int, out: torch.Tensor | None = None) -> torch.Tensor:
        """Approximate squared distances (r, j1 - j0), float32; into ``out`` (a flat float32
        buffer of at least r·(j1 - j0) values) when given, which spares a large allocation per block."""
        Bx = self.Bx[j0:j1]
        if out is None:
            return ax @ Bx.T
        return torch.mm(ax, Bx.T, out=out[: len(ax) * len(Bx)].view(len(ax), len(Bx)))

    def exact_rows(self, idx: torch.Tensor) -> torch.Tensor:
        """Squared distances (n, k), float64, from every row ``A[i]`` to ``B[idx[i, :]]`` (idx of
        shape (n, k)), from direct differences; each row of A is read once, not k times."""
        out = torch.empty(idx.shape, dtype=torch.float64)
        step = max(1, 65536 // max(idx.shape[1], 1))
        for s in range(0, len(idx), step):
            diff = self.B[idx[s : s + step]].double()  # (r, k, d)
            diff -= self.A[s : s + step, None]
            out[s : s + step] = torch.linalg.vecdot(diff, diff)
        return out

    def exact(self, i: torch.Tensor, j: torch.Tensor) -> torch.Tensor:
        """Squared distances of the pairs ``(A[i], B[j])`` (p,), float64, from direct differences
        (65,536 pairs at a time: memory stays O(chunk))."""
        out = torch.empty(len(i), dtype=torch.float64)
        for s in range(0, len(i), 65536):
            diff = self.A[i[s : s + 65536]].double()
            diff -= self.B[j[s : s + 65536]]
            out[s : s + 65536] = torch.linalg.vecdot(diff, diff)
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

    Every block only touches the entries below each item's current keep-th (:func:`_fold`); in an
    item's first block that bound is the keep-th smallest of its group minima. With
    ``exclude_self`` (A is B) only the tiles on and above the diagonal are multiplied, each
    serving its rows and, transposed, its columns.
    Returns ``(d2, index, margin)`` of shapes (n, keep), (n, keep) and (n,): float32, int64, float64.
    """
    n, m = len(g.A), len(g.B)
    best_d = torch.full((n, keep), float("inf"))
    best_i = torch.zeros((n, keep), dtype=torch.long)
    margin = torch.empty(n, dtype=torch.float64)
    rows = min(chunk, _ROWS * 4) if exclude_self else min(chunk, _ROWS)  # square tiles when symmetric
    width = rows if exclude_self else min(chunk, m)
    buf = torch.empty(rows * width)  # one block's values, reused (no large allocation per block)
    for i0 in range(0, n, rows):
        i1 = min(i0 + rows, n)
        ax, margin[i0:i1] = g.rows(slice(i0, i1))
        for j0 in range(i0, m, rows) if exclude_self else range(0, m, chunk):
            D = g.block(ax, j0, min(j0 + width, m), out=buf)
            if exclude_self and j0 == i0:
                _mask_self(D, i0, j0)
            # an item's first block: j0 = 0 (with exclude_self, rows i0 > 0 first came as columns)
            _fold(best_d, best_i, i0, D, j0, first=j0 == 0)
            if exclude_self and j0 != i0:  # the same pairs seen from the column items
                _fold(best_d, best_i, j0, D.T, i0, first=i0 == 0)
    return best_d, best_i, margin


def _fold(best_d: torch.Tensor, best_i: torch.Tensor, lo: int, Dv: torch.Tensor, offset: int, first: bool,
          group: int = 16) -> None:
    """Fold a block into the best lists: ``Dv`` (items, others) holds D² of items lo.. (rows of
    ``best_d`` (n, keep) and ``best_i``) against others offset.. (a view; its transpose when the
    items are the block's columns).

    Only entries below an item's current keep-th can enter its list. They are found through the
    minima of strided groups of others ({t, t + w, ...}, a vectorised reduction in either
    orientation): only groups holding such an entry are read again. An item's first block (its
    keep-th is still inf) takes as bound the keep-th smallest of its group minima, which at least
    keep entries reach, so no full top-k of the block is needed; ``first`` says it is that block.
    """
    items, others = Dv.shape
    keep = best_d.shape[1]
    worst = best_d[lo : lo + items, -1]
    w = others // group
    if first and w < keep:  # a tiny block: a plain top-k
        d, j = torch.topk(Dv, min(keep, others), dim=1, largest=False, sorted=False)
        d, order = torch.topk(torch.cat([best_d[lo : lo + items], d], 1), keep, dim=1, largest=False)
        best_i[lo : lo + items] = torch.gather(torch.cat([best_i[lo : lo + items], j + offset], 1), 1, order)
        best_d[lo : lo + items] = d
        return
    if Dv.stride(1) == 1:
        gm = Dv[:, : group * w].unflatten(1, (group, w)).amin(1)  # (items, w)
    else:
        gm = Dv.T[: group * w].unflatten(0, (group, w)).amin(0).T
    if first:
        worst = torch.nextafter(torch.topk(gm, keep, dim=1, largest=False).values[:, -1], torch.tensor(float("inf")))
    i, t = torch.nonzero(gm < worst[:, None], as_tuple=True)  # sorted by item
    cand = t[:, None] + w * torch.arange(group)  # (p, group)
    vals = Dv[i[:, None], cand]
    p, q = torch.nonzero(vals < worst[i, None], as_tuple=True)
    r, c, v = i[p], cand[p, q], vals[p, q]
    if others > group * w:  # the columns past the last whole group
        tail = Dv[:, group * w :]
        ti, tc = torch.nonzero(tail < worst[:, None], as_tuple=True)
        r, c, v = torch.cat([r, ti]), torch.cat([c, tc + group * w]), torch.cat([v, tail[ti, tc]])
        order = torch.sort(r, stable=True).indices
        r, c, v = r[order], c[order], v[order]
    if len(r) == 0:
        return
    hit, inv, cnt = torch.unique_consecutive(r, return_inverse=True, return_counts=True)
    at = hit + lo
    pos = keep + torch.arange(len(r)) - (torch.cumsum(cnt, 0) - cnt)[inv]
    vals = torch.full((len(hit), keep + int(cnt.max())), float("inf"))
    idx = torch.zeros(vals.shape, dtype=torch.long)
    vals[:, :keep], idx[:, :keep] = best_d[at], best_i[at]
    vals[inv, pos], idx[inv, pos] = v, c + offset
    d, order = torch.topk(vals, keep, dim=1, largest=False)
    best_d[at], best_i[at] = d, torch.gather(idx, 1, order)


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
        d2 = g.exact_rows(idx)
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


def _two_smallest(D: torch.Tensor, group: int = 16) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Each row's smallest value, its column and the second smallest value of ``D`` (r, c), float32.

    Through the minima of strided column groups ({t, t + w, ...}: one vectorised pass over D,
    where ``D.min(1)`` with indices runs 7× slower or more): the smallest lies in the group of smallest
    minimum, and the second smallest is the smaller of that group's second value and the other
    groups' smallest minimum. Returns ``(value, column, second)``, shapes (r,), (r,), (r,).
    """
    r, c = D.shape
    w = c // group
    if w < 2:
        v, a = D.min(1)
        D[torch.arange(r), a] = float("inf")
        return v, a, D.amin(1)
    gm = D[:, : group * w].unflatten(1, (group, w)).amin(1)  # (r, w)
    rows = torch.arange(r)
    g1, t = gm.min(1)
    members = t[:, None] + w * torch.arange(group)  # (r, group): the columns of each row's best group
    vals = D[rows[:, None], members]
    v, q = vals.min(1)
    a = members[rows, q]
    vals[rows, q] = float("inf")
    gm[rows, t] = float("inf")
    v2 = torch.minimum(vals.amin(1), gm.amin(1))
    if c > group * w:  # the columns past the last whole group
        tail = D[:, group * w :]
        tv, ta = tail.min(1)
        tail2 = tail.clone()
        tail2[rows, ta] = float("inf")
        better = tv < v
        v2 = torch.where(better, torch.minimum(v, tail2.amin(1)), torch.minimum(v2, tv))
        a = torch.where(better, ta + group * w, a)
        v = torch.minimum(v, tv)
    return v, a, v2


def ball_stats(A, B, radii_B, *, radii_A=None, nearest: bool = False, chunk: int = DEFAULT_CHUNK) -> BallStats:
    """Ball memberships (and optionally nearest neighbours) between ``A`` (n, d) and ``B`` (m, d)
    in one chunked pass; a pair is inside a ball when ``||a - b|| <= radius``.

    radii_B : array of shape (m,), the radius of the ball around each row of B.
    radii_A : array of shape (n,) or None, the radius of the ball around each row of A.
    nearest : also find each row of A's nearest row of B.
    Returns a :class:`BallStats`.

    Each (r, c) block comes from one GEMM as ``x = D² - radius_B² + mb`` (mb: the block's error
    margin), so that ``x < 0`` is "surely inside" and only ``0 <= x <= 2 mb`` needs an exact
    re-check; counts come from ``sign(x)`` row sums (a fast float reduction, where a boolean
    compare costs 4× more). For recall the rows of A are taken in increasing order of their
    radius: a block's column minimum of D² against the block's smallest and largest radius settles
    almost every column without touching the block again.
    """
    A, B = _t(A), _t(B)
    n, m = len(A), len(B)
    rB = torch.as_tensor(np.asarray(radii_B, dtype=np.float64))
    rA = None if radii_A is None else torch.as_tensor(np.asarray(radii_A, dtype=np.float64))
    # radii² as folded into the GEMM: a NaN radius holds no pair (as ``<=`` says), so its radius²
    # becomes -1; an infinite or huge radius² of B (beyond any pair's D²) is lowered to a value
    # still beyond every pair's D², so that all its pairs stay surely inside and the margins finite
    r2B = torch.where(torch.isnan(rB), -1.0, rB**2)
    r2A = None if rA is None else torch.where(torch.isnan(rA), -1.0, rA**2)
    order = None
    if r2A is not None and n:
        order = torch.argsort(r2A, stable=True)  # rows by radius: narrow radius ranges per block
        A, rA, r2A = A[order], rA[order], r2A[order]
    if n and m:
        centre = B.sum(0, dtype=torch.float64) / m
        nb_max = max(float(((B[s : s + 65536].double() - centre) ** 2).sum(1).max()) for s in range(0, m, 65536))
        if float(r2B.max()) > 4 * nb_max + 1:  # a k-NN radius² inside B is at most 4·max |b - centre|²
            na_max = max(float(((A[s : s + 65536].double() - centre) ** 2).sum(1).max()) for s in range(0, n, 65536))
            r2B = r2B.clamp(max=2 * (na_max + nb_max) + 1)  # > any pair's D² (<= 2(|a|² + |b|²))
    count = torch.zeros(n, dtype=torch.long)
    covered = torch.zeros(m, dtype=torch.bool)
    inside = None if r2A is None else torch.zeros(m, dtype=torch.bool)
    best = torch.full((n, 2), float("inf"), dtype=torch.float64)  # the two smallest approximate D²
    best_i = torch.zeros(n, dtype=torch.long)
    margin = torch.empty(n, dtype=torch.float64)
    checks: dict[str, list[tuple[torch.Tensor, torch.Tensor]]] = {"A": [], "B": []}  # pairs to re-check
    g = _GemmDistances(A, B, shift=r2B)
    # rows per block: with recall, few rows keep each block's radius range narrow; without it,
    # blocks of about 2^19 values spread the per-block overhead when B is small (the screen's classes)
    step = min(chunk, _BALL_ROWS if r2A is not None else max(_BALL_ROWS, (1 << 19) // max(m, 1)))
    buf = torch.empty(step * min(chunk, max(m, 1)))
    gap = torch.empty_like(buf)
    low = torch.empty(m)  # a row block's column minima of x
    with _exact_float32_matmul():
        for i0 in range(0, n, step):
            i1 = min(i0 + step, n)
            _, margin[i0:i1] = g.rows(slice(i0, i1))
            mb = float(np.nextafter(np.float32(margin[i0:i1].max()), np.float32(np.inf)))  # one margin per block
            ax, _ = g.rows(slice(i0, i1), add=mb)
            s = torch.zeros(i1 - i0)  # sign sums: #(x > 0) - #(x < 0), exact integers in float32
            zeros = torch.zeros(i1 - i0, dtype=torch.long)
            for j0 in range(0, m, chunk):
                x = g.block(ax, j0, min(j0 + chunk, m), out=buf)  # D² - r2B[j] + mb
                j1 = j0 + x.shape[1]
                s += torch.sign(x, out=gap[: x.numel()].view_as(x)).sum(1)
                torch.amin(x, 0, out=low[j0:j1])
                if nearest:  # the two smallest per row: the nearest is settled when they are far apart
                    v, a, v2 = _two_smallest(x + (r2B[j0:j1] - mb).float())
                    v, v2, run = v.double(), v2.double(), best[i0:i1]
                    better = v < run[:, 0]
                    run[:, 1] = torch.where(better, torch.minimum(run[:, 0], v2), torch.minimum(run[:, 1], v))
                    run[:, 0] = torch.minimum(run[:, 0], v)
                    best_i[i0:i1] = torch.where(better, a + j0, best_i[i0:i1])
                # pairs within mb of a B ball's boundary: 0 <= x <= 2 mb, i.e. |x - mb| <= mb
                y = torch.sub(x, mb, out=gap[: x.numel()].view_as(x)).abs_()
                if float(y.amin()) <= mb:
                    hit = torch.nonzero(y.amin(1) <= mb).squeeze(1)  # only the rows holding such pairs
                    r, j = torch.nonzero(y[hit] <= mb, as_tuple=True)
                    r = hit[r]
                    checks["B"].append((r + i0, j + j0))
                    zeros += torch.bincount(r[x[r, j] == 0], minlength=len(x))  # every zero is among them
            count[i0:i1] += ((m - s - zeros) * 0.5).long()  # #(x < 0): the surely inside (exact halves)
            covered |= low < 0
            if r2A is not None:
                # D²'s column minimum is within mb of the exact one: at most the block's smallest
                # radius² (rows are sorted), it is surely inside that row's ball; above the largest,
                # surely in none. The few other columns are multiplied again.
                lo, hi = float(r2A[i0]), float(r2A[i1 - 1])
                cd = low.double() + (r2B - mb)
                inside |= cd <= lo - mb
                odd = torch.nonzero(~inside & (cd <= hi + mb)).squeeze(1)
                if len(odd):
                    E = (ax @ g.Bx[odd].T).double() + (r2B[odd] - mb)[None] - r2A[i0:i1, None]  # D² - r2A[i]
                    low2 = E.amin(0)
                    inside[odd[low2 <= -mb]] = True
                    near = torch.nonzero(low2 > -mb).squeeze(1)
                    if len(near):
                        r, j = torch.nonzero(E[:, near].abs() <= mb, as_tuple=True)
                        checks["A"].append((r + i0, odd[near[j]]))
        # the pairs near a boundary, compared as distances, as a brute-force reference does
        if checks["B"]:
            i, j = (torch.cat(t) for t in zip(*checks["B"]))
            ok = g.exact(i, j).sqrt() <= rB[j]
            count.index_add_(0, i[ok], torch.ones(int(ok.sum()), dtype=torch.long))
            covered[j[ok]] = True
        if checks["A"]:
            i, j = (torch.cat(t) for t in zip(*checks["A"]))
            inside[j[g.exact(i, j).sqrt() <= rA[i]]] = True
        if nearest and n and m:
            d2 = g.exact_rows(best_i[:, None])[:, 0]
            rows = torch.nonzero(best[:, 1] - best[:, 0] <= 2 * margin).squeeze(1)
            if len(rows):
                thr = (best[rows, 0] + 3 * margin[rows]).float()
                gd = _GemmDistances(A, B)  # plain D² for the re-check of the nearest
                d2[rows], best_i[rows] = (t[:, 0] for t in _collect_exact(gd, rows, thr, 1, False, chunk))
    if order is not None:  # back to the caller's row order
        count = torch.empty_like(count).index_copy_(0, order, count)
        if nearest and n and m:
            d2 = torch.empty_like(d2).index_copy_(0, order, d2)
            best_i = torch.empty_like(best_i).index_copy_(0, order, best_i)
    out = BallStats(count.numpy(), covered.numpy(), None if inside is None else inside.numpy())
    if nearest and n and m:
        out.nearest_dist, out.nearest_index = d2.sqrt().numpy(), best_i.numpy()
    return out


def count_within(A, B, radii_B: np.ndarray, *, chunk: int = DEFAULT_CHUNK) -> np.ndarray:
    """For every row of ``A`` (n, d): how many rows ``j`` of ``B`` (m, d) have
    ``||A[i] - B[j]|| <= radii_B[j]``. Returns an array of shape (n,), int64."""
    return ball_stats(A, B, radii_B, chunk=chunk).count
