"""The pre-registered test of the classical reference at its best strength (docs/classical_strength_plan.md),
read from two ``benchmarks/verdict_draws.py`` runs over the same draws: the default dose and
``--dose-option 'classical_strengths=["mild","default","strong"]'``.

For each draw and outside classifier it pairs ``real+output − real`` (the whole output, ``classical/`` +
``samples/``, as a user adds it; mean over the classifier seeds) between the two arms, and applies the
plan's rule: the option becomes the default only if (1) the mean paired difference over all classifier
results is at least +0.5 points, (2) no modality's mean paired difference is below −0.5, (3) no "use" of
the option's arm loses on top of classical augmentation (``classical+dose − real+classical`` below −1
with at least 4 of 5 seeds down), and (4) the dose's median seconds grow by at most 50 %.

    python benchmarks/experiments/classical_strength.py runs/cs/default runs/cs/strengths [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

MODALITY = {"trec": "text", "cr": "text", "mnist": "image", "cifar10": "image", "fsdd": "audio", "digits": "image"}


def read(folder: Path) -> dict[str, dict]:
    """Draw folder name → its outside-view result and the run's recommendation and dose seconds, for
    every finished draw under ``folder``."""
    out = {}
    for p in sorted(folder.glob("*/outside.json")):
        result = json.loads(p.read_text())
        run = json.loads((p.parent / "output" / "run.json").read_text())
        result["dose_s"] = run["timings"].get("dose_s", 0.0)
        out[p.parent.name] = result
    return out


def output_lift(result: dict, clf: str) -> float:
    """Mean over classifier seeds of real+output − real (points)."""
    arms = result["classifiers"][clf]["accuracy"]["arms"]
    return arms["real+output"]["mean"] - arms["real"]["mean"]


def lost_use(result: dict, clf: str) -> bool:
    rec = result.get("recommendation") or {}
    if rec.get("verdict") != "use":
        return False
    d = result["classifiers"][clf]["accuracy"]["diffs"]["classical+dose − real+classical"]
    return d["mean"] < -1 and d["losses"] >= 4


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("default", type=Path)
    p.add_argument("option", type=Path)
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args()
    a, b = read(args.default), read(args.option)
    draws = sorted(set(a) & set(b))
    rows = []
    for draw in draws:
        rec_a, rec_b = a[draw].get("recommendation") or {}, b[draw].get("recommendation") or {}
        for clf in a[draw]["classifiers"]:
            rows.append({"draw": draw, "modality": MODALITY[draw.split("_")[0]], "classifier": clf,
                         "default": output_lift(a[draw], clf), "option": output_lift(b[draw], clf),
                         "diff": output_lift(b[draw], clf) - output_lift(a[draw], clf),
                         "reference_default": f"{rec_a.get('classical_views', 0)} {rec_a.get('classical_strength', 'default')}",
                         "reference_option": f"{rec_b.get('classical_views', 0)} {rec_b.get('classical_strength', 'default')}",
                         "verdict_default": rec_a.get("verdict"), "verdict_option": rec_b.get("verdict"),
                         "lost_use_option": lost_use(b[draw], clf)})
    print("| draw | classifier | reference (default → option) | verdicts | output − real, default | option | option − default |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['draw']} | {r['classifier']} | {r['reference_default']} → {r['reference_option']} | "
              f"{r['verdict_default']} / {r['verdict_option']} | {r['default']:+.2f} | {r['option']:+.2f} | {r['diff']:+.2f} |")
    diffs = [r["diff"] for r in rows]
    by_modality = {m: statistics.mean(r["diff"] for r in rows if r["modality"] == m)
                   for m in sorted({r["modality"] for r in rows})}
    dose_a = statistics.median(a[d]["dose_s"] for d in draws) if draws else 0.0
    dose_b = statistics.median(b[d]["dose_s"] for d in draws) if draws else 0.0
    rule = {"1_mean_at_least_0.5": bool(diffs) and statistics.mean(diffs) >= 0.5,
            "2_no_modality_below_-0.5": all(v >= -0.5 for v in by_modality.values()),
            "3_no_lost_use": not any(r["lost_use_option"] for r in rows),
            "4_dose_median_at_most_1.5x": dose_b <= 1.5 * dose_a}
    summary = {"draws": draws, "results": len(rows), "mean_diff": statistics.mean(diffs) if diffs else None,
               "by_modality": by_modality, "dose_median_s": {"default": dose_a, "option": dose_b}, "rule": rule,
               "becomes_default": all(rule.values()) and len(draws) == 10}
    print(json.dumps(summary, indent=1))
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "summary": summary}, indent=1))


if __name__ == "__main__":
    main()
