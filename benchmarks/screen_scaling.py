"""Screening time and memory at scale: 1,000,000 candidates against 10,000 real items by default.

    python benchmarks/screen_scaling.py [--candidates 1000000] [--real-per-class 1000] [--classes 10]
                                        [--dim 64] [--budget 200] [--smoke]

Real items and candidates are seeded Gaussian clusters (one centre per class, float32, built in
place so that the data cost no more than their own size); candidates are spread evenly over the
classes and the selector keeps at most ``--budget`` per class. Prints one JSON line with the fit
and score wall times, the score's CPU time (steadier when other jobs share the cores), the
process's peak RSS (data included), the machine's 1-minute load average before the fit and the
rejection counts. Memory is O(candidates): distances
are chunked, never candidates × real whole. ``--smoke`` runs 3,000 candidates against 10 × 40
real items in seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time

import numpy as np

from imagina.core.runtime import limit_threads
from imagina.core.screening import Screen, ScreenConfig


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def clusters(rng: np.random.Generator, centres: np.ndarray, labels: np.ndarray, scale: float) -> np.ndarray:
    """``centres[labels] + scale · N(0, 1)`` of shape (len(labels), dim), float32, in 100k-row slices."""
    out = np.empty((len(labels), centres.shape[1]), dtype=np.float32)
    for i in range(0, len(labels), 100_000):
        part = out[i : i + 100_000]
        rng.standard_normal(part.shape, dtype=np.float32, out=part)
        part *= scale
        part += centres[labels[i : i + 100_000]]
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--candidates", type=int, default=1_000_000)
    p.add_argument("--real-per-class", type=int, default=1000)
    p.add_argument("--classes", type=int, default=10)
    p.add_argument("--dim", type=int, default=64)
    p.add_argument("--budget", type=int, default=200)
    p.add_argument("--smoke", action="store_true", help="3,000 candidates, 10 × 40 real items")
    args = p.parse_args()
    if args.smoke:
        args.candidates, args.real_per_class, args.budget = 3000, 40, 20
    threads = limit_threads()
    rng = np.random.default_rng(0)
    centres = rng.normal(scale=4, size=(args.classes, args.dim)).astype(np.float32)
    real_y = np.repeat(np.arange(args.classes), args.real_per_class)
    real = clusters(rng, centres, real_y, 1.0)
    cand_y = np.arange(args.candidates) % args.classes
    cand = clusters(rng, centres, cand_y, 1.1)
    load = os.getloadavg()[0]  # other jobs on the machine: wall times are upper bounds when it is high
    start = time.perf_counter()
    screen = Screen(ScreenConfig(budget_per_class=args.budget)).fit(real, real_y)
    fit_s = time.perf_counter() - start
    start, cpu = time.perf_counter(), time.process_time()
    result = screen.score(cand, cand_y)
    score_s, score_cpu = time.perf_counter() - start, time.process_time() - cpu
    print(json.dumps({"candidates": args.candidates, "real": len(real), "classes": args.classes, "dim": args.dim,
                      "budget_per_class": args.budget, "threads": threads, "fit_seconds": round(fit_s, 1),
                      "score_seconds": round(score_s, 1), "score_cpu_seconds": round(score_cpu, 1), "peak_rss_mb": round(peak_rss_mb(), 1), "load_avg_1min": round(load, 1),
                      "input_mb": round(cand.nbytes / 2**20, 1), "kept": int(result.keep.sum()),
                      "rejected_by_reason": result.rejection_counts()}), flush=True)


if __name__ == "__main__":
    main()
