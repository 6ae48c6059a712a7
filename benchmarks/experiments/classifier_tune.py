"""Choose a reference classifier's settings by cross-validation on *training* data only.

A from-scratch classifier on a few hundred items is noisy, and a weak one proves nothing; settings
are compared on real training items only (no synthetic data, never the test set): ``--per-class``
per class (seed 0, as in ``text_trec.py`` / ``audio_fsdd.py``), ``--folds``-fold stratified CV,
``--seeds`` classifier seeds per fold. Reported per setting: mean CV accuracy, the mean over folds of
the std across seeds (seed noise), and seconds::

    OMP_NUM_THREADS=1 python benchmarks/experiments/classifier_tune.py text --out runs/text-classifier-tune
    OMP_NUM_THREADS=1 python benchmarks/experiments/classifier_tune.py audio --per-class 20 --out runs/audio-classifier-tune
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
from imagina.core.modality import get_modality, take

logger = logging.getLogger("classifier_tune")
SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"

TEXT = {
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
AUDIO = {
    # width 16 and 300 steps (the default until session 4) unless named
    "session-3 default (width 16, BN on log-mel, 300 steps)": dict(width=16, steps=300),
    "top 80 dB": dict(top_db=80.0, width=16, steps=300),
    "top 80 dB, per-clip norm": dict(top_db=80.0, instance_norm=True, width=16, steps=300),
    "per-clip norm": dict(instance_norm=True, width=16, steps=300),
    "top 80 dB, per-clip norm, width 32": dict(top_db=80.0, instance_norm=True, width=32, steps=300),
    "top 80 dB, per-clip norm, 600 steps": dict(top_db=80.0, instance_norm=True, steps=600, width=16),
    "width 32": dict(width=32, steps=300),
    "600 steps": dict(steps=600, width=16),
}


def task_and_data(modality: str, args):
    if modality == "text":
        from imagina.text.evaluate import TextEvalTask

        data = get_modality("text").load(str(Path(args.data or SHARED / "trec") / "train.tsv"), per_class=args.per_class, seed=0)
        return TEXT, TextEvalTask, data
    from imagina.audio.evaluate import AudioEvalTask

    data = get_modality("audio").load(str(args.data or SHARED / "fsdd"), pattern="{label}_{speaker}_{index}", split="train",
                                      per_class=args.per_class, seed=0)
    return AUDIO, lambda **kw: AudioEvalTask(data.meta["sample_rate"], **kw), data


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("modality", choices=("text", "audio"))
    p.add_argument("--data", default=None, help="default: ../shared/data/trec or ../shared/data/fsdd")
    p.add_argument("--per-class", type=int, default=50)
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--only", default=None, help="setting names separated by ; (default: all)")
    p.add_argument("--out", default="runs/classifier-tune")
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    torch.set_num_threads(1)
    settings, make_task, data = task_and_data(args.modality, args)
    classes = {c: i for i, c in enumerate(np.unique(data.y).tolist())}
    y = torch.as_tensor([classes[v] for v in data.y.tolist()])
    folds = list(StratifiedKFold(args.folds, shuffle=True, random_state=0).split(np.zeros(len(y)), y.numpy()))
    names = args.only.split(";") if args.only else list(settings)
    results = {}
    for name in names:
        t0 = time.perf_counter()
        per_fold = []
        for tr, va in folds:
            task = make_task(**settings[name])
            X = task.fit(take(data.X, tr)).prepare(take(data.X, tr))  # a text vocabulary sees the fold's training part only
            Xv = task.prepare(take(data.X, va))
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
