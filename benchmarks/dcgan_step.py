"""DCGAN training-step throughput: imagina's Trainer vs a plain PyTorch loop of the same model.

Both run the same conditional DCGAN (32×32, 1 channel, batch 64, hinge loss, DiffAugment, EMA) on
random data; the plain loop has no per-step seeding, checkpoint or history logic. With
``--reconstruction R`` both run the image default's step (learned per-item codes, reconstruction,
imagined codes between same-class items; R = 10 is the default of ``DCGANConfig``); with
``--cpu-bf16`` both run under bf16 autocast, as ``DCGANConfig`` trains on a CPU with native bf16.

    python benchmarks/dcgan_step.py [--steps 60] [--threads N] [--reconstruction 10] [--output-layer transposed] [--cpu-bf16] [--clock cpu]

Prints images/s of both and their ratio (target >= 0.95); ``--clock cpu`` times them in process CPU
time, which a busy shared machine disturbs far less than wall time at one thread. ``--smoke`` runs both loops for 2 steps
of batch 8 on 64 images, once: it checks that they run, not their speed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import time

import torch
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from imagina.core.gan import ConditionalGANTask, GANNetConfig
from imagina.core.runtime import seeded
from imagina.core.training import StepContext, Trainer, TrainerConfig, cpu_has_native_bf16
from imagina.image.diffaugment import DiffAugment

#: The clock both loops are timed with: wall time, or this process's CPU time (``--clock cpu``), which
#: other jobs on a shared machine disturb far less at one thread.
CLOCK = [time.perf_counter]


def make_task(y: torch.Tensor, reconstruction: float = 0.0, output_layer: str = "conv") -> ConditionalGANTask:
    with seeded(0, "bench"):
        cfg = GANNetConfig(image_size=32, channels=1, reconstruction=reconstruction, output_layer=output_layer)
        task = ConditionalGANTask(cfg, 10, augment=DiffAugment(), n_anchors=len(y))
    if cfg.imagines:
        task.G.anchor_labels.copy_(y)
    return task


def plain_loop(task: ConditionalGANTask, x: torch.Tensor, y: torch.Tensor, steps: int, batch: int, cpu_bf16: bool = False) -> float:
    """The same step written as a bare loop: one global generator, no Trainer."""
    opts = task.optimizers()
    ema = AveragedModel(task.G, multi_avg_fn=get_ema_multi_avg_fn(0.999), use_buffers=True)

    class Ctx(StepContext):
        def __init__(self):  # noqa: D107 - a minimal stand-in, no Trainer behind it
            self.rng = torch.Generator().manual_seed(0)
            self.device = torch.device("cpu")

        def autocast(self):
            return torch.autocast("cpu", dtype=torch.bfloat16) if cpu_bf16 and cpu_has_native_bf16() else contextlib.nullcontext()

        def update(self, name, loss):
            opts[name].zero_grad(set_to_none=True)
            loss.backward()
            opts[name].step()

    ctx = Ctx()
    g = torch.Generator().manual_seed(1)
    start = CLOCK[0]()
    for _ in range(steps):
        idx = torch.randint(len(x), (batch,), generator=g)
        task.train_step((x[idx], y[idx], idx), ctx)
        ema.update_parameters(task.G)
    return steps * batch / (CLOCK[0]() - start)


def imagina_loop(task: ConditionalGANTask, x: torch.Tensor, y: torch.Tensor, steps: int, batch: int, cpu_bf16: bool = False) -> float:
    trainer = Trainer(TrainerConfig(steps=steps, batch_size=batch, device="cpu", cpu_bf16=cpu_bf16), progress=False)
    start = CLOCK[0]()
    trainer.fit(task, (x, y, torch.arange(len(x))))
    return steps * batch / (CLOCK[0]() - start)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=60)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--reconstruction", type=float, default=0.0, help="0: prior sampling; > 0: the image default's step")
    p.add_argument("--clock", choices=("wall", "cpu"), default="wall", help="cpu: process CPU time, for a busy machine")
    p.add_argument("--output-layer", choices=("conv", "transposed"), default="conv", help="how G ends (GANNetConfig.output_layer)")
    p.add_argument("--cpu-bf16", action="store_true", help="both loops under bf16 autocast (the image default on a CPU with native bf16)")
    p.add_argument("--smoke", action="store_true", help="2 steps of batch 8 on 64 images, once: checks that both loops run")
    args = p.parse_args()
    if args.smoke:
        args.steps, args.batch, args.repeats = 2, 8, 1
    if args.threads:
        torch.set_num_threads(args.threads)
    CLOCK[0] = time.process_time if args.clock == "cpu" else time.perf_counter
    n = 64 if args.smoke else 1000
    x = torch.rand(n, 1, 32, 32) * 2 - 1
    y = torch.arange(n) % 10
    # warm-up, then alternate so drifts in machine load hit both
    plain_loop(make_task(y, args.reconstruction, args.output_layer), x, y, 1 if args.smoke else 5, args.batch)
    plain, ours = [], []
    for _ in range(args.repeats):
        plain.append(plain_loop(make_task(y, args.reconstruction, args.output_layer), x, y, args.steps, args.batch, args.cpu_bf16))
        ours.append(imagina_loop(make_task(y, args.reconstruction, args.output_layer), x, y, args.steps, args.batch, args.cpu_bf16))
    best_plain, best_ours = max(plain), max(ours)
    print(json.dumps({"plain_images_per_s": round(best_plain, 1), "imagina_images_per_s": round(best_ours, 1),
                      "ratio": round(best_ours / best_plain, 3), "threads": torch.get_num_threads(),
                      "steps": args.steps, "batch": args.batch, "reconstruction": args.reconstruction, "output_layer": args.output_layer,
                      "cpu_bf16": args.cpu_bf16 and cpu_has_native_bf16(), "clock": args.clock, "runs_plain": [round(v, 1) for v in plain],
                      "runs_imagina": [round(v, 1) for v in ours]}, indent=2))


if __name__ == "__main__":
    main()
