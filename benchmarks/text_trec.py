"""TREC benchmark of the text modality: augment 50 real questions per class, then evaluate.

Steps (all with the library defaults unless flags say otherwise):

1. load TREC train, keep 50 questions per class (``--subset-seed``, 0 by default): 300 sentences, 6 classes;
2. ``Augmenter`` (sequence VAE -> candidates -> text checks + embedding screen) on all 300, timed
   (the issue's <= 10 min / >= 100 kept per class target);
3. report KL per token of the VAE, kept per class, distinct-2 / self-BLEU of kept vs real;
4. the proof (:class:`~imagina.core.evaluation.Experiment`): (a)-(f) with the reference TextCNN over
   ``--seeds`` seeds on the TREC test set, with paired per-seed differences, and TF-IDF + logistic
   regression as a second classifier. Settings are chosen on 10 questions per class held out
   *before* a second augment run on the other 40, so the generator never saw the validation items;
   final classifiers train on all 50.

    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/text_trec.py --out runs/text-trec

``--smoke`` runs every step at tiny sizes (10 questions per class, 2 training steps, one seed, 20
test questions per class) in seconds; it checks that the benchmark runs, not what it measures.
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import time
from dataclasses import replace
from pathlib import Path

import torch

from imagina.core.evaluation import EvalConfig, Experiment, match_counts
from imagina.core.pipeline import AugmentConfig, Augmenter
from imagina.text import MODALITY, TextEmbedder, TextModality, distinct_n, self_bleu, tfidf_accuracy

logger = logging.getLogger("text_trec")
TREC = Path(__file__).resolve().parents[2] / "shared" / "data" / "trec"
#: ``--smoke``: the flags it sets (explicit flags do not win: a smoke run is always tiny).
SMOKE = {"per_class": 10, "steps": 2, "seeds": 1, "selection_seeds": 1}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--data", default=str(TREC))
    p.add_argument("--per-class", type=int, default=50)
    p.add_argument("--steps", type=int, default=None)
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--out", default="runs/text-trec")
    p.add_argument("--device", default="cpu")
    p.add_argument("--selection-seeds", type=int, default=3, help="classifier seeds averaged per candidate setting")
    p.add_argument("--skip-eval", action="store_true")
    p.add_argument("--skip-augment", action="store_true", help="only the evaluation (its own augment run)")
    p.add_argument("--vae", default="{}", help='extra SeqVAEConfig settings as JSON, e.g. \'{"min_frequency": 1}\'')
    p.add_argument("--embedder", default="{}", help='TextEmbedder settings as JSON, e.g. \'{"ngram_buckets": 0}\'')
    p.add_argument("--subset-seed", type=int, default=0, help="which questions per class are the real training set")
    p.add_argument("--smoke", action="store_true", help="tiny sizes, seconds: checks that the benchmark runs")
    args = p.parse_args()
    if args.smoke:
        vars(args).update(SMOKE)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    torch.set_num_threads(1)
    out = Path(args.out)
    summary: dict = {"command": "benchmarks/text_trec.py " + " ".join(f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items())}

    data = MODALITY.load(str(Path(args.data) / "train.tsv"), per_class=args.per_class, seed=args.subset_seed)
    modality = _with_embedder(json.loads(args.embedder))
    augment_config = AugmentConfig(steps=args.steps, device=args.device)
    if args.smoke:  # a copy of the modality: the registered one keeps its embedder's steps
        modality = copy.copy(modality)
        modality.embedder_steps = 2
        augment_config = replace(augment_config, per_class=4, valuation=None, dose=None)

    def augment(real):
        t0 = time.perf_counter()
        augmenter = Augmenter(modality, augment_config, generator_options=json.loads(args.vae), progress=False)
        result = augmenter.fit(real).augment()
        return augmenter, result, time.perf_counter() - t0

    if not args.skip_augment:
        augmenter, result, augment_s = augment(data)
        kept = result.kept()
        result.export(out / "augment", overwrite=True)
        summary["augment"] = {
            "seconds": round(augment_s, 1),
            "timings": {k: round(v, 1) for k, v in augmenter.timings_.items()},
            "candidates": len(result.labels),
            "candidates_per_class": result.record["screen"]["candidates_per_class"],
            "kept_per_class": result.kept_per_class(),
            "rejected_by_reason": result.screen.rejection_counts(),
            "vae": augmenter.generator_.diagnostics_,
            "distinct2": {"real": distinct_n(data.X, 2), "kept": distinct_n(kept.X, 2),
                          "all_candidates": distinct_n(result.candidates, 2)},
            "self_bleu": {"real": self_bleu(data.X), "kept": self_bleu(kept.X)},
        }
        logger.info("augment: %s", json.dumps(summary["augment"], indent=1))
        out.mkdir(parents=True, exist_ok=True)
        (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str))

    if not args.skip_eval:
        test = MODALITY.load(str(Path(args.data) / "test.tsv"), per_class=20 if args.smoke else None, seed=0)
        t = time.perf_counter()
        eval_config = EvalConfig(seeds=tuple(range(args.seeds)), selection_seeds=args.selection_seeds,
                                 classifier_steps=2 if args.smoke else None, device=args.device)
        experiment = Experiment(modality, augment_config, eval_config, generator_options=json.loads(args.vae),
                                progress=False).fit(data, test)
        result, report = experiment.evaluate()
        kept = result.kept()
        summary["evaluation_augment"] = {"real": len(experiment.train_), "validation": len(experiment.validation_),
                                         "kept_per_class": result.kept_per_class()}
        pairs = {}
        for a, b in [("real+screened", "real"), ("real+screened", "real+unscreened"),
                     ("real+classical+screened", "real+classical"), ("real+classical", "real")]:
            if a in report.conditions and b in report.conditions:
                pairs[f"{a} - {b}"] = {}
                for prefix, balanced in (("", False), ("balanced_", True)):
                    d = report.per_seed_difference(a, b, balanced=balanced)
                    pairs[f"{a} - {b}"].update({f"{prefix}per_seed": d.tolist(), f"{prefix}mean": float(d.mean()),
                                                f"{prefix}wins": int((d > 0).sum())})
        uns = result.unscreened().subset(match_counts(kept.y, result.labels, 1000))
        summary["evaluation"] = {**report.to_dict(), "paired_differences": pairs,
                                 "markdown": report.to_markdown(), "seconds": round(time.perf_counter() - t, 1)}
        summary["tfidf_logreg"] = {
            "real": tfidf_accuracy(data.X, data.y, test.X, test.y),
            "real+screened": tfidf_accuracy(data.X, data.y, test.X, test.y, extra_texts=kept.X, extra_y=kept.y),
            "real+unscreened": tfidf_accuracy(data.X, data.y, test.X, test.y, extra_texts=uns.X, extra_y=uns.y),
        }
        logger.info("\n%s", report.to_markdown())
        logger.info("paired: %s", json.dumps(pairs, indent=1))
        logger.info("tfidf: %s", summary["tfidf_logreg"])
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    logger.info("wrote %s", out / "summary.json")


def _with_embedder(settings: dict) -> TextModality:
    """The text modality, its offline embedder built with ``settings`` (none: the library default)."""
    if not settings:
        return MODALITY

    class Modality(TextModality):
        def make_embedder(self, *, seed, device, pretrained=None, meta=None):
            return TextEmbedder(seed=seed, device=device, **settings)

    return Modality()


if __name__ == "__main__":
    main()
