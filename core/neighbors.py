"""Chunked nearest-neighbour primitives: no N×M distance matrix is ever held whole.

Every function walks ``A`` and ``B`` in blocks of ``chunk`` rows, so memory is O(chunk²) whatever the
sizes. Distances are Euclidean, computed in float32 on the CPU (or the tensors' device).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

DEFAULT_CHUNK = 2048


def _t(x: np.ndarray | torch.Tensor) -> torch.Tensor:
    return torch.as_tensor(np.asarray(x, dtype=np.float32)) if not isinstance(x, torch.Tensor) else x.float()


def distance_blocks(A, B, chunk: int = DEFAULT_CHUNK) -> Iterator[tuple[int, int, torch.Tensor]]:
    """Yield ``(i0, j0, D)`` with ``D[i, j] = ||A[i0+i] - B[j0+j]||`` for blocks of at most chunk×chunk."""
    A, B = _t(A), _t(B)
    for i0 in range(0, len(A), chunk):
        a = A[i0 : i0 + chunk]
        for j0 in range(0, len(B), chunk):
            # exact per-pair distances (no matmul trick): results do not depend on the chunk size
            yield i0, j0, torch.cdist(a, B[j0 : j0 + chunk], compute_mode="donot_use_mm_for_euclid_dist")


def knn(A, B, k: int, *, exclude_self: bool = False, chunk: int = DEFAULT_CHUNK) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` nearest rows of ``B`` for every row of ``A``.

    ``exclude_self`` treats ``A`` and ``B`` as the same set and skips each item itself.
    Returns ``(dist, index)``, each of shape (len(A), k'), k' = min(k, available), sorted ascending.
    """
    A, B = _t(A), _t(B)
    k_eff = min(k, len(B) - (1 if exclude_self else 0))
    if len(A) == 0 or k_eff <= 0:
        return np.zeros((len(A), 0), np.float32), np.zeros((len(A), 0), np.int64)
    best_d = torch.full((len(A), k_eff), float("inf"))
    best_i = torch.zeros((len(A), k_eff), dtype=torch.long)
    for i0, j0, D in distance_blocks(A, B, chunk):
        if exclude_self:
            rows = torch.arange(i0, i0 + D.shape[0])
            cols = rows - j0
            ok = (cols >= 0) & (cols < D.shape[1])
            D[torch.nonzero(ok).squeeze(1), cols[ok]] = float("inf")
        kk = min(k_eff, D.shape[1])
        d, idx = torch.topk(D, kk, dim=1, largest=False)
        sl = slice(i0, i0 + D.shape[0])
        cand_d = torch.cat([best_d[sl], d], dim=1)
        cand_i = torch.cat([best_i[sl], idx + j0], dim=1)
        d2, order = torch.topk(cand_d, k_eff, dim=1, largest=False)
        best_d[sl], best_i[sl] = d2, torch.gather(cand_i, 1, order)
    return best_d.numpy(), best_i.numpy()


def kth_neighbour_radius(X, k: int, *, chunk: int = DEFAULT_CHUNK) -> np.ndarray:
    """Distance of every row of ``X`` to its k-th nearest other row (the k-NN ball radius)."""
    d, _ = knn(X, X, k, exclude_self=True, chunk=chunk)
    if d.shape[1] == 0:
        return np.full(len(d), np.inf, np.float32)
    return d[:, -1]


def count_within(A, B, radii_B: np.ndarray, *, chunk: int = DEFAULT_CHUNK) -> np.ndarray:
    """For every row of ``A``: how many rows ``j`` of ``B`` have ``||A[i] - B[j]|| <= radii_B[j]``."""
    A = _t(A)
    radii = torch.as_tensor(np.asarray(radii_B, dtype=np.float32))
    counts = torch.zeros(len(A), dtype=torch.long)
    for i0, j0, D in distance_blocks(A, B, chunk):
        counts[i0 : i0 + D.shape[0]] += (D <= radii[j0 : j0 + D.shape[1]]).sum(dim=1)
    return counts.numpy()
