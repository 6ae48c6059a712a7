"""Which decoding settings suit whole-word decoding? Cross-validation on training files only (issue 20).

Per data set (TREC 50 per class, CR 250 per class) and seed, the real draw is
``load(train, per_class=k, seed)``; the rest of the *training* file is the validation pool (no test
split is read). The sequence VAE is fitted once on the draw with imagina's defaults; for each
decoding setting (keyword arguments of ``ConditionalSeqVAE.sample``) ``--candidates`` sentences per
class are drawn (the pipeline's pool: 3 × 200), put through the text checks (``text_sanity`` with the
generator's fluency, as the pipeline does), and ``--keep`` per class that pass are taken at random
(the text screen's selector). Of the kept set:

* ``distinct-2@real``: distinct-2 of a seeded subsample as large as the draw, divided by the draw's;
* ``ppl ratio``: word bigram perplexity (Kneser-Ney fitted on the draw) of the kept sentences over
  that of as many held-out training sentences (the fluency benchmark's reference);
* ``known``: share of kept sentences made only of the draw's words;
Settings with ``match_diversity`` take the temperature ``choose_temperature`` finds on the draw.

* ``lift``: accuracy of TF-IDF + logistic regression trained on draw + kept, minus draw alone, on
  ``--val`` other labelled training sentences (points).

    OMP_NUM_THREADS=1 python benchmarks/experiments/text_decoding_cv.py --dataset trec --seeds 0,1 \\
        --json /work/runs_dec/trec.jsonl
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from imagina.core.generator import load_model
from imagina.core.runtime import limit_threads
from imagina.text.evaluate import tfidf_accuracy
from imagina.text.modality import TextModality
from imagina.text.sanity import BigramLM, distinct_n, fluency_statistics, known_words, text_sanity

logger = logging.getLogger("text_decoding_cv")
SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"
DATASETS = {"trec": (SHARED / "trec" / "train.tsv", 50), "cr": (SHARED / "cr" / "train.tsv", 250)}
SETTINGS = {
    "T0.8 p0.9 (default)": {},
    "T0.8 p0.9 block2": {"no_repeat_ngram": 2},
    "T1.0 p0.9": {"temperature": 1.0},
    "T1.0 p0.9 block2": {"temperature": 1.0, "no_repeat_ngram": 2},
    "T1.0 p1.0 block2": {"temperature": 1.0, "top_p": 1.0, "no_repeat_ngram": 2},
    "T1.2 p0.9 block2": {"temperature": 1.2, "no_repeat_ngram": 2},
    "T0.8 p0.9 noise1.5 block2": {"noise_scale": 1.5, "no_repeat_ngram": 2},
    "T1.0 p0.9 prior block2": {"method": "prior", "temperature": 1.0, "no_repeat_ngram": 2},
    "matched T, p0.9": {"match_diversity": 1.0},
    "matched T, p0.9 block2": {"match_diversity": 1.0, "no_repeat_ngram": 2},
}


@dataclass
class TrainingSplit:
    """Of the *training* file (no test split is read): the draw, as many held-out sentences as it
    holds, labelled validation sentences, and the reference figures of the draw."""

    draw: Any
    heldout: list[str]
    val_X: list[str]
    val_y: np.ndarray
    base: float  # TF-IDF + logistic regression accuracy on validation, trained on the draw alone
    lm: BigramLM  # fitted on the draw
    lexicon: set[str]  # the draw's words
    ppl_held: float  # the held-out sentences' perplexity under ``lm``
    d2_real: float  # distinct-2 of the draw

    @property
    def real(self) -> list[str]:
        return list(self.draw.X)


def training_split(modality: TextModality, whole, source: str, k: int, seed: int, n_val: int) -> TrainingSplit:
    """The draw ``load(source, per_class=k, seed)``, held-out and ``n_val`` validation sentences of the
    rest of the training file ``whole``, all disjoint."""
    draw = modality.load(source, per_class=k, seed=seed)
    drawn = set(draw.X)
    order = np.random.default_rng(seed).permutation([i for i, t in enumerate(whole.X) if t not in drawn])
    heldout = [whole.X[i] for i in order[: len(draw)]]
    val = order[len(draw) : len(draw) + n_val]
    val_X, val_y, real = [whole.X[i] for i in val], whole.y[val], list(draw.X)
    lm = BigramLM().fit(real)
    return TrainingSplit(draw=draw, heldout=heldout, val_X=val_X, val_y=val_y,
                         base=tfidf_accuracy(real, draw.y, val_X, val_y), lm=lm, lexicon=known_words(real),
                         ppl_held=lm.perplexity(heldout), d2_real=distinct_n(real, 2))


def fit_or_load(modality: TextModality, draw, seed: int, cached: Path | None):
    """The sequence VAE with imagina's defaults fitted on the draw, loaded from ``cached`` when that
    folder exists, else fitted (and saved there when given)."""
    if cached is not None and cached.is_dir():
        return load_model(cached, device="cpu")
    gen = modality.make_generator(steps=None, seed=seed, device="cpu").fit(list(draw.X), draw.y, progress=False)
    if cached is not None:
        gen.save(cached)
    return gen


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", choices=sorted(DATASETS), required=True)
    p.add_argument("--seeds", default="0")
    p.add_argument("--candidates", type=int, default=600)
    p.add_argument("--keep", type=int, default=200)
    p.add_argument("--val", type=int, default=1500, help="labelled validation sentences of the training file")
    p.add_argument("--settings", default=None, help='name=JSON;name=JSON... (default: SETTINGS)')
    p.add_argument("--cache", type=Path, default=None, help="save each fitted generator here, and load it when there")
    p.add_argument("--json", type=Path, required=True, help="append one JSON line per (seed, setting)")
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    limit_threads(1)
    settings = ({k: json.loads(v) for k, v in (s.split("=", 1) for s in args.settings.split(";"))}
                if args.settings else SETTINGS)
    source, k = DATASETS[args.dataset]
    modality = TextModality()
    whole = modality.load(str(source))
    for seed in (int(s) for s in args.seeds.split(",")):
        sp = training_split(modality, whole, str(source), k, seed, args.val)
        draw, real, val_X, val_y, base, lm, lexicon = sp.draw, sp.real, sp.val_X, sp.val_y, sp.base, sp.lm, sp.lexicon
        ppl_held, d2_real = sp.ppl_held, sp.d2_real
        t0 = time.perf_counter()
        gen = fit_or_load(modality, draw, seed, args.cache / f"{args.dataset}-s{seed}" if args.cache else None)
        logger.info("%s seed %d: fitted in %.0f s; real-only accuracy %.4f", args.dataset, seed, time.perf_counter() - t0, base)
        classes = np.unique(draw.y)
        labels = np.repeat(classes, args.candidates)
        for name, kwargs in settings.items():
            t0 = time.perf_counter()
            if "match_diversity" in kwargs:  # the temperature chosen on the draw (choose_temperature)
                kwargs = dict(kwargs)
                target = kwargs.pop("match_diversity")
                kwargs["temperature"] = gen.choose_temperature(target, **kwargs)
            X, y = gen.sample(len(labels), labels=labels, seed=seed, **kwargs)
            checks = text_sanity(X, y, generator=gen, real=draw, config=modality.sanity_config)
            ok = np.array([r is None for r in checks.reasons])
            pick = np.random.default_rng(seed)
            keep = np.concatenate([pick.permutation(np.flatnonzero(ok & (y == c)))[: args.keep] for c in classes])
            keep.sort()
            kept = [X[i] for i in keep]
            sub = kept if len(kept) <= len(real) else [kept[i] for i in sorted(pick.choice(len(kept), len(real), replace=False))]
            stats = fluency_statistics(kept, real, lexicon=lexicon, lm=lm)
            acc = tfidf_accuracy(real, draw.y, val_X, val_y, extra_texts=kept, extra_y=y[keep])
            row = {"dataset": args.dataset, "seed": seed, "setting": name, "kwargs": kwargs,
                   "pass": float(ok.mean()), "kept": len(kept),
                   "smallest class": int(min((y[keep] == c).sum() for c in classes)),
                   "known": stats["known-words"], "ppl ratio": stats["perplexity"] / ppl_held,
                   "distinct-2 ratio": distinct_n(sub, 2) / d2_real, "lift": 100 * (acc - base),
                   "seconds": round(time.perf_counter() - t0, 1), "first": kept[:5]}
            logger.info("%s", {k2: v for k2, v in row.items() if k2 != "first"})
            with args.json.open("a") as f:
                f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
