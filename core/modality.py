"""What a modality package provides to the shared pipeline, CLI and evaluation.

Each of :mod:`imagina.image`, :mod:`imagina.text`, :mod:`imagina.audio` defines one subclass of
:class:`Modality` (exported as ``MODALITY``) and registers it in :mod:`imagina.core.registry`. The
core never imports a modality at import time; :func:`get_modality` resolves the registry lazily.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from imagina.core.errors import InvalidInputError, check_int
from imagina.core.preprocessing import CleaningReport, check_no_missing_labels

#: Strengths of :meth:`Modality.classical_views`, mildest first.
CLASSICAL_STRENGTHS = ("mild", "default", "strong")


def classical_views_at(modality: Modality, X: Any, n_views: int, *, seed: int, meta: dict | None,
                       strength: str = "default") -> Any:
    """``modality.classical_views`` at ``strength``, passed only when it is not "default", so that a
    modality written before strengths existed keeps working."""
    return modality.classical_views(X, n_views, seed=seed, meta=meta, **({} if strength == "default" else {"strength": strength}))


def take(X: Any, index: Sequence[int] | np.ndarray) -> Any:
    """Index items whether they are an array (images, waveforms) or a list (texts)."""
    index = np.asarray(index, dtype=np.int64)
    if isinstance(X, np.ndarray):
        return X[index]
    return [X[i] for i in index.tolist()]


def _importable(module: str) -> bool:
    """Whether ``module`` can be imported, without importing it (a None in ``sys.modules`` blocks it)."""
    import importlib.util
    import sys

    if module in sys.modules:
        return sys.modules[module] is not None
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def concat(parts: Sequence[Any]) -> Any:
    """Concatenate item collections of one kind (arrays or lists)."""
    if all(isinstance(p, np.ndarray) for p in parts):
        return np.concatenate(parts)
    out: list = []
    for p in parts:
        out.extend(list(p))
    return out


@dataclass
class LabeledData:
    """Loaded, cleaned items with labels.

    ``X`` is an ndarray (images ``(n, H, W, C)`` uint8, waveforms ``(n, T)`` float32) or a list of
    strings; ``y`` an ndarray of labels (str or int); ``sources`` where each item came from.
    """

    X: Any
    y: np.ndarray
    sources: list[str] | None = None
    report: CleaningReport = field(default_factory=CleaningReport)
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.y = np.asarray(self.y)  # a list of labels works as an array does everywhere after

    def __len__(self) -> int:
        return len(self.y)

    def subset(self, index: Sequence[int] | np.ndarray) -> LabeledData:
        index = np.asarray(index, dtype=np.int64)
        sources = [self.sources[i] for i in index.tolist()] if self.sources is not None else None
        return LabeledData(take(self.X, index), self.y[index], sources, self.report, dict(self.meta))

    def per_class(self, n: int, *, seed: int = 0) -> LabeledData:
        """At most ``n`` items of every class, drawn at random (stable for a seed)."""
        check_int("per_class", n, minimum=1)
        rng = np.random.default_rng(seed)
        keep: list[int] = []
        for c in np.unique(self.y):
            rows = np.flatnonzero(self.y == c)
            keep.extend(rng.permutation(rows)[:n].tolist())
        return self.subset(np.sort(np.asarray(keep)))


def as_labeled(data: Any, what: str = "data") -> LabeledData:
    """``data`` as a :class:`LabeledData`: one already, or an ``(X, y)`` pair as scikit-learn's ``fit``
    takes them; one label per item, none missing. ``what`` names the argument in errors."""
    if isinstance(data, tuple) and len(data) == 2:
        data = LabeledData(data[0], data[1])  # its __post_init__ makes y an array
    if not isinstance(data, LabeledData):
        raise InvalidInputError(f"`{what}` must be a LabeledData (e.g. MODALITY.load(...)) or an (X, y) pair; got "
                                f"{type(data).__name__}.")
    if data.y.ndim != 1 or len(data.X) != len(data.y):
        raise InvalidInputError(f"`{what}` must hold one label per item: {len(data.X)} items, labels of shape {data.y.shape}.")
    check_no_missing_labels(data.y, "y" if what == "data" else f"{what} labels")
    return data


@dataclass
class SanityResult:
    """Modality sanity checks for candidates: scores by name, and the failure reason (or None) per item."""

    scores: dict[str, np.ndarray]
    reasons: list[str | None]


class Modality(ABC):
    """The modality-specific half of every pipeline step.

    A modality object holds no per-dataset state: what a method needs to know about the data (an
    audio dataset's sample rate and clip length) comes in ``meta``, the loaded
    :attr:`LabeledData.meta` or a fitted generator's :meth:`~imagina.core.generator.Generator.data_meta`.
    """

    name: str
    #: :class:`~imagina.core.pipeline.AugmentConfig` fields this modality sets differently when the
    #: user does not (e.g. fewer, costlier audio candidates).
    augment_defaults: dict[str, Any] = {}
    #: What ``--data`` accepts, for the CLI's help.
    source_help: str = "a path"
    #: Where a user's test data may differ from their training data (a "don't use" message names it:
    #: classical augmentation can help under such a shift although the dose's probe saw no gain).
    shift_examples: str = "new sources"
    #: What ``--split`` can select in this modality's sources (the CLI's help).
    split_help: str = "train/ and test/ folders"
    #: The generator's default training steps (read from its config class: one home per default).
    default_steps: int
    #: How the default steps adapt to the data, for the CLI's help ("" where they do not).
    steps_note: str = ""
    #: Training steps of the offline default embedder.
    embedder_steps: int
    #: Whether the default embedder shows a progress bar while it trains.
    embedder_progress: bool = False
    #: A rough cost of a default run on a 2-core CPU, for the CLI's help.
    run_cost: str = "minutes"
    #: Short name of the packaged pretrained embedder (the ``pretrained`` extra) that ``--embedder auto``
    #: weighs against the own one; None where no packaged model exists.
    packaged_embedder: str | None = None
    #: Modules the packaged embedder needs (those of the ``pretrained`` extra): where all of them are
    #: installed, the default embedder is ``"auto"`` (see :meth:`default_embedder`).
    packaged_modules: tuple[str, ...] = ()

    @abstractmethod
    def load(self, source: str, **options: Any) -> LabeledData:
        """Load and clean a dataset (``source`` is a path, or a built-in name such as ``digits``)."""

    @abstractmethod
    def make_generator(self, *, steps: int | None, seed: int, device: str, meta: dict | None = None, **options: Any):
        """A fresh, unfitted :class:`~imagina.core.generator.Generator` with this modality's defaults."""

    @abstractmethod
    def make_embedder(self, *, seed: int, device: str, pretrained: str | None = None, meta: dict | None = None,
                      steps: int | None = None, progress: bool | None = None):
        """The offline default embedder (trained ``steps`` steps, the modality's default when None, with a
        progress bar when ``progress``), or a pretrained one from a local path or name."""

    def default_embedder(self) -> str:
        """The embedder used when none is named: ``"auto"`` where this modality has a packaged pretrained
        embedder and the ``pretrained`` extra that ships it is installed, else ``"own"``.

        Installing the extra is the user's opt-in to outside knowledge; ``auto`` still keeps the own,
        offline embedder unless the packaged or the combined one cross-validates better on the real items
        (issue 18: "the default when the extra is installed only if cross-validation says it screens
        better"). The check imports nothing: it costs microseconds and loads no weights."""
        from imagina.core.embedding import AUTO, OWN

        if self.packaged_embedder is None or not self.packaged_modules:
            return OWN
        return AUTO if all(_importable(m) for m in self.packaged_modules) else OWN

    def fit_embedder(self, X: Any, y: np.ndarray, *, spec: str | None, seed: int, device: str,
                     meta: dict | None = None, progress: bool | None = None) -> tuple[Any, dict | None]:
        """The embedder ``spec`` names (see :meth:`make_embedder`), fitted on ``X, y``, and how it was chosen.

        ``spec=None`` takes :meth:`default_embedder`. ``spec="auto"`` picks by cross-validation
        (:func:`~imagina.core.embedding.choose_embedder`) among the own embedder, :attr:`packaged_embedder`
        and both combined; where this modality has no packaged model or the ``pretrained`` extra is
        missing, it takes the own embedder, and the record says why; so does an ``auto`` by default on
        data with a class of one item (nothing to cross-validate), where a named ``auto`` is an error.
        Returns ``(embedder, record)``; the record is None unless ``auto`` was asked for or defaulted to.
        """
        from imagina.core.embedding import AUTO, OWN, choose_embedder
        from imagina.core.errors import MissingDependencyError

        by_default = spec is None
        if by_default:
            spec = self.default_embedder()
        record = None
        if spec == AUTO:
            smallest = int(np.unique(np.asarray(y), return_counts=True)[1].min()) if len(y) else 0
            if self.packaged_embedder is None:
                spec, record = OWN, {"chosen": OWN, "reason": f"no packaged pretrained embedder exists for {self.name}"}
            elif by_default and smallest < 2:
                spec, record = OWN, {"chosen": OWN, "reason": "a class has one real item: nothing to cross-validate"}
            else:
                try:
                    spec, record = choose_embedder(
                        lambda: self.make_embedder(seed=seed, device=device, meta=meta, progress=False),
                        self.make_embedder(seed=seed, device=device, pretrained=self.packaged_embedder, meta=meta),
                        X, y, seed=seed, name=self.packaged_embedder)
                except MissingDependencyError as err:
                    spec, record = OWN, {"chosen": OWN, "reason": str(err)}
            if by_default:
                record["default"] = True
        embedder = self.make_embedder(seed=seed, device=device, pretrained=spec, meta=meta, progress=progress)
        return embedder.fit(X, y), record

    def standard(self, data: LabeledData) -> LabeledData:
        """``data`` with its items as this modality's pipeline holds them (images: ``(n, H, W, C)``),
        checked: arrays given through the API in another accepted form (``(n, H, W)`` grey images)
        would otherwise meet the generator's output in another shape. The default changes nothing."""
        return data

    def like(self, data: LabeledData, reference: LabeledData, flag: str) -> LabeledData:
        """``data`` (a test or candidate set) in ``reference``'s format where a standard conversion
        exists, since models fitted on ``reference`` read only that format; a one-line error naming
        ``flag`` where none does. Called before anything trains. The default changes nothing."""
        return data

    @abstractmethod
    def sanity(self, X: Any, y: np.ndarray, *, generator: Any = None, real: LabeledData | None = None) -> SanityResult:
        """Modality checks of candidate items: sanity (blank image, silent clip, empty sentence...) and any
        modality-specific quality or diversity score (fluency under ``generator``, n-gram overlap with
        ``real``). Returns scores by name and, per item, the reason it fails or None."""

    @abstractmethod
    def write_items(self, directory: Path, X: Any, y: np.ndarray, stems: list[str], *, meta: dict | None = None) -> list[str]:
        """Write items under ``directory`` (a layout users of this modality expect). Returns
        each item's path relative to ``directory``."""

    @abstractmethod
    def preview(self, path: Path, X: Any, y: np.ndarray, *, title: str = "", meta: dict | None = None) -> None:
        """Write a PNG overview of items (sample grid, spectrogram grid, or text examples)."""

    def set_statistics(self, X: Any, *, real: Any = None) -> dict[str, float]:
        """Diversity and fluency statistics of a set of items in this modality's own terms (text:
        distinct-n, self-BLEU, known-word share and bigram perplexity against ``real``), reported for the
        real, candidate and kept sets; none by default."""
        return {}

    def item_text(self, X: Any) -> list[str] | None:
        """Items as short text for the Markdown report (the sentences themselves), or None where
        only a picture shows them."""
        return None

    def add_cli_arguments(self, parser: Any) -> None:  # noqa: B027 - optional hook
        """Add this modality's loading options to an argparse parser (e.g. ``--text-column``)."""

    def load_options(self, args: Any) -> dict:
        """The :meth:`load` keyword arguments taken from parsed CLI ``args`` (see :meth:`add_cli_arguments`)."""
        return {}

    def classical_views(self, X: Any, n_views: int, *, seed: int = 0, meta: dict | None = None,
                        strength: str = "default") -> Any:
        """``n_views`` classically augmented views of every item (image: TrivialAugmentWide; text: EDA;
        audio: shift, speed, noise), view-major: item ``i`` of view ``v`` is at ``v·n + i``. The
        generator may train on them (``AugmentConfig.train_views``) so that its samples are not only
        blends of a handful of items, and the dose's classical reference holds them. ``strength``, one of
        :data:`CLASSICAL_STRENGTHS`, scales them the same way in every modality ("default": the views
        used everywhere unless a strength is asked for; the dose passes it only when it is not
        "default", so a modality written before it existed keeps working). The first ``j`` views of a call
        for more are a call for ``j`` at the same seed and strength: the dose slices the views it made for
        its largest count, and ``classical/`` is made for the chosen count alone. None: this modality offers no views."""
        return None

    def probe_features(self, meta: dict | None = None) -> Any:
        """An unfitted scikit-learn transformer (or a dict of them by name, the one best on real data alone
        being used) from items to features for the fast probe classifier
        that chooses the synthetic dose (:mod:`imagina.core.dose`): cheap, fitted on the training part
        of each split only, and independent of the screen's embedder (which saw every real item).
        A pipeline that starts with a ``FunctionTransformer`` must read each item alone there (the
        features of a subset are the subset of the features), since the dose computes that step once
        per item, as it does a ``CountVectorizer`` / ``TfidfVectorizer``'s analysis of each text
        (:func:`~imagina.core.dose.per_item_prefix`).
        None: this modality offers no probe, and the run makes no recommendation."""
        return None

    @abstractmethod
    def evaluation_task(self, meta: dict | None = None):
        """The :class:`~imagina.core.evaluation.EvalTask` with this modality's reference classifier."""


def get_modality(name: str) -> Modality:
    """Resolve a modality by name through :mod:`imagina.core.registry`."""
    from imagina.core.registry import get_modality as resolve

    return resolve(name)
