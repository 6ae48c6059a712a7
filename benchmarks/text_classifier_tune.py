"""Choose the reference TextCNN's training settings by cross-validation on TREC *training* data.

A from-scratch classifier on 300 questions is noisy; settings that make it steadier make the (a)-(e)
table say more. Real questions only (no synthetic data, never the test set): ``--per-class`` per
class (seed 0, as in ``text_trec.py``), ``--folds``-fold stratified CV, ``--seeds`` classifier seeds
per fold. Reported per setting: mean CV accuracy, the mean over folds of the std across seeds
(seed noise), and seconds::

    OMP_NUM_THREADS=1 python benchmarks/text_classifier_tune.py --out runs/text-classifier-tune
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.model_selection import StratifiedKFold

from imagina.core.evaluation import accuracy, train_classifier
from imagina.text import MODALITY
from imagina.text.evaluate import TextEvalTask

logger = logging.getLogger("text_classifier_tune")
TREC = Path(__file__).resolve().parents[2] / "shared" / "data" / "trec"

SETTINGS = {
    # embed 64, channels 64 unless named; 400 steps, lr 2e-3, batch 32 unless named
    "400 steps, lr 2e-3, batch 32 (the default until session 4)": dict(embed_dim=64, channels=64),
    "800 steps, lr 1e-3": dict(steps=800, lr=1e-3, embed_dim=64, channels=64),
    "400 steps, lr 5e-4": dict(steps=400, lr=5e-4, embed_dim=64, channels=64),
    "800 steps, lr 2e-3": dict(steps=800, lr=2e-3, embed_dim=64, channels=64),
    "200 steps, lr 2e-3": dict(steps=200, lr=2e-3, embed_dim=64, channels=64),
    "400 steps, lr 2e-3, batch 64": dict(batch_size=64, embed_dim=64, channels=64),
    "400 steps, embed 128, channels 100": dict(embed_dim=128, channels=100),
    "400 steps, embed 128, channels 128": dict(embed_dim=128, channels=128),
    "400 steps, embed 256, channels 100": dict(embed_dim=256, channels=100),
}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--data", default=str(TREC))
    p.add_argument("--per-class", type=int, default=50)
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--only", default=None, help="comma-separated setting names to run (default: all)")
    p.add_argument("--out", default="runs/text-classifier-tune")
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    torch.set_num_threads(1)
    data = MODALITY.load(str(Path(args.data) / "train.tsv"), per_class=args.per_class, seed=0)
    classes = {c: i for i, c in enumerate(np.unique(data.y).tolist())}
    y = torch.as_tensor([classes[v] for v in data.y.tolist()])
    folds = list(StratifiedKFold(args.folds, shuffle=True, random_state=0).split(np.zeros(len(y)), y.numpy()))
    names = args.only.split(",") if args.only else list(SETTINGS)
    results = {}
    for name in names:
        t0 = time.perf_counter()
        per_fold = []
        for tr, va in folds:
            task = TextEvalTask(**SETTINGS[name])
            X = task.prepare([data.X[i] for i in tr])  # the vocabulary sees the fold's training part only
            Xv = task.prepare([data.X[i] for i in va])
            per_fold.append([accuracy(train_classifier(task, len(classes), (X, y[tr]), seed=s), Xv, y[va])
                             for s in range(args.seeds)])
        acc = np.array(per_fold)
        results[name] = {"cv_accuracy": float(acc.mean()), "seed_std": float(acc.std(axis=1, ddof=1).mean()),
                         "per_fold": acc.tolist(), "seconds": round(time.perf_counter() - t0, 1)}
        logger.info("%s: CV accuracy %.3f, seed std %.3f (%.0f s)", name, acc.mean(), results[name]["seed_std"],
                    results[name]["seconds"])
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.json").write_text(json.dumps(results, indent=2))
    print("| setting | CV accuracy % | seed std (points) | seconds |\n|---|---|---|---|")
    for name, r in results.items():
        print(f"| {name} | {100 * r['cv_accuracy']:.1f} | {100 * r['seed_std']:.1f} | {r['seconds']:.0f} |")


if __name__ == "__main__":
    main()
