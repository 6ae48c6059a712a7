"""The class-conditional DCGAN for images (networks, loss and training in :mod:`imagina.core.gan`)."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from imagina.core.errors import InvalidInputError, check_float
from imagina.core.gan import ConditionalGANModel, GANConfig
from imagina.core.generator import SOURCE_FORMAT_NAME
from imagina.image.diffaugment import DiffAugment
from imagina.image.preprocess import ImagePreprocessor, as_nhwc, auto_image_size

logger = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class DCGANConfig(GANConfig):
    """Settings of :class:`ConditionalDCGAN`.

    ``image_size`` None picks the smallest of 16/32/64 holding the images; ``channels`` None takes
    the data's. ``diffaugment`` is a comma-separated DiffAugment policy ("" turns it off; "color" is
    available but shifts the background of grey digits, so it is not in the default).

    ``reconstruction`` > 0 (the default, 10) trains a learned code per real image and samples
    *around the real images of each class* (:mod:`imagina.core.gan`); 0 samples from the prior. With
    10 images per class, samples from the prior are mostly not recognisable as their class and the
    screen rejects them; samples around the real images are, so the screen fills its budget
    (docs/history.md, `benchmarks/experiments/gan_settings.py`).

    ``steps_per_item`` scales training to the data: ``steps_per_item × n`` steps for n images, kept
    between ``steps // 2`` and ``steps`` (None trains exactly ``steps``). At 10 per item and batch 64
    every image is seen at least 640 times; 100 images train 1,000 steps, 200 or more the full 2,000.
    ``cpu_bf16`` (on by default here) trains in bf16 where the CPU has it natively: a third less
    time per step (BENCHMARKS.md, "The image run").
    """

    image_size: int | None = None
    channels: int | None = None
    diffaugment: str = "translation,cutout"
    reconstruction: float = 10.0
    steps_per_item: float | None = 10.0
    cpu_bf16: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        DiffAugment(self.diffaugment)
        if self.steps_per_item is not None:
            check_float("steps_per_item", self.steps_per_item, minimum=0.0)

    def scaled_steps(self, n: int) -> int:
        """Training steps for ``n`` images: ``steps_per_item × n`` within [steps // 2, steps]."""
        if self.steps_per_item is None:
            return self.steps
        return max(1, min(self.steps, max(self.steps // 2, round(self.steps_per_item * n))))


class ConditionalDCGAN(ConditionalGANModel):
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
    #: The mode of the user's image files where it is not the L / RGB the model works in ("RGBA", "LA",
    #: "I;16"; :data:`imagina.image.data.WRITABLE_MODES`), set by the image modality from the loader's
    #: ``meta["source_mode"]`` and saved as ``source_format.json``, so generated files match the user's.
    source_mode: str | None = None

    def data_meta(self) -> dict:
        return {"source_mode": self.source_mode} if self.source_mode else {}

    def _extra_files(self, directory: Path) -> None:
        if self.source_mode:
            (directory / SOURCE_FORMAT_NAME).write_text(json.dumps({"mode": self.source_mode}), encoding="utf-8")

    def _restore(self, weights: dict, preprocessor: dict, directory: Path) -> None:
        super()._restore(weights, preprocessor, directory)
        path = directory / SOURCE_FORMAT_NAME
        self.source_mode = json.loads(path.read_text(encoding="utf-8")).get("mode") if path.is_file() else None

    def _fit_transform(self, X: Any) -> tuple[np.ndarray, ImagePreprocessor, dict]:
        X = as_nhwc(X)
        if self.config.channels is not None and self.config.channels != X.shape[-1]:
            raise InvalidInputError(f"`channels` is {self.config.channels} but the images have {X.shape[-1]}; leave it "
                                    "None to take the images' (convert them first to change it).")
        size = self.config.image_size or auto_image_size(*X.shape[1:3])
        pre = ImagePreprocessor(size).fit(X)
        fixed = {"image_size": size, "channels": X.shape[-1], "steps": self.config.scaled_steps(len(X)),
                 "steps_per_item": None}  # the saved config says how many steps were trained
        return pre.transform(X), pre, fixed                                             # (n, C, S, S)

    def _decode(self, Z: np.ndarray, seed: int) -> np.ndarray:
        if len(Z) == 0:  # the shape a non-empty draw has: the user's image size, not the network's
            h, w = self.transform_.input_size_ or (self.config.image_size, self.config.image_size)
            return np.zeros((0, h, w, self.config.channels), np.uint8)
        return self.transform_.inverse_transform(Z)                                       # (n, S, S, C) uint8

    def _augment(self) -> Callable[[torch.Tensor, torch.Generator], torch.Tensor]:
        return DiffAugment(self.config.diffaugment)

    def _transform_from_state(self, state: dict) -> ImagePreprocessor:
        return ImagePreprocessor.from_state(state)
