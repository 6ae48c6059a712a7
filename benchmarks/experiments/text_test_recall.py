"""Why the TREC test accuracy of the reference TextCNN swings across seeds: recall per class.

Trains the reference TextCNN (library defaults) on the benchmark's 300 real TREC training questions
(50 per class, seed 0, as in ``text_trec.py``) for each seed and prints test accuracy, balanced
accuracy (mean recall over classes) and the recall of every class, next to the test split's class
counts (it is not balanced like the training set)::

    OMP_NUM_THREADS=1 python benchmarks/experiments/text_test_recall.py --seeds 5

With ``--pools SHARE_SCREENED,SHARE_UNSCREENED`` it repeats the final training of conditions (c)
and (d) of ``text_trec.py`` instead (the same held-out split, augment run on the other 40 per class,
vocabulary, unscreened draw and seeds; give the shares the evaluation chose) and prints their recall
per class, so that the accuracies match the evaluation table::

    python benchmarks/experiments/text_test_recall.py --pools 0.5,0.25
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from imagina.core.evaluation import holdout, match_counts, predict, train_classifier
from imagina.core.modality import LabeledData, concat
from imagina.core.pipeline import AugmentConfig, Augmenter
from imagina.text import MODALITY
from imagina.text.evaluate import TextEvalTask

TREC = Path(__file__).resolve().parents[3] / "shared" / "data" / "trec"


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--data", default=str(TREC))
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--pools", default=None, help="synthetic shares of (c) and (d), e.g. 0.5,0.25")
    args = p.parse_args()
    torch.set_num_threads(1)
    train = MODALITY.load(str(Path(args.data) / "train.tsv"), per_class=50, seed=0)
    test = MODALITY.load(str(Path(args.data) / "test.tsv"))
    classes = np.unique(train.y)
    task = TextEvalTask()
    runs: dict[str, tuple] = {}
    if args.pools:  # as text_trec.py and core.evaluation.evaluate build them
        rest, val = holdout(train, 0.2, seed=0)
        result = Augmenter(MODALITY, AugmentConfig(device="cpu"), progress=False).fit(rest).augment()
        kept, unscreened = result.kept(), result.unscreened()
        unscreened = unscreened.subset(match_counts(kept.y, unscreened.y, 1000))
        train = LabeledData(concat([rest.X, val.X]), np.concatenate([rest.y, val.y]))
        share_c, share_d = (float(v) for v in args.pools.split(","))
        runs = {f"(c) screened, share {share_c:g}": (kept, share_c), f"(d) unscreened, share {share_d:g}": (unscreened, share_d)}
    else:
        runs = {"(a) real only": (None, 0.0)}
    x_train = task.fit(train.X).prepare(train.X)  # the vocabulary of the final real training set
    y_train = torch.as_tensor(np.searchsorted(classes, train.y))
    x_test, y_test = task.prepare(test.X), np.searchsorted(classes, test.y)
    counts = {str(c): int((test.y == c).sum()) for c in classes}
    print("test items per class:", counts)
    for name, (pool, share) in runs.items():
        syn = None if pool is None else (task.prepare(pool.X), torch.as_tensor(np.searchsorted(classes, pool.y)))
        print(f"{name}\nseed | accuracy | balanced | " + " | ".join(f"recall {c}" for c in classes))
        for seed in range(args.seeds):
            model = train_classifier(task, len(classes), (x_train, y_train), synthetic=syn, share=share, seed=seed)
            pred = predict(model, x_test).numpy()
            recall = [float((pred[y_test == i] == i).mean()) for i in range(len(classes))]
            print(f"{seed} | {100 * (pred == y_test).mean():.1f} | {100 * np.mean(recall):.1f} | "
                  + " | ".join(f"{100 * r:.0f}" for r in recall), flush=True)


if __name__ == "__main__":
    main()
