"""The image reference classifier and classical augmentation for :func:`imagina.core.evaluation.evaluate`."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from imagina.core.errors import NotFittedError
from imagina.core.evaluation import Augment, EvalTask
from imagina.image.preprocess import as_nhwc, auto_image_size


class ReferenceCNN(nn.Module):
    """The fixed reference classifier: 3 conv stages (16-32-64, BN, ReLU, max-pool), global average
    pooling, dropout 0.3, linear. Input: uint8 (B, C, S, S); scaled to [-1, 1] inside."""

    def __init__(self, channels: int, n_classes: int) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(channels, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(),                                # (B, 64)
        )
        self.head = nn.Linear(64, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.float() / 127.5 - 1.0
        return self.head(F.dropout(self.features(x), 0.3, self.training))


def trivial_augment(p: float) -> Augment:
    """torchvision's TrivialAugmentWide, applied to each image of a batch with probability ``p``.

    Randomness of the transform comes from the global torch RNG, which the training loop seeds per step."""
    from torchvision.transforms import v2

    op = v2.TrivialAugmentWide()

    def apply(x: torch.Tensor, rng: torch.Generator) -> torch.Tensor:
        use = torch.rand(len(x), generator=rng) < p
        if not bool(use.any()):
            return x
        out = x.clone()
        for i in torch.nonzero(use).squeeze(1).tolist():
            out[i] = op(x[i])
        return out

    return apply


class ImageEvalTask(EvalTask):
    """Reference CNN on images resized to the size :meth:`fit` learns from the real training data
    (``image_size`` when given), classical augmentation = TrivialAugmentWide with p in {0.5, 1.0}."""

    name = "ReferenceCNN (16-32-64 conv, BN, GAP, dropout 0.3)"
    steps = 400
    batch_size = 64
    lr = 2e-3

    def __init__(self, image_size: int | None = None) -> None:
        self.image_size = image_size
        self.image_size_: int | None = None
        self.channels_: int | None = None

    def fit(self, X: np.ndarray, y: np.ndarray | None = None) -> ImageEvalTask:
        """Fix the image size (``image_size``, else the smallest of 16/32/64 holding the training
        images) and the channels (the training images')."""
        X = as_nhwc(X)
        self.image_size_ = self.image_size or auto_image_size(*X.shape[1:3])
        self.channels_ = X.shape[-1]
        return self

    def prepare(self, X: np.ndarray) -> torch.Tensor:
        """Images (n, H, W, C) uint8 -> uint8 (n, C', S, S) at the fitted size and channels."""
        if self.image_size_ is None:
            raise NotFittedError("This ImageEvalTask is not fitted yet; call `fit` on the training images first.")
        X = as_nhwc(X)
        size = self.image_size_
        t = torch.from_numpy(X).permute(0, 3, 1, 2)
        if t.shape[1] != self.channels_:
            t = t.expand(-1, 3, -1, -1) if t.shape[1] == 1 else t.float().mean(1, keepdim=True).round().to(torch.uint8)
        if t.shape[-2:] != (size, size):
            t = F.interpolate(t.float(), size=(size, size), mode="bilinear", antialias=True, align_corners=False)
            t = t.round().clamp(0, 255).to(torch.uint8)
        return t.contiguous()

    def make_classifier(self, n_classes: int) -> nn.Module:
        if self.channels_ is None:
            raise NotFittedError("This ImageEvalTask is not fitted yet; call `fit` on the training images first.")
        return ReferenceCNN(self.channels_, n_classes)

    def augmentations(self, prepared: torch.Tensor, y: np.ndarray) -> dict[str, Augment]:
        return {"TrivialAugmentWide p=0.5": trivial_augment(0.5), "TrivialAugmentWide p=1": trivial_augment(1.0)}


def probe_pixels(X: np.ndarray, size: int = 16) -> np.ndarray:
    """Images (n, H, W, C) uint8 -> pixel features (n, s·s·C) in [0, 1], s = min(size, H): small, so a
    linear probe on a few dozen images per class stays fast and does not overfit every pixel."""
    X = as_nhwc(np.asarray(X))
    t = torch.from_numpy(X).permute(0, 3, 1, 2).float() / 255.0                    # (n, C, H, W)
    s = min(size, X.shape[1])
    if t.shape[-2:] != (s, s):
        t = F.interpolate(t, size=(s, s), mode="bilinear", antialias=True, align_corners=False)
    return t.reshape(len(t), -1).numpy()


def probe_hog(X: np.ndarray, size: int = 28, bins: int = 8, cell: int = 6, stride: int = 5) -> np.ndarray:
    """Images (n, H, W, C) uint8 -> histograms of oriented gradients (Dalal & Triggs 2005) of the grey
    image resized to ``size``×``size``: ``bins`` unsigned orientations, magnitude-weighted, pooled over
    ``cell``×``cell`` cells every ``stride`` pixels. Shape (n, bins · cells²); about 5 × 5 cells.
    Stronger than pixels for a linear probe (MNIST, 10 per class: 84 % against 72 %), so that a
    synthetic lift has to show over a reasonable model."""
    X = as_nhwc(np.asarray(X))
    t = torch.from_numpy(X).permute(0, 3, 1, 2).float().mean(1, keepdim=True) / 255.0   # (n, 1, H, W)
    t = F.interpolate(t, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    gx = (t[..., :, 2:] - t[..., :, :-2])[..., 1:-1, :]                                # (n, 1, s-2, s-2)
    gy = (t[..., 2:, :] - t[..., :-2, :])[..., :, 1:-1]
    magnitude, angle = torch.sqrt(gx**2 + gy**2), torch.atan2(gy, gx) % np.pi
    index = (angle / np.pi * bins).long().clamp(max=bins - 1)
    hist = torch.zeros(len(t), bins, size - 2, size - 2).scatter_add_(1, index, magnitude)
    return F.avg_pool2d(hist, cell, stride).reshape(len(t), -1).numpy()


def probe_features() -> dict:
    """Pixels at up to 16×16 and gradient histograms, each standardised: the fast probes that choose
    the synthetic dose (the one better on real data alone is used)."""
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer, StandardScaler

    return {"pixel": make_pipeline(FunctionTransformer(probe_pixels), StandardScaler()),
            "gradient-histogram (HOG)": make_pipeline(FunctionTransformer(probe_hog), StandardScaler())}


def classical_views(X: np.ndarray, n_views: int, seed: int, strength: str = "default") -> np.ndarray:
    """``n_views`` TrivialAugmentWide views of every image: X (n, H, W, C) uint8 -> (n·n_views, H, W, C)
    uint8, view-major (all first views, then all second views...). For training a generator on more
    than the blends of a handful of items. ``strength``: "mild" applies the operation to each image
    with probability 0.5, "default" always, "strong" twice in a row."""
    from torchvision.transforms import v2

    from imagina.core.errors import check_choice
    from imagina.core.modality import CLASSICAL_STRENGTHS
    from imagina.core.runtime import seeded

    check_choice("strength", strength, CLASSICAL_STRENGTHS)
    X = as_nhwc(np.asarray(X))
    op = {"mild": v2.RandomApply([v2.TrivialAugmentWide()], p=0.5), "default": v2.TrivialAugmentWide(),
          "strong": v2.Compose([v2.TrivialAugmentWide(), v2.TrivialAugmentWide()])}[strength]
    t = torch.from_numpy(X).permute(0, 3, 1, 2).contiguous()                     # (n, C, H, W)
    out = []
    with seeded(seed, "classical-views"):
        for _ in range(n_views):
            out.append(torch.stack([op(img) for img in t]))
    return torch.cat(out).permute(0, 2, 3, 1).contiguous().numpy()
