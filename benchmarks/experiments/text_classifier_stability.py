"""How much does the reference TextCNN's accuracy swing across seeds, and does weight averaging calm it?

On TREC's test file the from-scratch TextCNN swings by up to 18 points across seeds (session 5: the
recall of DESC, the test's largest class, goes from 14 to 94 %), which makes the (a)-(e) differences
hard to read. This measures the same swing without the test set: the benchmark's 300 real questions
(50 per class, seed 0) train the classifier, ``--seeds`` seeds per setting, scored on other questions
of TREC's *training* file (``trec_validation.split``). Optionally a kept synthetic set (the text default
screen on the candidates of a ``text_decoding_tune.py`` cache) is mixed in at ``--share``.
Settings are ``TextEvalTask`` keyword arguments (``average_last``: the share of the final steps whose
weights are averaged, SWA)::

    OMP_NUM_THREADS=1 python benchmarks/experiments/text_classifier_stability.py --out runs/text-cnn-stability \
        --cache runs/text-decoding/cache
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np
import torch

from imagina.core.evaluation import class_recalls, train_classifier
from imagina.core.modality import LabeledData, take
from imagina.text.evaluate import TextEvalTask

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the helpers beside this script
from trec_validation import TREC, split  # noqa: E402

logger = logging.getLogger("text_classifier_stability")
SETTINGS = {
    "default (last weights)": {},
    "average the last 50 % of steps": {"average_last": 0.5},
    "average the last 25 % of steps": {"average_last": 0.25},
    "800 steps, average the last 50 %": {"steps": 800, "average_last": 0.5},
}


def kept_set(cache: Path, train: LabeledData, budget: int) -> LabeledData:
    """The text default screen's kept set on the cached candidates of ``text_decoding_tune.py``."""
    from text_consistency_tune import fit_or_load

    from imagina.core.screening import Screen
    from imagina.text import MODALITY

    args = argparse.Namespace(budget=budget, candidates=None, vae="{}")
    gen, X, y, cand, real, _ = fit_or_load(train, train, args, cache)
    checks = MODALITY.sanity(X, y, generator=gen, real=train)
    screen = Screen(MODALITY.augment_defaults["screen"]).fit(real, train.y)
    keep = np.flatnonzero(screen.score(cand, y, checks=checks, budget_per_class=budget).keep)
    return LabeledData(take(X, keep), y[keep])


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--data", default=str(TREC))
    p.add_argument("--seeds", type=int, default=10)
    p.add_argument("--cache", default=None, help="text_decoding_tune.py's cache: also score with its kept set")
    p.add_argument("--share", type=float, default=0.25)
    p.add_argument("--budget", type=int, default=200)
    p.add_argument("--settings", default=None, help='name=JSON separated by ";" (default: SETTINGS)')
    p.add_argument("--out", default="runs/text-cnn-stability")
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    settings = ({k: json.loads(v) for k, v in (s.split("=", 1) for s in args.settings.split(";"))}
                if args.settings else SETTINGS)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    train, val = split(args.data)
    classes = np.unique(train.y)
    kept = kept_set(Path(args.cache), train, args.budget) if args.cache else None
    results = {}
    for name, kwargs in settings.items():
        task = TextEvalTask(**kwargs).fit(train.X)
        real = (task.prepare(train.X), torch.as_tensor(np.searchsorted(classes, train.y)))
        val_t = (task.prepare(val.X), torch.as_tensor(np.searchsorted(classes, val.y)))
        row = {}
        data = {"real only": None}
        if kept is not None:
            data[f"+ screened, share {args.share:g}"] = (task.prepare(kept.X), torch.as_tensor(np.searchsorted(classes, kept.y)))
        for label, syn_t in data.items():
            t = time.perf_counter()
            scores = np.array([class_recalls(train_classifier(task, len(classes), real, synthetic=syn_t,
                                                              share=args.share if syn_t else 0.0, seed=s), *val_t,
                                             len(classes))[:2] for s in range(args.seeds)])
            row[label] = {"accuracy": scores[:, 0].tolist(), "balanced": scores[:, 1].tolist(),
                          "mean": float(scores[:, 0].mean()), "std": float(scores[:, 0].std(ddof=1)),
                          "range": float(np.ptp(scores[:, 0])), "seconds": round(time.perf_counter() - t, 1)}
            logger.info("%s, %s: %.2f ± %.2f (range %.1f)", name, label, 100 * row[label]["mean"],
                        100 * row[label]["std"], 100 * row[label]["range"])
        results[name] = row
        (out / "stability.json").write_text(json.dumps(results, indent=2))
    print("| setting | data | mean % | std (points) | range (points) |\n|---|---|---|---|---|")
    for name, row in results.items():
        for label, r in row.items():
            print(f"| {name} | {label} | {100 * r['mean']:.2f} | {100 * r['std']:.2f} | {100 * r['range']:.1f} |")


if __name__ == "__main__":
    main()
