"""Choose the text screen's defaults on validation data carved from TREC *training* data.

The generator and embedder are fitted once on the benchmark's 50 questions per class (seed 0, as in
``text_trec.py``); candidates are generated once (``--candidates`` per class). Validation = up to
``--val-per-class`` other TREC *training* questions per class (never the test set). For each screen
setting (thresholds of the core screen and of the text checks), the kept set is scored by what it
adds on validation: TF-IDF + logistic regression, and the reference TextCNN (``--seeds`` seeds, each
share). The unscreened baseline draws the same number per class at random from all candidates.

    python benchmarks/experiments/text_screen_tune.py --out runs/text-screen-tune
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np

from imagina.core.evaluation import match_counts
from imagina.core.modality import LabeledData, take
from imagina.core.pipeline import AugmentConfig, Augmenter
from imagina.core.screening import Screen, ScreenConfig
from imagina.text.sanity import TextSanityConfig, text_sanity

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the helpers beside this script
from trec_validation import ValidationScorer, add_arguments, parse, split  # noqa: E402

logger = logging.getLogger("text_screen_tune")

TEXT_DEFAULT = {"min_consistency": 0.0, "require_manifold": False}
SCREENS = {
    "default": {},
    "quality-only (diversity_weight 0)": {"diversity_weight": 0.0},
    "consistency>=0.3": {"min_consistency": 0.3},
    "consistency>=0.3, diversity_weight 0": {"min_consistency": 0.3, "diversity_weight": 0.0},
    "no manifold test": {"require_manifold": False},
    "no consistency, no manifold": TEXT_DEFAULT,
    "checks only (no consistency, manifold, copy ratio; quality rank)": {
        "min_consistency": 0.0, "require_manifold": False, "copy_ratio": 0.0, "diversity_weight": 0.0},
    "text default, no embedding copy ratio": {**TEXT_DEFAULT, "copy_ratio": 0.0},
    "text default, no copy ratio, no redundancy": {**TEXT_DEFAULT, "copy_ratio": 0.0, "duplicate_ratio": 0.0},
    "text default, random selection": {**TEXT_DEFAULT, "selector": "random"},
    "text default, random selection, no redundancy": {**TEXT_DEFAULT, "selector": "random", "duplicate_ratio": 0.0},
}
CHECKS = {
    "checks default": TextSanityConfig(),
    "checks loose (overlap 0.8, margin 2)": TextSanityConfig(max_ngram_overlap=0.8, fluency_margin=2.0),
    "checks: exact copies only (overlap 1.0)": TextSanityConfig(max_ngram_overlap=1.0),
    "checks: no fluency test": TextSanityConfig(fluency_margin=1e9),
    "checks: strict fluency (real 5 % quantile, no margin)": TextSanityConfig(fluency_margin=0.0),
    "checks: stricter fluency (real 25 % quantile, no margin)": TextSanityConfig(fluency_quantile=0.25, fluency_margin=0.0),
    "checks: strict fluency, invented words <= 0.2": TextSanityConfig(fluency_margin=0.0, max_new_words=0.2),
}


def main() -> None:
    p = argparse.ArgumentParser()
    add_arguments(p, out="runs/text-screen-tune")
    p.add_argument("--screens", default=None, help="SCREENS names separated by ; (default all)")
    p.add_argument("--checks", default=None, help="CHECKS names separated by ; (default all)")
    args, out, shares = parse(p)

    train, val = split(args.data, per_class=args.per_class, val_per_class=args.val_per_class)
    logger.info("train %d, validation %d (other TREC training questions)", len(train), len(val))

    t = time.perf_counter()
    aug = Augmenter("text", AugmentConfig(per_class=args.budget, device="cpu", top_up_rounds=0),
                    generator_options=json.loads(args.vae), progress=False).fit(train)
    classes = np.unique(train.y)
    labels = np.repeat(classes, args.candidates)
    X, y = aug.generator_.sample(len(labels), labels=labels, seed=0)
    emb = aug.embedder_.embed(X)
    logger.info("fit + %d candidates in %.0f s", len(y), time.perf_counter() - t)

    score = ValidationScorer(train, val, shares=shares, seeds=args.seeds)
    results = {"real only": score.real_only()}
    logger.info("real only: %s", results["real only"])
    pick_all = args.screens.split(";") if args.screens else list(SCREENS)
    baseline_done = False
    for check_name in (args.checks.split(";") if args.checks else list(CHECKS)):
        checks = text_sanity(X, y, generator=aug.generator_, real=train, config=CHECKS[check_name])
        for screen_name in pick_all:
            opts = SCREENS[screen_name]
            res = Screen(ScreenConfig(**opts)).fit(aug.real_embeddings_, train.y).score(emb, y, checks=checks,
                                                                                       budget_per_class=args.budget)
            idx = np.flatnonzero(res.keep)
            kept = LabeledData(take(X, idx), y[idx])
            name = f"{check_name} | {screen_name}"
            results[name] = {"kept": len(idx), "kept_min_class": int(min((y[idx] == c).sum() for c in classes)),
                             **score(kept)}
            logger.info("%s: %s", name, results[name])
            if not baseline_done:  # the baseline: as many per class as this first screen kept, from all candidates
                pick = match_counts(kept.y, y, 0)
                results["unscreened (same count per class)"] = score(LabeledData(take(X, pick), y[pick]))
                logger.info("unscreened: %s", results["unscreened (same count per class)"])
                baseline_done = True
    (out / "results.json").write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
