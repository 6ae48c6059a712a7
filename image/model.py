"""The class-conditional DCGAN for images (networks and loss in :mod:`imagina.core.gan`)."""

from __future__ import annotations

import dataclasses
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from imagina.core.errors import check_int
from imagina.core.gan import ConditionalGANTask, ConditionalGenerator, GANNetConfig
from imagina.core.generator import Generator
from imagina.core.preprocessing import encode_labels
from imagina.core.runtime import resolve_device, seeded, torch_rng
from imagina.core.training import Trainer, TrainerConfig
from imagina.image.diffaugment import DiffAugment
from imagina.image.preprocess import ImagePreprocessor, as_nhwc, auto_image_size

logger = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class DCGANConfig(GANNetConfig):
    """Settings of :class:`ConditionalDCGAN`.

    ``image_size`` None picks the smallest of 16/32/64 holding the images; ``channels`` None takes
    the data's. ``diffaugment`` is a comma-separated DiffAugment policy ("" turns it off).
    """

    image_size: int | None = None
    channels: int | None = None
    steps: int = 2000
    batch_size: int = 64
    ema_decay: float = 0.999
    checkpoint_every: int = 500
    diffaugment: str = "color,translation,cutout"
    seed: int = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        check_int("steps", self.steps, minimum=1)
        check_int("batch_size", self.batch_size, minimum=1)
        DiffAugment(self.diffaugment)


class ConditionalDCGAN(Generator):
    """Class-conditional DCGAN with DiffAugment, mode-seeking loss and an EMA generator.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> d = load_digits()
    >>> X = (d.images * 255 / 16).astype("uint8")
    >>> gan = ConditionalDCGAN(DCGANConfig(steps=2), device="cpu").fit(X, d.target, progress=False)
    >>> images, labels = gan.sample(4, labels=3, seed=0)
    >>> images.shape, labels.tolist()
    ((4, 16, 16, 1), [3, 3, 3, 3])
    """

    registry_name = "ConditionalDCGAN"
    config_class = DCGANConfig

    def __init__(self, config: DCGANConfig | None = None, *, device: str = "auto") -> None:
        self.config = config or DCGANConfig()
        self.device = device
        self.generator_: ConditionalGenerator | None = None
        self.preprocessor_: ImagePreprocessor | None = None

    def fit(self, X: Any, y: Any, *, progress: bool = True, checkpoint_dir: str | os.PathLike | None = None) -> ConditionalDCGAN:
        """Train on uint8 images ``X`` of shape (n, H, W[, C]) with labels ``y`` of shape (n,)."""
        X = as_nhwc(X)
        classes, target = encode_labels(y)
        if len(target) != len(X):
            raise ValueError(f"`y` must have one label per image ({len(X)}); got {len(target)}.")
        size = self.config.image_size or auto_image_size(*X.shape[1:3])
        cfg = dataclasses.replace(self.config, image_size=size, channels=X.shape[-1])
        pre = ImagePreprocessor(size).fit(X)
        x = torch.from_numpy(pre.transform(X))                            # (n, C, S, S) in [-1, 1]
        with seeded(cfg.seed, "dcgan-init"):
            task = ConditionalGANTask(cfg, len(classes), augment=DiffAugment(cfg.diffaugment))
        trainer = Trainer(
            TrainerConfig(steps=cfg.steps, batch_size=cfg.batch_size, checkpoint_every=cfg.checkpoint_every,
                          ema_decay=cfg.ema_decay, seed=cfg.seed, device=self.device),
            progress=progress,
        )
        self.history_ = trainer.fit(task, (x, torch.from_numpy(target)), checkpoint_dir=checkpoint_dir)
        generator = ConditionalGenerator(cfg, len(classes))
        generator.load_state_dict(trainer.ema_state_dict())
        self.config, self.classes_, self.preprocessor_ = cfg, classes, pre
        self.generator_ = generator.to(trainer.device).eval()
        return self

    @torch.no_grad()
    def sample(self, n: int, labels: Any = None, *, seed: int | None = None, batch_size: int = 256) -> tuple[np.ndarray, np.ndarray]:
        """Draw ``n`` images: uint8 of shape (n, S, S, C) and their labels (n,)."""
        check_int("n", n, minimum=0)
        idx = self.resolve_labels(n, labels)
        rng = torch_rng(self.config.seed if seed is None else seed, "sample")
        z = torch.randn(n, self.config.latent_dim, generator=rng)
        device = next(self.generator_.parameters()).device  # type: ignore[union-attr]
        out = [
            self.generator_(z[s : s + batch_size].to(device), torch.as_tensor(idx[s : s + batch_size]).to(device)).float().cpu()  # type: ignore[misc]
            for s in range(0, n, batch_size)
        ]
        Z = torch.cat(out).numpy() if out else np.zeros((0, self.config.channels, self.config.image_size, self.config.image_size), np.float32)
        return self.preprocessor_.inverse_transform(Z), self.classes_[idx]  # type: ignore[union-attr,index]

    def _weights(self) -> dict[str, torch.Tensor]:
        return self.generator_.state_dict()  # type: ignore[union-attr]

    def _preprocessor_state(self) -> dict:
        return self.preprocessor_.get_state()  # type: ignore[union-attr]

    def _restore(self, weights: dict[str, torch.Tensor], preprocessor: dict, directory: Path) -> None:
        self.preprocessor_ = ImagePreprocessor.from_state(preprocessor)
        generator = ConditionalGenerator(self.config, len(self.classes_))  # type: ignore[arg-type]
        generator.load_state_dict(weights)
        self.generator_ = generator.to(resolve_device(self.device)).eval()
