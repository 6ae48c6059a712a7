"""A tiny conditional-GAN training run used by the training tests (kill/resume and torchrun).

Usage: python train_script.py OUT_FILE STEPS [--ckpt DIR] [--kill-at K] [--cpu-bf16] [--lr-decay F]
Writes the final G and D weights (rank-suffixed under torchrun) as safetensors.
"""

from __future__ import annotations

import argparse
import os
import signal

import torch
from safetensors.torch import save_file

from imagina.core.gan import ConditionalGANTask, GANNetConfig
from imagina.core.runtime import seeded
from imagina.core.training import Trainer, TrainerConfig


def tiny_task() -> ConditionalGANTask:
    cfg = GANNetConfig(image_size=16, channels=1, latent_dim=8, label_dim=4, base_channels=4)
    with seeded(0, "init"):
        return ConditionalGANTask(cfg, 3)


def tiny_data(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(24, 1, 16, 16, generator=g) * 2 - 1, torch.arange(24) % 3


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("out")
    p.add_argument("steps", type=int)
    p.add_argument("--ckpt", default=None)
    p.add_argument("--kill-at", type=int, default=None)
    p.add_argument("--cpu-bf16", action="store_true", help="bf16 autocast where the CPU has it natively")
    p.add_argument("--lr-decay", type=float, default=0.0, help="TrainerConfig.lr_decay")
    p.add_argument("--seed", type=int, default=0, help="TrainerConfig.seed")
    p.add_argument("--data-seed", type=int, default=0, help="which random tiny data set to train on")
    args = p.parse_args()
    torch.set_num_threads(1)
    task = tiny_task()
    trainer = Trainer(TrainerConfig(steps=args.steps, batch_size=8, checkpoint_every=3, log_every=1, device="cpu",
                                    cpu_bf16=args.cpu_bf16, lr_decay=args.lr_decay, seed=args.seed),
                      progress=False)

    def callback(step, losses):
        if args.kill_at is not None and step == args.kill_at:
            os.kill(os.getpid(), signal.SIGKILL)

    trainer.fit(task, tiny_data(args.data_seed), checkpoint_dir=args.ckpt, callback=callback)
    rank = os.environ.get("RANK")
    out = args.out if rank is None else f"{args.out}.rank{rank}"
    weights = {f"G.{k}": v.contiguous() for k, v in task.G.state_dict().items()}
    weights.update({f"D.{k}": v.contiguous() for k, v in task.D.state_dict().items()})
    weights.update({f"ema.{k}": v.contiguous() for k, v in trainer.ema_state_dict().items()})
    save_file(weights, out)
    if trainer.dist.enabled:
        import torch.distributed as dist

        dist.destroy_process_group()


if __name__ == "__main__":
    main()
