"""How long must the offline default embedder train? Checked on validation items, never the test set.

The screen's label-consistency and realism scores live in the default embedder's space, and that
embedder is trained on the user's few real items. Here it is trained on the benchmark's real
training items (FSDD: 20 clips per digit; TREC: 50 questions per class; seed 0, as in
``audio_fsdd.py`` / ``text_trec.py``) and judged on *other* items of the same training split
(FSDD: 600 clips; TREC: up to 100 questions per class): the accuracy of its own head and of a
5-nearest-neighbour vote in its embedding, per number of steps and seed::

    OMP_NUM_THREADS=1 python benchmarks/experiments/embedder_tune.py audio --steps 300,600,1000
    OMP_NUM_THREADS=1 python benchmarks/experiments/embedder_tune.py text --steps 400,800,1200
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np
import torch

from imagina.core.modality import LabeledData, get_modality

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the helpers beside this script
import trec_validation  # noqa: E402

logger = logging.getLogger("embedder_tune")
SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"


def splits(modality: str, data: Path) -> tuple[LabeledData, LabeledData]:
    """(the benchmark's real training items, validation items from the rest of the training split)."""
    mod = get_modality(modality)
    if modality == "audio":
        full = mod.load(str(data), pattern="{label}_{speaker}_{index}", split="train")
        train = full.per_class(20, seed=0)
        used = set(train.sources)
        rest = [i for i, s in enumerate(full.sources) if s not in used]
        return train, full.subset(np.random.default_rng(0).choice(rest, 600, replace=False))
    return trec_validation.split(data)


def knn_vote(z_val: np.ndarray, z_train: np.ndarray, y_train: np.ndarray, k: int = 5) -> np.ndarray:
    """Majority label of the k nearest training items (cosine; embeddings are L2-normalised)."""
    idx = np.argsort(-(z_val @ z_train.T), axis=1)[:, :k]
    votes = y_train[idx]
    return np.array([max(set(v.tolist()), key=v.tolist().count) for v in votes])


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("modality", choices=("audio", "text"))
    p.add_argument("--steps", required=True, help="comma-separated step counts")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--data", default=None, help="default: ../shared/data/fsdd or ../shared/data/trec")
    p.add_argument("--out", default=None, help="write results.json here")
    args = p.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s: %(message)s")
    torch.set_num_threads(1)
    data = Path(args.data) if args.data else SHARED / ("fsdd" if args.modality == "audio" else "trec")
    train, val = splits(args.modality, data)
    mod = get_modality(args.modality)
    print(f"{args.modality}: {len(train)} training items, {len(val)} validation items", flush=True)
    rows = []
    for steps in [int(s) for s in args.steps.split(",")]:
        for seed in range(args.seeds):
            t0 = time.perf_counter()
            emb = mod.make_embedder(seed=seed, device="cpu", meta=train.meta)
            emb.steps = steps
            emb.fit(train.X, train.y)
            head = float((emb.classes_[emb.predict_proba(val.X).argmax(1)] == val.y).mean())
            knn = float((knn_vote(emb.embed(val.X), emb.embed(train.X), train.y) == val.y).mean())
            rows.append({"steps": steps, "seed": seed, "head": head, "knn5": knn, "seconds": round(time.perf_counter() - t0, 1)})
            print(f"steps {steps} seed {seed}: head {head:.3f}  5-NN {knn:.3f}  ({rows[-1]['seconds']} s)", flush=True)
        mine = [r for r in rows if r["steps"] == steps]
        print(f"steps {steps}: head {np.mean([r['head'] for r in mine]):.3f}  5-NN {np.mean([r['knn5'] for r in mine]):.3f}",
              flush=True)
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "results.json").write_text(json.dumps({"modality": args.modality, "n_train": len(train), "n_val": len(val),
                                                      "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
