"""Compare generator settings by what the screen keeps (no top-up, so pass rates compare cleanly).

    python benchmarks/experiments/gan_settings.py image digits '{"aux_weight": 1.0}' 800
    python benchmarks/experiments/gan_settings.py image ../shared/data/mnist '{}' 1200 --real-per-class 10
    python benchmarks/experiments/gan_settings.py audio ../shared/data/fsdd '{}' 600 --real-per-class 20 \\
        --load '{"pattern": "{label}_{speaker}_{index}", "split": "train"}'

Runs the augment pipeline (budget ``--per-class``, 3 candidates per wanted item, top-up off) with
the given generator options and steps; prints kept items per class, rejection reasons, the median
label consistency of all candidates and the within-class diversity of real, candidates and kept.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from imagina.core.modality import get_modality
from imagina.core.pipeline import AugmentConfig, Augmenter


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("modality")
    p.add_argument("data")
    p.add_argument("options", type=json.loads, help="generator options, JSON")
    p.add_argument("steps", type=int)
    p.add_argument("--real-per-class", type=int, default=None)
    p.add_argument("--per-class", type=int, default=100)
    p.add_argument("--load", type=json.loads, default={}, help="loader options, JSON")
    p.add_argument("--preview", default=None, help="write a preview of 8 samples per class here (PNG)")
    args = p.parse_args()
    modality = get_modality(args.modality)
    extra = {"per_class": args.real_per_class, "seed": 0} if args.real_per_class else {}
    data = modality.load(args.data, **args.load, **extra)
    start = time.perf_counter()
    cfg = AugmentConfig(per_class=args.per_class, steps=args.steps, device="cpu", top_up_rounds=0)
    augmenter = Augmenter(modality, cfg, generator_options=args.options, progress=False).fit(data)
    result = augmenter.augment()
    if args.preview:
        classes = augmenter.generator_.classes_
        X, y = augmenter.generator_.sample(8 * len(classes), np.repeat(classes, 8), seed=1)
        modality.preview(Path(args.preview), X, y, title=json.dumps(args.options), meta=data.meta)
    print(json.dumps({"options": args.options, "steps": args.steps, "seconds": round(time.perf_counter() - start),
                      "timings": result.record["timings"],
                      "kept": result.record["screen"]["kept_per_class"],
                      "rejected": result.record["screen"]["rejected_by_reason"],
                      "median_consistency": float(np.median(result.screen.scores["consistency"])),
                      "diversity": result.metrics["within_class_diversity"],
                      "diversity_generator_space": result.metrics.get("within_class_diversity_generator_space")}))


if __name__ == "__main__":
    main()
