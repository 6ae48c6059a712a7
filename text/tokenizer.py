"""Subword tokenizers: trained on the user's sentences (``tokenizers`` BPE) or loaded from a local path.

Both kinds are held as one :class:`tokenizers.Tokenizer` plus the names of four special tokens
(BOS, EOS, PAD, UNK), so a model saves ``tokenizer.json`` and rebuilds it without ``transformers``.
"""

from __future__ import annotations

import json
import logging
import os
import zlib
from collections.abc import Sequence
from pathlib import Path

import torch

from imagina.core.errors import InvalidInputError, MissingDependencyError, NotFittedError, check_int

logger = logging.getLogger(__name__)

TOKENIZER_NAME = "tokenizer.json"
SPECIALS = {"pad": "<pad>", "bos": "<s>", "eos": "</s>", "unk": "<unk>"}


class TextTokenizer:
    """A subword tokenizer with BOS / EOS / PAD / UNK.

    Parameters
    ----------
    vocab_size : int
        Target vocabulary size of the trained BPE (specials included); small corpora stop earlier.
    min_frequency : int
        A merge must occur at least this often.
    lowercase : bool
        Lowercase before tokenizing (the decoded text is then lowercase too).

    Examples
    --------
    >>> tok = TextTokenizer(vocab_size=60).fit(["what is a cat ?", "who is a dog ?"])
    >>> tok.decode(tok.encode(["what is a cat ?"], max_len=12)[0][0].tolist())
    'what is a cat ?'
    """

    def __init__(self, *, vocab_size: int = 2000, min_frequency: int = 2, lowercase: bool = False) -> None:
        self.vocab_size = check_int("vocab_size", vocab_size, minimum=16)
        self.min_frequency = check_int("min_frequency", min_frequency, minimum=1)
        self.lowercase = lowercase
        self.tokenizer_ = None
        self.specials_: dict[str, str] = dict(SPECIALS)

    # ----------------------------------------------------------------- building
    def fit(self, texts: Sequence[str]) -> TextTokenizer:
        """Train a byte-fallback-free BPE with a Metaspace pre-tokenizer (exact whitespace round trip)."""
        from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

        if len(texts) == 0:
            raise InvalidInputError("cannot train a tokenizer on zero sentences.")
        tok = Tokenizer(models.BPE(unk_token=SPECIALS["unk"]))
        norms = [normalizers.NFKC()] + ([normalizers.Lowercase()] if self.lowercase else [])
        tok.normalizer = normalizers.Sequence(norms)
        tok.pre_tokenizer = pre_tokenizers.Metaspace()
        tok.decoder = decoders.Metaspace()
        trainer = trainers.BpeTrainer(
            vocab_size=self.vocab_size,
            min_frequency=self.min_frequency,
            special_tokens=[SPECIALS["pad"], SPECIALS["bos"], SPECIALS["eos"], SPECIALS["unk"]],
            show_progress=False,
        )
        tok.train_from_iterator(list(texts), trainer=trainer)
        self.tokenizer_ = tok
        self.specials_ = dict(SPECIALS)
        logger.info("trained BPE tokenizer: %d tokens", tok.get_vocab_size())
        return self

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike) -> TextTokenizer:
        """A fast tokenizer saved locally (``transformers.AutoTokenizer``); missing specials are mapped
        (BOS <- CLS, EOS <- SEP) or added."""
        path = Path(path)
        if not path.exists():
            raise InvalidInputError(f"tokenizer path {path} does not exist.")
        try:
            from transformers import AutoTokenizer
        except ImportError:  # pragma: no cover - transformers is a core dependency
            raise MissingDependencyError("a pretrained tokenizer needs `transformers`: pip install transformers") from None
        try:
            hf = AutoTokenizer.from_pretrained(str(path), use_fast=True, local_files_only=True)
        except Exception as exc:
            raise InvalidInputError(f"cannot load a tokenizer from {path} ({exc.__class__.__name__}).") from None
        if not getattr(hf, "is_fast", False):
            raise InvalidInputError(f"the tokenizer at {path} is not a fast tokenizer; one with tokenizer.json is needed.")
        backend = hf.backend_tokenizer
        backend.post_processor = None  # BOS/EOS are added here, not by a BERT template
        specials = {
            "bos": hf.bos_token or hf.cls_token,
            "eos": hf.eos_token or hf.sep_token,
            "unk": hf.unk_token,
            "pad": hf.pad_token,
        }
        obj = cls()
        for key, value in list(specials.items()):
            if value is None:
                value = SPECIALS[key]
                backend.add_special_tokens([value])
            specials[key] = value
        obj.tokenizer_ = backend
        obj.specials_ = specials
        return obj

    # ----------------------------------------------------------------- ids
    def _check(self):
        if self.tokenizer_ is None:
            raise NotFittedError("This TextTokenizer is not fitted yet; call `fit` before using it.")
        return self.tokenizer_

    def _id(self, key: str) -> int:
        tid = self._check().token_to_id(self.specials_[key])
        if tid is None:  # pragma: no cover - guaranteed by fit / from_pretrained
            raise InvalidInputError(f"special token {self.specials_[key]!r} is not in the vocabulary.")
        return tid

    @property
    def pad_id(self) -> int:
        return self._id("pad")

    @property
    def bos_id(self) -> int:
        return self._id("bos")

    @property
    def eos_id(self) -> int:
        return self._id("eos")

    @property
    def unk_id(self) -> int:
        return self._id("unk")

    @property
    def size(self) -> int:
        """Number of token ids (vocabulary plus added tokens)."""
        return self._check().get_vocab_size(with_added_tokens=True)

    def tokenize_ids(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids of every sentence, without specials."""
        encs = self._check().encode_batch(list(texts), add_special_tokens=False)
        return [e.ids for e in encs]

    def word_token_ids(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids of every word (pre-tokenizer unit, e.g. whitespace-separated) of every sentence."""
        words: list[list[int]] = []
        for enc in self._check().encode_batch(list(texts), add_special_tokens=False):
            last = None
            for tid, wid in zip(enc.ids, enc.word_ids, strict=True):
                if wid is None:
                    continue
                if wid != last:
                    words.append([])
                    last = wid
                words[-1].append(tid)
        return words

    def encode(self, texts: Sequence[str], *, max_len: int, bos: bool = True, eos: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """Padded ids and lengths.

        Returns
        -------
        ids : LongTensor of shape (n, max_len)
            ``[BOS] tokens [EOS] PAD...``; sentences longer than the cap are truncated (EOS kept).
        lengths : LongTensor of shape (n,)
            Number of non-PAD positions (>= 1).
        """
        check_int("max_len", max_len, minimum=2)
        pad = self.pad_id
        ids = torch.full((len(texts), max_len), pad, dtype=torch.long)
        lengths = torch.zeros(len(texts), dtype=torch.long)
        head = [self.bos_id] if bos else []
        tail = [self.eos_id] if eos else []
        room = max_len - len(head) - len(tail)
        for i, toks in enumerate(self.tokenize_ids(texts)):
            seq = head + toks[:room] + tail
            ids[i, : len(seq)] = torch.as_tensor(seq, dtype=torch.long)
            lengths[i] = len(seq)
        return ids, lengths

    def decode(self, ids: Sequence[int]) -> str:
        """Text of ``ids`` up to the first EOS, specials removed."""
        ids = list(ids)
        eos = self.eos_id
        if eos in ids:
            ids = ids[: ids.index(eos)]
        return self._check().decode(ids, skip_special_tokens=True).strip()

    def decode_batch(self, rows: Sequence[Sequence[int]]) -> list[str]:
        return [self.decode(r) for r in rows]

    # ----------------------------------------------------------------- persistence
    def get_state(self) -> dict:
        """JSON state besides ``tokenizer.json``: the special token names and options."""
        return {"specials": self.specials_, "vocab_size": self.vocab_size,
                "min_frequency": self.min_frequency, "lowercase": self.lowercase}

    def save(self, directory: str | os.PathLike) -> None:
        """Write ``tokenizer.json`` into ``directory``."""
        self._check().save(str(Path(directory) / TOKENIZER_NAME))

    @classmethod
    def load(cls, directory: str | os.PathLike, state: dict) -> TextTokenizer:
        """Rebuild from ``tokenizer.json`` in ``directory`` and the state of :meth:`get_state`."""
        from tokenizers import Tokenizer

        path = Path(directory) / TOKENIZER_NAME
        if not path.is_file():
            raise InvalidInputError(f"{directory} has no {TOKENIZER_NAME}; the model directory is incomplete.")
        try:
            tok = Tokenizer.from_file(str(path))
        except Exception as exc:
            raise InvalidInputError(f"{path} is not a valid tokenizer file ({exc.__class__.__name__}).") from None
        obj = cls(vocab_size=state["vocab_size"], min_frequency=state["min_frequency"], lowercase=state["lowercase"])
        obj.tokenizer_ = tok
        obj.specials_ = dict(state["specials"])
        return obj

    def to_json(self) -> str:
        return json.dumps(self.get_state())


# --------------------------------------------------------------------------- word vocabulary
_WORD = None


def word_tokens(text: str, *, lowercase: bool = True) -> list[str]:
    """Words and punctuation marks of ``text`` (``\\w+`` runs and single other characters)."""
    import re

    global _WORD
    if _WORD is None:
        _WORD = re.compile(r"\w+|[^\w\s]")
    return _WORD.findall(text.lower() if lowercase else text)


class WordVocab:
    """A word-level vocabulary fitted on training sentences (PAD = 0, UNK = 1), for the embedder, the
    reference classifier and word-level classical augmentation.

    Examples
    --------
    >>> v = WordVocab().fit(["a cat", "a dog"])
    >>> v.encode(["a bird"], max_len=4).tolist()
    [[2, 1, 0, 0]]
    """

    PAD, UNK = 0, 1

    def __init__(self, *, min_count: int = 1, lowercase: bool = True) -> None:
        self.min_count = check_int("min_count", min_count, minimum=1)
        self.lowercase = lowercase
        self.itos_: list[str] | None = None
        self.stoi_: dict[str, int] | None = None

    def fit(self, texts: Sequence[str]) -> WordVocab:
        from collections import Counter

        counts = Counter(w for t in texts for w in word_tokens(t, lowercase=self.lowercase))
        words = sorted((w for w, c in counts.items() if c >= self.min_count), key=lambda w: (-counts[w], w))
        self.itos_ = ["<pad>", "<unk>", *words]
        self.stoi_ = {w: i for i, w in enumerate(self.itos_)}
        return self

    def __len__(self) -> int:
        if self.itos_ is None:
            raise NotFittedError("This WordVocab is not fitted yet; call `fit` before using it.")
        return len(self.itos_)

    def encode(self, texts: Sequence[str], *, max_len: int) -> torch.Tensor:
        """LongTensor of shape (n, max_len): word ids, truncated and padded with 0."""
        len(self)
        out = torch.zeros(len(texts), max_len, dtype=torch.long)
        for i, t in enumerate(texts):
            ids = [self.stoi_.get(w, self.UNK) for w in word_tokens(t, lowercase=self.lowercase)[:max_len]]
            if ids:
                out[i, : len(ids)] = torch.as_tensor(ids)
        return out


class CharNgrams:
    """fastText-style subword features (Bojanowski et al. 2017): the character n-grams of ``<word>``,
    hashed into ``buckets`` ids, so that a word never seen in training still gets features of its own
    instead of the single UNK id, and similar spellings share some.

    Ids run from 1 to ``buckets`` (0 = padding); the hash (CRC-32) is the same in every process.

    Examples
    --------
    >>> grams = CharNgrams(n_min=3, n_max=3, buckets=1000)
    >>> len(grams.word_ids("cat"))  # <ca, cat, at>
    3
    >>> CharNgrams().encode(["a cat"], WordVocab().fit(["a cat"]), max_len=4).shape
    torch.Size([1, 4, 33])
    """

    def __init__(self, *, n_min: int = 3, n_max: int = 5, buckets: int = 2**14, max_per_word: int = 32) -> None:
        self.n_min = check_int("n_min", n_min, minimum=1)
        self.n_max = check_int("n_max", n_max, minimum=n_min)
        self.buckets = check_int("buckets", buckets, minimum=1)
        self.max_per_word = check_int("max_per_word", max_per_word, minimum=1)
        self._cache: dict[str, list[int]] = {}

    def word_ids(self, word: str) -> list[int]:
        """Hashed ids of the word's character n-grams (shortest first, at most ``max_per_word``)."""
        ids = self._cache.get(word)
        if ids is None:
            marked = f"<{word}>"
            grams = [marked[i : i + n] for n in range(self.n_min, self.n_max + 1) for i in range(len(marked) - n + 1)]
            ids = [1 + zlib.crc32(g.encode("utf-8")) % self.buckets for g in grams[: self.max_per_word]]
            self._cache[word] = ids
        return ids

    def encode(self, texts: Sequence[str], vocab: WordVocab, *, max_len: int) -> torch.Tensor:
        """LongTensor of shape (n, max_len, 1 + max_per_word): per word position, the word id of
        ``vocab`` (channel 0; PAD = 0, UNK = 1) followed by its n-gram ids padded with 0."""
        import numpy as np

        out = np.zeros((len(texts), max_len, 1 + self.max_per_word), dtype=np.int64)
        out[..., 0] = vocab.encode(texts, max_len=max_len).numpy()
        for i, t in enumerate(texts):
            for j, w in enumerate(word_tokens(t, lowercase=vocab.lowercase)[:max_len]):
                grams = self.word_ids(w)
                out[i, j, 1 : 1 + len(grams)] = grams
        return torch.from_numpy(out)
