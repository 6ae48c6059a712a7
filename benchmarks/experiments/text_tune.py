"""Choose the text defaults on a validation split carved from TREC *training* data (never the test set).

For each VAE setting: train on 40 sentences per class, then measure on the 10 held-out sentences per
class the ELBO per token, and, for each sampling setting, the share of candidates that pass the text
checks (not a copy, fluent, long enough) and their distinct-2::

    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/experiments/text_tune.py --out runs/text-tune
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import numpy as np
import torch

from imagina.core.evaluation import stratified_split
from imagina.text import MODALITY, ConditionalSeqVAE, SeqVAEConfig, distinct_n, text_sanity

logger = logging.getLogger("text_tune")

MODELS = {
    "bpe1000-minfreq2-800": dict(steps=800, vocab_size=1000, min_frequency=2, dropout=0.1, word_dropout=0.3),
    "bpe2000-minfreq1-800": dict(steps=800, vocab_size=2000, min_frequency=1, dropout=0.1, word_dropout=0.3),
    "bpe1000-minfreq2-250-reg": dict(steps=250, vocab_size=1000, min_frequency=2, dropout=0.3, word_dropout=0.4),
    "bpe1000-minfreq2-500-reg": dict(steps=500, vocab_size=1000, min_frequency=2, dropout=0.3, word_dropout=0.4),
    "bpe2000-minfreq1-500-reg": dict(steps=500, vocab_size=2000, min_frequency=1, dropout=0.3, word_dropout=0.4),
}
SAMPLING = {
    "around-0.5-t1.0": dict(method="around", noise_scale=0.5, temperature=1.0),
    "around-1.0-t1.0": dict(method="around", noise_scale=1.0, temperature=1.0),
    "around-1.0-t0.8": dict(method="around", noise_scale=1.0, temperature=0.8),
    "mix-1.0-t0.8": dict(method="mix", noise_scale=1.0, temperature=0.8),
    "interpolate-t0.8": dict(method="interpolate", temperature=0.8),
    "prior-t0.8": dict(method="prior", temperature=0.8),
}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--data", default=str(Path(__file__).resolve().parents[3] / "shared/data/trec/train.tsv"))
    p.add_argument("--out", default="runs/text-tune")
    p.add_argument("--models", nargs="*", default=list(MODELS))
    p.add_argument("--n", type=int, default=300, help="candidates per class per sampling setting")
    p.add_argument("--sampling", nargs="*", default=list(SAMPLING))
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    torch.set_num_threads(1)
    data = MODALITY.load(args.data, per_class=50, seed=0)
    tr, va = stratified_split(data.y, 0.2, 1000)
    train, val = data.subset(tr), data.subset(va)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results = {}
    for name in args.models:
        t = time.perf_counter()
        vae = ConditionalSeqVAE(SeqVAEConfig(**MODELS[name]), device="cpu", seed=0).fit(train.X, train.y, progress=False)
        fit_s = time.perf_counter() - t
        val_elbo = float(np.mean(vae.log_likelihood(val.X, val.y)))
        row = {"fit_s": round(fit_s, 1), "val_elbo_per_token": val_elbo, **vae.diagnostics_, "sampling": {}}
        classes = np.unique(train.y)
        for sname in args.sampling:
            opts = SAMPLING[sname]
            X, y = vae.sample(args.n * len(classes), np.repeat(classes, args.n), seed=0, **opts)
            checks = text_sanity(X, y, generator=vae, real=train)
            ok = np.array([r is None for r in checks.reasons])
            kinds = {}
            for r in checks.reasons:
                k = "pass" if r is None else r.split(":")[0]
                kinds[k] = kinds.get(k, 0) + 1
            row["sampling"][sname] = {"pass_share": float(ok.mean()), "reasons": kinds,
                                      "distinct2_pass": distinct_n([x for x, o in zip(X, ok, strict=True) if o], 2),
                                      "examples": [x for x, o in zip(X, ok, strict=True) if o][:6]}
            logger.info("%s %s: pass %.3f %s", name, sname, ok.mean(), kinds)
        results[name] = row
        logger.info("%s: %s", name, {k: v for k, v in row.items() if k != "sampling"})
        (out / "tune.json").write_text(json.dumps(results, indent=2))
    logger.info("real val distinct-2 %.3f", distinct_n(val.X, 2))


if __name__ == "__main__":
    main()
