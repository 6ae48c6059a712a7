"""Where does a TREC dose's change in plain test accuracy come from? Per-class recall, one draw at a time.

For each ``verdict_draws.py`` folder of a TREC draw (``output/`` and ``outside.json``), rebuilds the
outside view's two arms "real+classical" and "classical+best tried" (its EDA setting for the
TF-IDF + linear SVM, its classifier seeds) and prints, averaged over the seeds, the change in test
accuracy, in balanced accuracy, in each class's recall and in how many test questions each class is
predicted for. The draws are 50 questions per class; TREC's test split is 28 % DESC and 2 % ABBR,
so a dose that moves the boundary between "what is X ?" definitions (DESC) and abbreviations (ABBR)
moves plain accuracy several times more than balanced accuracy.

    python benchmarks/experiments/trec_prior_shift.py RUNS/trec_k50_s26 RUNS/trec_k50_s32 ...
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # outside_view.py
import outside_view as ov  # noqa: E402

from imagina.core.modality import get_modality  # noqa: E402

DATA = HERE.parents[2] / "shared" / "data" / "trec"


def per_class(folder: Path, test, classes: list[str]) -> dict:
    modality = get_modality("text")
    result = json.loads((folder / "outside.json").read_text())
    real = modality.load(str(DATA / "train.tsv"), per_class=result["real_per_class"], seed=result["seed"])
    out = folder / "output"
    record = json.loads((out / "run.json").read_text())["recommendation"]
    dose = ov.read_output_items("text", out, "manifest.csv", real)
    kept = ov.join_items([dose, ov.read_output_items("text", out, "reserve.csv", real)])
    ratio = max(record["trials"], key=lambda t: t["lift"])["ratio"]
    tried = dose if record["verdict"] == "use" else ov.best_tried(kept, real, ratio)
    bench = ov.make_bench("text", None, real.meta)
    setting = bench.settings()[result["classifiers"]["TF-IDF+SVM"]["classical"]["setting"]]
    y = np.asarray(test.y).astype(str)
    recall, predicted, accuracy = np.zeros(len(classes)), np.zeros(len(classes)), 0.0
    for s in result["seeds"]:
        preds = []
        for synthetic in (None, tried):
            train, n_real = ov.build_train(bench, real, synthetic, setting, s)
            index = {c: i for i, c in enumerate(classes)}
            labels = np.array([index[c] for c in np.asarray(train.y).astype(str)])
            p = np.asarray(bench.fit_predict("TF-IDF+SVM", train, n_real, labels, test.X, len(classes), None, s))
            preds.append(np.array(classes)[p])
        a, b = preds
        recall += [((b[y == c] == c).mean() - (a[y == c] == c).mean()) for c in classes]
        predicted += [int((b == c).sum()) - int((a == c).sum()) for c in classes]
        accuracy += (b == y).mean() - (a == y).mean()
    n = len(result["seeds"])
    return {"draw": folder.name, "accuracy": 100 * accuracy / n, "balanced": 100 * recall.mean() / n,
            "recall": dict(zip(classes, (100 * recall / n).round(2).tolist())),
            "predicted": dict(zip(classes, (predicted / n).round(1).tolist()))}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("folders", nargs="+", type=Path, help="verdict_draws.py folders of TREC draws")
    args = p.parse_args()
    test = get_modality("text").load(str(DATA / "test.tsv"), clean=False)
    classes = sorted(set(np.asarray(test.y).astype(str).tolist()))
    share = {c: round(float((np.asarray(test.y).astype(str) == c).mean()), 3) for c in classes}
    print(f"test items {len(test)}, class shares {share}")
    for folder in args.folders:
        row = per_class(folder, test, classes)
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
