"""CPU milliseconds per step of the default image GAN step (32×32, batch 64, bf16 autocast where the
CPU has it, reconstruction 10) with three ways for G to end (issue 19, point 3, session 15):

- ``conv`` (the default): the last upsampling block has 16 channels at full resolution, conditional
  batch norm and ReLU, then a 3×3 conv makes the image;
- ``transposed`` (``GANNetConfig.output_layer``): the last transposed conv makes the image;
- ``plain-conv`` (tried and removed; patched in here): as ``conv`` without the last block's norm.

    python benchmarks/experiments/gan_last_layer.py [--repeats 3] [--steps 40]

Alternates the variants and prints the per-step CPU ms of each run (one thread, process CPU time).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import dcgan_step  # noqa: E402

from imagina.core.gan import ConditionalGenerator  # noqa: E402


def plain_conv_forward(self: ConditionalGenerator, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The default G without the conditional batch norm of its last block."""
    h = self.project(torch.cat([z, self.label(y)], dim=1)).view(len(z), -1, *self.base)
    h = F.relu(self.norm0(h, y), inplace=True)
    for up, norm in zip(self.ups[:-1], self.norms[:-1]):
        h = F.relu(norm(up(h), y), inplace=True)
    return torch.tanh(self.to_out(F.relu(self.ups[-1](h), inplace=True)))


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--steps", type=int, default=40)
    args = p.parse_args()
    torch.set_num_threads(1)
    y = torch.arange(100) % 10
    x = torch.rand(100, 1, 32, 32) * 2 - 1
    forward = ConditionalGenerator.forward
    runs: dict[str, list[float]] = {"conv": [], "transposed": [], "plain-conv": []}
    for _ in range(args.repeats):
        for name in runs:
            ConditionalGenerator.forward = plain_conv_forward if name == "plain-conv" else forward
            task = dcgan_step.make_task(y, 10.0, "transposed" if name == "transposed" else "conv")
            dcgan_step.plain_loop(task, x, y, 5, 64, True)  # warm-up
            start = time.process_time()
            dcgan_step.plain_loop(task, x, y, args.steps, 64, True)
            runs[name].append(round((time.process_time() - start) / args.steps * 1000, 1))
    ConditionalGenerator.forward = forward
    print(json.dumps({"cpu_ms_per_step": runs, "steps": args.steps}))


if __name__ == "__main__":
    main()
