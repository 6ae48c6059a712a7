"""Class-conditional DCGAN networks and their adversarial training step.

Shared by the image model (:mod:`imagina.image.model`) and the spectrogram GAN
(:mod:`imagina.audio.model`): both see ``(B, C, S, S)`` tensors in ``[-1, 1]``.

Against the collapse that small data invites:

* **class-conditional batch norm** in G: the label modulates every layer instead of one input;
* **noise that outweighs the label**: ``latent_dim`` ≫ ``label_dim`` at the input;
* optional **mode-seeking regularisation** (Mao et al. 2019, ``mode_seeking`` > 0): pairs of noises
  with the same label are pushed to give different outputs. Off by default: on small data it
  spreads samples well beyond the real within-class spread and drowns the label, while without it
  the samples already keep most of the real spread (docs/history.md);
* a **projection discriminator** (Miyato & Koyama 2018) with optional spectral norm, and an
  optional auxiliary classifier head (AC-GAN, ``aux_weight`` > 0): D learns the labels of real items
  and G is asked for fakes it assigns to their label (off by default: on 10–20 items per class it
  raises label consistency only a little and costs diversity, docs/history.md);
* differentiable augmentation of everything D sees (DiffAugment, Zhao et al. 2020), supplied by
  the modality as ``augment(x, rng)``;
* optional **imagination around real items** (``reconstruction`` > 0): every training item gets a
  learned latent code (GLO, Bojanowski et al. 2018) that G must decode back into the item (L1, this
  weight), and G is trained adversarially on codes *between* two items of the same class plus noise
  (``imagination_noise``). Samples are then drawn around the real items of their class instead of
  from the prior, so a generator trained on a handful of items per class keeps their labels — the
  image and audio counterpart of the text VAE's imagination around real sentences.
"""

from __future__ import annotations

import dataclasses
import math
import os
from abc import abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from imagina.core.errors import InvalidInputError, check_choice, check_float, check_int
from imagina.core.generator import Generator, seeded_config
from imagina.core.preprocessing import encode_labels
from imagina.core.runtime import resolve_device, seeded, torch_rng
from imagina.core.training import StepContext, Trainer, TrainerConfig, TrainingTask

LOSSES = ("hinge", "nonsaturating", "wgan-gp")
OUTPUT_LAYERS = ("conv", "transposed")


@dataclass(frozen=True, kw_only=True)
class GANNetConfig:
    """Architecture and loss of a conditional DCGAN (sizes are powers of two from 16 to 128).

    ``output_layer`` says how G ends: "conv" normalises every upsampling block and maps the last one's
    ``base_channels // 2`` channels to the output with a 3×3 conv; "transposed" lets the last
    upsampling block's transposed conv make the output itself, as Radford et al.'s DCGAN does, and
    skips the full-resolution hidden layer: a 32×32 image step takes a fifth less CPU time, but on MNIST
    (10 per class, two draws) its candidates had a larger Fréchet distance and lower recall and helped
    an outside classifier less, so "conv" is the default (BENCHMARKS.md, "The image run").
    """

    image_size: int | None = 32
    channels: int | None = 1
    latent_dim: int = 128
    label_dim: int = 16
    base_channels: int = 32
    loss: str = "hinge"
    spectral_norm: bool = True
    mode_seeking: float = 0.0
    aux_weight: float = 0.0
    gp_weight: float = 10.0
    d_steps: int = 1
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    beta1: float = 0.0
    beta2: float = 0.99
    reconstruction: float = 0.0
    imagination_noise: float = 0.3
    lr_anchors: float = 1e-2
    n_anchors: int | None = None
    output_layer: str = "conv"

    def __post_init__(self) -> None:
        if self.image_size is not None and self.image_size not in (16, 32, 64, 128):
            raise InvalidInputError(f"`image_size` must be one of 16, 32, 64, 128; got {self.image_size!r}.")
        if self.channels is not None:
            check_int("channels", self.channels, minimum=1)
        check_int("latent_dim", self.latent_dim, minimum=1)
        check_int("label_dim", self.label_dim, minimum=1)
        check_int("base_channels", self.base_channels, minimum=4)
        check_choice("loss", self.loss, LOSSES)
        check_float("mode_seeking", self.mode_seeking, minimum=0.0)
        check_float("aux_weight", self.aux_weight, minimum=0.0)
        check_float("gp_weight", self.gp_weight, minimum=0.0)
        check_int("d_steps", self.d_steps, minimum=1)
        check_float("lr_g", self.lr_g, minimum=0.0)
        check_float("lr_d", self.lr_d, minimum=0.0)
        check_float("reconstruction", self.reconstruction, minimum=0.0)
        check_float("imagination_noise", self.imagination_noise, minimum=0.0)
        check_float("lr_anchors", self.lr_anchors, minimum=0.0)
        if self.n_anchors is not None:
            check_int("n_anchors", self.n_anchors, minimum=0)
        check_choice("output_layer", self.output_layer, OUTPUT_LAYERS)

    @property
    def imagines(self) -> bool:
        """Whether samples are drawn around real items (learned codes) rather than from the prior."""
        return self.reconstruction > 0

    @property
    def n_blocks(self) -> int:
        if self.image_size is None:
            raise ValueError("`image_size` is not set yet; it is fixed when the model is fitted.")
        return int(math.log2(self.image_size)) - 2  # 4×4 → image_size


class PolicyAugment:
    """Differentiable augmentation for the discriminator, from a comma-separated ``policy`` of names
    in ``functions`` (each ``f(x, rng) -> x``); ``""`` turns it off. Randomness comes from ``rng``."""

    functions: dict[str, Callable[[torch.Tensor, torch.Generator], torch.Tensor]] = {}
    default_policy: str = ""

    def __init__(self, policy: str | None = None) -> None:
        policy = self.default_policy if policy is None else policy
        names = [p.strip() for p in policy.split(",") if p.strip()]
        bad = [p for p in names if p not in self.functions]
        if bad:
            raise InvalidInputError(f"`diffaugment` must list names from {', '.join(self.functions)}; got {bad[0]!r}.")
        self.names = names

    def __call__(self, x: torch.Tensor, rng: torch.Generator) -> torch.Tensor:
        for name in self.names:
            x = self.functions[name](x, rng)
        return x


def dcgan_init(module: nn.Module) -> None:
    """DCGAN initialisation: N(0, 0.02) for conv/linear weights, N(1, 0.02) for norm scales."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.Embedding):
        nn.init.normal_(module.weight, 0.0, 0.02)


class ConditionalBatchNorm2d(nn.Module):
    """Batch norm whose scale and shift are looked up from the class label."""

    def __init__(self, features: int, n_classes: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(features, affine=False)
        self.gamma = nn.Embedding(n_classes, features)
        self.beta = nn.Embedding(n_classes, features)
        nn.init.ones_(self.gamma.weight)
        nn.init.zeros_(self.beta.weight)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.gamma(y)[:, :, None, None] * self.bn(x) + self.beta(y)[:, :, None, None]


def on_sphere(z: torch.Tensor) -> torch.Tensor:
    """Codes scaled to norm √d, where standard normal noise of dimension d concentrates."""
    return z * (z.shape[1] ** 0.5) / z.norm(dim=1, keepdim=True).clamp_min(1e-8)


class ConditionalGenerator(nn.Module):
    """G(z, y): noise and label → ``(B, C, 2ⁿ·bh, 2ⁿ·bw)`` in [-1, 1] (n = ``cfg.n_blocks``).

    ``base`` is the first grid (4×4 for square images; spectrograms may start from e.g. 2×4).
    With ``n_anchors`` > 0 it also holds one learned code per training item (``anchors``) and their
    class indices (``anchor_labels``): :meth:`imagine` gives codes between two of them.
    """

    def __init__(self, cfg: GANNetConfig, n_classes: int, base: tuple[int, int] = (4, 4), n_anchors: int = 0) -> None:
        super().__init__()
        self.cfg = cfg
        self.base = (int(base[0]), int(base[1]))
        chans = [cfg.base_channels * 2 ** (cfg.n_blocks - 1 - i) for i in range(cfg.n_blocks)]
        self.label = nn.Embedding(n_classes, cfg.label_dim)
        self.project = nn.Linear(cfg.latent_dim + cfg.label_dim, chans[0] * self.base[0] * self.base[1])
        self.norm0 = ConditionalBatchNorm2d(chans[0], n_classes)
        # "conv": every block normalised, then a 3×3 conv to the output channels; "transposed": the
        # last block's transposed conv makes the output (Radford et al. 2016)
        conv = cfg.output_layer == "conv"
        chans.append(cfg.base_channels // 2 if conv else cfg.channels)
        n_normed = cfg.n_blocks if conv else cfg.n_blocks - 1
        self.ups = nn.ModuleList(nn.ConvTranspose2d(chans[i], chans[i + 1], 4, 2, 1, bias=i >= n_normed) for i in range(cfg.n_blocks))
        self.norms = nn.ModuleList(ConditionalBatchNorm2d(chans[i + 1], n_classes) for i in range(n_normed))
        self.to_out = nn.Conv2d(chans[-1], cfg.channels, 3, 1, 1) if conv else None
        self.n_classes = n_classes
        self.anchors = nn.Embedding(n_anchors, cfg.latent_dim) if n_anchors else None
        self.register_buffer("anchor_labels", torch.zeros(n_anchors, dtype=torch.long))
        self.apply(dcgan_init)
        for m in self.modules():
            if isinstance(m, ConditionalBatchNorm2d):
                nn.init.ones_(m.gamma.weight)
                nn.init.zeros_(m.beta.weight)
        if self.anchors is not None:
            nn.init.normal_(self.anchors.weight)

    def anchor_codes(self, index: torch.Tensor) -> torch.Tensor:
        """The learned codes (on the sphere) of training items ``index`` (B,) → (B, latent_dim)."""
        return on_sphere(self.anchors(index))  # type: ignore[misc]

    def imagine(self, first: torch.Tensor, second: torch.Tensor, alpha: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """Codes between anchors ``first`` and ``second`` (B,) at ``alpha`` (B,), plus scaled ``noise``."""
        code = torch.lerp(self.anchor_codes(first), self.anchor_codes(second), alpha[:, None])
        return on_sphere(code + self.cfg.imagination_noise * noise)

    def draw_codes(self, y: torch.Tensor, rng: torch.Generator) -> torch.Tensor:
        """Codes for labels ``y`` (CPU, long): prior noise, or imagined between two random anchors
        of each label's class. Drawn on the CPU from ``rng``; returned on the generator's device."""
        device = self.project.weight.device
        n, d = len(y), self.cfg.latent_dim
        if self.anchors is None:
            return torch.randn(n, d, generator=rng).to(device)
        first = same_class_anchors(self.anchor_labels.cpu(), y, rng)
        second = same_class_anchors(self.anchor_labels.cpu(), y, rng)
        alpha, noise = torch.rand(n, generator=rng), torch.randn(n, d, generator=rng)
        return self.imagine(first.to(device), second.to(device), alpha.to(device), noise.to(device))

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        h = self.project(torch.cat([z, self.label(y)], dim=1))          # (B, c0·bh·bw)
        h = h.view(len(z), -1, *self.base)                              # (B, c0, bh, bw)
        h = F.relu(self.norm0(h, y), inplace=True)                      # in place: no tensor kept for it
        for up, norm in zip(self.ups, self.norms):
            h = F.relu(norm(up(h), y), inplace=True)                    # (B, c_{i+1}, 2h, 2w)
        if self.to_out is None:
            return torch.tanh(self.ups[-1](h))                          # (B, C, H, W)
        return torch.tanh(self.to_out(h))                               # (B, C, H, W)


def same_class_anchors(anchor_labels: torch.Tensor, y: torch.Tensor, rng: torch.Generator) -> torch.Tensor:
    """For each label in ``y`` (B,), the index of a uniformly drawn anchor of that class (CPU tensors)."""
    counts = torch.bincount(anchor_labels, minlength=int(y.max()) + 1 if len(y) else 0)
    if len(y) and bool((counts[y] == 0).any()):
        raise InvalidInputError("a requested class has no training items to imagine around.")
    order = torch.argsort(anchor_labels, stable=True)
    starts = torch.cumsum(counts, 0) - counts
    pick = (torch.rand(len(y), generator=rng) * counts[y]).long().clamp(max=counts[y] - 1)
    return order[starts[y] + pick]


class ProjectionDiscriminator(nn.Module):
    """D(x, y) = ψ(φ(x)) + ⟨embed(y), φ(x)⟩ (Miyato & Koyama 2018); ``base`` is the last grid."""

    def __init__(self, cfg: GANNetConfig, n_classes: int, base: tuple[int, int] = (4, 4)) -> None:
        super().__init__()
        sn = spectral_norm if cfg.spectral_norm else (lambda m: m)
        chans = [cfg.channels] + [cfg.base_channels * 2**i for i in range(cfg.n_blocks)]
        self.downs = nn.ModuleList(sn(nn.Conv2d(chans[i], chans[i + 1], 4, 2, 1)) for i in range(cfg.n_blocks))
        feat = chans[-1] * int(base[0]) * int(base[1])
        self.linear = sn(nn.Linear(feat, 1))
        self.embed = sn(nn.Embedding(n_classes, feat))
        self.classify = sn(nn.Linear(feat, n_classes)) if cfg.aux_weight > 0 else None
        self.apply(dcgan_init)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The score (B,) and, with an auxiliary classifier, class logits (B, n_classes)."""
        h = x
        for down in self.downs:
            h = F.leaky_relu(down(h), 0.2, inplace=True)                # (B, c_i, s/2, s/2)
        h = h.flatten(1)                                                # (B, c·bh·bw)
        score = self.linear(h).squeeze(1) + (self.embed(y) * h).sum(1)  # (B,)
        return score, (self.classify(h) if self.classify is not None else None)


class ConditionalGANTask(TrainingTask):
    """One adversarial step of a conditional DCGAN, run by :class:`~imagina.core.training.Trainer`.

    The batch is ``(x, y[, index])``: x ``(B, C, S, S)`` float in [-1, 1], y ``(B,)`` long class
    indices, index ``(B,)`` the items' positions in the training set (their anchor codes).
    ``augment(x, rng)`` is applied to every real and fake batch D sees.
    """

    ema_module = "G"
    description = "training GAN"

    def __init__(
        self,
        cfg: GANNetConfig,
        n_classes: int,
        augment: Callable[[torch.Tensor, torch.Generator], torch.Tensor] | None = None,
        base: tuple[int, int] = (4, 4),
        n_anchors: int = 0,
    ) -> None:
        self.cfg = cfg
        # channels-last: oneDNN's convolutions (forward and backward) skip their layout reorders, about
        # 12 % of a 32×32 step's CPU time (BENCHMARKS.md, "The image run")
        self.G = ConditionalGenerator(cfg, n_classes, base, n_anchors if cfg.imagines else 0).to(memory_format=torch.channels_last)
        self.D = ProjectionDiscriminator(cfg, n_classes, base).to(memory_format=torch.channels_last)
        self.augment = augment or (lambda x, rng: x)

    def modules(self) -> dict[str, nn.Module]:
        return {"G": self.G, "D": self.D}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        betas = (self.cfg.beta1, self.cfg.beta2)
        codes = [p for n, p in self.G.named_parameters() if n.startswith("anchors.")]
        nets = [p for n, p in self.G.named_parameters() if not n.startswith("anchors.")]
        groups = [{"params": nets}] + ([{"params": codes, "lr": self.cfg.lr_anchors}] if codes else [])
        # fused Adam updates every tensor in one kernel: 0.6 ms instead of 3 ms per step for both
        # networks on one CPU thread
        fused = next(self.D.parameters()).device.type in ("cpu", "cuda")
        return {
            "G": torch.optim.Adam(groups, lr=self.cfg.lr_g, betas=betas, fused=fused),
            "D": torch.optim.Adam(self.D.parameters(), lr=self.cfg.lr_d, betas=betas, fused=fused),
        }

    def _imagined_codes(self, index: torch.Tensor, y: torch.Tensor, ctx: StepContext) -> torch.Tensor:
        """First half: the batch items' own codes (to reconstruct); second half: codes between each
        item and a random item of its class, plus noise."""
        half = len(index) // 2
        partner = same_class_anchors(self.G.anchor_labels.cpu(), y.cpu(), ctx.rng).to(y.device)
        alpha, noise = ctx.rand(len(index)), ctx.randn(len(index), self.cfg.latent_dim)
        return torch.cat([self.G.anchor_codes(index[:half]), self.G.imagine(index, partner, alpha, noise)[half:]])

    def train_step(self, batch: tuple[torch.Tensor, ...], ctx: StepContext) -> dict[str, float]:
        real, y = batch[:2]
        real = real.contiguous(memory_format=torch.channels_last)
        index = batch[2] if len(batch) > 2 else None  # item indices, needed when imagining
        cfg, B = self.cfg, len(real)
        if cfg.imagines and index is None:
            raise InvalidInputError("imagination around real items needs batches of (x, y, item index).")
        # ---- the generator's codes and output for this step, made once (noise pairs share a label,
        # for the mode-seeking term): the last D update scores them detached, the G update scores
        # them again through the updated D, as in the PyTorch DCGAN example; one G forward fewer
        half = (B + 1) // 2
        if cfg.imagines:  # reconstruction needs each code's own label
            y_g, z = y, self._imagined_codes(index, y, ctx)
        else:
            y_g, z = torch.cat([y[:half], y[: B - half]]), ctx.randn(B, cfg.latent_dim)
        with ctx.autocast():
            fake_g = self.G(z, y_g).float()                                 # (B, C, S, S)
        # ---- discriminator (extra D updates, d_steps > 1, score fakes of their own)
        for i in range(cfg.d_steps):
            if i < cfg.d_steps - 1:
                with torch.no_grad(), ctx.autocast():
                    y_d = y
                    fake = self.G(self._imagined_codes(index, y, ctx) if cfg.imagines else ctx.randn(B, cfg.latent_dim), y).float()
            else:
                y_d, fake = y_g, fake_g.detach()
            # real and fake through D as one batch of 2B: D has no batch statistics, so the scores
            # are those of two calls, at one spectral-norm power iteration and half the kernel calls
            both = torch.cat([self.augment(real, ctx.rng), self.augment(fake, ctx.rng)])  # (2B, C, S, S)
            with ctx.autocast():
                d_both, logits_both = self.D(both, torch.cat([y, y_d]))
            d_real, d_fake = d_both.float().split(B)
            logits_real = logits_both[:B] if logits_both is not None else None
            if cfg.loss == "hinge":
                loss_d = F.relu(1 - d_real).mean() + F.relu(1 + d_fake).mean()
            elif cfg.loss == "nonsaturating":
                loss_d = F.softplus(-d_real).mean() + F.softplus(d_fake).mean()
            else:  # the penalty's mixes take the real item's label
                loss_d = d_fake.mean() - d_real.mean() + cfg.gp_weight * self._gradient_penalty(real, fake, y, ctx)
            if logits_real is not None:  # auxiliary classifier (AC-GAN), trained on real items only
                loss_d = loss_d + cfg.aux_weight * F.cross_entropy(logits_real.float(), y)
            ctx.update("D", loss_d)
        # ---- generator. D's weights take no gradient here (the D update zeroes them anyway): its
        # convolutions skip their weight gradients and compute only what flows back to G
        fake = fake_g
        self.D.requires_grad_(False)
        try:
            with ctx.autocast():
                d_fake, logits_fake = self.D(self.augment(fake, ctx.rng), y_g)
        finally:
            self.D.requires_grad_(True)
        d_fake = d_fake.float()
        loss_g = -d_fake.mean() if cfg.loss != "nonsaturating" else F.softplus(-d_fake).mean()
        losses = {"loss_d": float(loss_d.detach()), "loss_g": float(loss_g.detach())}
        if logits_fake is not None:  # G is asked to make fakes D's classifier assigns to their label
            aux = F.cross_entropy(logits_fake.float(), y_g)
            loss_g = loss_g + cfg.aux_weight * aux
            losses["aux_g"] = float(aux.detach())
        if cfg.imagines:
            rec = (fake[: B // 2] - real[: B // 2]).abs().mean()
            loss_g = loss_g + cfg.reconstruction * rec
            losses["reconstruction"] = float(rec.detach())
        elif cfg.mode_seeking > 0 and B >= 2:
            m = B - half
            img_gap = (fake[:m] - fake[half : half + m]).abs().mean(dim=(1, 2, 3))
            z_gap = (z[:m] - z[half : half + m]).abs().mean(dim=1)
            ms = (img_gap / z_gap).mean()
            loss_g = loss_g + cfg.mode_seeking / (ms + 1e-5)
            losses["mode_seeking"] = float(ms.detach())
        ctx.update("G", loss_g)
        return losses

    def _gradient_penalty(self, real, fake, y, ctx: StepContext) -> torch.Tensor:
        alpha = ctx.rand(len(real), 1, 1, 1)
        mix = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
        out = self.D(mix, y)[0].float()
        (grad,) = torch.autograd.grad(out.sum(), mix, create_graph=True)
        return ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()


@torch.no_grad()
def recalibrate_batchnorm(generator: nn.Module, n_classes: int, latent_dim: int, *, batches: int = 16,
                          batch_size: int = 64, seed: int = 0) -> None:
    """Recompute the batch-norm running statistics of an EMA generator from its own outputs.

    The Trainer's EMA also averages buffers, so the running variances of a short run still lean on
    their initial value (1) while the weights have moved: in eval mode every activation is then
    scaled down and the generator outputs near-constant images or spectrograms. Forwarding a few seeded
    batches in train mode with a cumulative average ("standing statistics", Brock et al. 2019)
    gives the statistics that belong to the averaged weights.
    """
    norms = [m for m in generator.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative moving average over the batches below
    device = next(generator.parameters()).device
    rng = torch_rng(seed, "batchnorm-recalibration")
    generator.train()
    for _ in range(batches):
        if getattr(generator, "anchors", None) is not None:  # codes where the samples will come from
            y = generator.anchor_labels.cpu()[torch.randint(len(generator.anchor_labels), (batch_size,), generator=rng)]
            z = generator.draw_codes(y, rng)
        else:
            z = torch.randn(batch_size, latent_dim, generator=rng).to(device)
            y = torch.randint(n_classes, (batch_size,), generator=rng)
        generator(z, y.to(device))
    for m, momentum in zip(norms, momenta):
        m.momentum = momentum
    generator.eval()


# --------------------------------------------------------------------------- the Generator
@dataclass(frozen=True, kw_only=True)
class GANConfig(GANNetConfig):
    """:class:`GANNetConfig` plus the training settings every conditional GAN model has.

    ``cpu_bf16`` trains under bf16 autocast on a CPU with native bf16 (see
    :class:`~imagina.core.training.TrainerConfig`); fp32 elsewhere. ``lr_decay`` lets both networks'
    learning rates fall linearly over that share of the final steps (0: constant).
    """

    steps: int = 2000
    batch_size: int = 64
    ema_decay: float = 0.999
    checkpoint_every: int = 500
    seed: int = 0
    cpu_bf16: bool = False
    lr_decay: float = 0.0

    def __post_init__(self) -> None:
        super().__post_init__()
        check_float("lr_decay", self.lr_decay, minimum=0.0, maximum=1.0)
        check_int("steps", self.steps, minimum=1)
        check_int("batch_size", self.batch_size, minimum=1)
        check_int("checkpoint_every", self.checkpoint_every, minimum=1)
        check_float("ema_decay", self.ema_decay, minimum=0.0, maximum=1.0)
        check_int("seed", self.seed, minimum=0)


class ConditionalGANModel(Generator):
    """A :class:`~imagina.core.generator.Generator` around the conditional DCGAN.

    A modality supplies only what is its own: how items become ``(n, C, H, W)`` tensors in [-1, 1]
    and back (:meth:`_fit_transform`, :meth:`_decode`, the transform's JSON state) and the
    discriminator's augmentation (:meth:`_augment`). Training, EMA, sampling and saving are here.
    """

    config: GANConfig

    def __init__(self, config: GANConfig | None = None, *, device: str = "auto", seed: int | None = None) -> None:
        self.config = seeded_config(config, self.config_class, seed)
        self.device = device
        self.generator_: ConditionalGenerator | None = None
        self.transform_: Any = None

    # ---- modality hooks
    @abstractmethod
    def _fit_transform(self, X: Any) -> tuple[np.ndarray, Any, dict]:
        """Validate ``X``, fit the transform; return (tensor data (n, C, H, W) in [-1, 1], the fitted
        transform, config fields fixed by the data such as ``image_size``)."""

    @abstractmethod
    def _decode(self, Z: np.ndarray, seed: int) -> Any:
        """Generator output (n, C, H, W) in [-1, 1] → items of the modality."""

    @abstractmethod
    def _augment(self) -> Callable[[torch.Tensor, torch.Generator], torch.Tensor] | None:
        """The discriminator's differentiable augmentation."""

    @abstractmethod
    def _transform_from_state(self, state: dict) -> Any:
        """Rebuild the fitted transform from its JSON state."""

    def _base(self) -> tuple[int, int]:
        """The generator's first grid (4×4 unless the data are not square)."""
        return (4, 4)

    # ---- the generator contract
    def fit(self, X: Any, y: Any, *, progress: bool = True, checkpoint_dir: str | os.PathLike | None = None) -> ConditionalGANModel:
        classes, target = encode_labels(y)
        data, transform, fixed = self._fit_transform(X)                 # validates X first
        if len(target) != len(data):
            raise InvalidInputError(f"`y` must have one label per item ({len(data)}); got {len(target)}.")
        cfg = dataclasses.replace(self.config, **fixed, n_anchors=len(data) if self.config.imagines else 0)
        self.config, self.transform_ = cfg, transform
        base = self._base()
        with seeded(cfg.seed, f"{self.registry_name}-init"):
            task = ConditionalGANTask(cfg, len(classes), augment=self._augment(), base=base, n_anchors=cfg.n_anchors)
            if cfg.imagines:
                task.G.anchor_labels.copy_(torch.from_numpy(target))
        trainer = Trainer(
            TrainerConfig(steps=cfg.steps, batch_size=cfg.batch_size, checkpoint_every=cfg.checkpoint_every,
                          ema_decay=cfg.ema_decay, seed=cfg.seed, device=self.device, cpu_bf16=cfg.cpu_bf16,
                          lr_decay=cfg.lr_decay),
            progress=progress,
        )
        x = torch.from_numpy(np.ascontiguousarray(data, dtype=np.float32))
        data_t = (x, torch.from_numpy(target), torch.arange(len(x)))
        self.history_ = trainer.fit(task, data_t, checkpoint_dir=checkpoint_dir)
        generator = ConditionalGenerator(cfg, len(classes), base, cfg.n_anchors or 0)
        generator.load_state_dict(trainer.ema_state_dict())
        generator = generator.to(trainer.device, memory_format=torch.channels_last)  # a third faster to sample
        recalibrate_batchnorm(generator, len(classes), cfg.latent_dim, seed=cfg.seed)
        self.classes_ = classes
        self.generator_ = generator.eval()
        return self

    @torch.no_grad()
    def generate_tensors(self, n: int, labels: Any = None, *, seed: int | None = None, batch_size: int = 256) -> tuple[np.ndarray, np.ndarray]:
        """Raw generator output, float32 (n, C, H, W) in [-1, 1], and the labels (n,)."""
        check_int("n", n, minimum=0)
        idx = self.resolve_labels(n, labels)
        rng = torch_rng(self.config.seed if seed is None else seed, "sample")
        y = torch.as_tensor(np.asarray(idx, dtype=np.int64))
        z = self.generator_.draw_codes(y, rng) if n else None  # type: ignore[union-attr]
        device = next(self.generator_.parameters()).device  # type: ignore[union-attr]
        out = [
            self.generator_(z[s : s + batch_size], y[s : s + batch_size].to(device)).float().cpu()  # type: ignore[misc, index]
            for s in range(0, n, batch_size)
        ]
        Z = torch.cat(out).numpy() if out else np.zeros((0, self.config.channels or 1, 1, 1), np.float32)
        return Z, self.classes_[idx]  # type: ignore[index]

    def sample(self, n: int, labels: Any = None, *, seed: int | None = None, batch_size: int = 256) -> tuple[Any, np.ndarray]:
        Z, y = self.generate_tensors(n, labels, seed=seed, batch_size=batch_size)
        return self._decode(Z, self.config.seed if seed is None else seed), y

    def to_model_space(self, X: Any) -> np.ndarray:
        """Items as the fitted transform gives them to the networks: float32 in [-1, 1]."""
        self._check_fitted()
        return np.asarray(self.transform_.transform(X), dtype=np.float32)

    def _weights(self) -> dict[str, torch.Tensor]:
        return self.generator_.state_dict()  # type: ignore[union-attr]

    def _preprocessor_state(self) -> dict:
        return self.transform_.get_state()

    def _restore(self, weights: dict[str, torch.Tensor], preprocessor: dict, directory: Path) -> None:
        self.transform_ = self._transform_from_state(preprocessor)
        generator = ConditionalGenerator(self.config, len(self.classes_), self._base(), self.config.n_anchors or 0)  # type: ignore[arg-type]
        generator.load_state_dict(weights)
        self.generator_ = generator.to(resolve_device(self.device), memory_format=torch.channels_last).eval()
