"""Why the TREC test accuracy of the reference TextCNN swings across seeds: recall per class.

Trains the reference TextCNN (library defaults) on the benchmark's 300 real TREC training questions
(50 per class, seed 0, as in ``text_trec.py``) for each seed and prints test accuracy, balanced
accuracy (mean recall over classes) and the recall of every class, next to the test split's class
counts (it is not balanced like the training set)::

    OMP_NUM_THREADS=1 python benchmarks/text_test_recall.py --seeds 5
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from imagina.core.evaluation import predict, train_classifier
from imagina.text import MODALITY
from imagina.text.evaluate import TextEvalTask

TREC = Path(__file__).resolve().parents[2] / "shared" / "data" / "trec"


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--data", default=str(TREC))
    p.add_argument("--seeds", type=int, default=5)
    args = p.parse_args()
    torch.set_num_threads(1)
    train = MODALITY.load(str(Path(args.data) / "train.tsv"), per_class=50, seed=0)
    test = MODALITY.load(str(Path(args.data) / "test.tsv"))
    classes = np.unique(train.y)
    task = TextEvalTask()
    x_train, y_train = task.prepare(train.X), torch.as_tensor(np.searchsorted(classes, train.y))
    x_test, y_test = task.prepare(test.X), np.searchsorted(classes, test.y)
    counts = {str(c): int((test.y == c).sum()) for c in classes}
    print("test items per class:", counts)
    print("seed | accuracy | balanced | " + " | ".join(f"recall {c}" for c in classes))
    for seed in range(args.seeds):
        pred = predict(train_classifier(task, len(classes), (x_train, y_train), seed=seed), x_test).numpy()
        recall = [float((pred[y_test == i] == i).mean()) for i in range(len(classes))]
        print(f"{seed} | {100 * (pred == y_test).mean():.1f} | {100 * np.mean(recall):.1f} | "
              + " | ".join(f"{100 * r:.0f}" for r in recall), flush=True)


if __name__ == "__main__":
    main()
