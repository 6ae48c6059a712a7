"""Does the text screen's redundancy test remove distinct sentences? Offline embedder variants on TREC.

Same protocol and cache as ``text_consistency_tune.py`` (generator fitted once on the benchmark's 50
TREC questions per class, seed 0; ``--candidates`` per class; validation = other TREC *training*
questions, never the test set; ``--vae`` JSON for other generator settings, with its own ``--out``).
For each embedder variant (``TextEmbedder`` settings as JSON), the text default screen (default
checks, random pick, redundancy test) is run on the same candidates and reported: kept and redundant
counts, the share of short sentences (<= ``--short`` words) among the candidates that pass the checks
and among the kept ones (a random pick should not move it; a redundancy test that cannot tell unseen
words apart does), the share of redundant rejections that are not the same words as the kept
sentence they were matched to, the embedder's own accuracy on validation questions (logistic
regression on its embeddings), and what the kept set adds on validation (TextCNN at each share,
TF-IDF), next to a random sample of all candidates of the same count per class (the unscreened
condition (d) of ``text_trec.py``).

    python benchmarks/experiments/text_redundancy.py --out runs/text-consistency --seeds 5
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
import time
from pathlib import Path

import numpy as np

from imagina.core.evaluation import match_counts
from imagina.core.modality import LabeledData, take
from imagina.core.screening import Screen, label_classifier
from imagina.text import MODALITY, TextEmbedder
from imagina.text.sanity import normalized_key, text_sanity

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the helpers beside this script
from text_consistency_tune import fit_or_load  # noqa: E402
from trec_validation import ValidationScorer, add_arguments, parse, split  # noqa: E402

logger = logging.getLogger("text_redundancy")
VARIANTS = {"words only (session 6)": {"ngram_buckets": 0}, "words + char n-grams": {}}
_MATCH = re.compile(r"near-duplicate of kept candidate (\d+)")


def main() -> None:
    p = argparse.ArgumentParser()
    add_arguments(p, out="runs/text-consistency")
    p.add_argument("--variants", default=None, help='name=JSON of TextEmbedder settings, separated by ";" '
                   '(default: words only, words + char n-grams)')
    p.add_argument("--short", type=int, default=4, help="a short sentence has at most this many words")
    args, out, shares = parse(p)
    variants = dict(v.split("=", 1) for v in args.variants.split(";")) if args.variants else VARIANTS
    variants = {k: json.loads(v) if isinstance(v, str) else v for k, v in variants.items()}

    train, val = split(args.data, per_class=args.per_class, val_per_class=args.val_per_class)
    gen, X, y, _, _, _ = fit_or_load(train, val, args, out / "cache")
    classes = np.unique(train.y)
    checks = text_sanity(X, y, generator=gen, real=train, config=MODALITY.sanity_config)
    passing = np.array([r is None for r in checks.reasons])
    short = checks.scores["words"] <= args.short
    scorer = ValidationScorer(train, val, shares=shares, seeds=args.seeds)
    results: dict = {"candidates": len(X), "pass the checks": int(passing.sum()),
                     f"short (<= {args.short} words) among passing": float(short[passing].mean()),
                     "short among passing per class": {str(c): float(short[passing & (y == c)].mean()) for c in classes},
                     "real only": scorer.real_only()}
    logger.info("%s", results)
    for name, settings in variants.items():
        t = time.perf_counter()
        emb = TextEmbedder(seed=0, device="cpu", **settings).fit(list(train.X), train.y)
        real_emb, cand_emb, val_emb = emb.embed(list(train.X)), emb.embed(X), emb.embed(list(val.X))
        fit_s = time.perf_counter() - t
        lr_acc = float((label_classifier(real_emb, train.y).predict(val_emb) == val.y).mean())
        res = Screen(MODALITY.augment_defaults["screen"]).fit(real_emb, train.y).score(
            cand_emb, y, checks=checks, budget_per_class=args.budget)
        redundant = [(i, int(m.group(1))) for i, r in enumerate(res.reasons) if r and (m := _MATCH.search(r))]
        different = [normalized_key(X[i]) != normalized_key(X[j]) for i, j in redundant]
        keep = res.keep
        row = {"settings": settings, "fit + embed s": round(fit_s, 1), "embedder LR validation accuracy": lr_acc,
               "kept": int(keep.sum()), "kept per class": {str(c): int(keep[y == c].sum()) for c in classes},
               "redundant": len(redundant), "redundant with different words": float(np.mean(different)) if redundant else 0.0,
               "short among kept": float(short[keep].mean()),
               "short among kept per class": {str(c): float(short[keep & (y == c)].mean()) for c in classes},
               "short among redundant": float(short[[i for i, _ in redundant]].mean()) if redundant else 0.0}
        idx = np.flatnonzero(keep)
        row.update(scorer(LabeledData(take(X, idx), y[idx]), per_seed=True))
        results[name] = row
        if "unscreened (same count per class)" not in results:  # the (d) of text_trec.py, on validation
            pick = match_counts(y[keep], y, 0)
            results["unscreened (same count per class)"] = {
                "short": float(short[pick].mean()), **scorer(LabeledData(take(X, pick), y[pick]), per_seed=True)}
        logger.info("%s: %s", name, row)
        (out / "redundancy.json").write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
