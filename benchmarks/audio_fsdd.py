"""FSDD benchmark of the audio modality: augment 20 real clips per digit, then evaluate.

Steps (library defaults unless flags say otherwise):

1. load FSDD's standard training split (takes 5-49), keep 20 clips per digit (seed 0): 200 clips;
   load the standard test split (takes 0-4 of every digit and speaker): 300 clips;
2. ``Augmenter`` (SpecGAN -> Griffin-Lim -> audio sanity + embedding screen -> export), timed;
3. Griffin-Lim round trip of real clips (spectrogram -> waveform -> spectrogram): spectral
   convergence through the GAN's representation (log, per-bin normalisation, 3-std clip) and from
   the exact magnitude;
4. the reference classifier (trained on the 200 real clips, per seed) on the original test clips
   and on their Griffin-Lim inversions: the cost of inversion;
5. the proof (:class:`~imagina.core.evaluation.Experiment`): (a)-(f) over ``--seeds`` seeds on the
   test split; every setting is chosen on 4 clips per digit held out *before* a second augment run
   on the other 16, so the generator never saw the validation clips; the final classifiers train on
   all 20.

    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/audio_fsdd.py --out runs/audio-fsdd

``--smoke`` runs every step at tiny sizes (5 clips per digit, 2 training steps, one seed) in seconds;
it checks that the benchmark runs, not what it measures.
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from imagina.audio import MODALITY
from imagina.audio.features import round_trip
from imagina.core.evaluation import EvalConfig, Experiment, accuracy, train_classifier
from imagina.core.pipeline import AugmentConfig, Augmenter

logger = logging.getLogger("audio_fsdd")
FSDD = Path(__file__).resolve().parents[2] / "shared" / "data" / "fsdd"
PATTERN = "{label}_{speaker}_{index}"
#: ``--smoke``: the flags it sets (explicit flags do not win: a smoke run is always tiny).
SMOKE = {"per_class": 5, "steps": 2, "seeds": 1, "shares": "0.5", "selection_seeds": 1}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--data", default=str(FSDD))
    p.add_argument("--per-class", type=int, default=20, help="real training clips per digit")
    p.add_argument("--steps", type=int, default=None, help="SpecGAN steps (modality default if omitted)")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--shares", default="0.1,0.25,0.5", help="candidate synthetic shares per batch, comma-separated")
    p.add_argument("--selection-seeds", type=int, default=3, help="classifier seeds averaged per candidate setting")
    p.add_argument("--out", default="runs/audio-fsdd")
    p.add_argument("--device", default="cpu")
    p.add_argument("--skip-eval", action="store_true")
    p.add_argument("--skip-augment", action="store_true", help="only the evaluation (its own augment run)")
    p.add_argument("--smoke", action="store_true", help="tiny sizes, seconds: checks that the benchmark runs")
    args = p.parse_args()
    if args.smoke:
        vars(args).update(SMOKE)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    torch.set_num_threads(1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    summary: dict = {"command": "benchmarks/audio_fsdd.py " + " ".join(f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items())}
    seeds = tuple(range(args.seeds))
    if args.skip_augment and args.skip_eval:
        p.error("--skip-augment and --skip-eval leave nothing to run (the round trip needs a fitted SpecGAN)")

    modality, augment_config, generator_options = MODALITY, AugmentConfig(steps=args.steps, device=args.device), None
    if args.smoke:  # a copy of the modality: the registered one keeps its embedder's steps
        modality = copy.copy(MODALITY)
        modality.embedder_steps = 2
        augment_config = replace(augment_config, per_class=4, valuation=None, dose=None)
        generator_options = {"griffin_lim_iters": 2, "base_channels": 4}

    # 1-2: augment, timed end to end (loading included) as `imagina augment audio` would run it
    def augment(real):
        augmenter = Augmenter(modality, augment_config, generator_options=generator_options, progress=False)
        return augmenter, augmenter.fit(real).augment()

    t0 = time.perf_counter()
    train = MODALITY.load(args.data, pattern=PATTERN, split="train", per_class=args.per_class, seed=0)
    test = MODALITY.load(args.data, pattern=PATTERN, split="test", per_class=2 if args.smoke else None, seed=0)
    if not args.skip_augment:
        augmenter, result = augment(train)
        result.export(out / "augment", overwrite=True)
        augment_s = time.perf_counter() - t0
        gan = augmenter.generator_
        summary["augment"] = {
            "seconds_total_with_export": round(augment_s, 1),
            "timings": {k: round(v, 1) for k, v in augmenter.timings_.items()},
            "generator": {"steps": gan.config.steps, "spectrogram": gan.transform_.config.shape, "kind": gan.config.spectrogram,
                          "n_fft": gan.config.n_fft, "hop": gan.config.hop_length, "base_channels": gan.config.base_channels,
                          "aux_weight": gan.config.aux_weight},
            "candidates": len(result.labels),
            "candidates_per_class": result.record["screen"]["candidates_per_class"],
            "kept_per_class": result.kept_per_class(),
            "rejected_by_reason": result.record["screen"]["rejected_by_reason"],
            "metrics": result.metrics,
        }
        logger.info("augment: %.1f s, kept per class %s", augment_s, result.kept_per_class())
        (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    if not args.skip_eval:  # the proof's own run: the generator never sees the validation clips
        shares = tuple(float(s) for s in args.shares.split(","))
        eval_config = EvalConfig(seeds=seeds, synthetic_shares=shares, selection_seeds=args.selection_seeds,
                                 classifier_steps=2 if args.smoke else None, device=args.device)
        t = time.perf_counter()
        experiment = Experiment(modality, augment_config, eval_config, generator_options=generator_options,
                                progress=False).fit(train, test)
        gan = experiment.augmenter_.generator_
        summary["evaluation_fit"] = {"seconds": round(time.perf_counter() - t, 1), "real": len(experiment.train_),
                                     "validation": len(experiment.validation_)}
        logger.info("evaluation fit: %s", summary["evaluation_fit"])

    # 3: Griffin-Lim round trip of real clips with the GAN's fitted representation
    gl = {}
    for name, data in (("train", train), ("test", test)):
        inv_norm, sc_norm = round_trip(gan.transform_, data.X, normalised=True, seed=0)
        _, sc_exact = round_trip(gan.transform_, data.X, normalised=False, seed=0)
        gl[name] = {"sc_normalised_mean": float(sc_norm.mean()), "sc_normalised_std": float(sc_norm.std()),
                    "sc_exact_mean": float(sc_exact.mean()), "sc_exact_std": float(sc_exact.std())}
        if name == "test":
            test_inverted = inv_norm
    gl["griffin_lim_iters"] = gan.transform_.config.griffin_lim_iters
    summary["griffin_lim_round_trip"] = gl
    logger.info("Griffin-Lim round trip: %s", gl)

    # 4: the cost of inversion for the reference classifier
    task = MODALITY.evaluation_task(meta=train.meta)
    if args.smoke:
        task.steps = 2
    classes = {c: i for i, c in enumerate(np.unique(train.y).tolist())}
    y_tr = torch.as_tensor([classes[v] for v in train.y.tolist()])
    y_te = torch.as_tensor([classes[v] for v in test.y.tolist()])
    orig, inv = [], []
    for seed in seeds:
        model = train_classifier(task, len(classes), (task.prepare(train.X), y_tr), seed=seed, device=args.device)
        orig.append(accuracy(model, task.prepare(test.X), y_te))
        inv.append(accuracy(model, task.prepare(test_inverted), y_te))
    summary["inversion_cost"] = {"accuracy_original": orig, "accuracy_inverted": inv,
                                 "mean_original": float(np.mean(orig)), "mean_inverted": float(np.mean(inv))}
    logger.info("reference classifier: original %.3f, Griffin-Lim inverted %.3f", np.mean(orig), np.mean(inv))
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str))

    # 5: the proof, (a)-(f)
    if not args.skip_eval:
        result, report = experiment.evaluate()
        summary["evaluation_fit"]["kept_per_class"] = result.kept_per_class()
        summary["evaluation"] = report.to_dict()
        (out / "evaluation.md").write_text(report.to_markdown() + "\n")
        logger.info("evaluation:\n%s", report.to_markdown())
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str))


if __name__ == "__main__":
    main()
