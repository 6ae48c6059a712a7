"""Do kept sentences read as real language? Fluency and lift of text augmentation, before / after issue 20.

Per data set, seed and condition, the real draw is ``load(train, per_class=k, seed=seed)``; the
augmenter runs with imagina's defaults (``Augmenter(...).fit(draw).augment()``, CPU), and the kept
sentences are measured against the draw:

* ``known-words``: share of sentences whose words (``\\w+`` runs) all occur in the draw; with
  ``wordfreq`` installed, also ``known-words+list``: in the draw or among its 50,000 most frequent
  English words;
* ``perplexity``: word bigram perplexity under an interpolated Kneser-Ney model fitted on the draw
  (:class:`imagina.text.sanity.BigramLM`); the reference is ``heldout``, as many other sentences
  of the *training* file (never the test split) as the draw holds;
* ``distinct-1``, ``distinct-2``, ``self-BLEU`` of the draw, the held-out sentences, the candidates and
  the kept sentences, and distinct-1/2 of a subsample as large as the draw (``@real``);
* the lift the run's dose / verdict reports (``recommendation``: cross-validated lift of a TF-IDF
  probe on the real draw), its interval and verdict; kept per class and the pass rate.

Conditions: ``before`` = the defaults until issue 20 (subword decoding, ``whole_words=False``; the
invented-word check at a half, ``max_new_words=0.5``; the uniform random pick); ``whole-words`` = whole-word decoding with its
first decoding settings (``WHOLE_WORDS_V1``: around real items, noise 1, temperature 0.8, top-p 0.9, no
n-gram block), any unknown word rejected, the uniform pick; ``uniform-pick`` = today's defaults but the text screen's
uniform random pick (``priority_power`` 0: the defaults of e6fe269, before the pick weighted by
``bigram_rarity``); ``after`` = today's defaults. Conditions that differ only in the screen share one
fitted augmenter per data set and seed (the same generator, embedder and candidates; only the pick
differs), so their paired difference is the screen's alone. Each run's directory (``--out``) holds the usual export; one
JSON line per run goes to ``--json`` (appended, so an interrupted sweep keeps its runs) and the
summary (mean ± sd over seeds) plus the first 20 kept sentences of the first seed to ``--markdown``.

    OMP_NUM_THREADS=1 python benchmarks/text_fluency.py --datasets trec,cr --seeds 0,1,2 \\
        --out /work/runs_text --json /work/runs_text/fluency.jsonl --markdown /work/runs_text/fluency.md
    OMP_NUM_THREADS=1 python benchmarks/text_fluency.py --summarize /work/runs_text/fluency.jsonl \
        --remeasure /work/runs_text --json /work/runs_text/fluency-remeasured.jsonl   # new figures, old runs
    OMP_NUM_THREADS=1 python benchmarks/text_fluency.py --smoke          # seconds, synthetic data
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from imagina.core.pipeline import AugmentConfig, Augmenter
from imagina.core.runtime import limit_threads
from imagina.text.modality import TextModality
from imagina.text.sanity import (
    BigramLM,
    TextSanityConfig,
    distinct_n,
    fluency_statistics,
    known_words,
    self_bleu,
    size_matched,
)

logger = logging.getLogger("text_fluency")
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
DATASETS = {"trec": (SHARED / "trec" / "train.tsv", 50), "cr": (SHARED / "cr" / "train.tsv", 250)}
#: Decoding of whole-word decoding's first defaults (58b6ce3), pinned so that the condition outlives them.
WHOLE_WORDS_V1 = {"whole_words": True, "sample_method": "around", "noise_scale": 1.0, "temperature": 0.8, "top_p": 0.9,
                  "top_k": 0, "no_repeat_ngram": 0}
#: Per condition: generator options, text checks, and changes to the text screen's defaults.
CONDITIONS = {
    "before": ({"whole_words": False}, TextSanityConfig(max_new_words=0.5), {"priority_power": 0.0}),
    "whole-words": (WHOLE_WORDS_V1, TextSanityConfig(), {"priority_power": 0.0}),
    "uniform-pick": ({}, TextSanityConfig(), {"priority_power": 0.0}),
    "after": ({}, TextSanityConfig(), {}),
}
SETS = ("real", "heldout", "candidates", "kept")
#: English words of ``wordfreq`` (when installed) that ``known-words+list`` also counts as known.
WORD_LIST = 50_000


def _word_list() -> int:
    """``WORD_LIST`` when ``wordfreq`` can be imported, else 0 (the word-list column then reads –)."""
    try:
        import wordfreq  # noqa: F401
    except ImportError:
        return 0
    return WORD_LIST


def measure(sets: dict[str, list[str]], real: list[str], *, seed: int = 0) -> dict[str, dict[str, float]]:
    """Fluency and diversity of each named set of sentences against the real draw.

    ``known-words+list`` also counts the ``WORD_LIST`` most frequent English words of ``wordfreq`` as
    known; ``distinct-1@real`` / ``distinct-2@real`` are distinct-n of a seeded subsample of the set's
    size-matched to the real draw (distinct-n falls as a set grows, so sets of unequal size do not compare).
    """
    lexicon, lm = known_words(real), BigramLM().fit(real)
    listed = known_words(real, word_list=_word_list()) if _word_list() else None
    rng = np.random.default_rng(seed)
    out = {}
    for name, texts in sets.items():
        stats = fluency_statistics(texts, real, lexicon=lexicon, lm=lm)
        if listed is not None:
            stats["known-words+list"] = fluency_statistics(texts, real, lexicon=listed, lm=lm)["known-words"]
        stats.update({"distinct-1": distinct_n(texts, 1), "distinct-2": distinct_n(texts, 2), "self-BLEU": self_bleu(texts)})
        matched = size_matched(texts, len(real), rng)
        stats.update({"distinct-1@real": distinct_n(matched, 1), "distinct-2@real": distinct_n(matched, 2)})
        stats["n"] = len(texts)
        out[name] = stats
    return out


def draws(source: str, per_class: int, seed: int, modality: TextModality) -> tuple[list[str], list[str], np.ndarray]:
    """The real draw, as many held-out sentences of the same file (not drawn), and the draw's labels."""
    data = modality.load(source, per_class=per_class, seed=seed)
    drawn = set(data.X)
    rest = [t for t in modality.load(source).X if t not in drawn]
    pick = np.random.default_rng(seed).choice(len(rest), min(len(rest), len(data)), replace=False)
    return list(data.X), [rest[i] for i in sorted(pick)], data.y


def remeasure(rows: list[dict], runs: Path) -> list[dict]:
    """Measure the real, held-out and kept sets of finished runs again from their exports (``samples/``
    and ``reserve/`` hold the kept sentences); the candidates' figures stay as the run wrote them."""
    import csv

    out = []
    for r in rows:
        source, per_class = DATASETS[r["dataset"]]
        real, heldout, _ = draws(str(source), per_class, r["seed"], TextModality())
        folder = runs / f"{r['dataset']}-{r['condition']}-s{r['seed']}"
        kept = []
        for part in ("samples", "reserve"):
            path = folder / part / "samples.csv"
            if path.is_file():
                with path.open(encoding="utf-8", newline="") as f:
                    kept += [(row["id"], row["text"]) for row in csv.DictReader(f)]
        kept = [t for _, t in sorted(kept, key=lambda item: int(item[0].rsplit("_", 1)[1]))]  # candidate order
        sets = measure({"real": real, "heldout": heldout, "kept": kept}, real, seed=r["seed"])
        out.append({**r, "sets": {**sets, "candidates": r["sets"]["candidates"]}})
    return out


def run_conditions(dataset: str, source: str, per_class: int, seed: int, conditions: list[str], *, out: Path | None,
                   smoke: bool = False) -> list[dict]:
    """One row per condition; conditions with the same generator options and checks are run on one
    fitted :class:`Augmenter`, whose screen settings are swapped between ``augment`` calls."""
    groups: dict[str, list[str]] = {}
    for cond in conditions:
        options, sanity, _ = CONDITIONS[cond]
        groups.setdefault(repr((sorted(options.items()), sanity)), []).append(cond)
    rows = []
    for group in groups.values():
        options, sanity, _ = CONDITIONS[group[0]]
        modality = TextModality(sanity_config=sanity)
        data = modality.load(source, per_class=per_class, seed=seed)
        _, heldout, _ = draws(source, per_class, seed, modality)
        config = AugmentConfig(seed=seed, device="cpu", **({"steps": 2, "per_class": 4} if smoke else {}))
        if smoke:
            modality.embedder_steps = 2
        t0 = time.perf_counter()
        augmenter = Augmenter(modality, config, generator_options=options, progress=False).fit(data)
        fit_seconds = time.perf_counter() - t0
        screen = augmenter.config.screen
        for cond in group:
            # the screen is fitted on the real embeddings only; its selection settings apply at score time
            changed = replace(screen, **CONDITIONS[cond][2])
            augmenter.config = replace(augmenter.config, screen=changed)
            augmenter.screen_.config = changed
            t0 = time.perf_counter()
            result = augmenter.augment()
            rows.append(_row(dataset, per_class, seed, cond, result, data, heldout,
                             fit_seconds + time.perf_counter() - t0, out))
    return rows


def run_one(dataset: str, source: str, per_class: int, seed: int, condition: str, *, out: Path | None,
            smoke: bool = False) -> dict:
    return run_conditions(dataset, source, per_class, seed, [condition], out=out, smoke=smoke)[0]


def _row(dataset: str, per_class: int, seed: int, condition: str, result, data, heldout: list[str], seconds: float,
         out: Path | None) -> dict:
    """The JSON line of one run (``seconds``: the shared fit plus this condition's ``augment``)."""
    keep = result.keep
    cands = [str(t) for t in result.candidates]
    kept = [cands[i] for i in np.flatnonzero(keep)]
    rec = result.record.get("recommendation") or {}
    reasons: dict[str, int] = {}
    for r in result.screen.reasons:
        if r:
            key = r.split(":")[0]
            reasons[key] = reasons.get(key, 0) + 1
    row = {
        "dataset": dataset, "per_class": per_class, "seed": seed, "condition": condition,
        "seconds": round(seconds, 1),
        "sets": measure({"real": list(data.X), "heldout": heldout, "candidates": cands, "kept": kept}, list(data.X),
                        seed=seed),
        "kept_per_class": result.kept_per_class(),
        "pass_rate": float(keep.mean()) if len(keep) else 0.0,
        "rejections": reasons,
        "verdict": rec.get("verdict"), "lift": rec.get("lift"), "interval": rec.get("interval"),
        "ratio": rec.get("ratio"),
        "first_kept": [[str(result.labels[i]), cands[i]] for i in np.flatnonzero(keep)[:20]],
        "screen": result.record["config"]["screen"],
    }
    if out is not None:
        result.export(out / f"{dataset}-{condition}-s{seed}", overwrite=True)
    return row


def _cell(values: list[float], fmt: str) -> str:
    values = [v for v in values if v is not None and np.isfinite(v)]
    if not values:
        return "–"
    if len(values) == 1:
        return format(values[0], fmt)
    return f"{format(float(np.mean(values)), fmt)} ± {format(float(np.std(values, ddof=1)), fmt.replace('+', ''))}"


def summarize(rows: list[dict]) -> str:
    """Markdown: fluency per set, kept / pass rate / lift per condition, and the first seed's kept sentences."""
    lines = []
    order = list(CONDITIONS)
    keys = sorted({(r["dataset"], r["condition"]) for r in rows},
                  key=lambda k: (k[0], order.index(k[1]) if k[1] in order else len(order)))
    lines += ["| data | condition | seeds | set | n | known words (draw) | known words (draw + list) | bigram perplexity | "
              "ppl / held-out | distinct-1 | distinct-2 | distinct-2 @ real size | self-BLEU |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for ds, cond in keys:
        sub = [r for r in rows if r["dataset"] == ds and r["condition"] == cond]
        seeds = ",".join(str(r["seed"]) for r in sub)
        for name in SETS:
            get = lambda m, name=name, sub=sub: [r["sets"][name].get(m) for r in sub]  # noqa: E731
            pct = lambda m, get=get: [None if v is None else 100 * v for v in get(m)]  # noqa: E731
            ratio = [r["sets"][name]["perplexity"] / r["sets"]["heldout"]["perplexity"] for r in sub]
            lines.append(f"| {ds} | {cond} | {seeds} | {name} | {_cell(get('n'), '.0f')} | {_cell(pct('known-words'), '.1f')} % | "
                         f"{_cell(pct('known-words+list'), '.1f')} % | {_cell(get('perplexity'), '.0f')} | {_cell(ratio, '.2f')} | "
                         f"{_cell(get('distinct-1'), '.3f')} | {_cell(get('distinct-2'), '.3f')} | "
                         f"{_cell(get('distinct-2@real'), '.3f')} | {_cell(get('self-BLEU'), '.3f')} |")
    lines += ["", "| data | condition | seeds | kept per class (min) | pass rate | lift (points) | verdicts | seconds |",
              "|---|---|---|---|---|---|---|---|"]
    for ds, cond in keys:
        sub = [r for r in rows if r["dataset"] == ds and r["condition"] == cond]
        lifts = [100 * r["lift"] for r in sub if r["lift"] is not None]
        verdicts = ", ".join(f"{r['seed']}: {r['verdict']} ({100 * r['lift']:+.2f})" for r in sub if r["lift"] is not None)
        lines.append(f"| {ds} | {cond} | {len(sub)} | {_cell([min(r['kept_per_class'].values()) for r in sub], '.0f')} | "
                     f"{_cell([100 * r['pass_rate'] for r in sub], '.1f')} % | {_cell(lifts, '+.2f')} | {verdicts} | "
                     f"{_cell([r['seconds'] for r in sub], '.0f')} |")
    lift = {(r["dataset"], r["condition"], r["seed"]): r["lift"] for r in rows if r["lift"] is not None}
    for ds in sorted({k[0] for k in keys}):
        for base in (c for c in CONDITIONS if c != "after"):
            seeds = sorted(s for d, c, s in lift if d == ds and c == "after" and (ds, base, s) in lift)
            if seeds:
                diff = [100 * (lift[ds, "after", s] - lift[ds, base, s]) for s in seeds]
                lines += ["", f"{ds}: lift after − {base}, paired by seed ({', '.join(map(str, seeds))}): "
                          + ", ".join(f"{d:+.2f}" for d in diff) + f"; mean {_cell(diff, '+.2f')} points."]
    for ds, cond in keys:
        sub = sorted((r for r in rows if r["dataset"] == ds and r["condition"] == cond), key=lambda r: r["seed"])
        lines += ["", f"First 20 kept sentences, {ds}, {cond}, seed {sub[0]['seed']} (as generated, not chosen):", ""]
        lines += [f"{i + 1}. [{label}] {text}" for i, (label, text) in enumerate(sub[0]["first_kept"])]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--datasets", default="trec,cr", help=f"comma-separated, of {sorted(DATASETS)}")
    p.add_argument("--seeds", default="0")
    p.add_argument("--conditions", default="before,after", help=f"comma-separated, of {sorted(CONDITIONS)}")
    p.add_argument("--out", type=Path, default=None, help="write each run's export under this folder")
    p.add_argument("--json", type=Path, default=None, help="append one JSON line per run")
    p.add_argument("--markdown", type=Path, default=None, help="write the summary of the --json file here")
    p.add_argument("--summarize", type=Path, default=None, help="only summarise this JSON-lines file")
    p.add_argument("--remeasure", type=Path, default=None,
                   help="with --summarize: measure the runs exported under this folder again (--json: write the rows)")
    p.add_argument("--smoke", action="store_true", help="tiny synthetic data, 2 steps: seconds")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    limit_threads(1)
    if args.summarize:
        rows = [json.loads(line) for line in args.summarize.read_text().splitlines() if line.strip()]
        if args.remeasure:
            rows = remeasure(rows, args.remeasure)
            if args.json:
                args.json.write_text("".join(json.dumps(r) + "\n" for r in rows))
        text = summarize(rows)
        if args.markdown:
            args.markdown.write_text(text)
        print(text)
        return
    if args.smoke:
        with tempfile.TemporaryDirectory() as tmp:
            src = Path(tmp) / "tiny.tsv"
            words = ["film", "sound", "battery", "screen", "price", "menu", "lens", "case"]
            lines = ["label\ttext"]
            for i in range(24):
                w, v = words[i % 8], words[(i * 3 + 1) % 8]
                lines.append(f"positive\tthe {w} is great and the {v} works well {i}")
                lines.append(f"negative\tthe {w} broke and the {v} is poor {i}")
            src.write_text("\n".join(lines) + "\n")
            rows = run_conditions("tiny", str(src), 12, 0, ["before", "uniform-pick", "after"], out=None, smoke=True)
        for r in rows:
            print(json.dumps({k: v for k, v in r.items() if k != "first_kept"}))
        print(summarize(rows))
        return
    for seed in (int(s) for s in args.seeds.split(",")):  # seed outermost: a cut-short sweep has whole seeds
        for ds in args.datasets.split(","):
            source, per_class = DATASETS[ds]
            for row in run_conditions(ds, str(source), per_class, seed, args.conditions.split(","), out=args.out):
                cond = row["condition"]
                logger.warning("%s %s seed %d: kept %s, known %.3f, lift %s", ds, cond, seed, row["kept_per_class"],
                               row["sets"]["kept"]["known-words"], row["lift"])
                if args.json:
                    with args.json.open("a") as f:
                        f.write(json.dumps(row) + "\n")
                if args.json and args.markdown:
                    rows = [json.loads(line) for line in args.json.read_text().splitlines() if line.strip()]
                    args.markdown.write_text(summarize(rows))


if __name__ == "__main__":
    main()
