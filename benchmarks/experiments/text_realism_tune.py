"""Draw the kept set toward the real distribution? Density-ratio weighted picks on validation (TREC).

Discriminator rejection sampling (Azadi et al. 2019) in the screen: a classifier tells real
sentences from candidates (cross-fitted: each candidate is scored by a model that did not see it),
its odds p(real | x) / p(candidate | x) estimate the density ratio, and the screen's random selector
draws the candidates that pass with probability proportional to odds^alpha (``Screen.score(...,
priority=...)``). alpha 0 is the current uniform draw. Features: the screen's embeddings, or TF-IDF
of word 1-2-grams and character 2-5-grams; one discriminator per class or one for all. Rows
"hard emb|tfidf" weight instead by the difficulty of each candidate's nearest real item (the idea
of borderline-SMOTE: synthesise near the real items a classifier gets wrong): exp(alpha · (1 -
p(label))), p out of fold from a judge of the real items. Rows "emb|tfidf cover" weight each passing
candidate by 1 / (passing candidates nearest to the same real item), spreading the kept set evenly.

Protocol as ``text_decoding_tune.py``: the cached sequence VAE of ``text_consistency_tune.py``,
``--candidates`` per class at the default decoding (the pipeline's pool), validation = other TREC
*training* questions (never the test set). Every row is scored for ``--picks`` selector seeds (and
the unscreened row for as many random samples), so the spread of the random pick is measured.

    python benchmarks/experiments/text_realism_tune.py --cache runs/text-consistency/cache --out runs/text-realism
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
from pathlib import Path

import numpy as np
from scipy.sparse import hstack, vstack
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.pipeline import make_pipeline

from imagina.core.evaluation import match_counts
from imagina.core.modality import LabeledData, take
from imagina.core.neighbors import knn
from imagina.core.screening import Screen, label_classifier
from imagina.text import MODALITY
from imagina.text.sanity import text_sanity

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the helpers beside this script
from text_consistency_tune import fit_or_load  # noqa: E402
from trec_validation import ValidationScorer, add_arguments, parse, split  # noqa: E402

logger = logging.getLogger("text_realism_tune")


def tfidf_features(real_X, cand_X):
    word = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, token_pattern=r"(?u)\b\w+\b", min_df=1)
    char = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True, min_df=2)
    both = list(real_X) + list(cand_X)
    F = hstack([word.fit_transform(both), char.fit_transform(both)]).tocsr()
    return F[: len(real_X)], F[len(real_X):]


def odds(real_F, cand_F, *, folds: int = 5, C: float = 1.0, seed: int = 0) -> tuple[np.ndarray, float]:
    """Cross-fitted p(real | x) / p(candidate | x) for each candidate (each scored by a model that did
    not see it), and the out-of-fold AUC of real items against candidates (0.5: indistinguishable)."""
    sparse = hasattr(cand_F, "tocsr")
    F = vstack([real_F, cand_F]).tocsr() if sparse else np.vstack([real_F, cand_F])
    t = np.r_[np.ones(real_F.shape[0]), np.zeros(cand_F.shape[0])]
    p = np.zeros(len(t))
    for tr, te in StratifiedKFold(folds, shuffle=True, random_state=seed).split(t, t):
        clf = LogisticRegression(C=C, class_weight="balanced", max_iter=3000).fit(F[tr], t[tr])
        p[te] = clf.predict_proba(F[te])[:, 1]
    auc = float(roc_auc_score(t, p))
    p = np.clip(p[real_F.shape[0]:], 1e-4, 1 - 1e-4)
    return p / (1 - p), auc


def nearest_real(real_y, y, real_F, cand_F, mask) -> np.ndarray:
    """For each candidate in ``mask``, the index of its nearest real item of the same class (features
    dense or sparse); -1 elsewhere."""
    out = np.full(len(y), -1, dtype=np.int64)
    for c in np.unique(real_y):
        real_rows, rows = np.flatnonzero(real_y == c), np.flatnonzero((y == c) & mask)
        A, B = cand_F[rows], real_F[real_rows]
        if hasattr(A, "toarray"):
            A, B = A.toarray(), B.toarray()
        out[rows] = real_rows[knn(A.astype(np.float32), B.astype(np.float32), 1)[1][:, 0]]
    return out


def hard_weights(train: LabeledData, X, y, real_emb, cand_emb, *, judge: str) -> np.ndarray:
    """exp(1 - p(label)) of each candidate's nearest real item of its class (embedding distance), with
    p(label) out of fold (5-fold) from a judge of the real items: logistic regression on the screen's
    embeddings ("emb") or TF-IDF + logistic regression ("tfidf"). The alpha exponent sharpens it."""
    if judge == "emb":
        p = cross_val_predict(label_classifier(real_emb, train.y), real_emb, train.y, cv=5, method="predict_proba")
    else:
        p = cross_val_predict(make_pipeline(TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True,
                                                            token_pattern=r"(?u)\b\w+\b"),
                                            LogisticRegression(C=10.0, max_iter=3000)),
                              list(train.X), train.y, cv=5, method="predict_proba")
    classes = np.unique(train.y)
    p_label = p[np.arange(len(train.y)), np.searchsorted(classes, train.y)]
    w = np.exp(1.0 - p_label[nearest_real(train.y, y, real_emb, cand_emb, np.ones(len(y), dtype=bool))])
    logger.info("hard %s: out-of-fold accuracy of the judge on real items %.3f", judge,
                float((classes[p.argmax(1)] == train.y).mean()))
    return w


def cover_weights(train: LabeledData, y, real_F, cand_F, passing) -> np.ndarray:
    """1 / (passing candidates that share a candidate's nearest real item of its class): the kept set
    spread evenly over the real items instead of following where the generator piles up."""
    w = np.ones(len(y))
    nearest = nearest_real(train.y, y, real_F, cand_F, passing)[passing]
    w[passing] = 1.0 / np.bincount(nearest, minlength=len(train.y))[nearest]
    return w


def main() -> None:
    p = argparse.ArgumentParser()
    add_arguments(p, out="runs/text-realism")
    p.set_defaults(candidates=600)
    p.add_argument("--cache", required=True, help="text_consistency_tune.py's cache (its generator is reused)")
    p.add_argument("--picks", type=int, default=3)
    p.add_argument("--alphas", default="1")
    p.add_argument("--C", type=float, default=1.0)
    p.add_argument("--rows", default="emb class;emb all;tfidf class;tfidf all",
                   help='"emb|tfidf class|all" (density ratio), "hard emb|tfidf" (difficulty) or '
                        '"emb|tfidf cover" (even spread over real items), separated by ;')
    p.add_argument("--no-baseline", action="store_true", help="skip the uniform pick and unscreened rows")
    args, out, shares = parse(p)

    train, val = split(args.data, per_class=args.per_class, val_per_class=args.val_per_class)
    gen = fit_or_load(train, val, args, Path(args.cache))[0]
    classes = np.unique(train.y)
    emb = MODALITY.make_embedder(seed=0, device="cpu").fit(list(train.X), train.y)
    real_emb = emb.embed(list(train.X))
    labels = np.repeat(classes, args.candidates)
    X, y = gen.sample(len(labels), labels=labels, seed=0)
    X = list(X)
    cand_emb = emb.embed(X)
    checks = text_sanity(X, y, generator=gen, real=train, config=MODALITY.sanity_config)
    passing = np.array([r is None for r in checks.reasons])
    scorer = ValidationScorer(train, val, shares=shares, seeds=args.seeds)
    results: dict = {"real only": scorer.real_only()}

    feats = {"emb": (real_emb, cand_emb), "tfidf": tfidf_features(train.X, X)}
    weights = {}
    for row in args.rows.split(";"):
        kind, scope = row.split()
        if kind == "hard":  # borderline-SMOTE's idea: favour candidates near real items a judge gets wrong
            weights[row] = hard_weights(train, X, y, real_emb, cand_emb, judge=scope)
            results[f"difficulty {row}"] = {"mean weight passing": float(weights[row][passing].mean())}
            continue
        rf, cf = feats[kind]
        if scope == "cover":
            weights[row] = cover_weights(train, y, rf, cf, passing)
            results[f"cover {row}"] = {"real items with a passing neighbour": [
                int((weights[row][(y == c) & passing]).sum().round()) for c in classes]}
            logger.info("cover %s: %s", row, results[f"cover {row}"])
            continue
        w, aucs = np.zeros(len(y)), []
        if scope == "all":
            w[:], auc = odds(rf, cf, C=args.C)
            aucs.append(auc)
        else:
            for c in classes:
                w[y == c], auc = odds(rf[np.flatnonzero(train.y == c)], cf[np.flatnonzero(y == c)], C=args.C)
                aucs.append(auc)
        weights[row] = w
        lw = np.log(w)
        results[f"odds {row}"] = {"real-vs-candidate AUC (out of fold)": aucs,
            "median log-odds passing": float(np.median(lw[passing])), "median log-odds failing": float(np.median(lw[~passing])),
            "AUC passing vs failing": float(roc_auc_score(passing, lw)),
            "corr with word count": float(np.corrcoef(lw, checks.scores["words"])[0, 1]),
            "corr with fluency": float(np.corrcoef(lw, checks.scores["fluency"])[0, 1])}
        logger.info("odds %s: %s", row, results[f"odds {row}"])

    base = MODALITY.augment_defaults["screen"]

    def run(name, priority, alpha):
        rows = []
        for pick in range(args.picks):
            screen = Screen(dataclasses.replace(base, seed=pick)).fit(real_emb, train.y)
            pr = None if priority is None else np.clip(priority, 1e-3, 1e3) ** alpha
            res = screen.score(cand_emb, y, checks=checks, budget_per_class=args.budget, priority=pr)
            keep = np.flatnonzero(res.keep)
            r = scorer(LabeledData(take(X, keep), y[keep]))
            r["short (<=4 words) among kept"] = float((checks.scores["words"][keep] <= 4).mean())
            r["fluency among kept"] = float(checks.scores["fluency"][keep].mean())
            rows.append(r)
            if name == "default (uniform pick)":
                idx = match_counts(y[keep], y, pick)
                u = scorer(LabeledData(take(X, idx), y[idx]))
                results.setdefault("unscreened", []).append(u)
                logger.info("unscreened pick %d: %s", pick, u)
            logger.info("%s pick %d: %s", name, pick, r)
        results[name] = rows
        (out / "realism.json").write_text(json.dumps(results, indent=2))

    if not args.no_baseline:
        run("default (uniform pick)", None, 0.0)
    for row, w in weights.items():
        for alpha in [float(a) for a in args.alphas.split(",")]:
            run(f"{row}, alpha {alpha:g}", w, alpha)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
