"""Generate boldly, screen well? The text screen's value at other decoding settings (validation).

Same protocol and cache as ``text_consistency_tune.py`` (sequence VAE fitted once on the benchmark's
50 TREC questions per class, seed 0; validation = other TREC *training* questions, never the test
set). The offline embedder is fitted once. For each decoding setting (keyword arguments of
``SequenceVAE.sample`` as JSON), ``--candidates`` per class are drawn (the pipeline's pool: oversample
3 × 200) and put through the text default screen (checks, random pick, redundancy test); the kept
set and an unscreened sample of the same count per class from the same pool (the (d) of
``text_trec.py``) are scored on validation (TextCNN at each share, TF-IDF). A screen earns its place
where the screened set of the best setting beats the unscreened set of the best setting, not only
of its own.

    python benchmarks/experiments/text_decoding_tune.py --cache runs/text-consistency/cache --out runs/text-decoding
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from imagina.core.evaluation import match_counts
from imagina.core.modality import LabeledData, take
from imagina.core.screening import Screen
from imagina.text import MODALITY
from imagina.text.sanity import TextSanityConfig, distinct_n, text_sanity

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the helpers beside this script
from text_consistency_tune import fit_or_load  # noqa: E402
from trec_validation import ValidationScorer, add_arguments, parse, split  # noqa: E402

logger = logging.getLogger("text_decoding_tune")
SETTINGS = {
    "default (around, noise 1, T 0.8, top-p 0.9)": {},
    "T 1.0, top-p 1": {"temperature": 1.0, "top_p": 1.0},
    "T 1.2, top-p 1": {"temperature": 1.2, "top_p": 1.0},
    "noise 1.5": {"noise_scale": 1.5},
    "noise 2, T 1.0, top-p 1": {"noise_scale": 2.0, "temperature": 1.0, "top_p": 1.0},
    "mix (prior, around, interpolate)": {"method": "mix"},
}


def main() -> None:
    p = argparse.ArgumentParser()
    add_arguments(p, out="runs/text-decoding")
    p.set_defaults(candidates=600)
    p.add_argument("--cache", required=True, help="text_consistency_tune.py's cache (its generator is reused)")
    p.add_argument("--settings", default=None, help='name=JSON of sample() arguments, separated by ";" (default: SETTINGS)')
    p.add_argument("--picks", type=int, default=1, help="unscreened samples per setting (pick seeds 0..)")
    p.add_argument("--screen-seeds", type=int, default=1, help="screened sets per setting (selector seeds 0..)")
    p.add_argument("--sanity", default="{}", help="TextSanityConfig fields as JSON (default: the text defaults)")
    args, out, shares = parse(p)
    settings = dict(s.split("=", 1) for s in args.settings.split(";")) if args.settings else SETTINGS
    settings = {k: json.loads(v) if isinstance(v, str) else v for k, v in settings.items()}

    train, val = split(args.data, per_class=args.per_class, val_per_class=args.val_per_class)
    gen = fit_or_load(train, val, args, Path(args.cache))[0]
    classes = np.unique(train.y)
    emb = MODALITY.make_embedder(seed=0, device="cpu").fit(list(train.X), train.y)
    real_emb = emb.embed(list(train.X))
    screens = [Screen(replace(MODALITY.augment_defaults["screen"], seed=k)).fit(real_emb, train.y)
               for k in range(args.screen_seeds)]
    sanity = TextSanityConfig(**json.loads(args.sanity))
    scorer = ValidationScorer(train, val, shares=shares, seeds=args.seeds)
    results: dict = {"real only": scorer.real_only(), "distinct-2 real": distinct_n(list(train.X))}
    logger.info("%s", results)
    labels = np.repeat(classes, args.candidates)
    for name, kwargs in settings.items():
        t = time.perf_counter()
        X, y = gen.sample(len(labels), labels=labels, seed=0, **kwargs)
        X = list(X)
        checks = text_sanity(X, y, generator=gen, real=train, config=sanity)
        cand = emb.embed(X)
        keeps = [np.flatnonzero(sc.score(cand, y, checks=checks, budget_per_class=args.budget).keep) for sc in screens]
        keep = keeps[0]
        row = {"sample": kwargs, "generate + screen s": round(time.perf_counter() - t, 1),
               "pass the checks": float(np.mean([r is None for r in checks.reasons])),
               "invented-word share": float(checks.scores["new_words"].mean()),
               "kept": len(keep), "smallest class kept": int(min((y[keep] == c).sum() for c in classes)),
               "distinct-2 kept": distinct_n(take(X, keep)), "distinct-2 all": distinct_n(X),
               "screened": scorer(LabeledData(take(X, keep), y[keep]), per_seed=True)}
        for k, other in enumerate(keeps[1:], start=1):
            row[f"screened pick {k}"] = scorer(LabeledData(take(X, other), y[other]), per_seed=True)
        for pick in range(args.picks):
            idx = match_counts(y[keep], y, pick)
            row[f"unscreened pick {pick}"] = scorer(LabeledData(take(X, idx), y[idx]), per_seed=True)
        results[name] = row
        logger.info("%s: %s", name, row)
        (out / "decoding.json").write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
