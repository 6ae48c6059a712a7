"""Text evaluation: a Kim (2014) CNN over word ids trained from scratch, EDA as the classical
augmentation, and a TF-IDF + logistic-regression second opinion."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from imagina.core.errors import NotFittedError, check_float, check_int
from imagina.core.evaluation import Augment, EvalTask
from imagina.text.eda import eda_batch, synonym_table
from imagina.text.embed import TokenCNN
from imagina.text.tokenizer import WordVocab

logger = logging.getLogger(__name__)


class TextCNNClassifier(nn.Module):
    """TokenCNN features -> dropout -> linear logits. Input (B, L) long; output (B, n_classes)."""

    def __init__(self, vocab_size: int, n_classes: int, *, embed_dim: int = 64, channels: int = 64) -> None:
        super().__init__()
        self.body = TokenCNN(vocab_size, embed_dim=embed_dim, channels=channels, dropout=0.2)
        self.drop = nn.Dropout(0.5)
        self.head = nn.Linear(self.body.out_dim, n_classes)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.head(self.drop(self.body(ids)))


class TextEvalTask(EvalTask):
    """The reference text classifier and EDA augmentation for :func:`imagina.core.evaluation.evaluate`.

    :meth:`fit` learns the word vocabulary from the real training sentences; :meth:`prepare` maps
    words outside it to UNK. ``alphas`` are the EDA strengths offered to the validation-based choice.
    """

    #: Width: 128-d word embeddings, 100 channels per kernel size (Kim's 100): on a few hundred
    #: training questions the wider network is more accurate and steadier across seeds than 64 / 64 by
    #: cross-validation on TREC training questions (never the test set), while lower learning rates,
    #: more or fewer steps and larger batches do not help (evidence: docs/history.md,
    #: `benchmarks/experiments/classifier_tune.py`).

    def __init__(self, *, steps: int = 400, batch_size: int = 32, lr: float = 2e-3, max_len: int = 40,
                 alphas: Sequence[float] = (0.05, 0.1, 0.2), embed_dim: int = 128, channels: int = 100,
                 average_last: float = 0.0) -> None:
        self.steps = check_int("steps", steps, minimum=1)
        self.batch_size = check_int("batch_size", batch_size, minimum=1)
        self.lr = lr
        self.max_len = check_int("max_len", max_len, minimum=2)
        self.alphas = tuple(alphas)
        self.embed_dim = check_int("embed_dim", embed_dim, minimum=1)
        self.channels = check_int("channels", channels, minimum=1)
        self.average_last = check_float("average_last", average_last, minimum=0.0, maximum=1.0)
        self.name = f"TextCNN (word ids; Kim 2014, {embed_dim}-d embeddings, kernels 2-3-4, {channels} channels each)"
        self.vocab_: WordVocab | None = None

    def fit(self, X: Sequence[str], y: np.ndarray | None = None) -> TextEvalTask:
        """Learn the word vocabulary of the training sentences ``X`` (list of n str)."""
        self.vocab_ = WordVocab().fit(list(X))
        return self

    def prepare(self, X: Sequence[str]) -> torch.Tensor:
        """Sentences -> LongTensor (n, max_len) of word ids (PAD 0, UNK 1)."""
        self._check_fitted()
        return self.vocab_.encode(list(X), max_len=self.max_len)

    def _check_fitted(self) -> None:
        if self.vocab_ is None:
            raise NotFittedError("This TextEvalTask is not fitted yet; call `fit` on the training sentences first.")

    def make_classifier(self, n_classes: int) -> nn.Module:
        self._check_fitted()
        return TextCNNClassifier(len(self.vocab_), n_classes, embed_dim=self.embed_dim, channels=self.channels)

    def augmentations(self, prepared: torch.Tensor, y: np.ndarray) -> dict[str, Augment]:
        """EDA at each strength in ``alphas``, with synonyms from the given (training) ids only."""
        self._check_fitted()
        table = synonym_table(prepared, len(self.vocab_))

        def make(alpha: float) -> Augment:
            return lambda ids, rng: eda_batch(ids, rng, alpha=alpha, synonyms=table)

        return {f"EDA alpha={a:g}": make(a) for a in self.alphas}


def tfidf_accuracy(train_texts: Sequence[str], train_y: np.ndarray, test_texts: Sequence[str], test_y: np.ndarray,
                   *, extra_texts: Sequence[str] | None = None, extra_y: np.ndarray | None = None,
                   C: float = 10.0) -> float:
    """Test accuracy of TF-IDF (word 1-2-grams, sublinear tf) + logistic regression.

    ``extra_texts`` / ``extra_y`` (e.g. screened synthetic sentences) are added to the training set.
    """
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    texts = list(train_texts) + list(extra_texts or [])
    y = np.concatenate([np.asarray(train_y), np.asarray(extra_y if extra_y is not None else [], dtype=np.asarray(train_y).dtype)])
    vec = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1, token_pattern=r"(?u)\b\w+\b")
    Xtr = vec.fit_transform(texts)
    clf = LogisticRegression(C=C, max_iter=3000).fit(Xtr, y)
    return float((clf.predict(vec.transform(list(test_texts))) == np.asarray(test_y)).mean())


def probe_features() -> dict:
    """TF-IDF of words and word pairs, and of character 2-5-grams inside word boundaries (sublinear
    term frequency): the fast probes that choose the synthetic dose (the one better on real data
    alone is used). The vocabulary is learnt on each training part, synthetic sentences included."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    return {"word TF-IDF": TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, lowercase=True),
            "character TF-IDF": TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True,
                                                lowercase=True)}


#: EDA's share of words changed per view, by :data:`~imagina.core.modality.CLASSICAL_STRENGTHS`.
EDA_ALPHA = {"mild": 0.05, "default": 0.1, "strong": 0.2}


def classical_views(X: Sequence[str], n_views: int, seed: int, strength: str = "default") -> list[str]:
    """``n_views`` EDA views of every sentence (Wei & Zou 2019; one random swap or deletion of about
    :data:`EDA_ALPHA` [strength] of its words each — the operations that need no thesaurus), view-major."""
    from imagina.core.errors import check_choice
    from imagina.core.runtime import numpy_rng
    from imagina.text.eda import apply_operation

    alpha = EDA_ALPHA[check_choice("strength", strength, tuple(EDA_ALPHA))]

    gen = numpy_rng(seed, "classical-views")
    no_synonyms = np.full((1, 1), -1, dtype=np.int64)
    out = []
    for _ in range(n_views):
        for text in X:
            words = str(text).split()
            op = ("swap", "delete")[int(gen.integers(2))]
            ids = apply_operation(list(range(len(words))), op, alpha, no_synonyms, gen)
            out.append(" ".join(words[i] for i in ids) or str(text))
    return out
