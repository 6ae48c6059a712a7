"""The pre-registered test of the value selector (docs/value_selector_plan.md), read from two
``benchmarks/verdict_draws.py`` runs over the same draws: the default screen and
``--screen-option selector=value``.

For each draw and outside classifier it pairs the test accuracy of "classical + best tried dose" (mean
over the classifier seeds) in the two arms, and applies the plan's rule per modality: the value
selector becomes a default only where the mean paired difference is at least +0.5 points, no single
difference is below −2, and no verdict of its arm is a "use" that loses on top of classical
augmentation.

    python benchmarks/experiments/value_selector.py runs/vsel/default runs/vsel/value [--json out.json]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

MODALITY = {"trec": "text", "cr": "text", "mnist": "image", "cifar10": "image", "fsdd": "audio", "digits": "image"}
ARM = "classical+best tried"


def read(folder: Path) -> dict[str, dict]:
    """Draw folder name → its outside-view result, for every finished draw under ``folder``, with the
    kept set's distinct-2 at the real draw's size over the real draw's (text only; issue 20's measure)
    under ``"distinct2_ratio"``."""
    out = {}
    for p in sorted(folder.glob("*/outside.json")):
        result = json.loads(p.read_text())
        stats = json.loads((p.parent / "output" / "run.json").read_text())["metrics"].get("set_statistics", {})
        if "kept" in stats and "real" in stats:
            result["distinct2_ratio"] = stats["kept"]["distinct-2 @ real size"] / stats["real"]["distinct-2 @ real size"]
        out[p.parent.name] = result
    return out


def verdict_outcome(result: dict, clf: str) -> str:
    """A "use" that lost on top of classical augmentation (mean below zero, most seeds below), else ""."""
    rec = result.get("recommendation") or {}
    if rec.get("verdict") != "use":
        return ""
    d = result["classifiers"][clf]["accuracy"]["diffs"]["classical+dose − real+classical"]
    return "use that lost" if d["mean"] < 0 and d["losses"] > len(result["seeds"]) / 2 else "use"


def compare(default: dict[str, dict], value: dict[str, dict]) -> list[dict]:
    rows = []
    for draw in sorted(set(default) & set(value)):
        a, b = default[draw], value[draw]
        for clf in a["classifiers"]:
            acc_a = a["classifiers"][clf]["accuracy"]["arms"]
            acc_b = b["classifiers"][clf]["accuracy"]["arms"]
            rows.append({
                "draw": draw, "modality": MODALITY[draw.split("_")[0]], "classifier": clf,
                "real+classical": acc_a["real+classical"]["mean"],
                "default": acc_a[ARM]["mean"], "value": acc_b[ARM]["mean"],
                "diff": acc_b[ARM]["mean"] - acc_a[ARM]["mean"],
                "ratio_default": a["synthetic"]["best_tried_ratio"], "ratio_value": b["synthetic"]["best_tried_ratio"],
                "verdict_default": (a.get("recommendation") or {}).get("verdict", "don't use"),
                "verdict_value": (b.get("recommendation") or {}).get("verdict", "don't use"),
                "value_use_outcome": verdict_outcome(b, clf),
                "distinct2_default": a.get("distinct2_ratio"), "distinct2_value": b.get("distinct2_ratio"),
            })
    return rows


def decide(rows: list[dict]) -> dict[str, dict]:
    out = {}
    for modality in sorted({r["modality"] for r in rows}):
        rs = [r for r in rows if r["modality"] == modality]
        mean = sum(r["diff"] for r in rs) / len(rs)
        worst = min(r["diff"] for r in rs)
        lost = sum(r["value_use_outcome"] == "use that lost" for r in rs)
        adopt = mean >= 0.5 and worst >= -2.0 and lost == 0
        out[modality] = {"results": len(rs), "draws": len({r["draw"] for r in rs}), "mean_diff": round(mean, 2),
                         "worst_diff": round(worst, 2), "uses_that_lost": lost, "adopt": adopt}
        ratios = {r["draw"]: (r["distinct2_default"], r["distinct2_value"]) for r in rs if r["distinct2_default"]}
        if ratios:  # not part of the plan's rule: issue 20's target (kept distinct-2 ≥ 0.8 × real) beside it
            out[modality]["distinct2_ratio"] = {arm: round(sum(v[i] for v in ratios.values()) / len(ratios), 3)
                                                for i, arm in enumerate(("default", "value"))}
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("default", type=Path)
    p.add_argument("value", type=Path)
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)
    rows = compare(read(args.default), read(args.value))
    print("| draw | classifier | real+classical | default: classical+best tried (×) | value: classical+best tried (×) "
          "| value − default | verdicts (default / value) |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['draw']} | {r['classifier']} | {r['real+classical']:.2f} | {r['default']:.2f} ({r['ratio_default']:g}) "
              f"| {r['value']:.2f} ({r['ratio_value']:g}) | {r['diff']:+.2f} | {r['verdict_default']} / {r['verdict_value']}"
              f"{' (lost)' if r['value_use_outcome'] == 'use that lost' else ''} |")
    decision = decide(rows)
    print()
    for modality, d in decision.items():
        print(f"- {modality}: {d['results']} results on {d['draws']} draws, mean value − default {d['mean_diff']:+.2f}, "
              f"worst {d['worst_diff']:+.2f}, value-arm uses that lost {d['uses_that_lost']}: "
              f"{'adopt' if d['adopt'] else 'stays an option'}"
              + (f"; kept distinct-2 / real at real size, mean: default {d['distinct2_ratio']['default']:.3f}, value "
                 f"{d['distinct2_ratio']['value']:.3f}" if "distinct2_ratio" in d else ""))
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "decision": decision}, indent=1))


if __name__ == "__main__":
    main()
