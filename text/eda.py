"""Classical EDA augmentation (Wei & Zou, 2019) on padded word-id tensors.

Four operations: synonym replacement, random insertion (of a synonym of a word of the sentence),
random swap and random deletion. With no thesaurus to download, "synonyms" are nearest neighbours
in a word embedding computed from the training data itself: a truncated SVD of the positive PMI
matrix of word co-occurrences (window 2). Every augmented sentence gets one operation, drawn at
random, changing about ``alpha·len`` words. Randomness is drawn first from the caller's
``torch.Generator``, then applied.
"""

from __future__ import annotations

import logging

import numpy as np
import torch

from imagina.core.errors import check_float, check_int

logger = logging.getLogger(__name__)

OPERATIONS = ("synonym", "insert", "swap", "delete")


def synonym_table(ids: torch.Tensor, vocab_size: int, *, dim: int = 32, window: int = 2, k: int = 5,
                  min_count: int = 2, pad_id: int = 0, unk_id: int = 1, seed: int = 0) -> torch.Tensor:
    """Nearest-neighbour "synonyms" of every word from co-occurrence statistics of ``ids``.

    Parameters
    ----------
    ids : LongTensor of shape (n, L)
        Padded word ids of the training sentences.
    vocab_size : int

    Returns
    -------
    LongTensor of shape (vocab_size, k)
        Neighbour ids by decreasing cosine similarity; ``-1`` where a word has none (rare words,
        PAD, UNK).
    """
    from scipy import sparse
    from sklearn.decomposition import TruncatedSVD

    check_int("k", k, minimum=1)
    rows, cols = [], []
    arr = ids.numpy()
    for seq in arr:
        seq = seq[seq != pad_id]
        for off in range(1, window + 1):
            if len(seq) > off:
                rows.append(seq[:-off])
                cols.append(seq[off:])
    table = torch.full((vocab_size, k), -1, dtype=torch.long)
    if not rows:
        return table
    r, c = np.concatenate(rows), np.concatenate(cols)
    co = sparse.coo_matrix((np.ones(len(r)), (r, c)), shape=(vocab_size, vocab_size)).tocsr()
    co = (co + co.T).tocsr()
    counts = np.bincount(arr[arr != pad_id], minlength=vocab_size)
    total = co.sum()
    row_sum = np.asarray(co.sum(1)).ravel()
    co = co.tocoo()
    pmi = np.log(co.data * total / (row_sum[co.row] * row_sum[co.col] + 1e-12))
    keep = pmi > 0
    ppmi = sparse.csr_matrix((pmi[keep], (co.row[keep], co.col[keep])), shape=co.shape)
    n_comp = int(min(dim, vocab_size - 1, max(ppmi.nnz - 1, 1)))
    if n_comp < 2:
        return table
    vec = TruncatedSVD(n_components=n_comp, random_state=seed).fit_transform(ppmi)
    vec = vec / np.maximum(np.linalg.norm(vec, axis=1, keepdims=True), 1e-12)
    eligible = (counts >= min_count) & (np.linalg.norm(vec, axis=1) > 0)
    eligible[[pad_id, unk_id]] = False
    cand = np.flatnonzero(eligible)
    if len(cand) < 2:
        return table
    for s in range(0, len(cand), 1024):  # (chunk, m) similarities, never V×V at once
        block = cand[s : s + 1024]
        sim = vec[block] @ vec[cand].T
        sim[np.arange(len(block)), np.arange(s, s + len(block))] = -np.inf  # not itself
        kk = min(k, len(cand) - 1)
        top = np.argsort(-sim, axis=1)[:, :kk]
        table[torch.as_tensor(block), :kk] = torch.as_tensor(cand[top])
    return table


def eda_batch(ids: torch.Tensor, rng: torch.Generator, *, alpha: float, synonyms: torch.Tensor,
              pad_id: int = 0, operations: tuple[str, ...] = OPERATIONS) -> torch.Tensor:
    """Apply one random EDA operation to every row of ``ids``.

    Parameters
    ----------
    ids : LongTensor of shape (B, L), padded with ``pad_id`` at the end
    rng : torch.Generator (the only source of randomness)
    alpha : float
        Share of words changed (at least one).
    synonyms : LongTensor of shape (V, k) from :func:`synonym_table`

    Returns
    -------
    LongTensor of shape (B, L): a new tensor; ``ids`` is not modified.
    """
    check_float("alpha", alpha, minimum=0.0, maximum=1.0)
    seed = int(torch.randint(0, 2**62, (1,), generator=rng))
    gen = np.random.default_rng(seed)
    syn = synonyms.numpy()
    B, L = ids.shape
    out = torch.full_like(ids, pad_id)
    for b, row in enumerate(ids.tolist()):
        words = [w for w in row if w != pad_id]
        op = operations[int(gen.integers(len(operations)))]
        words = apply_operation(words, op, alpha, syn, gen)[:L]
        if words:
            out[b, : len(words)] = torch.as_tensor(words)
    return out


def apply_operation(words: list[int], op: str, alpha: float, syn: np.ndarray, gen: np.random.Generator) -> list[int]:
    """One EDA operation on a list of word ids (returns a new list)."""
    words = list(words)
    if not words:
        return words
    n = max(1, int(round(alpha * len(words))))
    if op == "delete":
        if len(words) == 1:
            return words
        kept = [w for w in words if gen.random() >= alpha]
        return kept or [words[int(gen.integers(len(words)))]]
    if op == "swap":
        for _ in range(n):
            i, j = gen.integers(len(words), size=2)
            words[i], words[j] = words[j], words[i]
        return words
    with_syn = [i for i, w in enumerate(words) if w < len(syn) and syn[w, 0] >= 0]
    if not with_syn:
        return words
    if op == "synonym":
        for i in gen.permutation(with_syn)[:n]:
            options = syn[words[i]][syn[words[i]] >= 0]
            words[i] = int(options[gen.integers(len(options))])
        return words
    if op == "insert":
        sources = [words[i] for i in with_syn]  # fixed before inserting: insertion shifts positions
        for _ in range(n):
            src = sources[int(gen.integers(len(sources)))]
            options = syn[src][syn[src] >= 0]
            words.insert(int(gen.integers(len(words) + 1)), int(options[gen.integers(len(options))]))
        return words
    raise ValueError(f"unknown EDA operation {op!r}")
