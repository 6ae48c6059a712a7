"""Augment a small text-classification set with imagina and check whether it helps.

Run from the repository root (TREC ships in ../shared/data/trec; any CSV/TSV/JSONL with a text and a
label column works the same way)::

    python examples/text_augmentation.py --data ../shared/data/trec/train.tsv \
        --test ../shared/data/trec/test.tsv --per-class 50 --out runs/text-example

``--smoke`` checks data and setup in seconds (2 training steps everywhere; its figures mean nothing).
``--per-class`` here is the number of *real* sentences kept per class; ``--keep`` the synthetic ones
(the CLI's ``--per-class``).
"""

from __future__ import annotations

import argparse
import logging

from imagina.core.evaluation import EvalConfig, Experiment, smoke_setup
from imagina.core.pipeline import AugmentConfig, Augmenter
from imagina.text import MODALITY, distinct_n, self_bleu, tfidf_accuracy

logger = logging.getLogger("text_augmentation")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="training data: .csv, .tsv, .jsonl or a folder <class>/*.txt")
    parser.add_argument("--test", help="held-out test data in the same format (enables the evaluation)")
    parser.add_argument("--text-column", default="text")
    parser.add_argument("--label-column", default="label")
    parser.add_argument("--per-class", type=int, default=50, help="real sentences kept per class")
    parser.add_argument("--keep", type=int, default=200, help="synthetic sentences wanted per class")
    parser.add_argument("--steps", type=int, default=None, help="VAE training steps (default: the modality's)")
    parser.add_argument("--seeds", type=int, default=3, help="evaluation seeds")
    parser.add_argument("--out", default="runs/text-example")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--smoke", action="store_true", help="a setup check in seconds (its figures mean nothing)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    data = MODALITY.load(args.data, text_column=args.text_column, label_column=args.label_column,
                         per_class=args.per_class)
    modality = MODALITY
    config = AugmentConfig(per_class=args.keep, steps=args.steps, device=args.device)
    eval_config = EvalConfig(seeds=tuple(range(args.seeds)), device=args.device)
    if args.smoke:
        modality, config, eval_config = smoke_setup(MODALITY, device=args.device)
    report = test = None
    if args.test:  # the proof: validation sentences held out of the VAE choose the evaluation's settings
        test = MODALITY.load(args.test, text_column=args.text_column, label_column=args.label_column)
        experiment = Experiment(modality, config, eval_config)
        result, report = experiment.fit(data, test).evaluate()
        augmenter = experiment.augmenter_
    else:
        augmenter = Augmenter(modality, config).fit(data)
        result = augmenter.augment()
    kept = result.kept()
    logger.info("kept per class: %s", result.kept_per_class())
    logger.info("KL per token %.3f; distinct-2 kept %.3f vs real %.3f; self-BLEU kept %.3f vs real %.3f",
                augmenter.generator_.diagnostics()["kl_per_token"], distinct_n(kept.X, 2), distinct_n(data.X, 2),
                self_bleu(kept.X), self_bleu(data.X))
    for label in sorted(set(kept.y.tolist()))[:3]:
        examples = [t for t, c in zip(kept.X, kept.y, strict=True) if c == label][:3]
        logger.info("%s: %s", label, " | ".join(examples))

    if report is not None:
        logger.info("\n%s", report.to_markdown())
        logger.info("TF-IDF + logistic regression: real %.3f, real+screened %.3f",
                    tfidf_accuracy(data.X, data.y, test.X, test.y),
                    tfidf_accuracy(data.X, data.y, test.X, test.y, extra_texts=kept.X, extra_y=kept.y))
    out = result.export(args.out, overwrite=True, evaluation=report)
    logger.info("wrote %s (samples/samples.csv, manifest.csv, rejected.csv, model/, report.md)", out)


if __name__ == "__main__":
    main()
