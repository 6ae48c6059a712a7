"""Does the verdict protect a user on draws its rules were not written from? (issue 17)

For each draw, runs ``imagina augment`` with the default settings, then ``benchmarks/outside_view.py``
on its output (independent classifiers, 5 seeds, the public test split), and tallies what the verdict
did for each classifier:

* a **"use"** *won* or *lost* when the dose, added on top of the classifier's best classical
  augmentation, changed its test accuracy (``classical+dose − real+classical``) with a mean above /
  below zero and most seeds the same way; otherwise "no clear effect";
* a **"don't use"** *protected* the user when the best tried dose (the trial with the largest probe
  lift, rebuilt from ``samples/`` + ``reserve/``) would have lowered accuracy on top of classical
  augmentation (``classical+best tried − real+classical``) by that rule, was a *missed gain* when it
  would have raised it, and otherwise had "no clear effect".

The same tally over the lift against real items alone (``real+dose`` / ``real+best tried`` −
``real``) is reported beside it, and the tally on top of classical augmentation again on balanced
accuracy (the mean per-class recall): the draws are class-balanced, but a public test split need not
be (TREC's is 28 % DESC and 2 % ABBR), and there a dose that moves one class boundary can swing plain
accuracy by 15 points on one seed (BENCHMARKS.md, "TREC: plain against balanced accuracy"). Draws are named ``DATA:K:SEED`` with DATA one of the shared data
sets (``../shared/data``): ``mnist``, ``cifar10`` (image), ``trec``, ``cr`` (text), ``fsdd`` (audio);
K real items per class. Every command and its exit status, wall time and the outputs are written
under ``--out``; a draw whose folder already holds ``outside.json`` is read, not rerun, and with
``--classifiers heldout`` a draw whose output exists is judged by the held-out classifiers
(docs/heldout_classifiers_plan.md) into ``outside_heldout.json`` without making the output again.

    OMP_NUM_THREADS=1 python benchmarks/verdict_draws.py --out runs/verdict \\
        --draws trec:50:15 mnist:10:5 fsdd:20:3 cr:250:10 cifar10:10:5 [--seeds 0,1,2,3,4] [--json tally.json] \\
        [--dose-option check_rule=sign] [--screen-option selector=value]

``--smoke`` runs one tiny draw of scikit-learn's digits (augment's ``--smoke``, the outside view's
``--smoke``) to check the chain, not the verdict.
"""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

logger = logging.getLogger("verdict_draws")

HERE = Path(__file__).resolve().parent
SHARED = HERE.parents[1] / "shared" / "data"

#: How each shared data set is given to ``augment`` (the draw) and to the outside view (the test).
DATASETS: dict[str, dict[str, Any]] = {
    "mnist": {"modality": "image", "data": ["--data", "{d}/mnist"], "test": ["--test", "{d}/mnist", "--test-split", "test"],
              "augment": ["--embedder", "own"]},
    "cifar10": {"modality": "image", "data": ["--data", "{d}/cifar10/train.npz"], "test": ["--test", "{d}/cifar10/test.npz"],
                "augment": ["--embedder", "own"]},
    "trec": {"modality": "text", "data": ["--data", "{d}/trec/train.tsv"], "test": ["--test", "{d}/trec/test.tsv"]},
    "cr": {"modality": "text", "data": ["--data", "{d}/cr/train.tsv"], "test": ["--test", "{d}/cr/test.tsv"]},
    "fsdd": {"modality": "audio", "data": ["--data", "{d}/fsdd", "--pattern", "{{label}}_{{speaker}}_{{index}}", "--split", "train"],
             "test": ["--test", "{d}/fsdd", "--test-split", "test"]},
    "digits": {"modality": "image", "data": ["--data", "digits"], "test": ["--test", "digits"], "augment": ["--embedder", "own"]},
}


def parse_draw(text: str) -> tuple[str, int, int]:
    """``DATA:K:SEED`` → (data set, items per class, seed); a clear error otherwise."""
    parts = text.split(":")
    if len(parts) != 3 or parts[0] not in DATASETS or not parts[1].isdigit() or not parts[2].isdigit():
        raise SystemExit(f"--draws: {text!r} is not DATA:K:SEED with DATA one of {', '.join(DATASETS)}")
    return parts[0], int(parts[1]), int(parts[2])


def outside_name(classifiers: str) -> str:
    """The outside view's result file in a draw folder: one per classifier set, beside one output."""
    return "outside.json" if classifiers == "team" else f"outside_{classifiers}.json"


def commands(name: str, k: int, seed: int, folder: Path, seeds: str, smoke: bool,
             dose_options: tuple[str, ...] = (), screen_options: tuple[str, ...] = (),
             classifiers: str = "team") -> tuple[list[str], list[str]]:
    """The ``augment`` and ``outside_view.py`` command lines of one draw (``dose_options`` and
    ``screen_options``: KEY=VALUE settings passed to ``augment --dose-option`` / ``--screen-option``;
    ``classifiers``: the outside view's classifier set)."""
    spec = DATASETS[name]
    fill = [a.format(d=SHARED) for a in spec["data"]]
    test = [a.format(d=SHARED) for a in spec["test"]]
    draw = ["--real-per-class", str(k), "--seed", str(seed)]
    augment = [sys.executable, "-m", "imagina", "augment", spec["modality"], *fill, *draw, *spec.get("augment", []),
               *[a for o in dose_options for a in ("--dose-option", o)],
               *[a for o in screen_options for a in ("--screen-option", o)],
               "--out", str(folder / "output"), "--quiet"] + (["--smoke", "--steps", "2"] if smoke else [])
    outside = [sys.executable, str(HERE / "outside_view.py"), "--modality", spec["modality"], *fill, *test, *draw,
               "--output", str(folder / "output"), "--seeds", seeds, "--classifiers", classifiers,
               "--json", str(folder / outside_name(classifiers))]
    return augment, outside + (["--smoke"] if smoke else [])


def run(cmd: list[str], log: Path) -> dict[str, Any]:
    """Run ``cmd`` with its output in ``log``; its exit status and wall seconds."""
    start = time.perf_counter()
    with log.open("w") as fh:
        rc = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT).returncode
    return {"command": " ".join(cmd), "exit": rc, "seconds": round(time.perf_counter() - start, 1)}


def judge(diff: dict[str, Any], n_seeds: int) -> str:
    """"helped" / "hurt" / "no clear effect": the mean's sign, with most seeds the same way."""
    if diff["mean"] > 0 and diff["wins"] > n_seeds / 2:
        return "helped"
    if diff["mean"] < 0 and diff["losses"] > n_seeds / 2:
        return "hurt"
    return "no clear effect"


OUTCOME = {"use": {"helped": "won", "hurt": "lost", "no clear effect": "no clear effect"},
           "don't use": {"helped": "missed gain", "hurt": "protected", "no clear effect": "no clear effect"}}


def tally(label: str, result: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per classifier of one outside-view result."""
    rec = result.get("recommendation") or {}
    verdict = rec.get("verdict", "don't use")
    use = verdict == "use"
    # a run under check_rule "sign" also tells the default rule's verdict: the same, unless the check
    # network's interval did not clear zero (the unseen check only runs when the network passes)
    check = rec.get("check") or {}
    under_interval = "don't use" if use and check.get("rule") == "sign" and check["low"] <= 0 else verdict
    rows = []
    for clf, res in result["classifiers"].items():
        diffs, n = res["accuracy"]["diffs"], len(result["seeds"])
        on_classical = diffs["classical+dose − real+classical" if use else "classical+best tried − real+classical"]
        on_real = diffs["real+dose − real" if use else "best tried − real"]
        key = "classical+dose − real+classical" if use else "classical+best tried − real+classical"
        balanced = res["balanced"]["diffs"][key] if "balanced" in res else None
        versus = diffs.get("real+output − real+classical")
        rows.append({
            "draw": label, "classifier": clf, "verdict": verdict, "ratio": rec.get("ratio", 0.0),
            "best_tried_ratio": result["synthetic"]["best_tried_ratio"],
            "expected": rec.get("expected"), "unseen": rec.get("unseen"), "check": rec.get("check"),
            "on_classical": {k: on_classical[k] for k in ("mean", "std", "wins", "losses")},
            "on_real": {k: on_real[k] for k in ("mean", "std", "wins", "losses")},
            "outcome": OUTCOME[verdict][judge(on_classical, n)], "outcome_on_real": OUTCOME[verdict][judge(on_real, n)],
            "rule": check.get("rule", "interval"), "verdict_interval": under_interval,
            "outcome_interval": OUTCOME[under_interval][judge(on_classical, n)],
            "on_classical_balanced": None if balanced is None else {k: balanced[k] for k in ("mean", "std", "wins", "losses")},
            "outcome_balanced": None if balanced is None else OUTCOME[verdict][judge(balanced, n)],
            "output_vs_classical": None if versus is None else {k: versus[k] for k in ("mean", "std", "wins", "losses")},
        })
    return rows


def markdown(rows: list[dict[str, Any]]) -> str:
    lines = ["| draw | verdict | classifier | on top of classical (mean ± sd, wins/losses) | outcome | over real alone | outcome "
             "| output − classical |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        c, o = r["on_classical"], r["on_real"]
        verdict = f"use {r['ratio']:g}×" if r["verdict"] == "use" else f"don't use (best tried {r['best_tried_ratio']:g}×)"
        lines.append(f"| {r['draw']} | {verdict} | {r['classifier']} | {c['mean']:+.2f} ± {c['std']:.2f} ({c['wins']}/{c['losses']}) | "
                     f"{r['outcome']} | {o['mean']:+.2f} ± {o['std']:.2f} ({o['wins']}/{o['losses']}) | {r['outcome_on_real']} | "
                     + ("—" if not r.get("output_vs_classical") else f"{r['output_vs_classical']['mean']:+.2f}") + " |")
    def count(key: str) -> str:
        counts: dict[str, int] = {}
        for r in rows:
            if r.get(key) is not None:
                counts[r[key]] = counts.get(r[key], 0) + 1
        return ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))

    lines += ["", "On top of classical augmentation: " + count("outcome")
              + f" (of {len(rows)} classifier results on {len({r['draw'] for r in rows})} draws)."]
    if any(r["verdict_interval"] != r["verdict"] for r in rows):
        lines.append("Under the default check rule \"interval\" (the check network's interval above zero): "
                     + count("outcome_interval") + ".")
    if any(r.get("outcome_balanced") for r in rows):
        lines.append("On top of classical augmentation, on balanced accuracy (mean per-class recall): "
                     + count("outcome_balanced") + ".")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, required=True, help="one folder per draw is made here")
    p.add_argument("--draws", nargs="+", default=[], help="DATA:K:SEED, e.g. trec:50:15 fsdd:20:3")
    p.add_argument("--seeds", default="0,1,2,3,4", help="classifier seeds of the outside view")
    p.add_argument("--classifiers", choices=("team", "heldout"), default="team",
                   help="the outside view's classifier set; a draw whose output exists is judged again, not rerun")
    p.add_argument("--json", type=Path, default=None, help="write the tally rows here")
    p.add_argument("--smoke", action="store_true", help="one tiny digits draw: checks the chain, not the verdict")
    p.add_argument("--dose-option", dest="dose_options", action="append", default=[], metavar="KEY=VALUE",
                   help="passed to augment's --dose-option (repeatable), e.g. check_rule=sign")
    p.add_argument("--screen-option", dest="screen_options", action="append", default=[], metavar="KEY=VALUE",
                   help="passed to augment's --screen-option (repeatable), e.g. selector=value")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    draws = [parse_draw(d) for d in (["digits:5:0"] if args.smoke else args.draws)]
    if not draws:
        raise SystemExit("--draws: give at least one DATA:K:SEED")
    missing = [n for n, _, _ in draws if n != "digits" and not SHARED.is_dir()]
    if missing:
        raise SystemExit(f"{SHARED} is not there; the draws {sorted(set(missing))} need it")
    rows = []
    for name, k, seed in draws:
        label = f"{name}:{k}:{seed}"
        folder = args.out / f"{name}_k{k}_s{seed}"
        result = folder / outside_name(args.classifiers)
        if not result.exists():
            made = (folder / "output" / "run.json").exists() and (folder / "commands.json").exists()
            if (folder / "output").exists() and not made:
                raise SystemExit(f"{folder / 'output'} is incomplete (no run.json, or no commands.json beside it): remove it to rerun {label}")
            folder.mkdir(parents=True, exist_ok=True)
            augment, outside = commands(name, k, seed, folder, "0" if args.smoke else args.seeds, args.smoke,
                                        tuple(args.dose_options), tuple(args.screen_options), args.classifiers)
            record = folder / "commands.json"
            steps = json.loads(record.read_text()) if made else {}
            todo = [("outside_view", outside)] if made else [("augment", augment), ("outside_view", outside)]
            for step, cmd in todo:
                step = step if args.classifiers == "team" or step == "augment" else f"{step}_{args.classifiers}"
                logger.info("%s: %s", label, step)
                steps[step] = run(cmd, folder / f"{step}.log")
                if steps[step]["exit"] != 0:
                    record.write_text(json.dumps(steps, indent=1))
                    raise SystemExit(f"{label}: {step} exited {steps[step]['exit']}; see {folder / (step + '.log')}")
            record.write_text(json.dumps(steps, indent=1))
        rows += tally(label, json.loads(result.read_text()))
    print(markdown(rows))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return rows


if __name__ == "__main__":
    main()
