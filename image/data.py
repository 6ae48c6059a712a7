"""Image loaders (ImageFolder tree, ``.npz``, MNIST idx files, scikit-learn's digits) and cleaning.

Every loader returns :class:`~imagina.core.modality.LabeledData` with ``X`` uint8 of shape
(n, H, W, C), C in {1, 3}, and ``y`` string labels (digits and integer ``.npz`` labels become
``"0"``, ``"1"``...). Each file is read behind one guard: an unreadable, truncated or oversized image
is skipped with the reason in ``report``; a bad dataset as a whole gets one
:class:`~imagina.core.errors.InvalidInputError` naming the path or field. Limits: :data:`MAX_PIXELS`
per image, :data:`MAX_ARRAY_BYTES` per ``.npz`` array or idx file.
"""

from __future__ import annotations

import gzip
import logging
import math
import warnings
from collections import Counter
from pathlib import Path

import numpy as np

from imagina.core.errors import InvalidInputError
from imagina.core.modality import LabeledData
from imagina.core.preprocessing import (
    CleaningReport,
    check_source,
    content_key,
    drop_small_classes,
    duplicate_of,
    nonfinite_mask,
    resolve_split,
    robust_outlier_mask,
    valid_unicode,
    visible_files,
)

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}
MNIST_FILES = {"train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
               "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")}
#: The largest image read (width × height, as its header declares): 40 megapixels. Larger files,
#: decompression bombs among them, are skipped with the reason before any pixel is decoded.
MAX_PIXELS = 40_000_000
#: The largest ``.npz`` array or uncompressed MNIST idx file read: 4 GiB.
MAX_ARRAY_BYTES = 4 * 2**30
#: File modes that the run reads as L or RGB and writes back as they were (RGBA / LA with an opaque
#: alpha channel, 16-bit grey scaled by 65535 / 255), when every image of a folder has that mode.
WRITABLE_MODES = ("RGBA", "LA", "I;16")
#: How files in other modes become the run's L or RGB, for the warning that names them.
_CONVERSION_NOTE = ("alpha channels dropped as torchvision's ImageFolder does, palettes expanded, 16-bit and "
                    "float grey scaled to 8 bits, grey made RGB where other images are colour")


def load_images(source: str, *, split: str | None = None, per_class: int | None = None, seed: int = 0,
                clean: bool = True, outlier_threshold: float = 5.0, drop_outliers: bool = False,
                min_per_class: int = 2) -> LabeledData:
    """Load images from ``source``, clean them, then draw ``per_class`` of every class.

    ``source`` is ``"digits"`` (scikit-learn's bundled 8×8 digits), a ``.npz`` file with arrays
    ``x`` and ``y``, a folder of MNIST idx files, or an ImageFolder tree (one sub-folder per class),
    possibly under ``train/`` and ``test/`` sub-folders. ``split`` picks the MNIST files or the split
    sub-folder (default ``train``); a source without splits is used whole and ``meta["split"]`` is
    None. ``per_class`` keeps a random subset of that many per class (stable for ``seed``).
    Cleaning drops broken items (constant images) and exact duplicates, each with its reason, and
    flags per-class outliers of mean intensity and contrast in the report but keeps them (with 10
    images per class every real one counts) unless ``drop_outliers``. ``clean=False`` keeps
    duplicates and constant images too (a test split stays whole); unreadable files and NaN items
    are dropped either way.
    """
    check_source(source, per_class)
    chosen = None
    if source == "digits":
        data = load_digits()
    else:
        path = Path(source)
        if not path.exists():
            raise InvalidInputError(f"image data {path} does not exist.")
        if path.is_file() and path.suffix.lower() == ".npz":
            data = load_npz(path)
        elif path.is_dir() and (path / MNIST_FILES["train"][0]).exists():
            chosen = split or "train"
            data = load_mnist(path, chosen)
        elif path.is_dir():
            folder, chosen = resolve_split(path, split)
            data = load_image_folder(folder)
        else:
            raise InvalidInputError(f"{path}: expected 'digits', a .npz file or a folder of images.")
    data.meta.update({"source": str(source), "split": chosen})
    if clean:
        data = clean_images(data, outlier_threshold=outlier_threshold, drop_outliers=drop_outliers)
        keep = drop_small_classes(data.y.tolist(), data.report, data.sources, minimum=min_per_class, noun="image")
        if len(keep) < len(data):
            data = data.subset(keep)
            data.report.kept = len(data)
    else:
        data.report.kept = len(data)
    if per_class is not None:  # after cleaning: a drop never leaves a class short of its draw
        data = data.per_class(per_class, seed=seed)
        data.report = data.report.drawn(len(data))
    _check_classes(data, source, min_per_class if clean else 1)  # a test set may hold one image of a class
    return data


def _check_classes(data: LabeledData, source: str, min_per_class: int) -> None:
    counts = Counter(data.y.tolist())
    if len(counts) < 2:
        raise InvalidInputError(f"{source}: needs at least 2 classes; found {len(counts)} ({', '.join(map(str, counts))}).")
    small = [str(c) for c, n in counts.items() if n < min_per_class]
    if small:
        raise InvalidInputError(f"{source}: class(es) {', '.join(small)} have fewer than {min_per_class} images after cleaning.")


def _string_labels(y: np.ndarray) -> np.ndarray:
    """Labels as str: integers become ``"0"``, ``"1"``...; bytes are decoded (UTF-8)."""
    if y.dtype.kind == "S":
        return np.asarray([valid_unicode(v.decode("utf-8", "replace")) for v in y.tolist()], dtype=str)
    return np.asarray([valid_unicode(str(v)) for v in y.tolist()], dtype=str)


def load_digits() -> LabeledData:
    """scikit-learn's 1,797 digits (8×8, 17 grey levels) as uint8 (n, 8, 8, 1), labels ``"0"``..``"9"``.
    The set has no test split: a held-out test set must come from elsewhere."""
    from sklearn.datasets import load_digits as sk_digits

    d = sk_digits()
    X = np.rint(d.images * (255.0 / 16.0)).astype(np.uint8)[..., None]
    return LabeledData(X, _string_labels(d.target), [f"digits[{i}]" for i in range(len(X))])


def load_npz(path: Path) -> LabeledData:
    """``x``: (n, H, W[, C]) uint8, or float in [0, 1] or [0, 255] (NaN items dropped); ``y``: (n,)
    integer or string labels, returned as str. A truncated, empty or oversized archive is one error."""
    try:
        with np.load(path, allow_pickle=False) as f:
            if "x" not in f.files or "y" not in f.files:
                raise InvalidInputError(f"{path}: needs arrays 'x' and 'y'; found {', '.join(f.files) or 'none'}.")
            for name in ("x", "y"):
                _check_npz_member(path, f.zip, name)
            X, y = f["x"], f["y"]
    except InvalidInputError:
        raise
    except Exception as exc:  # BadZipFile, EOFError, zlib.error, pickled objects, ... : the bytes are bad
        raise InvalidInputError(f"{path}: not a readable .npz file ({_why(exc)}).") from None
    if X.dtype.kind not in "uif":
        raise InvalidInputError(f"{path}: field 'x' must hold numbers; got dtype {X.dtype}.")
    if X.ndim == 3:
        X = X[..., None]
    if X.ndim != 4 or X.shape[-1] not in (1, 3, 4) or 0 in X.shape[1:]:
        raise InvalidInputError(f"{path}: field 'x' must have shape (n, H, W) or (n, H, W, 1|3|4); got {X.shape}.")
    if len(X) == 0:
        raise InvalidInputError(f"{path}: field 'x' holds no images.")
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
    y = _string_labels(y)
    sources = [f"{valid_unicode(path.name)}[{i}]" for i in range(len(X))]
    report = CleaningReport()
    if X.dtype.kind == "f":
        bad = nonfinite_mask(X)
        if bad.all():
            raise InvalidInputError(f"{path}: every image in field 'x' holds NaN or infinite values.")
        for i in np.flatnonzero(bad):
            report.drop(i, "nan: image holds NaN or infinite values", sources[i])
        X, y, sources = X[~bad], y[~bad], [s for s, b in zip(sources, bad) if not b]
        scale = 255.0 if float(X.max()) <= 1.0 else 1.0
        X = np.clip(np.rint(X * scale), 0, 255).astype(np.uint8)
    elif X.dtype != np.uint8:
        X = np.clip(X, 0, 255).astype(np.uint8)
    if X.shape[-1] == 4:
        X = X[..., :3]
    return LabeledData(X, y, sources, report)


def _check_npz_member(path: Path, archive, name: str) -> None:
    """Refuse an array whose header declares more bytes than its archive member holds (truncated)
    or than :data:`MAX_ARRAY_BYTES`, or images above :data:`MAX_PIXELS`, before reading it."""
    info = archive.getinfo(f"{name}.npy")
    with archive.open(info) as fh:
        version = np.lib.format.read_magic(fh)
        read_header = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}.get(version)
        if read_header is None:
            return  # a newer format: numpy checks it while reading
        shape, _, dtype = read_header(fh)
        header_bytes = fh.tell()
    size = math.prod(shape) * dtype.itemsize
    if size > MAX_ARRAY_BYTES:
        raise InvalidInputError(f"{path}: field {name!r} declares {size / 2**30:.1f} GiB (shape {shape}); the limit is "
                                f"{MAX_ARRAY_BYTES // 2**30} GiB.")
    if size + header_bytes > info.file_size:
        raise InvalidInputError(f"{path}: field {name!r} declares shape {shape} but holds fewer bytes (a truncated file).")
    if name == "x" and len(shape) >= 3 and shape[1] * shape[2] > MAX_PIXELS:
        raise InvalidInputError(f"{path}: images of {shape[1]}x{shape[2]} pixels exceed the limit of {MAX_PIXELS:,}.")


def _why(exc: BaseException) -> str:
    """``ExceptionName: first line`` of a library error, short enough for a one-line message."""
    first = str(exc).splitlines()[0][:80] if str(exc).strip() else ""
    return f"{exc.__class__.__name__}: {first}" if first else exc.__class__.__name__


def _read_idx(path: Path) -> np.ndarray:
    """An idx file (gzipped): magic ``00 00 08 nd``, nd big-endian sizes, then uint8 data."""
    try:
        with gzip.open(path) as fh:
            raw = fh.read(MAX_ARRAY_BYTES + 1)
    except Exception as exc:  # OSError, EOFError, zlib.error: a damaged gzip file
        raise InvalidInputError(f"{path}: not a readable gzip idx file ({_why(exc)}).") from None
    if len(raw) > MAX_ARRAY_BYTES:
        raise InvalidInputError(f"{path}: larger than the limit of {MAX_ARRAY_BYTES // 2**30} GiB uncompressed.")
    nd = raw[3] if len(raw) >= 4 and raw[:3] == b"\x00\x00\x08" else 0
    dims = np.frombuffer(raw[4 : 4 + 4 * nd], ">u4").astype(np.int64)
    if not 1 <= nd <= 3 or len(dims) != nd or int(np.prod(dims)) != len(raw) - 4 - 4 * nd:
        raise InvalidInputError(f"{path}: not an idx file of unsigned bytes, or its size does not match its header.")
    return np.frombuffer(raw[4 + 4 * nd :], np.uint8).reshape(dims).copy()  # writable, like every loader


def load_mnist(path: Path, split: str = "train") -> LabeledData:
    """MNIST from its four gzipped idx files in ``path``; ``split`` is ``"train"`` or ``"test"``."""
    if split not in MNIST_FILES:
        raise InvalidInputError(f"`split` must be 'train' or 'test'; got {split!r}.")
    xf, yf = MNIST_FILES[split]
    X, y = _read_idx(path / xf), _read_idx(path / yf)
    if X.ndim != 3 or y.ndim != 1 or len(X) != len(y):
        raise InvalidInputError(f"{path}: {xf} must hold (n, H, W) images and {yf} one label per image; "
                                f"got shapes {X.shape} and {y.shape}.")
    return LabeledData(X[..., None], _string_labels(y), [f"{xf}[{i}]" for i in range(len(X))])


def load_image_folder(root: Path) -> LabeledData:
    """An ImageFolder tree: ``root/<class>/<image>`` (sub-folders of a class are read too; symbolic
    links to folders are not followed). Unreadable, oversized and non-image files are skipped with a
    reason; mixed modes become RGB (or stay grey if all are grey); mixed sizes are resized to the most
    common size."""
    from PIL import Image

    classes = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise InvalidInputError(f"{root}: no class sub-folders found (expected root/<class>/<image>).")
    report = CleaningReport()
    images, labels, sources = [], [], []
    index = 0
    for cls in classes:
        for f in visible_files(cls):
            rel = valid_unicode(str(f.relative_to(root)))
            if f.suffix.lower() not in IMAGE_SUFFIXES:
                reason = f"not an image: unsupported file type {valid_unicode(f.suffix) or '(none)'}"
            else:
                image, reason = _read_image(f)
            if reason is None:
                images.append(image)
                labels.append(valid_unicode(cls.name))
                sources.append(rel)
            else:
                report.drop(index, reason, rel)
            index += 1
    if not images:
        raise InvalidInputError(f"{root}: no readable images found ({report.summary()}).")
    mode = "RGB" if any(im.mode == "RGB" for im in images) else "L"
    size = Counter(im.size for im in images).most_common(1)[0][0]
    converted = Counter(im.info["mode"] for im in images if im.info["mode"] != mode)
    modes = {im.info["mode"] for im in images}
    # a mode every file shares and that can be written back is: the samples are then drop-in
    source_mode = next(iter(modes)) if len(modes) == 1 and next(iter(modes)) in WRITABLE_MODES else None
    if converted:  # what the run reads (and writes back) differs from these files: say so once
        logger.warning("%s: read %s as %s (%s); the samples are written as %s", root,
                       ", ".join(f"{n} {m} image(s)" for m, n in sorted(converted.items())), mode,
                       _CONVERSION_NOTE, f"{source_mode}, as your files" if source_mode else mode)
    arrays = []
    for im in images:
        im = im.convert(mode)
        if im.size != size:
            im = im.resize(size, Image.BILINEAR)
        a = np.asarray(im, dtype=np.uint8)
        arrays.append(a[..., None] if a.ndim == 2 else a)
    meta = {"converted_modes": dict(converted)} if converted else {}
    if source_mode:
        meta["source_mode"] = source_mode
    return LabeledData(np.stack(arrays), np.asarray(labels, dtype=str), sources, report, meta)


def _read_image(path: Path):
    """``(image, None)``: a decoded PIL image in mode L or RGB, its file's mode in ``image.info["mode"]``;
    or ``(None, reason)``. The size in the header is checked against :data:`MAX_PIXELS` before any
    pixel is decoded."""
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # PIL's own bomb warning: MAX_PIXELS is the limit here
            with Image.open(path) as im:
                width, height = im.size
                if width * height > MAX_PIXELS:
                    return None, f"too large: {width}x{height} pixels > {MAX_PIXELS:,}"
                im.load()
                if im.mode.startswith("I") or im.mode == "F":  # PIL's convert("L") clips these at 255
                    out = _deep_to_8bit(im)
                else:
                    grey = im.mode in ("1", "L", "LA") or (im.mode == "P" and _palette_is_grey(im))
                    out = (im.convert("L") if grey else im.convert("RGB")).copy()
                out.info["mode"] = im.mode
                return out, None
    except Image.DecompressionBombError as exc:
        return None, f"too large: {str(exc).split(',')[0][:80]}"
    except Exception as exc:  # UnidentifiedImageError, OSError (truncated), SyntaxError, ValueError, ...: bad bytes
        return None, f"unreadable: {_why(exc)}"


def _deep_to_8bit(im):
    """A 16-bit, 32-bit integer or float grey image as 8-bit L, scaled, not clipped: 16-bit modes by
    255 / 65535, 32-bit integers the same when any value exceeds 255, floats by 255 when they lie in
    [0, 1]. (PIL's ``convert("L")`` clips at 255, which turned a 16-bit scan into a white square.)"""
    from PIL import Image

    a = np.asarray(im, dtype=np.float64)
    if im.mode.startswith("I;16") or (im.mode.startswith("I") and a.max(initial=0) > 255):
        a = a * (255.0 / 65535.0)
    elif im.mode == "F" and a.max(initial=0) <= 1.0:
        a = a * 255.0
    return Image.fromarray(np.clip(np.rint(a), 0, 255).astype(np.uint8), "L")


def _palette_is_grey(im) -> bool:
    rgb = np.asarray(im.convert("RGB"))
    return bool((rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all())


def clean_images(data: LabeledData, *, outlier_threshold: float = 5.0, drop_outliers: bool = False) -> LabeledData:
    """Drop empty (constant) images and exact duplicates, each recorded with its reason; flag per-class
    outliers of mean intensity and contrast (modified z-score above ``outlier_threshold``) in the
    report and keep them, or drop them too with ``drop_outliers``."""
    X, y = data.X, data.y
    report = data.report
    sources = data.sources or [f"item {i}" for i in range(len(y))]
    if len(X) == 0:
        return data
    mean, contrast = _mean_and_std(X.reshape(len(X), -1))
    drop = np.zeros(len(X), dtype=bool)
    for i in np.flatnonzero(contrast == 0):
        report.drop(i, "empty: constant image", sources[i])
        drop[i] = True
    keys = [content_key(x) + str(label).encode() for x, label in zip(X, y)]
    for i, j in duplicate_of(keys).items():
        if not drop[i]:
            report.drop(i, f"duplicate: same pixels and label as {sources[j]}", sources[i])
            drop[i] = True
    stats = np.stack([mean, contrast], axis=1)
    alive = np.flatnonzero(~drop)
    out = robust_outlier_mask(stats[alive], y[alive], threshold=outlier_threshold)
    for i in alive[out]:
        reason = f"outlier: mean intensity {stats[i, 0]:.1f} / contrast {stats[i, 1]:.1f} far from its class"
        if drop_outliers:
            report.drop(i, reason, sources[i])
            drop[i] = True
        else:
            report.flag(i, reason, sources[i])
    keep = np.flatnonzero(~drop)
    report.kept = len(keep)
    if report.dropped or report.flagged:
        logger.info("cleaning: %s", report.summary())
    return LabeledData(X[keep], y[keep], [sources[i] for i in keep], report, dict(data.meta))


def _mean_and_std(flat: np.ndarray, chunk: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """Per-row mean and standard deviation of ``flat`` (n, d) uint8, float32 (n,) each, computed
    ``chunk`` rows at a time: the same values as on one float32 copy of the whole array, without it
    (60,000 MNIST images are 188 MB as float32)."""
    mean, std = np.empty(len(flat), np.float32), np.empty(len(flat), np.float32)
    for s in range(0, len(flat), chunk):
        block = flat[s : s + chunk].astype(np.float32)
        mean[s : s + chunk], std[s : s + chunk] = block.mean(axis=1), block.std(axis=1)
    return mean, std
