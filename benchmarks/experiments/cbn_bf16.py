"""Would the generator's conditional batch norm gain from a bf16 scale and shift? (issue 19, point 3)

Under CPU bf16 autocast the image generator's last hidden block, (64, 16, 32, 32), leaves its
conditional batch norm in fp32: the fp32 embedding scale multiplies the bf16 normalised activations,
so the product, the shift, the ReLU and the cast back to bf16 before the next conv all run at full
width. This times that block (norm, ReLU, the 3×3 output conv; forward and backward; one thread, CPU
clock, the middle 20 of 30 repeats) as it is and with the scale and shift cast to the activations'
dtype, which changes the numbers (two bf16 roundings instead of one), so it would need a quality
check before it could be used.

    OMP_NUM_THREADS=1 python benchmarks/experiments/cbn_bf16.py [--repeats 30]
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F
from torch import nn

from imagina.core.gan import ConditionalBatchNorm2d


def block_ms(bf16_affine: bool, repeats: int) -> float:
    torch.manual_seed(0)
    norm, conv = ConditionalBatchNorm2d(16, 10), nn.Conv2d(16, 1, 3, padding=1)
    y = torch.randint(0, 10, (64,))
    times = []
    for _ in range(repeats):
        x = torch.randn(64, 16, 32, 32, requires_grad=True)
        start = time.process_time()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            xb = x.to(torch.bfloat16)
            if bf16_affine:
                h = norm.gamma(y).to(xb.dtype)[:, :, None, None] * norm.bn(xb) + norm.beta(y).to(xb.dtype)[:, :, None, None]
            else:
                h = norm(xb, y)
            out = conv(F.relu(h, inplace=True)).float().sum()
        out.backward()
        times.append(time.process_time() - start)
    times.sort()
    middle = times[repeats // 6: repeats - repeats // 6]
    return 1000 * sum(middle) / len(middle)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeats", type=int, default=30)
    args = p.parse_args()
    torch.set_num_threads(1)
    for _ in range(2):
        print(f"fp32 scale and shift (as today) {block_ms(False, args.repeats):.2f} ms, "
              f"bf16 scale and shift {block_ms(True, args.repeats):.2f} ms")


if __name__ == "__main__":
    main()
