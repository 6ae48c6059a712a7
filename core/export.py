"""Writing results safely: sanitised folder names, atomic output directories, manifest, run record."""

from __future__ import annotations

import contextlib
import csv
import json
import logging
import math
import os
import re
import shutil
import tempfile
import unicodedata
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np

from imagina.core.errors import InvalidInputError

logger = logging.getLogger(__name__)

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_RESERVED = {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(1, 10)), *(f"LPT{i}" for i in range(1, 10))}


def sanitize_label(label: object, *, max_length: int = 64) -> str:
    """A safe folder or file name for a class label.

    ASCII-folds, replaces every run of characters outside ``[A-Za-z0-9._-]`` by ``_``, strips
    leading dots (no hidden files, no ``..``), avoids Windows reserved names and never returns ''.
    """
    text = unicodedata.normalize("NFKD", str(label)).encode("ascii", "ignore").decode("ascii")
    text = _UNSAFE.sub("_", text).strip("._-")[:max_length]
    if not text or text.upper() in _RESERVED:
        text = f"class_{text}" if text else "class"
    return text


def unique_folder_names(labels: Sequence[object]) -> dict[object, str]:
    """Map each distinct label to a sanitised name, suffixing ``-2``, ``-3``... where two collide."""
    out: dict[object, str] = {}
    used: set[str] = set()
    for label in labels:
        if label in out:
            continue
        base = name = sanitize_label(label)
        i = 2
        while name.lower() in used:
            name, i = f"{base}-{i}", i + 1
        used.add(name.lower())
        out[label] = name
    return out


def output_items(source: str | os.PathLike) -> str:
    """Where the items of ``source`` are when it is an imagina output folder itself (``manifest.csv``
    beside ``samples/``, as ``augment``, ``screen`` and ``generate`` write it): its ``samples/``; any
    other source as it is. A ``samples/`` the manifest lists nothing in (a "don't use" verdict) is a
    one-line error that points to ``reserve/``, where the kept items wait."""
    root = Path(source)
    samples = root / "samples"
    if not (root.is_dir() and samples.is_dir() and (root / "manifest.csv").is_file()):
        return str(source)
    try:
        with (root / "manifest.csv").open(newline="", encoding="utf-8") as fh:
            listed = sum(1 for row in csv.DictReader(fh) if (row.get("path") or "").startswith("samples/"))
    except (OSError, UnicodeDecodeError, csv.Error):
        return str(samples)
    if not listed:
        hint = f"; its kept items are in {root / 'reserve'}" if (root / "reserve").is_dir() else ""
        raise InvalidInputError(f"{root} is an imagina output whose samples/ is empty (verdict \"don't use\"){hint}.")
    logger.info("%s is an imagina output: reading its samples/", root)
    return str(samples)


def output_labels(folder: str | os.PathLike) -> dict[str, str]:
    """For ``samples/`` or ``reserve/`` of an imagina output: each class folder's name → the label it
    was written for, read from the manifest beside it (folder names are sanitised, so "a/b" became
    "a_b"); empty for any other folder. With it, one command's output is the next one's input."""
    folder = Path(folder)
    mapping: dict[str, set[str]] = {}
    for listing in ("manifest.csv", "reserve.csv"):
        path = folder.parent / listing
        if not path.is_file():
            continue
        try:
            with path.open(newline="", encoding="utf-8") as fh:
                for row in csv.DictReader(fh):
                    parts = (row.get("path") or "").split("/")
                    if len(parts) == 3 and parts[0] == folder.name and row.get("label") is not None:
                        mapping.setdefault(parts[1], set()).add(row["label"])
        except (OSError, UnicodeDecodeError, csv.Error):
            return {}
    return {name: labels.pop() for name, labels in mapping.items() if len(labels) == 1}


def check_output_dir(out: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Refuse an existing non-empty ``out`` unless ``overwrite``, a file in its place, and a place
    where no folder can be made (a file among its parents, or a parent this process cannot write):
    checked before any training, since the output is written only at the end."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise InvalidInputError(f"--out {out} is a file, not a directory.")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise InvalidInputError(f"--out {out} exists and is not empty; pass --overwrite (overwrite=True) to replace it.")
    for parent in out.absolute().parents:  # the nearest existing one is where the folders get made
        if parent.exists():
            if not parent.is_dir():
                raise InvalidInputError(f"--out {out}: {parent} is a file, so no folder can be made under it.")
            if not os.access(parent, os.W_OK | os.X_OK):
                raise InvalidInputError(f"--out {out}: {parent} is not writable.")
            break
    return out


def _umask() -> int:
    """The process's umask, read from /proc where it can be (``os.umask`` can only read it by setting it)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def temporary_dir(parent: Path, name: str) -> Path:
    """A temporary folder beside ``parent / name`` to be renamed into place, with the permissions a
    plain ``mkdir`` would give it (``mkdtemp`` makes it private, 0700, and the rename would keep that)."""
    tmp = Path(tempfile.mkdtemp(dir=parent, prefix=f".{name}.tmp-"))
    os.chmod(tmp, 0o777 & ~_umask())
    return tmp


def temporary_file(parent: Path, name: str) -> tuple[int, str]:
    """``mkstemp`` beside ``parent / name``, with the permissions ``open(..., "w")`` would give (not 0600)."""
    fd, tmp = tempfile.mkstemp(dir=parent, prefix=f".{name}.", suffix=".tmp")
    os.chmod(tmp, 0o666 & ~_umask())
    return fd, tmp


@contextlib.contextmanager
def atomic_output_dir(out: str | os.PathLike, *, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary sibling of ``out`` to write into; on success it replaces ``out``.

    On any error the temporary directory is removed and ``out`` is left as it was, so a run never
    leaves a half-written output behind.
    """
    out = check_output_dir(out, overwrite=overwrite)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_dir(out.parent, out.name)
    try:
        yield tmp
        if out.exists():
            old = out.parent / f".{out.name}.old-{os.getpid()}"
            os.replace(out, old)
            os.replace(tmp, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _plain(value: object) -> object:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return round(value, 6)
    return value


def write_manifest(path: Path, rows: Sequence[Mapping[str, object]], *, columns: Sequence[str] = ("path", "label")) -> None:
    """Write ``rows`` (dicts sharing keys) as CSV, ``columns`` first; floats rounded to 6 digits. An empty
    manifest still has its header, so a reader finds the columns it expects."""
    fields: list[str] = list(columns)
    for row in rows:
        for key in row:
            if key not in fields:
                fields.append(key)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: _plain(v) for k, v in row.items()})


def to_jsonable(obj: object) -> object:
    """Recursively convert numpy scalars/arrays, paths and tuples for ``json.dumps``; NaN and
    infinities become ``null`` so that the file is strict JSON."""
    if isinstance(obj, Mapping):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return to_jsonable(obj.item())
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def write_json(path: Path, obj: object) -> None:
    path.write_text(json.dumps(to_jsonable(obj), indent=2), encoding="utf-8")


def new_figure(figsize: tuple[float, float]):
    """A :class:`matplotlib.figure.Figure` on its own Agg canvas: drawing and ``savefig`` need neither
    pyplot nor a change of the caller's backend, and nothing is left open afterwards."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize)
    FigureCanvasAgg(fig)
    return fig
