"""How much label noise is there for a text screen to remove? Confident contradictions on TREC.

A label judge can only help the screen where it is both confident and right. For each judge (the
screen's logistic regression on the offline embedder; TF-IDF + logistic regression), fitted on the
benchmark's 50 TREC questions per class: its precision on validation questions (other TREC
*training* questions, never the test set) among those it scores at confidence >= t, and the share of
the candidates that pass the text checks which it confidently gives another label than the one they
were generated with (``--candidates`` per class at the default decoding, the cached generator of
``text_consistency_tune.py``).

    python benchmarks/experiments/text_label_room.py --cache runs/text-consistency/cache --out runs/text-label-room
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import numpy as np

from imagina.core.screening import label_classifier
from imagina.text import MODALITY
from imagina.text.sanity import text_sanity

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the helpers beside this script
from text_consistency_tune import fit_or_load, tfidf_proba  # noqa: E402
from trec_validation import add_arguments, parse, split  # noqa: E402

logger = logging.getLogger("text_label_room")


def main() -> None:
    p = argparse.ArgumentParser()
    add_arguments(p, out="runs/text-label-room")
    p.set_defaults(candidates=600)
    p.add_argument("--cache", required=True, help="text_consistency_tune.py's cache (its generator is reused)")
    args, out, _ = parse(p)

    train, val = split(args.data, per_class=args.per_class, val_per_class=args.val_per_class)
    gen = fit_or_load(train, val, args, Path(args.cache))[0]
    classes = np.unique(train.y)
    X, y = gen.sample(len(classes) * args.candidates, labels=np.repeat(classes, args.candidates), seed=0)
    X = list(X)
    passing = np.array([r is None for r in text_sanity(X, y, generator=gen, real=train,
                                                        config=MODALITY.sanity_config).reasons])
    emb = MODALITY.make_embedder(seed=0, device="cpu").fit(list(train.X), train.y)
    clf = label_classifier(emb.embed(list(train.X)), train.y)
    judges = {"embedder LR (the screen's)": (clf.predict_proba(emb.embed(list(val.X))), clf.predict_proba(emb.embed(X))),
              "TF-IDF LR": (tfidf_proba(train, val.X), tfidf_proba(train, X))}
    val_i, cand_i = np.searchsorted(classes, val.y), np.searchsorted(classes, y)
    results: dict = {"candidates": len(X), "pass the checks": int(passing.sum())}
    for name, (pv, pc) in judges.items():
        rows = {}
        for t in (0.7, 0.8, 0.9, 0.95):
            sure = pv.max(1) >= t
            against = (pc.max(1) >= t) & (pc.argmax(1) != cand_i)
            rows[f"confidence >= {t:g}"] = {
                "validation share": float(sure.mean()),
                "validation precision": float((pv.argmax(1)[sure] == val_i[sure]).mean()),
                "passing candidates contradicted": float(against[passing].mean()),
                "per class": {str(c): float(against[passing & (y == c)].mean()) for c in classes}}
        results[name] = rows
        logger.info("%s: %s", name, rows)
    (out / "label_room.json").write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
