"""Compare conditional-DCGAN settings on scikit-learn's digits by what the screen keeps.

    python benchmarks/gan_settings_digits.py '{"mode_seeking": 0.0, "diffaugment": "translation,cutout"}' 800

Runs the whole augment pipeline (budget 100 per class) with the given generator options and steps,
and prints kept items per class, rejection reasons, the median label consistency of all candidates
and the within-class diversity (generator input space) of real, candidates and kept items.
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np

from imagina.core.pipeline import AugmentConfig, Augmenter
from imagina.image import MODALITY


def main() -> None:
    opts, steps = json.loads(sys.argv[1]), int(sys.argv[2])
    data = MODALITY.load("digits")
    start = time.perf_counter()
    augmenter = Augmenter("image", AugmentConfig(per_class=100, steps=steps, device="cpu"), generator_options=opts,
                          progress=False).fit(data)
    result = augmenter.augment()
    print(json.dumps({"opts": opts, "steps": steps, "seconds": round(time.perf_counter() - start),
                      "kept": result.record["screen"]["kept_per_class"],
                      "rejected": result.record["screen"]["rejected_by_reason"],
                      "median_consistency": float(np.median(result.screen.scores["consistency"])),
                      "diversity": result.metrics["within_class_diversity_generator_space"]}))


if __name__ == "__main__":
    main()
