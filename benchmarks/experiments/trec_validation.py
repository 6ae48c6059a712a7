"""What the TREC tuning benchmarks share: their validation split and the score of a kept synthetic set.

Validation = questions from TREC's *training* file that are not among the benchmark's real training
questions (never the test set). A kept set is scored by what it adds on validation: TF-IDF + logistic
regression, and the reference TextCNN (mean over seeds) at each synthetic share.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np
import torch

from imagina.core.evaluation import class_recalls, train_classifier
from imagina.core.modality import LabeledData
from imagina.text import MODALITY
from imagina.text.evaluate import TextEvalTask, tfidf_accuracy

TREC = Path(__file__).resolve().parents[3] / "shared" / "data" / "trec"


def add_arguments(p: argparse.ArgumentParser, *, out: str) -> None:
    """The options every TREC screen-tuning script takes."""
    p.add_argument("--data", default=str(TREC))
    p.add_argument("--per-class", type=int, default=50)
    p.add_argument("--budget", type=int, default=200, help="kept per class")
    p.add_argument("--candidates", type=int, default=1200, help="candidates per class")
    p.add_argument("--val-per-class", type=int, default=100)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--shares", default="0.25,0.5")
    p.add_argument("--out", default=out)
    p.add_argument("--vae", default="{}", help='SeqVAEConfig settings as JSON, e.g. \'{"whole_words": true}\'')


def parse(p: argparse.ArgumentParser) -> tuple[argparse.Namespace, Path, list[float]]:
    """Parse the options, start logging, make ``--out``: (args, out folder, synthetic shares)."""
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    return args, out, [float(s) for s in args.shares.split(",")]


def split(data: str | Path = TREC, *, per_class: int = 50, val_per_class: int = 100) -> tuple[LabeledData, LabeledData]:
    """(the benchmark's real questions: ``per_class`` per class, seed 0 as in ``text_trec.py``;
    up to ``val_per_class`` other training questions per class, seed 1)."""
    path = str(Path(data) / "train.tsv")
    train = MODALITY.load(path, per_class=per_class, seed=0)
    everything = MODALITY.load(path)
    used = set(train.X)
    return train, everything.subset([i for i, t in enumerate(everything.X) if t not in used]).per_class(val_per_class, seed=1)


class ValidationScorer:
    """Accuracy on ``val`` of classifiers trained on ``train`` (+ a kept synthetic set)."""

    def __init__(self, train: LabeledData, val: LabeledData, *, shares: list[float], seeds: int) -> None:
        self.train, self.val, self.shares, self.seeds = train, val, shares, seeds
        self.classes = np.unique(train.y)
        self.task = TextEvalTask().fit(train.X)
        self.real = (self.task.prepare(train.X), torch.as_tensor(np.searchsorted(self.classes, train.y)))
        self.val_t = (self.task.prepare(val.X), torch.as_tensor(np.searchsorted(self.classes, val.y)))

    def _cnn(self, synthetic=None, share: float = 0.0) -> list[float]:
        self.last_recalls_ = []
        accs = []
        for s in range(self.seeds):
            model = train_classifier(self.task, len(self.classes), self.real, synthetic=synthetic, share=share, seed=s)
            acc, _, recalls = class_recalls(model, *self.val_t, len(self.classes))
            accs.append(acc)
            self.last_recalls_.append(recalls)
        return accs

    def _recall_by_class(self) -> dict[str, float]:
        """Validation recall of every class, mean over the seeds of the last :meth:`_cnn` call."""
        return dict(zip(map(str, self.classes), np.mean(self.last_recalls_, axis=0).round(4).tolist()))

    def real_only(self) -> dict:
        return {"tfidf": tfidf_accuracy(self.train.X, self.train.y, self.val.X, self.val.y),
                "cnn": float(np.mean(self._cnn())),
                "cnn recall": self._recall_by_class()}

    def __call__(self, kept: LabeledData, *, per_seed: bool = False) -> dict:
        syn = (self.task.prepare(kept.X), torch.as_tensor(np.searchsorted(self.classes, kept.y)))
        row = {"tfidf": tfidf_accuracy(self.train.X, self.train.y, self.val.X, self.val.y,
                                       extra_texts=kept.X, extra_y=kept.y)}
        for share in self.shares:
            accs = self._cnn(syn, share)
            row[f"cnn share {share:g}"] = float(np.mean(accs))
            row[f"cnn share {share:g} recall"] = self._recall_by_class()
            if per_seed:
                row[f"cnn share {share:g} per seed"] = [round(a, 4) for a in accs]
        return row
