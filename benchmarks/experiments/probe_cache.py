"""The dose's probe fits with and without computing a probe's per-item features once (one-off check).

    OMP_NUM_THREADS=1 python benchmarks/experiments/probe_cache.py [--pythonpath TREE] [--json OUT] [--only trec,...]

Runs :func:`imagina.core.dose.recommend_dose` on fixed inputs whose probes start with a per-item step
(images: pixels and gradient histograms; audio: log-mel statistics and grid; text: the TF-IDF analysis) and
prints, per case, the dose's CPU seconds, verdict and lift; ``--json`` writes every case's full record.
Run once on the code before and once after a change to the dose and compare the records: a cache of per-item features must not change a
number. Inputs (no generator is trained, so the check is fast and the same for both trees):

* image: scikit-learn's digits (1,797 images of 8×8), 600 "synthetic" items = real items with
  Gaussian pixel noise (σ 24), attributed to their source image, classical views on;
* audio: 20 clips per class of 4 classes (tones of a class's pitch, jittered, 0.5 s at 8 kHz), 160
  noisy copies as synthetic items, classical views on;
* fsdd (when ``../shared/data/fsdd`` is there): the default draw of the speech benchmarks, 20 clips per
  spoken digit of the training split (seed 0), 400 noisy copies (SNR about 20 dB), classical views on;
* trec (when ``../shared/data/trec`` is there): 50 questions per class (seed 48), 1,200 EDA-edited
  copies as synthetic items, classical views on.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np


def image_inputs():
    from sklearn.datasets import load_digits

    d = load_digits()
    X = (d.images * 255 / 16).round().astype(np.uint8)[..., None]            # (1797, 8, 8, 1)
    y = d.target
    rng = np.random.default_rng(0)
    src = rng.choice(len(y), 600, replace=False)
    syn = np.clip(X[src].astype(np.float32) + rng.normal(0, 24, X[src].shape), 0, 255).astype(np.uint8)
    order = np.argsort(y[src], kind="stable")
    return X, y, syn[order], y[src][order], src[order]


def audio_inputs():
    rng = np.random.default_rng(0)
    sr, n, T = 8000, 20, 4000
    t = np.arange(T) / sr
    y = np.repeat(np.arange(4), n)
    f0 = 300 * 1.5 ** y * rng.uniform(0.95, 1.05, len(y))
    X = (np.sin(2 * np.pi * f0[:, None] * t) * np.hanning(T) + rng.normal(0, 0.05, (len(y), T))).astype(np.float32)
    src = np.repeat(np.arange(len(y)), 2)
    syn = (X[src] + rng.normal(0, 0.1, (len(src), T))).astype(np.float32)
    order = np.argsort(y[src], kind="stable")
    return X, y, syn[order], y[src][order], src[order]


def fsdd_inputs():
    from imagina.core.modality import get_modality

    root = Path(__file__).resolve().parents[3] / "shared" / "data" / "fsdd"
    data = get_modality("audio").load(str(root), pattern="{label}_{speaker}_{index}", split="train", per_class=20, seed=0)
    X, y = np.asarray(data.X, np.float32), np.asarray(data.y)
    rng = np.random.default_rng(0)
    src = np.repeat(np.arange(len(y)), 2)
    scale = 0.1 * np.sqrt((X**2).mean(1, keepdims=True))[src]
    syn = (X[src] + scale * rng.normal(size=(len(src), X.shape[1]))).astype(np.float32)
    order = np.argsort(y[src], kind="stable")
    return X, y, syn[order], y[src][order], src[order], data.meta


def trec_inputs():
    from imagina.core.modality import get_modality
    from imagina.text.evaluate import classical_views

    root = Path(__file__).resolve().parents[3] / "shared" / "data" / "trec" / "train.tsv"
    data = get_modality("text").load(str(root), per_class=50, seed=48)
    X, y = list(data.X), np.asarray(data.y)
    syn = classical_views(X, 4, seed=7)                                 # 1,200 edited sentences
    src = np.tile(np.arange(len(y)), 4)
    order = np.argsort(y[src], kind="stable")
    return X, y, [syn[i] for i in order], y[src][order], src[order]


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--pythonpath", default=None, help="a directory holding another checkout as imagina/")
    p.add_argument("--json", default=None, help="write the records here")
    p.add_argument("--only", default=None, help="comma-separated cases (image, audio, fsdd, trec; default all)")
    args = p.parse_args()
    if args.pythonpath:
        sys.path.insert(0, args.pythonpath)
    from imagina.core.dose import recommend_dose
    from imagina.core.modality import get_modality

    out = {}
    cases = [("image", "image", image_inputs), ("audio", "audio", audio_inputs)]
    if (Path(__file__).resolve().parents[3] / "shared" / "data" / "fsdd").is_dir():
        cases.append(("fsdd", "audio", fsdd_inputs))
    if (Path(__file__).resolve().parents[3] / "shared" / "data" / "trec").is_dir():
        cases.append(("trec", "text", trec_inputs))
    for name, modality, inputs in cases:
        if args.only and name not in args.only.split(","):
            continue
        mod = get_modality(modality)
        real, real_y, syn, syn_y, attribution, *rest = inputs()
        meta = rest[0] if rest else ({"sample_rate": 8000} if modality == "audio" else None)
        views = lambda X, k, seed, mod=mod, meta=meta: mod.classical_views(X, k, seed=seed, meta=meta)  # noqa: E731
        start = time.process_time()
        rec = recommend_dose(mod.probe_features(meta), real, real_y, syn, syn_y, attribution, views=views)
        cpu = time.process_time() - start
        record = rec.to_dict()
        record.pop("seconds", None)
        out[name] = {"cpu_s": round(cpu, 2), "record": record}
        print(json.dumps({"modality": name, "cpu_s": round(cpu, 2), "verdict": rec.verdict, "lift": rec.lift,
                          "imagina": sys.modules["imagina"].__file__}), flush=True)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(out, fh, indent=1, default=str)


if __name__ == "__main__":
    main()
