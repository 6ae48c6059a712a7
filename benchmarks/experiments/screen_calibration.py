"""Is the screen's label-consistency score calibrated on *real* held-out items?

    python benchmarks/experiments/screen_calibration.py image ../shared/data/mnist --per-class 10
    python benchmarks/experiments/screen_calibration.py audio ../shared/data/fsdd --per-class 20 \\
        --load '{"pattern": "{label}_{speaker}_{index}"}'

Fits the modality's default embedder on ``--per-class`` training items per class, then reports, on
the test split, the embedder's accuracy and the median p(label) and share passing the 0.5 threshold
under a logistic regression with a fixed C = 1 (the old screen) and under the screen's
cross-validated one (:func:`imagina.core.screening.label_classifier`), overall and per class.
"""

from __future__ import annotations

import argparse
import json

import numpy as np
from sklearn.linear_model import LogisticRegression

from imagina.core.modality import get_modality
from imagina.core.screening import label_classifier


def summary(clf, emb: np.ndarray, y: np.ndarray) -> dict:
    proba = clf.predict_proba(emb)
    col = {c: i for i, c in enumerate(clf.classes_.tolist())}
    p = proba[np.arange(len(y)), [col[c] for c in y.tolist()]]
    correct = clf.classes_[proba.argmax(1)] == y
    per_class = {str(c): {"accuracy": round(float(correct[y == c].mean()), 3), "median_p": round(float(np.median(p[y == c])), 3),
                          "pass": round(float((p[y == c] >= 0.5).mean()), 3)} for c in clf.classes_}
    return {"accuracy": round(float(correct.mean()), 3), "median_p": round(float(np.median(p)), 3),
            "pass": round(float((p >= 0.5).mean()), 3), "per_class": per_class}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("modality")
    p.add_argument("data")
    p.add_argument("--per-class", type=int, default=10)
    p.add_argument("--load", type=json.loads, default={}, help="loader options, JSON")
    args = p.parse_args()
    modality = get_modality(args.modality)
    train = modality.load(args.data, split="train", per_class=args.per_class, seed=0, **args.load)
    test = modality.load(args.data, split="test", **args.load)
    embedder = modality.make_embedder(seed=0, device="cpu", meta=train.meta).fit(train.X, train.y)
    emb, emb_test = embedder.embed(train.X), embedder.embed(test.X)
    out = {"fixed C=1": summary(LogisticRegression(max_iter=2000, C=1.0).fit(emb, train.y), emb_test, test.y),
           "cross-validated C": summary(label_classifier(emb, train.y), emb_test, test.y)}
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
