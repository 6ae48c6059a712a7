"""A class-conditional SpecGAN: the shared conditional DCGAN over log-magnitude spectrograms.

The networks, losses (hinge, non-saturating, WGAN-GP), mode-seeking term and the training step
are :mod:`imagina.core.gan`'s, run by :class:`~imagina.core.training.Trainer`. What is audio here:

* the data are normalised spectrograms (:mod:`imagina.audio.features`), which need not be square
  (FSDD: 64 frequency bins x 128 frames); the two small subclasses below only change the size of
  the first (generator) and last (discriminator) 4x4 grid to ``(F, W) / 2**n_blocks``;
* the discriminator's DiffAugment is time shift and SpecAugment-style time / frequency masking;
* ``sample`` inverts the spectrograms to waveforms with Griffin-Lim.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from imagina.audio.augment import SpecDiffAugment
from imagina.audio.features import SpectrogramConfig, SpectrogramTransform
from imagina.core.errors import InvalidInputError, check_choice, check_int
from imagina.core.gan import (
    ConditionalGANTask,
    ConditionalGenerator,
    GANNetConfig,
    ProjectionDiscriminator,
    dcgan_init,
)
from imagina.core.generator import Generator
from imagina.core.preprocessing import encode_labels, nonfinite_mask
from imagina.core.runtime import derive_seed, resolve_device, seeded, torch_rng
from imagina.core.training import Trainer, TrainerConfig

logger = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class SpecGANConfig(GANNetConfig):
    """Settings of :class:`ConditionalSpecGAN`.

    The spectrogram: ``spectrogram`` ("linear" as SpecGAN, or "mel"), ``n_fft`` / ``hop_length``
    (None: SpecGAN's 16 ms / 8 ms scaled to ``sample_rate``), ``n_samples`` (None: the data's).
    Both sides of the spectrogram must be powers of two, the shorter one 16 to 128.
    ``image_size`` is set at fit time to the shorter side. ``diffaugment`` is a comma-separated
    policy of time_shift, time_mask, freq_mask ("" turns it off). ``ema_decay`` is 0.99 (a half-life
    of 70 steps) because CPU runs are short: at 0.999 a 600-step run still weighs its initial
    weights by 0.55. ``loss="wgan-gp"`` with
    ``d_steps=5, spectral_norm=False`` is SpecGAN's original recipe; the default (hinge, spectral
    norm, one D step) costs a fifth of it per step, which matters on a CPU.
    """

    image_size: int | None = None
    channels: int | None = 1
    base_channels: int = 32
    sample_rate: int = 8000
    n_samples: int | None = None
    spectrogram: str = "linear"
    n_fft: int | None = None
    hop_length: int | None = None
    n_mels: int = 64
    griffin_lim_iters: int = 32
    steps: int = 1500
    batch_size: int = 32
    ema_decay: float = 0.99
    checkpoint_every: int = 500
    diffaugment: str = "time_shift,time_mask,freq_mask"
    seed: int = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        check_int("sample_rate", self.sample_rate, minimum=1000)
        if self.n_samples is not None:
            check_int("n_samples", self.n_samples, minimum=256)
        check_choice("spectrogram", self.spectrogram, ("linear", "mel"))
        if self.n_fft is not None:
            check_int("n_fft", self.n_fft, minimum=16)
        if self.hop_length is not None:
            check_int("hop_length", self.hop_length, minimum=1)
        check_int("griffin_lim_iters", self.griffin_lim_iters, minimum=1)
        check_int("steps", self.steps, minimum=1)
        check_int("batch_size", self.batch_size, minimum=1)
        check_int("checkpoint_every", self.checkpoint_every, minimum=1)
        check_int("seed", self.seed, minimum=0)
        SpecDiffAugment(self.diffaugment)

    def spectrogram_config(self, n_samples: int) -> SpectrogramConfig:
        """The :class:`SpectrogramConfig` these settings give for clips of ``n_samples``."""
        base = SpectrogramConfig.scaled(self.sample_rate, n_samples)
        return SpectrogramConfig(
            kind=self.spectrogram, sample_rate=self.sample_rate, n_samples=n_samples,
            n_fft=self.n_fft or base.n_fft, hop_length=self.hop_length or (self.n_fft or base.n_fft) // 2,
            n_mels=self.n_mels, griffin_lim_iters=self.griffin_lim_iters,
        )


def grid_shape(shape: tuple[int, int]) -> tuple[int, tuple[int, int]]:
    """``(image_size, base)`` for a (F, W) spectrogram: the shorter side and the first grid
    ``(F, W) / 2**n_blocks``. Raises :class:`InvalidInputError` for sizes the networks cannot make."""
    short = min(shape)
    ok = all(s > 0 and s & (s - 1) == 0 for s in shape) and short in (16, 32, 64, 128) and max(shape) // short <= 8
    if not ok:
        raise InvalidInputError(
            f"the spectrogram is {shape[0]}x{shape[1]} (bins x frames); both sides must be powers of two, the shorter "
            "16-128 and at most 8 times shorter than the other: adjust `n_samples`, `n_fft` or `hop_length`."
        )
    n_blocks = int(math.log2(short)) - 2
    return short, (shape[0] >> n_blocks, shape[1] >> n_blocks)


class SpectrogramGenerator(ConditionalGenerator):
    """The shared conditional generator, starting from a ``base`` grid instead of 4x4:
    ``(B, latent) -> (B, 1, 2**n·base_h, 2**n·base_w)``."""

    def __init__(self, cfg: GANNetConfig, n_classes: int, base: tuple[int, int] = (4, 4)) -> None:
        super().__init__(cfg, n_classes)
        self.base = (int(base[0]), int(base[1]))
        cells = self.base[0] * self.base[1]
        if cells != 16:
            self.project = nn.Linear(self.project.in_features, self.project.out_features // 16 * cells)
            dcgan_init(self.project)

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        h = self.project(torch.cat([z, self.label(y)], dim=1))          # (B, c0·bh·bw)
        h = h.view(len(z), -1, *self.base)                              # (B, c0, bh, bw)
        h = F.relu(self.norm0(h, y))
        for up, norm in zip(self.ups, self.norms):
            h = F.relu(norm(up(h), y))                                  # (B, c_{i+1}, 2h, 2w)
        return torch.tanh(self.to_out(h))                               # (B, 1, F, W)


class SpectrogramDiscriminator(ProjectionDiscriminator):
    """The shared projection discriminator whose last grid is ``base`` instead of 4x4."""

    def __init__(self, cfg: GANNetConfig, n_classes: int, base: tuple[int, int] = (4, 4)) -> None:
        super().__init__(cfg, n_classes)
        cells = int(base[0]) * int(base[1])
        if cells != 16:
            sn = spectral_norm if cfg.spectral_norm else (lambda m: m)
            feat = self.linear.in_features // 16 * cells
            self.linear = sn(nn.Linear(feat, 1))
            self.embed = sn(nn.Embedding(n_classes, feat))
            self.linear.apply(dcgan_init)
            self.embed.apply(dcgan_init)


class SpecGANTask(ConditionalGANTask):
    """:class:`~imagina.core.gan.ConditionalGANTask` (same step, losses and EMA) on (B, 1, F, W)."""

    def __init__(self, cfg: GANNetConfig, n_classes: int, base: tuple[int, int], augment=None) -> None:
        super().__init__(cfg, n_classes, augment=augment)
        self.G = SpectrogramGenerator(cfg, n_classes, base)
        self.D = SpectrogramDiscriminator(cfg, n_classes, base)


@torch.no_grad()
def recalibrate_batchnorm(generator: nn.Module, n_classes: int, latent_dim: int, *, batches: int = 16,
                          batch_size: int = 64, seed: int = 0) -> None:
    """Recompute the batch-norm running statistics of an EMA generator from its own outputs.

    The Trainer's EMA also averages buffers, so the running variances of a short run still lean on
    their initial value (1) while the weights have moved: in eval mode every activation is then
    scaled down and the generator outputs a near-constant spectrogram. Forwarding a few seeded
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
        z = torch.randn(batch_size, latent_dim, generator=rng).to(device)
        y = torch.randint(n_classes, (batch_size,), generator=rng).to(device)
        generator(z, y)
    for m, momentum in zip(norms, momenta):
        m.momentum = momentum
    generator.eval()


def as_waveforms(X: Any, what: str = "X") -> np.ndarray:
    """Validate waveforms: a float array of shape (n, T), finite. Returns float32 (n, T)."""
    X = np.asarray(X)
    if X.ndim != 2 or len(X) == 0 or not np.issubdtype(X.dtype, np.number):
        raise InvalidInputError(f"`{what}` must be waveforms of shape (n, T); got shape {X.shape} and dtype {X.dtype}.")
    X = X.astype(np.float32, copy=False)
    bad = nonfinite_mask(X)
    if bad.any():
        raise InvalidInputError(f"`{what}` holds NaN or infinite samples in {int(bad.sum())} clips (first: {int(np.argmax(bad))}); clean them first.")
    return X


class ConditionalSpecGAN(Generator):
    """Class-conditional SpecGAN: generates float32 waveforms at ``config.sample_rate``.

    Examples
    --------
    >>> import numpy as np
    >>> t = np.arange(2048) / 8000
    >>> X = np.stack([np.sin(2 * np.pi * f * t) for f in (300, 320, 900, 950)]).astype("float32")
    >>> gan = ConditionalSpecGAN(SpecGANConfig(steps=2, n_fft=64, base_channels=8), device="cpu")
    >>> waves, labels = gan.fit(X, ["low", "low", "high", "high"], progress=False).sample(4, seed=0)
    >>> waves.shape, labels.tolist()
    ((4, 2048), ['high', 'low', 'high', 'low'])
    """

    registry_name = "ConditionalSpecGAN"
    config_class = SpecGANConfig

    def __init__(self, config: SpecGANConfig | None = None, *, device: str = "auto") -> None:
        self.config = config or SpecGANConfig()
        self.device = device
        self.generator_: SpectrogramGenerator | None = None
        self.transform_: SpectrogramTransform | None = None

    def fit(self, X: Any, y: Any, *, progress: bool = True, checkpoint_dir: str | os.PathLike | None = None) -> ConditionalSpecGAN:
        """Train on waveforms ``X`` float (n, T) at ``config.sample_rate`` with labels ``y`` (n,)."""
        X = as_waveforms(X)
        classes, target = encode_labels(y)
        if len(target) != len(X):
            raise InvalidInputError(f"`y` must have one label per clip ({len(X)}); got {len(target)}.")
        n_samples = self.config.n_samples or X.shape[1]
        if X.shape[1] != n_samples:
            raise InvalidInputError(f"`X` clips must hold n_samples={n_samples} samples; got {X.shape[1]}.")
        spec_cfg = self.config.spectrogram_config(n_samples)
        size, base = grid_shape(spec_cfg.shape)
        cfg = dataclasses.replace(self.config, image_size=size, channels=1, n_samples=n_samples,
                                  n_fft=spec_cfg.n_fft, hop_length=spec_cfg.hop_length)
        transform = SpectrogramTransform(spec_cfg).fit(X)
        x = torch.from_numpy(transform.transform(X))[:, None]           # (n, 1, F, W) in [-1, 1]
        logger.info("SpecGAN on %d clips: %s spectrograms %dx%d (n_fft %d, hop %d)", len(X), spec_cfg.kind,
                    *spec_cfg.shape, spec_cfg.n_fft, spec_cfg.hop_length)
        with seeded(cfg.seed, "specgan-init"):
            task = SpecGANTask(cfg, len(classes), base, augment=SpecDiffAugment(cfg.diffaugment))
        trainer = Trainer(
            TrainerConfig(steps=cfg.steps, batch_size=cfg.batch_size, checkpoint_every=cfg.checkpoint_every,
                          ema_decay=cfg.ema_decay, seed=cfg.seed, device=self.device),
            progress=progress,
        )
        self.history_ = trainer.fit(task, (x, torch.from_numpy(target)), checkpoint_dir=checkpoint_dir)
        generator = SpectrogramGenerator(cfg, len(classes), base)
        generator.load_state_dict(trainer.ema_state_dict())
        generator = generator.to(trainer.device)
        recalibrate_batchnorm(generator, len(classes), cfg.latent_dim, seed=cfg.seed)
        self.config, self.classes_, self.transform_ = cfg, classes, transform
        self.generator_ = generator.eval()
        return self

    @torch.no_grad()
    def sample_spectrograms(self, n: int, labels: Any = None, *, seed: int | None = None,
                            batch_size: int = 256) -> tuple[np.ndarray, np.ndarray]:
        """Draw ``n`` normalised spectrograms, float32 (n, F, W) in [-1, 1], and their labels (n,)."""
        check_int("n", n, minimum=0)
        idx = self.resolve_labels(n, labels)
        rng = torch_rng(self.config.seed if seed is None else seed, "sample")
        z = torch.randn(n, self.config.latent_dim, generator=rng)
        device = next(self.generator_.parameters()).device  # type: ignore[union-attr]
        out = [
            self.generator_(z[s : s + batch_size].to(device), torch.as_tensor(idx[s : s + batch_size]).to(device)).float().cpu()  # type: ignore[misc]
            for s in range(0, n, batch_size)
        ]
        shape = self.transform_.config.shape  # type: ignore[union-attr]
        S = torch.cat(out)[:, 0].numpy() if out else np.zeros((0, *shape), np.float32)
        return S, self.classes_[idx]  # type: ignore[index]

    def sample(self, n: int, labels: Any = None, *, seed: int | None = None, batch_size: int = 256) -> tuple[np.ndarray, np.ndarray]:
        """Draw ``n`` clips: float32 waveforms (n, n_samples) at ``config.sample_rate``, peak 0.9,
        inverted by Griffin-Lim; and their labels (n,)."""
        S, y = self.sample_spectrograms(n, labels, seed=seed, batch_size=batch_size)
        gl_seed = derive_seed(self.config.seed if seed is None else seed, "griffin-lim")
        return self.transform_.inverse_transform(S, seed=gl_seed), y  # type: ignore[union-attr]

    @property
    def sample_rate(self) -> int:
        return self.config.sample_rate

    def _weights(self) -> dict[str, torch.Tensor]:
        return self.generator_.state_dict()  # type: ignore[union-attr]

    def _preprocessor_state(self) -> dict:
        return self.transform_.get_state()  # type: ignore[union-attr]

    def _restore(self, weights: dict[str, torch.Tensor], preprocessor: dict, directory: Path) -> None:
        self.transform_ = SpectrogramTransform.from_state(preprocessor)
        _, base = grid_shape(self.transform_.config.shape)
        generator = SpectrogramGenerator(self.config, len(self.classes_), base)  # type: ignore[arg-type]
        generator.load_state_dict(weights)
        self.generator_ = generator.to(resolve_device(self.device)).eval()
