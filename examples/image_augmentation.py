"""Image dataset expansion: fit a conditional DCGAN on a small image set, keep the screened
samples, and check on held-out data whether they help a classifier.

    python examples/image_augmentation.py [--data digits|PATH] [--steps 2000] [--out runs/example-image]
    python examples/image_augmentation.py --smoke --overwrite     # checks data and setup in seconds

With ``--data digits`` (the default) the held-out split is carved from scikit-learn's digits.
"""

from __future__ import annotations

import argparse
import logging

import numpy as np

from imagina.core.evaluation import EvalConfig, run, smoke_setup
from imagina.core.pipeline import AugmentConfig
from imagina.image import MODALITY, load_images


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default="digits")
    p.add_argument("--real-per-class", type=int, default=30)
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--out", default="runs/example-image")
    p.add_argument("--overwrite", action="store_true")
    p.add_argument("--smoke", action="store_true", help="a setup check in seconds (its figures mean nothing)")
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    data = load_images(args.data)
    rng = np.random.default_rng(0)
    order = rng.permutation(len(data))
    test = data.subset(order[: len(data) // 3])                 # held out, never seen by any fit
    train = data.subset(order[len(data) // 3 :]).per_class(args.real_per_class, seed=0)

    # holdout (validation items the GAN never sees) -> fit -> augment -> evaluate, in one call
    modality, config, eval_config = MODALITY, AugmentConfig(per_class=100, steps=args.steps), EvalConfig(seeds=(0, 1, 2))
    if args.smoke:
        modality, config, eval_config = smoke_setup(MODALITY)
    result, report = run(modality, train, test, augment_config=config, eval_config=eval_config)
    print("kept per class:", result.kept_per_class())
    print(report.to_markdown())
    result.export(args.out, overwrite=args.overwrite, evaluation=report)
    print(f"wrote {args.out}/report.md")


if __name__ == "__main__":
    main()
