"""Image loaders (ImageFolder tree, ``.npz``, MNIST idx files, scikit-learn's digits) and cleaning.

Every loader returns :class:`~imagina.core.modality.LabeledData` with ``X`` uint8 of shape
(n, H, W, C), C in {1, 3}. Unreadable files are skipped with the reason in ``report``; a bad
dataset as a whole gets one :class:`~imagina.core.errors.InvalidInputError` naming the path or field.
"""

from __future__ import annotations

import gzip
import logging
from collections import Counter
from pathlib import Path

import numpy as np

from imagina.core.errors import InvalidInputError
from imagina.core.modality import LabeledData
from imagina.core.preprocessing import (
    CleaningReport,
    content_key,
    duplicate_of,
    nonfinite_mask,
    robust_outlier_mask,
)

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}
MNIST_FILES = {"train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
               "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")}


def load_images(source: str, *, split: str = "train", per_class: int | None = None, seed: int = 0,
                outlier_threshold: float = 5.0, min_per_class: int = 2, clean: bool = True) -> LabeledData:
    """Load and clean images from ``source``.

    ``source`` is ``"digits"`` (scikit-learn's bundled 8×8 digits), a ``.npz`` file with arrays
    ``x`` and ``y``, a folder of MNIST idx files (``split`` picks train or test), or an ImageFolder
    tree (one sub-folder per class). ``per_class`` keeps a random subset of that many per class.
    ``clean=False`` keeps duplicates and outliers (for a test split, which must stay whole); unreadable
    files and NaN items are dropped either way.
    """
    if source == "digits":
        data = load_digits()
    else:
        path = Path(source)
        if not path.exists():
            raise InvalidInputError(f"--data {path} does not exist.")
        if path.is_file() and path.suffix == ".npz":
            data = load_npz(path)
        elif path.is_dir() and (path / MNIST_FILES["train"][0]).exists():
            data = load_mnist(path, split)
        elif path.is_dir():
            data = load_image_folder(path)
        else:
            raise InvalidInputError(f"--data {path}: expected 'digits', a .npz file or a folder of images.")
    if per_class is not None:  # subsample first: the cleaning report then describes the data used
        data = data.per_class(per_class, seed=seed)
    if clean:
        data = clean_images(data, outlier_threshold=outlier_threshold)
    _check_classes(data, source, min_per_class)
    return data


def _check_classes(data: LabeledData, source: str, min_per_class: int) -> None:
    counts = Counter(data.y.tolist())
    if len(counts) < 2:
        raise InvalidInputError(f"--data {source}: needs at least 2 classes; found {len(counts)} ({', '.join(map(str, counts))}).")
    small = [str(c) for c, n in counts.items() if n < min_per_class]
    if small:
        raise InvalidInputError(f"--data {source}: class(es) {', '.join(small)} have fewer than {min_per_class} images after cleaning.")


def load_digits() -> LabeledData:
    """scikit-learn's 1,797 digits (8×8, 17 grey levels) as uint8 (n, 8, 8, 1), the embedded default."""
    from sklearn.datasets import load_digits as sk_digits

    d = sk_digits()
    X = np.rint(d.images * (255.0 / 16.0)).astype(np.uint8)[..., None]
    return LabeledData(X, d.target.astype(np.int64), [f"digits[{i}]" for i in range(len(X))])


def load_npz(path: Path) -> LabeledData:
    """``x``: (n, H, W[, C]) uint8, or float in [0, 1] or [0, 255] (NaN items dropped); ``y``: (n,) labels."""
    try:
        with np.load(path, allow_pickle=False) as f:
            if "x" not in f or "y" not in f:
                raise InvalidInputError(f"{path}: needs arrays 'x' and 'y'; found {', '.join(f.files) or 'none'}.")
            X, y = f["x"], f["y"]
    except (OSError, ValueError) as exc:
        if isinstance(exc, InvalidInputError):
            raise
        raise InvalidInputError(f"{path}: not a readable .npz file ({exc}).") from None
    if X.ndim == 3:
        X = X[..., None]
    if X.ndim != 4 or X.shape[-1] not in (1, 3, 4):
        raise InvalidInputError(f"{path}: field 'x' must have shape (n, H, W) or (n, H, W, 1|3|4); got {X.shape}.")
    if y.ndim != 1 or len(y) != len(X):
        raise InvalidInputError(f"{path}: field 'y' must hold one label per image ({len(X)}); got shape {y.shape}.")
    if y.dtype.kind == "f":
        if not np.isfinite(y).all() or not np.all(y == np.round(y)):
            raise InvalidInputError(f"{path}: field 'y' must hold integer or string labels; got non-integer floats.")
        y = y.astype(np.int64)
    if y.dtype.kind in "iu" and (y < 0).any():
        raise InvalidInputError(f"{path}: field 'y' holds negative labels (min {y.min()}); labels must be >= 0 or strings.")
    if y.dtype.kind not in "iuUS":
        raise InvalidInputError(f"{path}: field 'y' must hold integer or string labels; got dtype {y.dtype}.")
    sources = [f"{path.name}[{i}]" for i in range(len(X))]
    report = CleaningReport()
    if X.dtype.kind == "f":
        bad = nonfinite_mask(X)
        for i in np.flatnonzero(bad):
            report.drop(i, "nan: image holds NaN or infinite values", sources[i])
        X, y, sources = X[~bad], y[~bad], [s for s, b in zip(sources, bad) if not b]
        scale = 255.0 if len(X) and float(X.max()) <= 1.0 else 1.0
        X = np.clip(np.rint(X * scale), 0, 255).astype(np.uint8)
    elif X.dtype != np.uint8:
        X = np.clip(X, 0, 255).astype(np.uint8)
    if X.shape[-1] == 4:
        X = X[..., :3]
    return LabeledData(X, y, sources, report)


def _read_idx(path: Path) -> np.ndarray:
    try:
        raw = gzip.open(path).read()
    except (OSError, EOFError) as exc:
        raise InvalidInputError(f"{path}: not a readable gzip idx file ({exc}).") from None
    nd = raw[3]
    dims = np.frombuffer(raw[4 : 4 + 4 * nd], ">u4").astype(int)
    return np.frombuffer(raw[4 + 4 * nd :], np.uint8).reshape(dims).copy()  # writable, like every loader


def load_mnist(path: Path, split: str = "train") -> LabeledData:
    """MNIST from its four gzipped idx files in ``path``; ``split`` is ``"train"`` or ``"test"``."""
    if split not in MNIST_FILES:
        raise InvalidInputError(f"`split` must be 'train' or 'test'; got {split!r}.")
    xf, yf = MNIST_FILES[split]
    X, y = _read_idx(path / xf), _read_idx(path / yf).astype(np.int64)
    return LabeledData(X[..., None], y, [f"{xf}[{i}]" for i in range(len(X))])


def load_image_folder(root: Path) -> LabeledData:
    """An ImageFolder tree: ``root/<class>/<image>``. Unreadable and non-image files are skipped
    with a reason; mixed modes become RGB (or stay grey if all are grey); mixed sizes are resized
    to the most common size."""
    from PIL import Image, UnidentifiedImageError

    classes = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise InvalidInputError(f"--data {root}: no class sub-folders found (expected root/<class>/<image>).")
    report = CleaningReport()
    images, labels, sources = [], [], []
    index = 0
    for cls in classes:
        for f in sorted(p for p in cls.rglob("*") if p.is_file() and not p.name.startswith(".")):
            rel = str(f.relative_to(root))
            if f.suffix.lower() not in IMAGE_SUFFIXES:
                report.drop(index, f"not an image: unsupported file type {f.suffix or '(none)'}", rel)
                index += 1
                continue
            try:
                with Image.open(f) as im:
                    im.load()
                    grey = im.mode in ("1", "L", "I", "I;16", "F") or (im.mode == "P" and _palette_is_grey(im))
                    images.append((im.convert("L") if grey else im.convert("RGB")).copy())
                labels.append(cls.name)
                sources.append(rel)
            except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
                report.drop(index, f"unreadable: {exc.__class__.__name__}: {str(exc)[:80]}", rel)
            index += 1
    if not images:
        raise InvalidInputError(f"--data {root}: no readable images found.")
    mode = "RGB" if any(im.mode == "RGB" for im in images) else "L"
    size = Counter(im.size for im in images).most_common(1)[0][0]
    arrays = []
    for im in images:
        im = im.convert(mode)
        if im.size != size:
            im = im.resize(size, Image.BILINEAR)
        a = np.asarray(im, dtype=np.uint8)
        arrays.append(a[..., None] if a.ndim == 2 else a)
    return LabeledData(np.stack(arrays), np.asarray(labels), sources, report)


def _palette_is_grey(im) -> bool:
    rgb = np.asarray(im.convert("RGB"))
    return bool((rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all())


def clean_images(data: LabeledData, *, outlier_threshold: float = 5.0) -> LabeledData:
    """Drop empty (constant) images, exact duplicates and per-class outliers of mean intensity and
    contrast (modified z-score above ``outlier_threshold``); each drop is recorded with its reason."""
    X, y = data.X, data.y
    report = data.report
    sources = data.sources or [f"item {i}" for i in range(len(y))]
    flat = X.reshape(len(X), -1).astype(np.float32)
    contrast = flat.std(axis=1)
    drop = np.zeros(len(X), dtype=bool)
    for i in np.flatnonzero(contrast == 0):
        report.drop(i, "empty: constant image", sources[i])
        drop[i] = True
    keys = [content_key(x) + str(label).encode() for x, label in zip(X, y)]
    for i, j in duplicate_of(keys).items():
        if not drop[i]:
            report.drop(i, f"duplicate: same pixels and label as {sources[j]}", sources[i])
            drop[i] = True
    stats = np.stack([flat.mean(axis=1), contrast], axis=1)
    alive = np.flatnonzero(~drop)
    out = robust_outlier_mask(stats[alive], y[alive], threshold=outlier_threshold)
    for i in alive[out]:
        report.drop(i, f"outlier: mean intensity {stats[i, 0]:.1f} / contrast {stats[i, 1]:.1f} far from its class", sources[i])
        drop[i] = True
    keep = np.flatnonzero(~drop)
    report.kept = len(keep)
    if report.dropped:
        logger.info("cleaning: %s", report.summary())
    return LabeledData(X[keep], y[keep], [sources[i] for i in keep], report, dict(data.meta))
