"""How strongly should the text screen prefer sentences that repeat few word pairs? CV on training files (issue 20).

The text screen takes the candidates that pass the checks in a random order; weighted by
``bigram_rarity ** power`` (``ScreenConfig.priority_score`` / ``priority_power``) it takes sentences
made of word pairs that many other candidates share less often. This script chooses ``power``.

Per data set (TREC 50 per class, CR 250 per class) and seed, the real draw is
``load(train, per_class=k, seed)``; the rest of the *training* file gives the held-out reference and
the validation sentences (no test split is read), as in ``text_decoding_cv.py``. The sequence VAE is
fitted once on the draw (``--cache``: saved, and loaded when there), ``--candidates`` sentences per
class are decoded with today's decoding defaults and put through the text checks once; then for each
power the weighted draw without replacement (Efraimidis & Spirakis, the screen's) takes ``--keep``
per class among those that pass, ``--repeats`` times with different draw seeds. Of each kept set:

* ``distinct-2 ratio``: distinct-2 of a seeded subsample as large as the draw over the draw's (the
  fluency benchmark's "distinct-2 @ real size");
* ``ppl ratio``: word bigram perplexity (Kneser-Ney fitted on the draw) over that of as many
  held-out training sentences;
* ``known``: share of kept sentences made only of the draw's words (with ``--word-list`` the decoder
  and the checks also accept the list's English words, so this share may fall);
* ``lift``: accuracy of TF-IDF + logistic regression trained on draw + kept minus draw alone, on
  ``--val`` other labelled training sentences (points).

    OMP_NUM_THREADS=1 python benchmarks/experiments/text_selection_cv.py --dataset trec --seeds 1 \\
        --cache /work/runs_sel/cache --json /work/runs_sel/cv.jsonl
    python benchmarks/experiments/text_selection_cv.py --summarize /work/runs_sel/cv.jsonl
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from imagina.core.runtime import limit_threads
from imagina.text.evaluate import tfidf_accuracy
from imagina.text.modality import TextModality
from imagina.text.model import SeqVAEConfig
from imagina.text.sanity import TextSanityConfig, distinct_n, fluency_statistics, text_sanity

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the helpers beside this script
from text_decoding_cv import fit_or_load, training_split  # noqa: E402

logger = logging.getLogger("text_selection_cv")
SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"
DATASETS = {"trec": (SHARED / "trec" / "train.tsv", 50), "cr": (SHARED / "cr" / "train.tsv", 250)}
POWERS = (0.0, 0.5, 1.0, 2.0, 3.0, 4.0)
_DECODING = ("sample_method", "noise_scale", "temperature", "top_k", "top_p", "no_repeat_ngram", "whole_words")


def weighted_pick(weights: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of ``k`` items drawn without replacement with probability proportional to ``weights``
    (n,), by the largest keys log(1 - u) / w, as :class:`~imagina.core.screening.Screen` draws."""
    u = rng.random(len(weights))
    return np.argsort(-(np.log1p(-u) / weights), kind="stable")[:k]


def candidates(gen, classes: np.ndarray, n: int, seed: int, path: Path | None) -> tuple[list[str], np.ndarray]:
    """``n`` sentences per class decoded with today's defaults (cached as JSON at ``path``)."""
    if path is not None and path.is_file():
        data = json.loads(path.read_text())
        return data["X"], np.asarray(data["y"], dtype=classes.dtype)
    defaults = SeqVAEConfig()
    kwargs = {k: getattr(defaults, k) for k in _DECODING}
    kwargs["method"] = kwargs.pop("sample_method")
    X, y = gen.sample(len(classes) * n, labels=np.repeat(classes, n), seed=seed, **kwargs)
    if path is not None:
        path.write_text(json.dumps({"X": list(X), "y": np.asarray(y).tolist(), "decoding": kwargs}))
    return list(X), np.asarray(y)


def summarize(rows: list[dict]) -> str:
    """Markdown: mean over repeats (and seeds) per data set and power."""
    lines = ["| data | seeds | power | repeats | distinct-2 / real | ppl / held-out | known words | probe lift (points) |",
             "|---|---|---|---|---|---|---|---|"]
    for ds in sorted({r["dataset"] for r in rows}):
        for power in sorted({r["power"] for r in rows if r["dataset"] == ds}):
            sub = [r for r in rows if r["dataset"] == ds and r["power"] == power]
            seeds = ",".join(str(s) for s in sorted({r["seed"] for r in sub}))

            def cell(key: str, fmt: str, sub: list[dict] = sub) -> str:
                v = [r[key] for r in sub]
                return f"{format(np.mean(v), fmt)} ± {format(np.std(v, ddof=1), fmt.lstrip('+'))}" if len(v) > 1 else format(v[0], fmt)

            lines.append(f"| {ds} | {seeds} | {power:g} | {len(sub)} | {cell('distinct-2 ratio', '.3f')} | "
                         f"{cell('ppl ratio', '.2f')} | {100 * np.mean([r['known'] for r in sub]):.1f} % | {cell('lift', '+.2f')} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", choices=sorted(DATASETS))
    p.add_argument("--seeds", default="1")
    p.add_argument("--candidates", type=int, default=600)
    p.add_argument("--keep", type=int, default=200)
    p.add_argument("--repeats", type=int, default=5, help="draws per power (draw seeds 0..repeats-1)")
    p.add_argument("--powers", default=",".join(f"{x:g}" for x in POWERS))
    p.add_argument("--word-list", type=int, default=0,
                   help="decode and check with this many English words of wordfreq (SeqVAEConfig / TextSanityConfig word_list)")
    p.add_argument("--val", type=int, default=1500, help="labelled validation sentences of the training file")
    p.add_argument("--cache", type=Path, default=None, help="fitted generators and their candidates")
    p.add_argument("--json", type=Path, default=None, help="append one JSON line per (seed, power, repeat)")
    p.add_argument("--summarize", type=Path, default=None, help="only print the summary of this JSON-lines file")
    args = p.parse_args()
    if args.summarize:
        print(summarize([json.loads(x) for x in args.summarize.read_text().splitlines() if x.strip()]))
        return
    if args.dataset is None or args.json is None:
        p.error("--dataset and --json are needed (or --summarize)")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    limit_threads(1)
    powers = [float(x) for x in args.powers.split(",")]
    source, k = DATASETS[args.dataset]
    modality = TextModality(TextSanityConfig(word_list=args.word_list))
    whole = modality.load(str(source))
    if args.cache:
        args.cache.mkdir(parents=True, exist_ok=True)
    for seed in (int(s) for s in args.seeds.split(",")):
        sp = training_split(modality, whole, str(source), k, seed, args.val)
        draw, real, base = sp.draw, sp.real, sp.base
        t0 = time.perf_counter()
        gen = fit_or_load(modality, draw, seed, args.cache / f"{args.dataset}-s{seed}" if args.cache else None)
        if args.word_list:  # decoding-time only: the trie of spellable words is rebuilt with the list
            gen.config, gen._trie = replace(gen.config, word_list=args.word_list), None
        classes = np.unique(draw.y)
        tag = f"-wl{args.word_list}" if args.word_list else ""
        X, y = candidates(gen, classes, args.candidates, seed,
                          args.cache / f"{args.dataset}-s{seed}-candidates{tag}.json" if args.cache else None)
        checks = text_sanity(X, y, generator=gen, real=draw, config=modality.sanity_config)
        ok = np.array([r is None for r in checks.reasons])
        rarity = np.nan_to_num(checks.scores["bigram_rarity"], nan=1.0)
        logger.info("%s seed %d: generator and %d candidates in %.0f s (%.1f %% pass); real-only accuracy %.4f",
                    args.dataset, seed, len(X), time.perf_counter() - t0, 100 * ok.mean(), base)
        for power in powers:
            for rep in range(args.repeats):
                rng = np.random.default_rng([seed, rep])
                keep = []
                for c in classes:
                    rows = np.flatnonzero(ok & (y == c))
                    keep.append(rows[weighted_pick(rarity[rows] ** power, args.keep, rng)])
                keep = np.sort(np.concatenate(keep))
                kept = [X[i] for i in keep]
                sub = kept if len(kept) <= len(real) else [kept[i] for i in sorted(rng.choice(len(kept), len(real), replace=False))]
                stats = fluency_statistics(kept, real, lexicon=sp.lexicon, lm=sp.lm)
                acc = tfidf_accuracy(real, draw.y, sp.val_X, sp.val_y, extra_texts=kept, extra_y=y[keep])
                row = {"dataset": args.dataset + tag, "seed": seed, "power": power, "repeat": rep, "pass": float(ok.mean()),
                       "kept": len(kept), "known": stats["known-words"], "ppl ratio": stats["perplexity"] / sp.ppl_held,
                       "distinct-2 ratio": distinct_n(sub, 2) / sp.d2_real, "lift": 100 * (acc - base)}
                logger.info("%s", row)
                with args.json.open("a") as f:
                    f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
