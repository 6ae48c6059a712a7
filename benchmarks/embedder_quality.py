"""How well does each embedder separate the classes of real items? own / pretrained / combined.

The screen is only as good as its embedding: its label-consistency classifier
(:func:`imagina.core.screening.label_classifier`) and its neighbour tests live in the embedder's space.
Per data set, the embedders are fitted on the k-shot draw of real training items
(``load(..., split=train, per_class=k, seed=0)``) and judged three ways:

* ``clf_cv``: the label-consistency classifier, 5-fold cross-validated on the k-shot draw (what the
  screen sees; optimistic for ``own``, whose network was trained on those very items);
* ``clf_heldout``: the same classifier fitted on the draw, accuracy on held-out REAL test items;
* ``knn5_heldout``: a 5-nearest-neighbour vote (cosine) among the draw, on the same held-out items.

Arms: ``own`` (the offline default, trained on the draw), ``pretrained`` (the packaged weights of the
``pretrained`` extra: all-MiniLM-L6-v2 for text, EfficientNet-Lite0 for images; none exists for
speech), ``combined`` (both, each L2-normalised, concatenated: :class:`~imagina.core.embedding.CombinedEmbedder`).
Cost: seconds to fit (train or load) and to embed the draw plus the held-out items, and the resident
memory the arm added. A last row per data set says what ``--embedder auto``
(:func:`~imagina.core.embedding.choose_embedder`) chooses from the draw alone, and how its choice
fares on the held-out items against the best of the three. Pretrained arms are skipped, with a line that says so, when the extra is absent.

    OMP_NUM_THREADS=1 python benchmarks/embedder_quality.py --datasets mnist,cifar10,trec,cr,fsdd \\
        --markdown quality.md --json quality.jsonl
    OMP_NUM_THREADS=1 python benchmarks/embedder_quality.py --datasets mnist,cifar10 --image-sizes 224,112
    OMP_NUM_THREADS=1 python benchmarks/embedder_quality.py --smoke          # seconds, synthetic data
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from imagina.core.embedding import CombinedEmbedder, Embedder, choose_embedder
from imagina.core.errors import MissingDependencyError
from imagina.core.modality import LabeledData, get_modality
from imagina.core.runtime import limit_threads
from imagina.core.screening import label_classifier

logger = logging.getLogger("embedder_quality")
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
PATTERN = "{label}_{speaker}_{index}"


@dataclass
class Dataset:
    """Where a benchmark data set lives and how many real items per class the draw takes."""

    modality: str
    train: str
    test: str
    per_class: int
    train_split: str | None = None
    test_split: str | None = None
    options: dict = field(default_factory=dict)


DATASETS = {
    "mnist": Dataset("image", "mnist", "mnist", 10, "train", "test"),
    "cifar10": Dataset("image", "cifar10/train.npz", "cifar10/test.npz", 10),
    "trec": Dataset("text", "trec/train.tsv", "trec/test.tsv", 50),
    "cr": Dataset("text", "cr/train.tsv", "cr/test.tsv", 250),
    "fsdd": Dataset("audio", "fsdd", "fsdd", 20, "train", "test", {"pattern": PATTERN}),
}
#: Short name of the packaged pretrained embedder per modality (None: no packaged model).
PACKAGED = {"image": "efficientnet-lite0", "text": "minilm", "audio": None}


def rss_mb() -> float:
    """Resident memory of this process now (MiB)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def held_out(test: LabeledData, n: int, seed: int = 0) -> LabeledData:
    """About ``n`` test items, the same number from every class (seeded)."""
    rng = np.random.default_rng(seed)
    classes = np.unique(test.y)
    per = max(1, n // len(classes))
    idx = [i for c in classes for i in rng.permutation(np.flatnonzero(test.y == c))[:per]]
    return test.subset(sorted(idx))


def knn_vote(z_query: np.ndarray, z_ref: np.ndarray, y_ref: np.ndarray, k: int = 5) -> np.ndarray:
    """Majority label of the k nearest reference items (cosine; rows are unit-norm); ties go to the nearest."""
    nearest = np.argsort(-(z_query @ z_ref.T), axis=1)[:, :k]
    out = []
    for row in y_ref[nearest]:
        labels, counts = np.unique(row, return_counts=True)
        best = set(labels[counts == counts.max()].tolist())
        out.append(next(label for label in row if label in best))
    return np.asarray(out)


def clf_cv(z: np.ndarray, y: np.ndarray, folds: int = 5) -> float:
    """5-fold cross-validated accuracy of the screen's label-consistency classifier."""
    from sklearn.model_selection import StratifiedKFold

    folds = min(folds, int(np.unique(y, return_counts=True)[1].min()))
    if folds < 2:
        return float("nan")
    right = 0
    for tr, te in StratifiedKFold(folds, shuffle=True, random_state=0).split(z, y):
        right += int((label_classifier(z[tr], y[tr]).predict(z[te]) == y[te]).sum())
    return right / len(y)


def scores(z_train: np.ndarray, y_train: np.ndarray, z_test: np.ndarray, y_test: np.ndarray) -> dict:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence chatter of tiny smoke fits
        clf = label_classifier(z_train, y_train)
        return {
            "clf_cv": round(clf_cv(z_train, y_train), 4),
            "clf_heldout": round(float((clf.predict(z_test) == y_test).mean()), 4),
            "knn5_heldout": round(float((knn_vote(z_test, z_train, y_train) == y_test).mean()), 4),
        }


def timed_embed(embedder: Embedder, train: LabeledData, test: LabeledData, *, fit: bool) -> tuple[dict, np.ndarray, np.ndarray]:
    before = rss_mb()
    t0 = time.perf_counter()
    if fit:
        embedder.fit(train.X, train.y)
    t1 = time.perf_counter()
    z_train, z_test = embedder.embed(train.X), embedder.embed(test.X)
    t2 = time.perf_counter()
    cost = {"fit_s": round(t1 - t0, 2), "embed_s": round(t2 - t1, 2), "n_embedded": len(train) + len(test),
            "dim": int(z_train.shape[1]), "rss_added_mb": round(rss_mb() - before, 1)}
    return cost, z_train, z_test


def run_dataset(name: str, train: LabeledData, test: LabeledData, modality_name: str, *, embedder_steps: int | None,
                image_sizes: list[int], draw_seed: int = 0) -> list[dict]:
    """Every arm on one data set: JSON-ready rows."""
    modality = get_modality(modality_name)
    base = {"dataset": name, "modality": modality_name, "draw_seed": draw_seed, "n_train": len(train),
            "n_heldout": len(test)}
    rows = []

    def emit(row: dict) -> None:
        rows.append(row)
        print(json.dumps(row), flush=True)

    own = modality.make_embedder(seed=0, device="cpu", meta=train.meta, steps=embedder_steps)
    cost, z_own_tr, z_own_te = timed_embed(own, train, test, fit=True)
    emit({**base, "arm": "own", **scores(z_own_tr, train.y, z_own_te, test.y), **cost})
    short = PACKAGED[modality_name]
    if short is None:
        print(f"{name}: no packaged pretrained {modality_name} model exists; own only", flush=True)
        return rows
    for tag in [short] if modality_name != "image" else [f"{short}@{s}" for s in image_sizes]:
        try:
            pre = modality.make_embedder(seed=0, device="cpu", pretrained=tag, meta=train.meta)
            cost, z_pre_tr, z_pre_te = timed_embed(pre, train, test, fit=True)
        except MissingDependencyError as exc:
            print(f"{name}: pretrained arms skipped ({exc})", flush=True)
            return rows
        emit({**base, "arm": "pretrained", "embedder": tag, **scores(z_pre_tr, train.y, z_pre_te, test.y), **cost})
        both = CombinedEmbedder([own, pre])  # both parts are fitted: embedding only
        cost, z_c_tr, z_c_te = timed_embed(both, train, test, fit=False)
        emit({**base, "arm": "combined", "embedder": f"combined:{tag}", **scores(z_c_tr, train.y, z_c_te, test.y), **cost})
        # what --embedder auto would choose from the draw alone, beside the held-out figures above
        chosen, record = choose_embedder(
            lambda: modality.make_embedder(seed=0, device="cpu", meta=train.meta, steps=embedder_steps), pre,
            train.X, train.y, name=tag)
        arms = {"own": "own", tag: "pretrained", f"combined:{tag}": "combined"}
        held = {arms[r.get("embedder", "own")]: r["clf_heldout"] for r in rows if r["arm"] in ("own", "pretrained", "combined")
                and r.get("embedder", "own") in arms}
        emit({**base, "arm": "auto", "embedder": tag, "chosen": chosen, "auto_cv": record["cv_accuracy"],
              "auto_folds": record["fold_accuracy"],
              "auto_s": record["seconds"], "chosen_heldout": held[arms[chosen]], "best_heldout": max(held.values())})
    return rows


def load_dataset(name: str, root: Path, heldout: int, draw_seed: int = 0) -> tuple[LabeledData, LabeledData, str]:
    spec = DATASETS[name]
    modality = get_modality(spec.modality)
    train = modality.load(str(root / spec.train), split=spec.train_split, per_class=spec.per_class, seed=draw_seed,
                          **spec.options)
    test = modality.load(str(root / spec.test), split=spec.test_split, clean=False, **spec.options)
    return train, held_out(test, heldout), spec.modality


def smoke_datasets() -> list[tuple[str, LabeledData, LabeledData, str]]:
    """Tiny synthetic data in every modality (no shared data needed)."""
    images = get_modality("image").load("digits")
    rng = np.random.default_rng(0)
    idx = [i for c in np.unique(images.y)[:3] for i in rng.permutation(np.flatnonzero(images.y == c))[:8]]
    digits = images.subset(idx)
    fill = ["paris", "rome", "the cat", "a river", "lincoln", "newton", "seven", "ninety", "the moon", "a bank", "ice", "gold"]
    templ = {"LOC": "where is {} ?", "HUM": "who was {} ?", "NUM": "how many {} are there ?"}
    texts = [templ[c].format(f) for c in templ for f in fill[:8]]
    labels = np.repeat(list(templ), 8)
    t = np.arange(2048) / 8000
    clips = np.stack([0.8 * np.exp(-6 * t) * np.sin(2 * np.pi * f * (1 + 0.01 * j) * t)
                      for f in (300.0, 1200.0) for j in range(8)]).astype(np.float32)
    out = []
    for name, mod, X, y, meta in [("digits", "image", digits.X, digits.y, digits.meta),
                                  ("templates", "text", texts, labels, {}),
                                  ("tones", "audio", clips, np.repeat(["c0", "c1"], 8), {"sample_rate": 8000})]:
        even = np.arange(len(y)) % 2 == 0

        def pick(X, m):
            return X[m] if isinstance(X, np.ndarray) else [x for x, k in zip(X, m) if k]

        out.append((name, LabeledData(pick(X, even), np.asarray(y)[even], meta=dict(meta)),
                    LabeledData(pick(X, ~even), np.asarray(y)[~even], meta=dict(meta)), mod))
    return out


def markdown(rows: list[dict]) -> str:
    lines = ["| data set | draw seed | n (draw / held-out) | arm | embedder | d | clf CV | clf held-out | 5-NN held-out | fit s | embed s | RSS added MiB |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if r["arm"] == "auto":
            continue
        lines.append(f"| {r['dataset']} | {r['draw_seed']} | {r['n_train']} / {r['n_heldout']} | {r['arm']} | {r.get('embedder', 'own')} | {r['dim']} "
                     f"| {r['clf_cv']:.3f} | {r['clf_heldout']:.3f} | {r['knn5_heldout']:.3f} | {r['fit_s']} | {r['embed_s']} "
                     f"| {r['rss_added_mb']} |")
    auto = [r for r in rows if r["arm"] == "auto"]
    if auto:
        lines += ["", "`--embedder auto` (chosen by 3-fold cross-validation inside the draw; held-out accuracy of the "
                      "label-consistency classifier in the chosen embedding against the best of the three):", "",
                  "| data set | draw seed | chosen | CV own / pretrained / combined | held-out: chosen / best | seconds |",
                  "|---|---|---|---|---|---|"]
        for r in auto:
            cv = " / ".join(f"{v:.3f}" for v in r["auto_cv"].values())
            lines.append(f"| {r['dataset']} | {r['draw_seed']} | {r['chosen']} | {cv} | "
                         f"{r['chosen_heldout']:.3f} / {r['best_heldout']:.3f} | {r['auto_s']} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--datasets", default="mnist,cifar10,trec,cr,fsdd", help="comma-separated: " + ", ".join(DATASETS))
    p.add_argument("--data", type=Path, default=SHARED, help="folder holding the data sets (default ../shared/data)")
    p.add_argument("--heldout", type=int, default=300, help="held-out real test items per data set (default 300)")
    p.add_argument("--image-sizes", default="224", help="EfficientNet input sizes to try (default 224)")
    p.add_argument("--draw-seed", type=int, default=0, help="seed of the k-shot draw (default 0)")
    p.add_argument("--embedder-steps", type=int, default=None, help="own embedder's steps (default: the modality's)")
    p.add_argument("--json", type=Path, default=None, help="write the rows here (JSON lines)")
    p.add_argument("--markdown", type=Path, default=None, help="write the table here")
    p.add_argument("--smoke", action="store_true", help="synthetic data, 2 embedder steps, 32-pixel EfficientNet: seconds")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s: %(message)s")
    limit_threads()
    sizes = [32] if args.smoke else [int(s) for s in args.image_sizes.split(",")]
    steps = 2 if args.smoke else args.embedder_steps
    if args.smoke:
        jobs = smoke_datasets()
    else:
        jobs = [(name, *load_dataset(name, args.data, args.heldout, args.draw_seed)) for name in args.datasets.split(",")]
    rows = []
    for name, train, test, modality_name in jobs:
        rows += run_dataset(name, train, test, modality_name, embedder_steps=steps, image_sizes=sizes,
                            draw_seed=0 if args.smoke else args.draw_seed)
    if args.json:
        args.json.write_text("".join(json.dumps(r) + "\n" for r in rows))
    if args.markdown:
        args.markdown.write_text(markdown(rows))
    return rows


if __name__ == "__main__":
    main()
