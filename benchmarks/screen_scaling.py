"""Screening memory and time as the number of candidates grows (chunked: memory ~ linear).

    python benchmarks/screen_scaling.py [--sizes 10000,100000] [--dim 64]

For each size: 10 classes, 500 real items per class, candidates spread over the classes, budget
200 per class. Prints wall time and the process's peak RSS growth (a 100k × 100k float32 distance
matrix alone would take 40 GB).
"""

from __future__ import annotations

import argparse
import json
import resource
import time

import numpy as np

from imagina.core.screening import Screen, ScreenConfig


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--sizes", default="10000,100000")
    p.add_argument("--dim", type=int, default=64)
    args = p.parse_args()
    rng = np.random.default_rng(0)
    centres = rng.normal(scale=4, size=(10, args.dim)).astype(np.float32)
    real_y = np.repeat(np.arange(10), 500)
    real = centres[real_y] + rng.normal(size=(len(real_y), args.dim)).astype(np.float32)
    screen = Screen(ScreenConfig(budget_per_class=200)).fit(real, real_y)
    rows = []
    for n in map(int, args.sizes.split(",")):
        cand_y = np.arange(n) % 10
        cand = centres[cand_y] + 1.1 * rng.normal(size=(n, args.dim)).astype(np.float32)
        before = peak_rss_mb()
        start = time.perf_counter()
        result = screen.score(cand, cand_y)
        rows.append({"candidates": n, "seconds": round(time.perf_counter() - start, 1),
                     "peak_rss_mb": round(peak_rss_mb(), 1), "peak_rss_growth_mb": round(peak_rss_mb() - before, 1),
                     "input_mb": round(cand.nbytes / 2**20, 1), "kept": int(result.keep.sum())})
        print(json.dumps(rows[-1]), flush=True)


if __name__ == "__main__":
    main()
