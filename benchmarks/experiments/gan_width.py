"""CPU milliseconds per step of the default image GAN step (32×32, bf16 autocast where the CPU has
it, reconstruction 10) at other network widths (``base_channels``) and batch sizes (issue 19, point 3,
session 18): what a narrower network or a smaller batch would save before anyone asks whether its
samples are as useful.

    python benchmarks/experiments/gan_width.py [--repeats 2] [--steps 40]

Alternates the variants and prints the per-step CPU ms of each run (one thread, process CPU time).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import dcgan_step  # noqa: E402

from imagina.core.gan import ConditionalGANTask, GANNetConfig  # noqa: E402
from imagina.core.runtime import seeded  # noqa: E402
from imagina.image.diffaugment import DiffAugment  # noqa: E402

VARIANTS = {"w32 b64": (32, 64), "w24 b64": (24, 64), "w16 b64": (16, 64), "w32 b32": (32, 32)}


def make_task(y: torch.Tensor, width: int) -> ConditionalGANTask:
    with seeded(0, "bench"):
        cfg = GANNetConfig(image_size=32, channels=1, reconstruction=10.0, base_channels=width)
        task = ConditionalGANTask(cfg, 10, augment=DiffAugment(), n_anchors=len(y))
    task.G.anchor_labels.copy_(y)
    return task


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--steps", type=int, default=40)
    args = p.parse_args()
    torch.set_num_threads(1)
    y = torch.arange(100) % 10
    x = torch.rand(100, 1, 32, 32) * 2 - 1
    runs: dict[str, list[float]] = {name: [] for name in VARIANTS}
    for _ in range(args.repeats):
        for name, (width, batch) in VARIANTS.items():
            task = make_task(y, width)
            dcgan_step.plain_loop(task, x, y, 5, batch, True)  # warm-up
            start = time.process_time()
            dcgan_step.plain_loop(task, x, y, args.steps, batch, True)
            runs[name].append(round((time.process_time() - start) / args.steps * 1000, 1))
    print(json.dumps({"cpu_ms_per_step": runs, "steps": args.steps}))


if __name__ == "__main__":
    main()
