"""Precision / recall / density / coverage: imagina's chunked metrics against the `prdc` package.

    python benchmarks/prdc_compare.py [--sizes 5000,20000] [--dim 64] [--k 5] [--smoke]

For each size n: n real and n fake items (seeded Gaussians, float32, d = 64), both arms in separate
processes pinned to one core with one BLAS thread each (``prdc`` 0.2 holds three n×n distance
matrices; imagina holds chunks). Prints one JSON line per arm and size with wall time, CPU time
(steadier than wall time when other jobs share the core), peak RSS and the machine's 1-minute load
average when the arm started, then a summary per size:
the speed-ups, the memory ratio and the largest absolute difference over the four metrics. ``prdc`` is optional (``pip install prdc``; never a dependency of imagina):
without it the prdc arm is skipped with a message. ``--smoke`` runs n = 300 in seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

METRICS = ("precision", "recall", "density", "coverage")


def make_data(n: int, dim: int, seed: int = 0):
    """Real (n, dim) and fake (n, dim) float32 clouds; the fake one slightly wider and shifted."""
    import numpy as np

    rng = np.random.default_rng(seed)
    real = rng.standard_normal((n, dim), dtype=np.float32)
    fake = 1.05 * rng.standard_normal((n, dim), dtype=np.float32) + np.float32(0.05)
    return real, fake


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_arm(arm: str, n: int, dim: int, k: int) -> dict:
    """One arm in this process: its metrics, seconds (imports excluded) and peak RSS (MB), with
    the RSS after imports and data (torch's libraries alone take about 650 MB)."""
    if arm == "imagina":
        from imagina.core.metrics import prdc
        from imagina.core.runtime import limit_threads

        limit_threads()

        def compute(real, fake):
            return prdc(real, fake, k=k)
    else:
        import contextlib
        import io

        from prdc import compute_prdc

        def compute(real, fake):
            with contextlib.redirect_stdout(io.StringIO()):  # prdc prints the sizes
                return compute_prdc(real, fake, nearest_k=k)
    real, fake = make_data(n, dim)
    load = os.getloadavg()[0]  # other jobs on the machine: wall times are upper bounds when it is high
    base = peak_rss_mb()
    start, cpu = time.perf_counter(), time.process_time()
    out = compute(real, fake)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    return {"arm": arm, "n": n, "dim": dim, "k": k, "seconds": round(seconds, 2), "cpu_seconds": round(cpu, 2),
            "peak_rss_mb": round(peak_rss_mb(), 1),
            "rss_before_mb": round(base, 1), "load_avg_1min": round(load, 1), **{m: float(out[m]) for m in METRICS}}


def spawn(arm: str, n: int, dim: int, k: int, core: int) -> dict | None:
    """Run one arm in a fresh process pinned to ``core``; None when that arm cannot run."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    cmd = [sys.executable, __file__, "--arm", arm, "--sizes", str(n), "--dim", str(dim), "--k", str(k),
           "--core", str(core)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        raise SystemExit(f"the {arm} arm failed at n = {n} (exit code {proc.returncode})")
    line = proc.stdout.strip().splitlines()[-1]
    return None if line == "skip" else json.loads(line)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="5000,20000")
    p.add_argument("--dim", type=int, default=64)
    p.add_argument("--k", type=int, default=5)
    p.add_argument("--smoke", action="store_true", help="n = 300: a run of seconds")
    p.add_argument("--arm", choices=("imagina", "prdc"), help=argparse.SUPPRESS)  # a child process
    p.add_argument("--core", type=int, default=min(os.sched_getaffinity(0)), help="the core both arms run on")
    args = p.parse_args()
    sizes = [300] if args.smoke else [int(s) for s in args.sizes.split(",")]
    if args.arm:  # child: pin, run, print one JSON line
        os.sched_setaffinity(0, {args.core})
        if args.arm == "prdc":
            try:
                import prdc  # noqa: F401
            except ImportError:
                print("skip")
                return
        print(json.dumps(run_arm(args.arm, sizes[0], args.dim, args.k)))
        return
    for n in sizes:
        rows = {arm: spawn(arm, n, args.dim, args.k, args.core) for arm in ("imagina", "prdc")}
        for row in rows.values():
            if row is not None:
                print(json.dumps(row), flush=True)
        ours, theirs = rows["imagina"], rows["prdc"]
        if theirs is None:
            print(f"prdc is not installed: skipped the prdc arm at n = {n} (pip install prdc to compare)", flush=True)
            continue
        summary = {"n": n, "speedup": round(theirs["seconds"] / ours["seconds"], 1),
                   "cpu_speedup": round(theirs["cpu_seconds"] / ours["cpu_seconds"], 1),
                   "memory_ratio": round(ours["peak_rss_mb"] / theirs["peak_rss_mb"], 3),
                   "max_abs_diff": max(abs(ours[m] - theirs[m]) for m in METRICS)}
        print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()
