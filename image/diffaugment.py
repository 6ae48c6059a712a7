"""DiffAugment (Zhao et al. 2020): differentiable colour, translation and cutout for GAN training.

Every real and fake batch the discriminator sees is augmented the same way, so D cannot memorise
a few real images, yet the augmentation does not leak into G's outputs. Randomness comes from the
caller's :class:`torch.Generator` (drawn on the CPU, then moved), so training stays reproducible.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from imagina.core.gan import PolicyAugment


def _u(rng: torch.Generator, n: int, device: torch.device, lo: float = 0.0, hi: float = 1.0) -> torch.Tensor:
    return (torch.rand(n, 1, 1, 1, generator=rng) * (hi - lo) + lo).to(device)


def color(x: torch.Tensor, rng: torch.Generator) -> torch.Tensor:
    """Random brightness, saturation (colour only) and contrast. x: (B, C, H, W) in [-1, 1]."""
    B, dev = len(x), x.device
    x = x + _u(rng, B, dev, -0.5, 0.5)
    if x.shape[1] > 1:
        mean = x.mean(dim=1, keepdim=True)
        x = (x - mean) * _u(rng, B, dev, 0.0, 2.0) + mean
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * _u(rng, B, dev, 0.5, 1.5) + mean


def translation(x: torch.Tensor, rng: torch.Generator, ratio: float = 0.125) -> torch.Tensor:
    """Shift each image by up to ``ratio`` of its size, filling with the background (-1)."""
    B, C, H, W = x.shape
    sh, sw = max(1, int(H * ratio + 0.5)), max(1, int(W * ratio + 0.5))
    ty = torch.randint(-sh, sh + 1, (B, 1, 1), generator=rng).to(x.device)
    tx = torch.randint(-sw, sw + 1, (B, 1, 1), generator=rng).to(x.device)
    gy, gx = torch.meshgrid(torch.arange(H, device=x.device), torch.arange(W, device=x.device), indexing="ij")
    iy = (gy[None] + ty + sh).clamp(0, H + 2 * sh - 1)                  # (B, H, W)
    ix = (gx[None] + tx + sw).clamp(0, W + 2 * sw - 1)
    padded = F.pad(x, (sw, sw, sh, sh), value=-1.0)                      # (B, C, H+2sh, W+2sw)
    b = torch.arange(B, device=x.device)[:, None, None]
    return padded.permute(0, 2, 3, 1)[b, iy, ix].permute(0, 3, 1, 2).contiguous()


def cutout(x: torch.Tensor, rng: torch.Generator, ratio: float = 0.5) -> torch.Tensor:
    """Blank one square of ``ratio`` of the size per image (set to the background, -1)."""
    B, C, H, W = x.shape
    ch, cw = int(H * ratio + 0.5), int(W * ratio + 0.5)
    cy = torch.randint(0, H + (1 - ch % 2), (B, 1, 1), generator=rng).to(x.device)
    cx = torch.randint(0, W + (1 - cw % 2), (B, 1, 1), generator=rng).to(x.device)
    gy, gx = torch.meshgrid(torch.arange(H, device=x.device), torch.arange(W, device=x.device), indexing="ij")
    inside = ((gy[None] >= cy - ch // 2) & (gy[None] < cy - ch // 2 + ch) & (gx[None] >= cx - cw // 2) & (gx[None] < cx - cw // 2 + cw))
    return torch.where(inside[:, None], torch.full_like(x, -1.0), x)


class DiffAugment(PolicyAugment):
    """Apply a comma-separated ``policy`` (e.g. ``"color,translation,cutout"``; ``""`` = off)."""

    functions = {"color": color, "translation": translation, "cutout": cutout}
    default_policy = "color,translation,cutout"
