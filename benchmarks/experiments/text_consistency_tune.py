"""Which label-consistency signal makes the text screen worth more than a random sample?

Same protocol as ``text_screen_tune.py`` (generator and embedder fitted once on the benchmark's 50
TREC questions per class, seed 0; validation = up to ``--val-per-class`` *other* TREC training
questions per class, never the test set), with the fit and the candidates cached in ``--out`` so
that reruns skip them. Two parts:

1. each signal as a classifier of the validation questions (accuracy, log-loss): the screen's
   logistic regression on the offline embedder, the sequence VAE as a generative classifier
   (Bayes over its class-conditional ELBO), TF-IDF + logistic regression on the real questions, and
   averages of them;
2. per signal, the kept set of a screen that takes the ``--budget`` candidates per class with the
   highest p(label) among those that pass the text checks (LAMBADA's filter, Anaby-Tavor et al.
   2020), scored by what it adds on validation (TextCNN, ``--seeds`` seeds, each share; TF-IDF),
   against the current default (checks + random pick) and an unscreened random sample.

    python benchmarks/experiments/text_consistency_tune.py --out runs/text-consistency
    python benchmarks/experiments/text_consistency_tune.py --out runs/text-consistency --seeds 5 \
        --rows "none|-|random;max_new_words=0.34|-|random;max_new_words=1|-|random"

The cache (``--out``/cache) is reused whatever the flags: delete it after changing ``--per-class``,
``--candidates`` or the generator's code.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np

from imagina.core.evaluation import match_counts
from imagina.core.generator import load_model
from imagina.core.modality import LabeledData, take
from imagina.core.pipeline import AugmentConfig, Augmenter
from imagina.core.screening import Screen, label_classifier
from imagina.text import MODALITY
from imagina.text.sanity import TextSanityConfig, text_sanity

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the helpers beside this script
from trec_validation import ValidationScorer, add_arguments, parse, split  # noqa: E402

logger = logging.getLogger("text_consistency_tune")
CHECKS = {"default": TextSanityConfig(),
          "copies only": TextSanityConfig(max_ngram_overlap=1.0, fluency_margin=1e9, max_new_words=1.0)}


def check_config(name: str) -> TextSanityConfig:
    """A CHECKS name, or TextSanityConfig fields as ``field=value,...`` (e.g. ``max_new_words=0.34``)."""
    if name in CHECKS:
        return CHECKS[name]
    return TextSanityConfig(**{k: float(v) for k, v in (kv.split("=") for kv in name.split(","))})


def fit_or_load(train: LabeledData, val: LabeledData, args, cache: Path):
    """(generator, candidates X, y, candidate / real / validation embeddings), cached in ``cache``."""
    if (cache / "candidates.json").exists():
        gen = load_model(cache / "generator", device="cpu")
        d = json.loads((cache / "candidates.json").read_text())
        arrays = np.load(cache / "embeddings.npz")
        return gen, d["X"], np.asarray(d["y"]), arrays["cand"], arrays["real"], arrays["val"]
    t = time.perf_counter()
    aug = Augmenter("text", AugmentConfig(per_class=args.budget, device="cpu", top_up_rounds=0),
                    generator_options=json.loads(args.vae), progress=False).fit(train)
    labels = np.repeat(np.unique(train.y), args.candidates)
    X, y = aug.generator_.sample(len(labels), labels=labels, seed=0)
    cand, val_emb = aug.embedder_.embed(X), aug.embedder_.embed(val.X)
    logger.info("fit + %d candidates in %.0f s", len(y), time.perf_counter() - t)
    cache.mkdir(parents=True, exist_ok=True)
    aug.generator_.save(cache / "generator")
    np.savez(cache / "embeddings.npz", cand=cand, real=aug.real_embeddings_, val=val_emb)
    (cache / "candidates.json").write_text(json.dumps({"X": list(X), "y": y.tolist()}))
    return aug.generator_, list(X), y, cand, aug.real_embeddings_, val_emb


def vae_proba(gen, X, classes: np.ndarray) -> np.ndarray:
    """p(y | x) from the VAE's ELBO of x under each class (uniform prior): (n, n_classes)."""
    per_tok = np.stack([gen.log_likelihood(X, [c] * len(X)) for c in classes], axis=1)  # nats per token
    _, lengths = gen.tokenizer_.encode(X, max_len=gen.config.max_len)  # BOS and EOS included
    lengths = (lengths.numpy().astype(float) - 1.0)[:, None]  # predicted tokens per sentence
    logits = per_tok * lengths
    logits -= logits.max(axis=1, keepdims=True)
    p = np.exp(logits)
    return p / p.sum(axis=1, keepdims=True)


def tfidf_proba(train: LabeledData, X) -> np.ndarray:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    vec = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, token_pattern=r"(?u)\b\w+\b")
    clf = LogisticRegression(C=10.0, max_iter=3000).fit(vec.fit_transform(list(train.X)), train.y)
    return clf.predict_proba(vec.transform(list(X)))


def main() -> None:
    p = argparse.ArgumentParser()
    add_arguments(p, out="runs/text-consistency")
    p.add_argument("--rows", default=None, help='screens "checks|signal|rule" separated by ; (rule: top, argmax, '
                   'p>=X, random; signal "-" for none); default: the text default, unscreened, top-N per signal')
    args, out, shares = parse(p)

    train, val = split(args.data, per_class=args.per_class, val_per_class=args.val_per_class)
    logger.info("train %d, validation %d (other TREC training questions)", len(train), len(val))
    gen, X, y, cand_emb, real_emb, val_emb = fit_or_load(train, val, args, out / "cache")
    classes = np.unique(train.y)
    col = np.searchsorted(classes, y)

    t = time.perf_counter()
    emb_clf = label_classifier(real_emb, train.y)
    probas = {  # name -> (p on validation, p on candidates)
        "embedding LR": (emb_clf.predict_proba(val_emb), emb_clf.predict_proba(cand_emb)),
        "VAE Bayes": (vae_proba(gen, list(val.X), classes), vae_proba(gen, X, classes)),
        "TF-IDF LR": (tfidf_proba(train, val.X), tfidf_proba(train, X)),
    }
    probas["embedding + TF-IDF"] = tuple((a + b) / 2 for a, b in zip(probas["embedding LR"], probas["TF-IDF LR"]))
    probas["all three"] = tuple((a + b + c) / 3 for a, b, c in zip(*(probas[k] for k in ("embedding LR", "VAE Bayes", "TF-IDF LR"))))
    logger.info("signals in %.0f s", time.perf_counter() - t)
    vcol = np.searchsorted(classes, val.y)
    results: dict = {"signals on validation": {}}
    for name, (pv, pc) in probas.items():
        results["signals on validation"][name] = {
            "accuracy": float((pv.argmax(1) == vcol).mean()),
            "log_loss": float(-np.log(np.clip(pv[np.arange(len(vcol)), vcol], 1e-12, None)).mean()),
            "candidates p(label) median": float(np.median(pc[np.arange(len(col)), col])),
            "candidates argmax = label": float((pc.argmax(1) == col).mean()),
        }
        logger.info("%s: %s", name, results["signals on validation"][name])

    scorer = ValidationScorer(train, val, shares=shares, seeds=args.seeds)

    specs = args.rows.split(";") if args.rows else [f"default|{s}|top" for s in probas]
    needed = {spec.split("|")[0] for spec in specs} | {"default"}
    checks = {name: text_sanity(X, y, generator=gen, real=train, config=check_config(name)) for name in needed - {"none"}}
    rows: dict[str, np.ndarray] = {}
    if not args.rows:
        default = Screen(MODALITY.augment_defaults["screen"]).fit(real_emb, train.y).score(
            cand_emb, y, checks=checks["default"], budget_per_class=args.budget)
        rows["text default (checks, random pick)"] = np.flatnonzero(default.keep)
        rows["unscreened (same count per class)"] = match_counts(y[default.keep], y, 0)
    for spec in specs:  # "checks|signal|rule": rule = top (highest p(label)), argmax, p>=X, q:A-B (a
        # band of within-class quantiles of p(label), random pick inside), or random
        check_name, signal, rule = spec.split("|")
        ok = np.array([r is None for r in checks[check_name].reasons]) if check_name != "none" else np.ones(len(col), bool)
        p_label = probas[signal][1][np.arange(len(col)), col] if signal != "-" else np.zeros(len(col))
        if rule == "argmax":
            ok &= probas[signal][1].argmax(1) == col
        elif rule.startswith("p>="):
            ok &= p_label >= float(rule[3:])
        order = -p_label if rule == "top" else np.random.default_rng(0).random(len(col))
        pick = []
        for c in classes:
            idx = np.flatnonzero((y == c) & ok)
            if rule.startswith("q:"):  # a band of within-class quantiles of p(label), e.g. q:0.2-0.4
                lo, hi = np.quantile(p_label[idx], [float(v) for v in rule[2:].split("-")])
                idx = idx[(p_label[idx] >= lo) & (p_label[idx] <= hi)]
            pick.extend(idx[np.argsort(order[idx], kind="stable")[: args.budget]].tolist())
        rows[f"checks {check_name} | {signal} | {rule}"] = np.sort(np.asarray(pick, dtype=int))
    results["real only"] = scorer.real_only()
    logger.info("real only: %s", results["real only"])
    for name, idx in rows.items():
        kept = LabeledData(take(X, idx), y[idx])
        results[name] = {"kept": len(idx), **scorer(kept, per_seed=True)}
        logger.info("%s: %s", name, results[name])
        (out / "results.json").write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
