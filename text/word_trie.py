"""Whole-word decoding: a trie of the token sequences of the words of the real sentences.

A subword decoder trained on a few hundred sentences glues pieces into non-words ("What
organizationation ..."). Decoding through :class:`WordTrie` lets a sentence only spell words that
occur in the real sentences: inside a word the next token must continue some real word; at the end
of one it may also start a new word or end the sentence.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch


class WordTrie:
    """Trie over token-id sequences of words; node 0 is the root (start of a sentence).

    Examples
    --------
    >>> trie = WordTrie([[5, 6], [5], [7]], eos_id=2)
    >>> trie.allowed(0).tolist()  # a sentence starts with a word's first token
    [5, 7]
    >>> node = trie.advance(0, 5)  # "5" is a whole word and the start of "5 6"
    >>> trie.allowed(node).tolist()
    [2, 5, 6, 7]
    >>> trie.allowed(trie.advance(node, 6)).tolist()
    [2, 5, 7]
    """

    def __init__(self, words: Iterable[Sequence[int]], *, eos_id: int, exclude: Iterable[int] = ()) -> None:
        banned = set(exclude)
        self.eos_id = eos_id
        self.children: list[dict[int, int]] = [{}]
        self.is_end: list[bool] = [False]
        for word in words:
            if not word or banned.intersection(word):
                continue
            node = 0
            for tok in word:
                nxt = self.children[node].get(tok)
                if nxt is None:
                    nxt = len(self.children)
                    self.children[node][tok] = nxt
                    self.children.append({})
                    self.is_end.append(False)
                node = nxt
            self.is_end[node] = True
        self._allowed: dict[int, torch.Tensor] = {}

    def __len__(self) -> int:
        """Number of nodes."""
        return len(self.children)

    def allowed(self, node: int) -> torch.Tensor:
        """Sorted LongTensor of the token ids that may follow ``node``."""
        ids = self._allowed.get(node)
        if ids is None:
            allowed = set(self.children[node])
            if node != 0 and self.is_end[node]:
                allowed |= set(self.children[0]) | {self.eos_id}
            ids = self._allowed[node] = torch.as_tensor(sorted(allowed), dtype=torch.long)
        return ids

    def advance(self, node: int, token: int) -> int:
        """The node after ``token``: a continuation of the current word, else the start of a new one."""
        nxt = self.children[node].get(token)
        if nxt is None:
            nxt = self.children[0].get(token, 0)
        return nxt

    def mask(self, nodes: Sequence[int], vocab_size: int) -> torch.Tensor:
        """Bool (len(nodes), vocab_size): the tokens each row may take next."""
        out = torch.zeros(len(nodes), vocab_size, dtype=torch.bool)
        for i, node in enumerate(nodes):
            out[i, self.allowed(node)] = True
        return out
