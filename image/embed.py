"""Image embedders: the offline default (a small CNN trained on the user's images) and a
torchvision model loaded from a local weights file."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from imagina.core.embedding import Embedder, SupervisedEmbedder
from imagina.core.errors import InvalidInputError
from imagina.image.diffaugment import translation
from imagina.image.preprocess import ImagePreprocessor, as_nhwc, auto_image_size

logger = logging.getLogger(__name__)


def small_cnn(channels: int, width: int = 16, out_dim: int = 64) -> tuple[nn.Module, int]:
    """A 3-stage CNN body: (B, C, S, S) → (B, out_dim)."""
    body = nn.Sequential(
        nn.Conv2d(channels, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(width, 2 * width, 3, padding=1), nn.BatchNorm2d(2 * width), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(2 * width, 4 * width, 3, padding=1), nn.BatchNorm2d(4 * width), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(),                                   # (B, 4·width)
        nn.Linear(4 * width, out_dim), nn.ReLU(),
    )
    return body, out_dim


class ImagePreparer:
    """Any uint8 images → float (n, C, S, S) in [-1, 1] at the size fixed on the first call."""

    def __init__(self, image_size: int | None = None) -> None:
        self.image_size = image_size
        self.pre: ImagePreprocessor | None = None

    def __call__(self, X: np.ndarray) -> torch.Tensor:
        X = as_nhwc(X)
        if self.pre is None:
            self.pre = ImagePreprocessor(self.image_size or auto_image_size(*X.shape[1:3])).fit(X)
        return torch.from_numpy(self.pre.transform(X))


#: Training steps of the offline default embedder.
DEFAULT_EMBEDDER_STEPS = 300


def default_image_embedder(*, seed: int = 0, device: str = "auto", steps: int = DEFAULT_EMBEDDER_STEPS,
                           progress: bool = False) -> SupervisedEmbedder:
    """The offline default: a small CNN trained to classify the real images (light translation);
    ``progress`` shows a bar while it trains."""
    prepare = ImagePreparer()
    channels: dict[str, int] = {}

    def prep(X):
        t = prepare(X)
        channels.setdefault("c", t.shape[1])
        return t

    return SupervisedEmbedder(
        lambda: small_cnn(channels["c"]), prep,
        augment=lambda x, rng: translation(x, rng, ratio=0.0625), steps=steps, seed=seed, device=device,
        progress=progress,
    )


IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class TorchvisionEmbedder(Embedder):
    """A torchvision classification model with weights from a local file; its pooled features.

    Parameters
    ----------
    spec : str
        ``"<architecture>:<weights file>"``, e.g. ``"resnet18:/models/resnet18.pth"``. The file is a
        state dict saved with ``torch.save`` (read with ``weights_only=True``) or a ``.safetensors``.
    input_size : int
        Images are resized to this square size and normalised with ImageNet statistics.
    """

    def __init__(self, spec: str, *, input_size: int = 224, device: str = "cpu") -> None:
        import torchvision

        arch, sep, weights = spec.partition(":")
        if not sep or not weights:
            raise InvalidInputError(f"`embedder` must be '<torchvision architecture>:<weights file>'; got {spec!r}.")
        path = Path(weights)
        if not path.is_file():
            raise InvalidInputError(f"embedder weights {path} do not exist.")
        try:
            model = torchvision.models.get_model(arch, weights=None)
        except ValueError:
            raise InvalidInputError(f"`embedder` architecture {arch!r} is not a torchvision model.") from None
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
        try:
            model.load_state_dict(state)
        except RuntimeError as exc:
            raise InvalidInputError(f"embedder weights {path} do not fit {arch}: {str(exc).splitlines()[0]}") from None
        for attr in ("fc", "classifier", "head", "heads"):
            if hasattr(model, attr):
                setattr(model, attr, nn.Identity())
                break
        self.model = model.eval().to(device)
        self.input_size = input_size
        self.device = torch.device(device)

    @torch.no_grad()
    def embed(self, X: np.ndarray, *, batch_size: int = 64) -> np.ndarray:
        X = as_nhwc(X)
        mean = torch.tensor(IMAGENET_MEAN)[None, :, None, None]
        std = torch.tensor(IMAGENET_STD)[None, :, None, None]
        out = []
        for s in range(0, len(X), batch_size):
            t = torch.from_numpy(X[s : s + batch_size]).permute(0, 3, 1, 2).float() / 255.0
            if t.shape[1] == 1:
                t = t.expand(-1, 3, -1, -1)
            t = F.interpolate(t, size=(self.input_size,) * 2, mode="bilinear", antialias=True, align_corners=False)
            feats = self.model(((t - mean) / std).to(self.device)).float().flatten(1)
            out.append(F.normalize(feats, dim=1).cpu())
        return torch.cat(out).numpy().astype(np.float32) if out else np.zeros((0, 0), np.float32)
