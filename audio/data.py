"""Loading and cleaning labelled audio: class folders, file-name patterns or a CSV manifest.

Every clip is read with soundfile (librosa as a fallback), mixed down to mono, resampled to one
rate, its leading and trailing silence trimmed, peak-normalised and trimmed or zero-padded to one
length. A very long file is never decoded whole: only its first ``max_seconds`` are read (or it is
rejected, by ``long_files="reject"``). Files that cannot be used are dropped into a
:class:`~imagina.core.preprocessing.CleaningReport` with the reason; nothing raises a traceback.
Limits: ``max_seconds`` decoded per clip (default 30), a file's own rate within
:data:`SAMPLE_RATE_RANGE`, at most :data:`MAX_CHANNELS` channels.
"""

from __future__ import annotations

import csv
import logging
import math
import os
import re
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from imagina.core.errors import InvalidInputError, check_choice, check_float, check_int
from imagina.core.modality import LabeledData
from imagina.core.preprocessing import (
    CleaningReport,
    check_source,
    content_key,
    drop_small_classes,
    duplicate_of,
    resolve_split,
    valid_unicode,
    visible_files,
)

logger = logging.getLogger(__name__)

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".aif", ".aiff")
#: Magic bytes of the containers above; a file with an audio extension but none of these is not audio.
_MAGIC = (b"RIFF", b"RF64", b"fLaC", b"OggS", b"FORM")
FSDD_TEST_INDICES = (0, 1, 2, 3, 4)
#: The sample rates (Hz) a file may declare; others are skipped as unsupported.
SAMPLE_RATE_RANGE = (1000, 384_000)
#: The most channels a file may declare (they are mixed down to mono).
MAX_CHANNELS = 64


class AudioReadError(Exception):
    """Raised by :func:`read_audio` with a short reason ("zero-length", "unreadable: ...")."""


@dataclass(frozen=True, kw_only=True)
class AudioLoadConfig:
    """How clips are read and brought to one shape.

    Parameters
    ----------
    sample_rate : int
        Target rate in Hz; other rates are resampled.
    n_samples : int
        Fixed clip length in samples (8192 = 1.024 s at 8 kHz covers 99.4 % of FSDD whole).
    max_seconds : float
        Read at most this many seconds of a file (a 10-minute file is never decoded whole).
    long_files : {"trim", "reject"}
        A file longer than ``max_seconds``: keep its beginning, or drop it with the reason.
    trim_db : float or None
        Trim leading and trailing frames quieter than ``peak - trim_db`` dB; None keeps them.
    pad : {"end", "center"}
        Where a short clip gets its zeros.
    normalize : {"peak", "none"}
        Scale each clip to a peak of ``peak`` (levels differ a lot between recordings).
    silence_db : float
        A clip whose RMS is below this (dBFS, before normalisation) is dropped as silent.
    clip_fraction : float
        A clip with more than this fraction of samples at full scale is dropped as clipped.
    """

    sample_rate: int = 8000
    n_samples: int = 8192
    max_seconds: float = 30.0
    long_files: str = "trim"
    trim_db: float | None = 40.0
    pad: str = "end"
    normalize: str = "peak"
    peak: float = 0.9
    silence_db: float = -60.0
    clip_fraction: float = 0.01

    def __post_init__(self) -> None:
        check_int("sample_rate", self.sample_rate, minimum=1000, maximum=192_000)
        check_int("n_samples", self.n_samples, minimum=64)
        check_float("max_seconds", self.max_seconds, minimum=self.n_samples / self.sample_rate)
        check_choice("long_files", self.long_files, ("trim", "reject"))
        if self.trim_db is not None:
            check_float("trim_db", self.trim_db, minimum=1.0)
        check_choice("pad", self.pad, ("end", "center"))
        check_choice("normalize", self.normalize, ("peak", "none"))
        check_float("peak", self.peak, minimum=0.01, maximum=1.0)
        check_float("silence_db", self.silence_db, maximum=0.0)
        check_float("clip_fraction", self.clip_fraction, minimum=0.0, maximum=1.0)

    @property
    def duration(self) -> float:
        return self.n_samples / self.sample_rate


# --------------------------------------------------------------------------- file-name patterns
def compile_pattern(pattern: str) -> re.Pattern:
    """Compile a file-name pattern such as ``"{label}_{speaker}_{index}"`` into an anchored regex.

    ``{name}`` captures a non-empty field (no path separator), ``*`` matches anything, every other
    character is literal. The pattern is matched against the file name without its extension and
    must contain ``{label}``.
    """
    if not isinstance(pattern, str) or "{label}" not in pattern:
        raise InvalidInputError(f"`pattern` must contain '{{label}}', e.g. '{{label}}_{{speaker}}_{{index}}'; got {pattern!r}.")
    out, pos, seen = ["^"], 0, set()
    for m in re.finditer(r"\{([A-Za-z_][A-Za-z0-9_]*)\}|\*", pattern):
        out.append(re.escape(pattern[pos : m.start()]))
        if m.group(0) == "*":
            out.append(".*?")
        else:
            name = m.group(1)
            if name in seen:
                raise InvalidInputError(f"`pattern` names the field {{{name}}} twice; got {pattern!r}.")
            seen.add(name)
            out.append(f"(?P<{name}>[^/\\\\]+?)")
        pos = m.end()
    out.append(re.escape(pattern[pos:]) + "$")
    return re.compile("".join(out))


# --------------------------------------------------------------------------- discovery
@dataclass
class _Entry:
    path: Path
    label: str | None
    fields: dict


def _is_audio_name(p: Path) -> bool:
    return p.suffix.lower() in AUDIO_EXTENSIONS


def discover(source: str | os.PathLike, *, label_from: str = "auto", pattern: str | None = None) -> tuple[list[_Entry], str]:
    """List the clips of a dataset with their labels. Returns ``(entries, how)``.

    ``label_from``: ``"folder"`` (first sub-folder under ``source``), ``"pattern"`` (file name),
    ``"manifest"`` (``source`` is a CSV with columns ``path,label``) or ``"auto"``: a CSV file is a
    manifest, a ``pattern`` means file names, audio in two or more sub-folders means class folders,
    and otherwise the label is the file name up to its first underscore (``{label}_*``).
    """
    check_choice("label_from", label_from, ("auto", "folder", "pattern", "manifest"))
    root = Path(source)
    if not root.exists():
        raise InvalidInputError(f"audio data {root} does not exist.")
    if label_from == "manifest" or (label_from == "auto" and root.is_file()):
        return _read_manifest(root), "manifest"
    if not root.is_dir():
        raise InvalidInputError(f"audio data {root} must be a folder of audio files or a CSV manifest.")
    files = [p for p in visible_files(root) if _is_audio_name(p)]
    if not files:
        raise InvalidInputError(f"no audio files ({', '.join(AUDIO_EXTENSIONS)}) under {root}.")
    if label_from == "auto":
        tops = {p.relative_to(root).parts[0] for p in files if len(p.relative_to(root).parts) > 1}
        at_root = any(len(p.relative_to(root).parts) == 1 for p in files)
        if pattern is not None:
            label_from = "pattern"
        elif len(tops) >= 2 and not at_root:
            label_from = "folder"
        else:
            label_from, pattern = "pattern", "{label}_*"
    if label_from == "folder":
        entries = [_Entry(p, valid_unicode(p.relative_to(root).parts[0]), {})
                   for p in files if len(p.relative_to(root).parts) > 1]
        if not entries:
            raise InvalidInputError(f"no class sub-folders under {root}; put each class's files in its own folder or give a file-name `pattern`.")
        return entries, "folder"
    if pattern is None:
        raise InvalidInputError("`pattern` is required with label_from='pattern', e.g. '{label}_{speaker}_{index}'.")
    regex = compile_pattern(pattern)
    entries = []
    for p in files:
        m = regex.match(p.stem)
        fields = {k: valid_unicode(v) for k, v in m.groupdict().items()} if m else {}
        entries.append(_Entry(p, fields.get("label") if m else None, fields))
    if not any(e.label for e in entries):
        raise InvalidInputError(
            f"no file name under {root} matches the pattern {pattern!r} (e.g. {files[0].name!r}); "
            "set `pattern` to the names' layout, e.g. '{label}_{speaker}_{index}'."
        )
    return entries, f"pattern {pattern}"


def _read_manifest(path: Path) -> list[_Entry]:
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InvalidInputError(f"manifest {path} cannot be read as CSV ({exc.__class__.__name__}).") from None
    if not rows or not {"path", "label"} <= set(rows[0]):
        raise InvalidInputError(f"manifest {path} must be a CSV with the columns 'path' and 'label'.")
    entries = []
    for row in rows:
        p = Path(row.get("path") or "")
        label = valid_unicode((row.get("label") or "").strip()) or None
        entries.append(_Entry(p if p.is_absolute() else path.parent / p, label, {}))
    return entries


# --------------------------------------------------------------------------- reading one file
def read_audio(path: str | os.PathLike, *, max_seconds: float | None = None, long_files: str = "trim") -> tuple[np.ndarray, int, dict]:
    """Read a file as float32 mono without decoding more than ``max_seconds`` of it.

    Returns
    -------
    wave : ndarray of shape (T,), float32
    sample_rate : int
        The file's own rate.
    info : dict
        ``channels``, ``frames`` (the file's full length), ``truncated`` (bool) and ``subtype``
        (soundfile's sample format, e.g. ``"PCM_16"``; None when librosa read the file).

    Raises
    ------
    AudioReadError
        With a short reason: ``zero-length``, ``not audio``, ``unreadable``, ``too long``.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
        with path.open("rb") as fh:
            head = fh.read(4)
    except OSError as exc:
        raise AudioReadError(f"unreadable: {exc.__class__.__name__}") from None
    if size == 0:
        raise AudioReadError("zero-length: empty file")
    if head not in _MAGIC:
        raise AudioReadError("not audio: no WAV/FLAC/OGG/AIFF header")
    import soundfile as sf

    try:
        info = sf.info(str(path))
        sr, channels, frames = int(info.samplerate), int(info.channels), int(info.frames)
        subtype = str(info.subtype)
    except Exception as exc:  # libsndfile rejects truncated or corrupt headers
        return _read_fallback(path, max_seconds, exc)
    if frames <= 0:
        raise AudioReadError("zero-length: no samples")
    if not SAMPLE_RATE_RANGE[0] <= sr <= SAMPLE_RATE_RANGE[1]:
        raise AudioReadError(f"unsupported: sample rate {sr} Hz outside {SAMPLE_RATE_RANGE[0]}-{SAMPLE_RATE_RANGE[1]} Hz")
    if channels > MAX_CHANNELS:
        raise AudioReadError(f"unsupported: {channels} channels > {MAX_CHANNELS}")
    stop = frames
    truncated = False
    if max_seconds is not None and frames > max_seconds * sr:
        if long_files == "reject":
            raise AudioReadError(f"too long: {frames / sr:.1f} s > max_seconds {max_seconds:g}")
        stop, truncated = int(np.ceil(max_seconds * sr)), True
    try:
        data, _ = sf.read(str(path), frames=stop, dtype="float32", always_2d=True)
    except Exception as exc:
        raise AudioReadError(f"unreadable: {str(exc).splitlines()[0][:80] or exc.__class__.__name__}") from None
    if len(data) == 0:
        raise AudioReadError("zero-length: no samples")
    return data.mean(axis=1).astype(np.float32), sr, {"channels": channels, "frames": frames, "truncated": truncated,
                                                      "subtype": subtype}


def _read_fallback(path: Path, max_seconds: float | None, first: Exception) -> tuple[np.ndarray, int, dict]:
    try:
        import warnings

        import librosa

        with warnings.catch_warnings():  # librosa warns on every fallback to audioread
            warnings.simplefilter("ignore")
            wave, sr = librosa.load(str(path), sr=None, mono=True, duration=max_seconds)
    except Exception:
        msg = str(first).splitlines()[0] if str(first) else first.__class__.__name__
        raise AudioReadError(f"unreadable: {msg[:80]}") from None
    if wave.size == 0:
        raise AudioReadError("zero-length: no samples")
    if not SAMPLE_RATE_RANGE[0] <= sr <= SAMPLE_RATE_RANGE[1]:
        raise AudioReadError(f"unsupported: sample rate {sr} Hz outside {SAMPLE_RATE_RANGE[0]}-{SAMPLE_RATE_RANGE[1]} Hz")
    return wave.astype(np.float32), int(sr), {"channels": 1, "frames": len(wave), "truncated": False, "subtype": None}


def resample(wave: np.ndarray, orig_sr: int, target_sr: int) -> np.ndarray:
    """Band-limited resampling (torchaudio's windowed sinc). ``wave``: (..., T) float32.

    Rates whose ratio reduces to large integers (44,101 Hz to 8,000 Hz) would need a huge sinc
    kernel; those go through an FFT resampler instead."""
    if orig_sr == target_sr:
        return wave
    g = math.gcd(int(orig_sr), int(target_sr))
    if max(orig_sr, target_sr) // g > 1000:
        from scipy.signal import resample as fft_resample

        n_out = max(1, round(wave.shape[-1] * target_sr / orig_sr))
        return fft_resample(np.asarray(wave, dtype=np.float64), n_out, axis=-1).astype(np.float32)
    import torch
    import torchaudio.functional as AF

    out = AF.resample(torch.from_numpy(np.ascontiguousarray(wave, dtype=np.float32)), int(orig_sr), int(target_sr))
    return out.numpy().astype(np.float32)


def rms_db(wave: np.ndarray) -> np.ndarray:
    """RMS level in dBFS along the last axis (-inf dB floored at -200)."""
    wave = np.asarray(wave, dtype=np.float64)
    rms = np.sqrt(np.mean(wave**2, axis=-1))
    return (20 * np.log10(np.maximum(rms, 1e-10))).astype(np.float32)


def silence_bounds(wave: np.ndarray, top_db: float, frame: int = 256, hop: int = 64) -> tuple[int, int]:
    """``(start, stop)``: the samples left when leading and trailing frames whose RMS is more than
    ``top_db`` below the loudest frame are dropped (``(0, len(wave))`` for a clip of one frame)."""
    if len(wave) <= frame:
        return 0, len(wave)
    n = 1 + (len(wave) - frame) // hop
    idx = np.arange(frame)[None, :] + hop * np.arange(n)[:, None]
    level = 10 * np.log10(np.maximum(np.mean(wave[idx].astype(np.float64) ** 2, axis=1), 1e-20))
    loud = np.flatnonzero(level > level.max() - top_db)
    return int(loud[0] * hop), int(min(len(wave), loud[-1] * hop + frame))


def trim_silence(wave: np.ndarray, top_db: float, frame: int = 256, hop: int = 64) -> np.ndarray:
    """Drop leading and trailing frames whose RMS is more than ``top_db`` below the loudest frame."""
    start, stop = silence_bounds(wave, top_db, frame, hop)
    return wave[start:stop]


def fix_length(wave: np.ndarray, n_samples: int, pad: str = "end") -> np.ndarray:
    """Trim to the first ``n_samples`` or zero-pad (at the end, or both sides for ``"center"``)."""
    if len(wave) >= n_samples:
        return wave[:n_samples]
    missing = n_samples - len(wave)
    left = missing // 2 if pad == "center" else 0
    return np.pad(wave, (left, missing - left))


def check_clip(raw: np.ndarray, config: AudioLoadConfig, *, clean: bool = True) -> str | None:
    """Why a decoded clip (before any processing) is unusable, or None; ``clean=False`` checks only
    that the samples are finite (silent and clipped clips are kept)."""
    if not np.isfinite(raw).all():
        return "non-finite: NaN or infinite samples"
    if not clean:
        return None
    peak = float(np.max(np.abs(raw))) if raw.size else 0.0
    if peak == 0.0:
        return "silent: all samples are zero"
    level = float(rms_db(raw))
    if level < config.silence_db:
        return f"silent: RMS {level:.1f} dBFS < silence_db {config.silence_db:g}"
    at_full = float(np.mean(np.abs(raw) >= 0.999))
    if at_full > config.clip_fraction:
        return f"clipped: {100 * at_full:.1f}% of samples at full scale"
    return None


def process_clip(raw: np.ndarray, sr: int, config: AudioLoadConfig) -> np.ndarray:
    """Resample, trim silence, normalise and fix the length of a checked clip. Returns (n_samples,)."""
    return shape_clip(raw, sr, config)[0]


def shape_clip(raw: np.ndarray, sr: int, config: AudioLoadConfig) -> tuple[np.ndarray, float, float]:
    """:func:`process_clip`, and the seconds of leading and trailing silence it trimmed (0 and 0
    with ``trim_db=None``). Returns ``(wave (n_samples,) float32, lead_s, trail_s)``."""
    wave = resample(raw, sr, config.sample_rate)
    start, stop = 0, len(wave)
    if config.trim_db is not None:
        start, stop = silence_bounds(wave, config.trim_db)
    lead, trail = start / config.sample_rate, (len(wave) - stop) / config.sample_rate
    wave = wave[start:stop]
    if config.normalize == "peak":
        wave = wave * (config.peak / max(float(np.max(np.abs(wave))), 1e-8))
    return fix_length(wave, config.n_samples, config.pad).astype(np.float32), lead, trail


def source_format(rates: list[int], subtypes: list[str | None], labels: list[str], clip_stats: list[tuple[float, ...]],
                  config: AudioLoadConfig) -> dict:
    """What the user's own clips look like, for writing synthetic ones in the same format
    (:func:`~imagina.audio.export.match_source_format`): the most common original ``sample_rate``
    and ``subtype``, the loader's ``trim_db``, and per class the medians of ``rms_dbfs`` (the
    original clip's RMS level before normalisation), ``lead_s`` / ``trail_s`` (the leading and
    trailing silence the loader trimmed) and ``duration_s`` (the length read, at most ``max_seconds``). JSON-serialisable.

    ``clip_stats`` holds one ``(rms_dbfs, lead_s, trail_s, duration_s)`` per clip, aligned with
    ``rates``, ``subtypes`` and ``labels``."""
    stats = np.asarray(clip_stats, dtype=np.float64).reshape(len(labels), 4)
    labels_arr = np.asarray(labels)
    per_class = {}
    for label in sorted(set(labels)):
        med = np.median(stats[labels_arr == label], axis=0)
        per_class[label] = {k: round(float(v), 6) for k, v in zip(("rms_dbfs", "lead_s", "trail_s", "duration_s"), med)}
    known = [s for s in subtypes if s]
    return {"sample_rate": int(Counter(rates).most_common(1)[0][0]),
            "subtype": Counter(known).most_common(1)[0][0] if known else None,
            "trim_db": config.trim_db, "per_class": per_class}


# --------------------------------------------------------------------------- the loader
def load_audio(
    source: str | os.PathLike,
    config: AudioLoadConfig | None = None,
    *,
    label_from: str = "auto",
    pattern: str | None = None,
    per_class: int | None = None,
    split: str | None = None,
    split_field: str = "index",
    test_indices: tuple[int, ...] = FSDD_TEST_INDICES,
    seed: int = 0,
    clean: bool = True,
    progress: bool = False,
) -> LabeledData:
    """Load, clean and shape a labelled audio dataset, drawing ``per_class`` clips of every class.

    Parameters
    ----------
    source : path
        A folder (class sub-folders, or files named by ``pattern``) or a CSV manifest ``path,label``.
    config : AudioLoadConfig
        Rate, length and cleaning thresholds.
    per_class : int, optional
        Keep at most this many clips per class, drawn at random (stable for ``seed``); files are
        read in that random order until the class has enough, so unusable files are replaced.
    split : str, optional
        A folder split into ``train/``, ``test/``... reads that sub-folder (default ``train``). Else, with
        a pattern holding ``{index}`` (FSDD: ``{label}_{speaker}_{index}``), takes whose index is in
        ``test_indices`` (FSDD's 0-4) form the ``test`` split and all others ``train``. A source without
        splits is used whole (``meta["split"]`` is None).
    clean : bool
        False keeps silent, clipped and duplicate clips (a test split stays whole); unreadable files
        and non-finite samples are dropped either way.

    Returns
    -------
    LabeledData
        ``X`` float32 (n, n_samples) in [-1, 1], ``y`` str labels, ``sources`` file paths, ``report``
        the dropped files with reasons, ``meta`` with ``sample_rate``, ``n_samples`` and
        ``source_format`` (the original clips' rate, level, silence and duration per class, see
        :func:`source_format`), with which synthetic clips are written like the user's own.
    """
    check_source(source, per_class)
    config = config or AudioLoadConfig()
    folder, chosen = resolve_split(source, split) if label_from != "manifest" else (Path(source), None)
    entries, how = discover(folder, label_from=label_from, pattern=pattern)
    report = CleaningReport()
    if how == "folder":  # what a class folder holds besides audio is named, as image folders do
        for p in visible_files(folder):
            if len(p.relative_to(folder).parts) > 1 and not _is_audio_name(p):
                report.drop(-1, f"not audio: unsupported file type {valid_unicode(p.suffix) or '(none)'} (imagina reads "
                                f"{', '.join(AUDIO_EXTENSIONS)})", valid_unicode(str(p)))
    usable: list[tuple[int, _Entry]] = []
    for i, e in enumerate(entries):
        if e.label is None:
            report.drop(i, "no label: name does not match the pattern" if how.startswith("pattern") else "no label",
                        valid_unicode(str(e.path)))
        else:
            usable.append((i, e))
    if split is not None and chosen is None and usable and split_field in usable[0][1].fields:
        check_choice("split", split, ("train", "test"))
        chosen = split
        test = {str(t) for t in test_indices}
        n_named = len(usable)
        usable = [(i, e) for i, e in usable if ((str(e.fields[split_field]).lstrip("0") or "0") in test) == (split == "test")]
        if not usable:
            raise InvalidInputError(
                f"{source}: split {split!r} by FSDD's rule ({{{split_field}}} {', '.join(map(str, sorted(test_indices)))} "
                f"form 'test', all others 'train') selects none of the {n_named} labelled files; read the data "
                "without a split, or put them in train/ and test/ folders.")
    by_class: dict[str, list[tuple[int, _Entry]]] = defaultdict(list)
    for i, e in usable:
        by_class[e.label].append((i, e))  # type: ignore[index]
    rng = np.random.default_rng(seed)
    order: list[tuple[int, _Entry]] = []
    for label in sorted(by_class):
        items = by_class[label]
        if per_class is not None:
            items = [items[j] for j in rng.permutation(len(items))]
        order.extend(items)

    waves: list[np.ndarray] = []
    labels: list[str] = []
    sources: list[str] = []
    indices: list[int] = []
    rates: list[int] = []
    subtypes: list[str | None] = []
    clip_stats: list[tuple[float, ...]] = []
    counts: dict[str, int] = defaultdict(int)
    stats = {"resampled": 0, "mixed_down": 0, "truncated": 0}
    for i, e in tqdm(order, desc="reading audio", disable=not progress):
        if per_class is not None and counts[e.label] >= per_class:  # type: ignore[index]
            continue
        try:
            raw, sr, info = read_audio(e.path, max_seconds=config.max_seconds, long_files=config.long_files)
        except AudioReadError as exc:
            report.drop(i, str(exc), valid_unicode(str(e.path)))
            continue
        reason = check_clip(raw, config, clean=clean)
        if reason is not None:
            report.drop(i, reason, valid_unicode(str(e.path)))
            continue
        stats["resampled"] += sr != config.sample_rate
        stats["mixed_down"] += info["channels"] > 1
        if info["truncated"]:
            stats["truncated"] += 1
            logger.info("%s: %.1f s long, read its first %g s only", e.path, info["frames"] / sr, config.max_seconds)
        wave, lead, trail = shape_clip(raw, sr, config)
        waves.append(wave)
        rates.append(sr)
        subtypes.append(info.get("subtype"))
        clip_stats.append((float(rms_db(raw)), lead, trail, len(raw) / sr))  # what was read: at most max_seconds
        labels.append(str(e.label))
        sources.append(valid_unicode(str(e.path)))
        indices.append(i)
        counts[e.label] += 1  # type: ignore[index]

    if clean:
        def keep_only(keep: list[int]) -> None:
            """Keep the clips at ``keep`` in every per-clip list."""
            for column in (waves, labels, sources, rates, subtypes, clip_stats):
                column[:] = [column[j] for j in keep]

        dups = duplicate_of([content_key(w) for w in waves])
        for j, first in dups.items():
            report.drop(indices[j], f"duplicate: same audio as {sources[first]}", sources[j])
        keep_only([j for j in range(len(waves)) if j not in dups])
        keep_only(drop_small_classes(labels, report, sources, noun="clip"))
    report.kept = len(waves)
    if not waves:
        raise InvalidInputError(f"no usable audio under {source}: {report.summary()}.")
    if len(set(labels)) < 2:
        raise InvalidInputError(f"audio data {source} holds only the class {labels[0]!r}; a conditional generator needs at least 2.")
    X = np.stack(waves).astype(np.float32)
    logger.info("loaded %d clips of %d classes from %s (labels by %s); %s", len(X), len(set(labels)), source, how, report.summary())
    meta = {"sample_rate": config.sample_rate, "n_samples": config.n_samples, "labels_from": how,
            "source": str(source), "split": chosen, **stats,
            "source_format": source_format(rates, subtypes, labels, clip_stats, config)}
    return LabeledData(X, np.asarray(labels, dtype=str), sources, report, meta)
