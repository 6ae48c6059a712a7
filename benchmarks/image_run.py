"""Wall time by phase of a default image run on N images of 32×32 (issue 19, point 3).

    python benchmarks/image_run.py [--n 100] [--seed 0] [--threads 1] [--blas-threads 1] [--data DIR] [--pythonpath DIR]
                                   [--embedder own|auto|default] [--out /tmp/imagina-image-run]

Runs ``imagina augment image`` with the default install's settings (``--embedder own``: without the
``pretrained`` extra that is the default; with it the default is ``auto``, which ``--embedder auto``
measures) on ``n // 10`` images per class of MNIST (28×28, resized
to 32×32 by the generator) when ``../shared/data/mnist`` is there, else on generated 32×32 images of
ten classes (a bar at a class's angle, with noise), and prints one JSON line: the wall time, the
phases from run.json (generator, embedder, generation, screen, valuation, dose), the run's CPU
seconds (user + system) and peak RSS, which compare under load where the wall does not, the generator's
steps, the screen's pass rate (kept / candidates) and rejections by reason, the dose's lift, the load average before and after and the torch
threads. ``--blas-threads 1`` runs the BLAS of the scikit-learn probes on one thread whatever
``--threads`` is: at two threads OpenBLAS on the dose's small matrices costs far more than it
gains (BENCHMARKS.md, "The image run"); since session 13 the dose caps it itself. ``--pythonpath DIR`` runs another checkout (DIR/imagina) the same way, for before/after
comparisons. ``--smoke`` passes the CLI's own ``--smoke`` (2 training steps, 4 items per class) on
generated images: it checks that the job runs, not its time.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

logger = logging.getLogger("image_run")

MNIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"


def bars(n: int, seed: int, size: int = 32, n_classes: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """``n`` grey images (n, size, size) uint8 of ``n_classes`` classes: a bright bar through the
    centre at the class's angle, jittered and noisy, so the classes are learnable but not identical."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % n_classes
    grid = np.stack(np.meshgrid(np.arange(size), np.arange(size), indexing="ij"), -1) - (size - 1) / 2  # (S, S, 2)
    angle = np.pi * y / n_classes + rng.normal(0, 0.05, n)                                            # (n,)
    normal = np.stack([np.cos(angle), -np.sin(angle)], -1)                                            # (n, 2)
    dist = np.abs(np.einsum("ijk,nk->nij", grid, normal) - rng.normal(0, 1.5, (n, 1, 1)))             # (n, S, S)
    x = 255 * np.exp(-(dist**2) / 4) + rng.normal(0, 12, (n, size, size))
    return np.clip(x, 0, 255).astype(np.uint8), y


def load_average() -> list[float]:
    return [round(v, 2) for v in os.getloadavg()]


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int, default=100, help="images in all, n // 10 per class")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None, help="OMP_NUM_THREADS of the run (default: as set)")
    p.add_argument("--blas-threads", type=int, default=None,
                   help="OPENBLAS_NUM_THREADS of the run (default: as set; the run caps it at --threads). Not MKL_NUM_THREADS: "
                        "torch sizes its own pool by it")
    p.add_argument("--data", default=None, help="the image source (default: ../shared/data/mnist, else generated)")
    p.add_argument("--embedder", default="own",
                   help="the screen embedder (default own: the default install's; 'auto' is the default where the "
                        "pretrained extra is installed; 'default' passes none)")
    p.add_argument("--pythonpath", default=None, help="a directory holding another checkout as imagina/")
    p.add_argument("--out", default="/tmp/imagina-image-run")
    p.add_argument("--smoke", action="store_true", help="the CLI's --smoke on generated images, in seconds")
    args = p.parse_args()
    out = Path(args.out)
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    data = args.data or (str(MNIST) if MNIST.is_dir() and not args.smoke else None)
    if data is None:
        x, y = bars(max(args.n, 40), args.seed)
        data = str(out / "bars.npz")
        np.savez(data, x=x, y=y)
    env = dict(os.environ)
    if args.threads:
        env["OMP_NUM_THREADS"] = str(args.threads)
    if args.blas_threads:
        env["OPENBLAS_NUM_THREADS"] = str(args.blas_threads)
    if args.pythonpath:
        env["PYTHONPATH"] = os.pathsep.join([args.pythonpath, *filter(None, [env.get("PYTHONPATH")])])
    run_dir = out / "run"
    cmd = [sys.executable, "-m", "imagina", "augment", "image", "--data", data, "--real-per-class", str(max(1, args.n // 10)),
           "--seed", str(args.seed), "--out", str(run_dir), "--quiet", *(["--smoke"] if args.smoke else []),
           *(["--embedder", args.embedder] if args.embedder != "default" else [])]
    logger.info("running %s", " ".join(cmd))
    load_before = load_average()
    start = time.perf_counter()
    subprocess.run(cmd, check=True, env=env)
    wall = time.perf_counter() - start
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)  # the run alone: this process has no other children
    record = json.loads((run_dir / "run.json").read_text())
    screen = record["screen"]
    kept = sum(screen["kept_per_class"].values())
    phases = {"generator": "fit_generator_s", "embedder": "fit_embedder_s", "generation": "generate_s",
              "screen": "screen_s", "valuation": "value_s", "dose": "dose_s", "metrics": "metrics_s"}
    print(json.dumps({
        "data": data, "n": args.n, "seed": args.seed, "wall_s": round(wall, 1),
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 1), "peak_rss_mb": round(usage.ru_maxrss / 1024),
        **{name: round(record["timings"].get(key, 0.0), 1) for name, key in phases.items()},
        "generator_steps": record["generator"]["config"].get("steps"),
        "kept": kept, "candidates": screen["candidates"], "rejected_by_reason": screen["rejected_by_reason"],
        "lift": (record.get("recommendation") or {}).get("lift"),
        "screen_embedder": args.embedder, "threads": env.get("OMP_NUM_THREADS", "unset"), "blas_threads": env.get("OPENBLAS_NUM_THREADS", "unset"), "load_before": load_before, "load_after": load_average(),
    }))


if __name__ == "__main__":
    main()
