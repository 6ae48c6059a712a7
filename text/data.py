"""Loading and cleaning labeled sentences: CSV, TSV, JSONL, or a folder of ``.txt`` files per class.

Every row that does not survive cleaning is recorded in the :class:`CleaningReport` with its reason
(``empty``, ``punctuation only``, ``too long``, ``duplicate``, ``undecodable``, ``invalid unicode``,
``malformed row``, ``missing label``, ``singleton class``...). Bad files get a one-line
:class:`InvalidInputError` naming the file. Text reaches no other library before it is valid Unicode.
Limits: :data:`MAX_LINE_CHARS` per JSON line, :data:`MAX_JSON_DEPTH` levels of JSON nesting, and
``max_chars`` per sentence (:class:`TextCleaningConfig`).
"""

from __future__ import annotations

import csv
import json
import logging
import re
import unicodedata
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from imagina.core.errors import InvalidInputError, check_choice, check_float, check_int
from imagina.core.modality import LabeledData
from imagina.core.preprocessing import (
    CleaningReport,
    check_source,
    drop_small_classes,
    resolve_split,
    valid_unicode,
)
from imagina.text.export import CSV_NAME as SAMPLES_CSV

logger = logging.getLogger(__name__)

FORMATS = ("csv", "tsv", "jsonl", "folder")
_SUFFIX_FORMAT = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl"}
_WS = re.compile(r"\s+")
# C0/C1 control characters other than whitespace (which the whitespace rule handles).
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
# Lone surrogates come from ``errors="surrogateescape"``: they mark bytes that were not UTF-8.
_SURROGATE = re.compile(r"[\udc80-\udcff]")
# Any lone surrogate, also from a JSON escape such as "\ud800": not valid Unicode, no library takes it.
_ANY_SURROGATE = re.compile(r"[\ud800-\udfff]")
#: A JSON line longer than this many characters is dropped without being parsed.
MAX_LINE_CHARS = 1_000_000
#: A JSON line nested deeper than this (``[[[...]]]``) is dropped as malformed.
MAX_JSON_DEPTH = 64
_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')


@dataclass(frozen=True)
class _Unusable:
    """A raw row that cannot become a sentence; ``reason`` goes to the cleaning report."""

    reason: str


@dataclass(frozen=True, kw_only=True)
class TextCleaningConfig:
    """Rules applied to every loaded sentence.

    Parameters
    ----------
    max_chars : int
        Sentences longer than this (after normalisation) are dropped as ``too long``.
    min_chars : int
        Sentences shorter than this are dropped as ``too short``.
    drop_duplicates : bool
        Drop a sentence equal (after normalisation) to an earlier one.
    max_undecodable_fraction : float
        A file whose share of rows holding non-UTF-8 bytes exceeds this is refused with an error;
        below it, such rows are dropped as ``undecodable``.
    """

    max_chars: int = 1000
    min_chars: int = 1
    drop_duplicates: bool = True
    max_undecodable_fraction: float = 0.01

    def __post_init__(self) -> None:
        check_int("max_chars", self.max_chars, minimum=1)
        check_int("min_chars", self.min_chars, minimum=0)
        check_float("max_undecodable_fraction", self.max_undecodable_fraction, minimum=0.0, maximum=1.0)


def normalize_text(text: str) -> str:
    """Unicode NFKC, control characters removed, runs of whitespace collapsed to one space, stripped."""
    text = unicodedata.normalize("NFKC", text)
    text = _CONTROL.sub(" ", text)
    return _WS.sub(" ", text).strip()


def has_word_character(text: str) -> bool:
    """Whether ``text`` holds at least one letter or digit (not only punctuation and symbols)."""
    return any(ch.isalnum() for ch in text)


# --------------------------------------------------------------------------- reading raw rows
def _read_text(path: Path) -> tuple[str, int]:
    """Read ``path`` as UTF-8, keeping undecodable bytes as lone surrogates; returns (text, n_bad_bytes)."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InvalidInputError(f"cannot read {path}: {exc.strerror or exc}.") from None
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    text = raw.decode("utf-8", errors="surrogateescape")
    return text, len(_SURROGATE.findall(text))


def _check_encoding(path: Path, rows: list[tuple[str, str, str]], config: TextCleaningConfig) -> None:
    """Refuse a file whose share of rows with non-UTF-8 bytes is above the configured fraction."""
    rows = [r for r in rows if isinstance(r[0], str)]
    bad = [i for i, (text, label, _) in enumerate(rows) if _SURROGATE.search(text) or _SURROGATE.search(label)]
    if rows and len(bad) / len(rows) > config.max_undecodable_fraction:
        raise InvalidInputError(
            f"{path} is not UTF-8: {len(bad)} of {len(rows)} rows hold non-UTF-8 bytes (first at row {bad[0] + 1}); "
            "re-save it as UTF-8 (e.g. `iconv -f latin1 -t utf-8`)."
        )


def _read_delimited(path: Path, delimiter: str, text_column: str, label_column: str) -> list[tuple[str, str, str]]:
    text, _ = _read_text(path)
    if not text.strip():
        raise InvalidInputError(f"{path} is empty.")
    # TSV carries no quoting convention (TREC has bare quotes inside questions); CSV does.
    quoting = csv.QUOTE_NONE if delimiter == "\t" else csv.QUOTE_MINIMAL
    # Over-long fields must reach the cleaning rules (dropped there with a reason), not crash the reader.
    old_limit = csv.field_size_limit()
    csv.field_size_limit(max(old_limit, len(text) + 1))
    try:
        return _parse_delimited(path, text, delimiter, quoting, text_column, label_column)
    except csv.Error as exc:
        raise InvalidInputError(f"{path} is not valid {'TSV' if delimiter == chr(9) else 'CSV'}: {exc}.") from None
    finally:
        csv.field_size_limit(old_limit)


def _parse_delimited(path: Path, text: str, delimiter: str, quoting: int, text_column: str,
                     label_column: str) -> list[tuple[str, str, str]]:
    # keepends: a newline inside a quoted field stays a space between its words, not a join
    reader = csv.reader(text.splitlines(keepends=True), delimiter=delimiter, quoting=quoting)
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        raise InvalidInputError(f"{path} is empty.") from None
    missing = [c for c in (text_column, label_column) if c not in header]
    if missing:
        raise InvalidInputError(
            f"{path}: header has no column {', '.join(map(repr, missing))}; found {header}. "
            "Name the columns with --text-column / --label-column."
        )
    ti, li = header.index(text_column), header.index(label_column)
    rows: list[tuple[str, str, str]] = []
    line_no = reader.line_num + 1  # the physical line a record starts on (a quoted field may span several)
    for record in reader:
        source, line_no = f"{path.name}:{line_no}", reader.line_num + 1
        if not record or all(not f.strip() for f in record):
            continue  # blank line
        if len(record) <= max(ti, li):
            rows.append(("", "", source))  # reported as malformed below
            continue
        rows.append((record[ti], record[li], source))
    if not rows:
        raise InvalidInputError(f"{path} has a header but no data rows.")
    if quoting != csv.QUOTE_NONE and rows[-1][2] != f"{path.name}:{reader.line_num}" and _quote_left_open(text, delimiter):
        # the lenient reader reads an unclosed quote as one field running to the end of the file
        raise InvalidInputError(f"{rows[-1][2]}: a quote opened on this line is never closed, so every line after it "
                                "would be read as one field; close or remove the quote (or save the file as TSV).")
    return rows


def _quote_left_open(text: str, delimiter: str) -> bool:
    """Whether a strict CSV reader runs out of data inside a quoted field."""
    try:
        for _ in csv.reader(text.splitlines(keepends=True), delimiter=delimiter, strict=True):
            pass
    except csv.Error as exc:
        return "unexpected end of data" in str(exc)
    return False


def _json_depth(line: str) -> int:
    """How deeply brackets nest in a JSON line (strings ignored), without recursion."""
    depth = deepest = 0
    for ch in _JSON_STRING.sub('""', line):
        if ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest


def _parse_json_line(line: str) -> dict | _Unusable:
    """A JSON object, or why the line is not one (too long, too deep, not JSON, not an object)."""
    if len(line) > MAX_LINE_CHARS:
        return _Unusable(f"too long: a line of {len(line)} characters > {MAX_LINE_CHARS}")
    if line.count("[") + line.count("{") > MAX_JSON_DEPTH and _json_depth(line) > MAX_JSON_DEPTH:
        return _Unusable(f"malformed row: JSON nested deeper than {MAX_JSON_DEPTH} levels")
    try:
        obj = json.loads(line)
    except (ValueError, RecursionError):  # JSONDecodeError is a ValueError
        return _Unusable("malformed row: not valid JSON")
    return obj if isinstance(obj, dict) else _Unusable(f"malformed row: a JSON {type(obj).__name__}, not an object")


def _read_jsonl(path: Path, text_column: str, label_column: str) -> list[tuple]:
    text, _ = _read_text(path)
    if not text.strip():
        raise InvalidInputError(f"{path} is empty.")
    rows: list[tuple] = []
    keys_seen: set[str] = set()
    found = False
    for line_no, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        source = f"{valid_unicode(path.name)}:{line_no}"
        obj = _parse_json_line(line)
        if isinstance(obj, _Unusable):
            rows.append((obj, None, source))
            continue
        keys_seen.update(valid_unicode(k) for k in obj)
        if text_column in obj and label_column in obj:
            found = True
        value, label = obj.get(text_column), obj.get(label_column)
        if isinstance(value, (list, dict)):
            rows.append((_Unusable(f"malformed row: field {text_column!r} holds a JSON "
                                   f"{'list' if isinstance(value, list) else 'object'}, not text"), None, source))
            continue
        rows.append((value if isinstance(value, str) else "" if value is None else _short_str(value),
                     "" if label is None else _short_str(label), source))
    if all(isinstance(r[0], _Unusable) for r in rows):
        raise InvalidInputError(f"{path} is not JSON Lines: no line holds a JSON object.")
    if not found:
        missing = [c for c in (text_column, label_column) if c not in keys_seen]
        raise InvalidInputError(
            f"{path}: no record has the field {', '.join(map(repr, missing))}; fields found: {sorted(keys_seen)[:20]}. "
            "Name them with --text-column / --label-column."
        )
    return rows


def _short_str(value: object) -> str:
    """A non-string JSON value as text (``1`` -> ``"1"``); nested values are kept short by the length rules."""
    return value if isinstance(value, str) else json.dumps(value) if isinstance(value, (list, dict)) else str(value)


def _class_dirs(path: Path) -> list[Path]:
    return sorted(d for d in path.iterdir() if d.is_dir() and not d.name.startswith("."))


def _read_folder(path: Path) -> list[tuple]:
    class_dirs = _class_dirs(path)
    if not class_dirs:
        raise InvalidInputError(f"{path} holds no class sub-folders; expected <folder>/<class>/*.txt.")
    rows: list[tuple] = []
    for d in class_dirs:
        label = valid_unicode(d.name)
        files = sorted(d.glob("*.txt"))
        if not files:
            logger.warning("class folder %s holds no .txt files; skipped", label)
            continue
        for f in files:
            name = f"{label}/{valid_unicode(f.name)}"
            try:
                text, _ = _read_text(f)
            except InvalidInputError as exc:  # a link loop, a folder named *.txt, no permission
                rows.append((_Unusable(f"unreadable: {exc}"), None, name))
                continue
            for line_no, line in enumerate(text.splitlines(), start=1):
                if line.strip():
                    rows.append((line, label, f"{name}:{line_no}"))
    if not any(isinstance(r[0], str) for r in rows):
        raise InvalidInputError(f"{path} holds no sentences in any <class>/*.txt file.")
    return rows


# --------------------------------------------------------------------------- cleaning
def clean_rows(
    rows: list[tuple], config: TextCleaningConfig, report: CleaningReport
) -> tuple[list[str], list[str], list[str]]:
    """Normalise and filter raw ``(text, label, source)`` rows, recording every drop in ``report``.

    Returns the kept texts, labels and sources. A row whose text is ``None`` was unparsable; one
    whose text is an ``_Unusable`` carries its reason.
    """
    texts: list[str] = []
    labels: list[str] = []
    sources: list[str] = []
    first_seen: dict[str, int] = {}
    for i, (raw, label, source) in enumerate(rows):
        if raw is None or isinstance(raw, _Unusable):
            report.drop(i, raw.reason if raw is not None else "malformed row: not a JSON object", source)
            continue
        if _SURROGATE.search(raw) or (label and _SURROGATE.search(label)):
            report.drop(i, "undecodable: non-UTF-8 bytes", source)
            continue
        if _ANY_SURROGATE.search(raw) or (label and _ANY_SURROGATE.search(label)):
            report.drop(i, "invalid unicode: a lone surrogate (e.g. an escaped \\ud800)", source)
            continue
        label = normalize_text(label or "")
        if not label:
            report.drop(i, "missing label", source)
            continue
        # Check the raw length first: a 100k-character line is never normalised or kept.
        if len(raw) > 4 * config.max_chars:
            report.drop(i, f"too long: {len(raw)} characters > {config.max_chars}", source)
            continue
        text = normalize_text(raw)
        if not text:
            report.drop(i, "empty", source)
            continue
        if not has_word_character(text):
            report.drop(i, "punctuation only", source)
            continue
        if len(text) > config.max_chars:
            report.drop(i, f"too long: {len(text)} characters > {config.max_chars}", source)
            continue
        if len(text) < config.min_chars:
            report.drop(i, f"too short: {len(text)} characters < {config.min_chars}", source)
            continue
        if config.drop_duplicates:
            if text in first_seen:
                report.drop(i, f"duplicate: of {sources[first_seen[text]]}", source)
                continue
            first_seen[text] = len(texts)
        texts.append(text)
        labels.append(label)
        sources.append(source)
    return texts, labels, sources


def _drop_small_classes(
    texts: list[str], labels: list[str], sources: list[str], report: CleaningReport, origin: str, clean: bool = True
) -> tuple[list[str], list[str], list[str]]:
    if clean:
        keep = drop_small_classes(labels, report, sources, noun="example")
        texts, labels, sources = ([seq[i] for i in keep] for seq in (texts, labels, sources))
    report.kept = len(texts)
    classes = sorted(set(labels))
    if len(classes) < 2:
        raise InvalidInputError(
            f"{origin}: {len(classes)} class(es) left after cleaning ({report.summary()}); at least 2 classes "
            "with 2 or more sentences each are needed."
        )
    return texts, labels, sources


def load_texts(
    source: str | Path,
    *,
    text_column: str = "text",
    label_column: str = "label",
    format: str | None = None,
    config: TextCleaningConfig | None = None,
    split: str | None = None,
    per_class: int | None = None,
    seed: int = 0,
    clean: bool = True,
) -> LabeledData:
    """Load labeled sentences from a CSV / TSV / JSONL file or a folder ``<class>/*.txt``, clean them,
    then draw ``per_class`` of every class.

    Parameters
    ----------
    source : path
        A ``.csv``, ``.tsv`` or ``.jsonl`` file, or a folder with one sub-folder per class holding
        ``.txt`` files with one sentence per line. The ``samples/`` or ``reserve/`` folder of an imagina
        text output stands for the ``samples.csv`` in it.
    text_column, label_column : str
        Column (CSV/TSV header) or field (JSONL) names.
    format : {'csv', 'tsv', 'jsonl', 'folder'}, optional
        Overrides the guess from the suffix.
    config : TextCleaningConfig, optional
        Cleaning rules.
    split : str, optional
        For a folder split into ``train/``, ``test/``... (``data/test/<class>/*.txt``): the split to read
        (default ``train``). A file, or a folder of class folders, has no splits and is used whole.
    per_class : int, optional
        Keep at most this many sentences per class (random, stable for ``seed``), drawn after cleaning.
    clean : bool
        False keeps duplicates and classes of one sentence (a test split stays whole); unreadable,
        empty and over-long rows are dropped either way.

    Returns
    -------
    LabeledData
        ``X`` list[str] of n normalised sentences, ``y`` ndarray (n,) of str labels, ``sources``
        ``file:line`` per sentence, ``report`` the cleaning report.
    """
    check_source(source, per_class)
    config = config or TextCleaningConfig()
    if not clean:
        config = replace(config, drop_duplicates=False)
    path = Path(source)
    if not path.exists():
        raise InvalidInputError(f"data path {path} does not exist.")
    path, chosen = resolve_split(path, split)
    if format is None and path.is_dir() and (path / SAMPLES_CSV).is_file() and not _class_dirs(path):
        path = path / SAMPLES_CSV  # samples/ or reserve/ of an imagina text output
    if format is None:
        if path.is_dir():
            format = "folder"
        elif path.suffix.lower() in _SUFFIX_FORMAT:
            format = _SUFFIX_FORMAT[path.suffix.lower()]
        else:
            raise InvalidInputError(
                f"cannot tell the format of {path} from its suffix; use .csv, .tsv, .jsonl or a folder, or pass format=."
            )
    format = check_choice("format", format, FORMATS)
    if format == "folder" and not path.is_dir():
        raise InvalidInputError(f"format 'folder' needs a directory; {path} is a file.")
    if format != "folder" and path.is_dir():
        raise InvalidInputError(f"format {format!r} needs a file; {path} is a directory.")

    report = CleaningReport()
    if format == "csv":
        rows = _read_delimited(path, ",", text_column, label_column)
    elif format == "tsv":
        rows = _read_delimited(path, "\t", text_column, label_column)
    elif format == "jsonl":
        rows = _read_jsonl(path, text_column, label_column)
    else:
        rows = _read_folder(path)
    if format != "folder":
        _check_encoding(path, rows, config)
    texts, labels, sources = clean_rows(rows, config, report)
    if format == "folder":
        # A class folder whose every sentence was dropped is a reported skip.
        for d in sorted({r[1] for r in rows} - set(labels)):
            logger.warning("class %r has no sentences left after cleaning; skipped", d)
    if not texts:
        raise InvalidInputError(f"{path}: no sentence left after cleaning ({report.summary()}).")
    texts, labels, sources = _drop_small_classes(texts, labels, sources, report, str(path), clean)
    if report.dropped:
        logger.info("%s: %s", path, report.summary())
    data = LabeledData(texts, np.asarray(labels, dtype=str), sources, report,
                       {"source": str(source), "format": format, "split": chosen})
    if per_class is not None:
        check_int("per_class", per_class, minimum=2)
        data = data.per_class(per_class, seed=seed)
        data.report = report.drawn(len(data))
    return data

