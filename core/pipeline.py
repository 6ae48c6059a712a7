"""The whole job: preprocess → fit a conditional generator → generate → screen → export → report.

Examples
--------
>>> from imagina.core.pipeline import Augmenter, AugmentConfig     # doctest: +SKIP
>>> from imagina.image import MODALITY, load_digits                 # doctest: +SKIP
>>> result = Augmenter("image", AugmentConfig(per_class=50, steps=300)).fit(load_digits()).augment()  # doctest: +SKIP
>>> result.export("out/")                                           # doctest: +SKIP
"""

from __future__ import annotations

import logging
import math
import os
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from imagina.core.errors import InvalidInputError, NotFittedError, check_float, check_int
from imagina.core.export import atomic_output_dir, sanitize_label, write_json, write_manifest
from imagina.core.generator import Generator, package_versions
from imagina.core.metrics import embedding_metrics, within_class_diversity
from imagina.core.modality import LabeledData, Modality, SanityResult, concat, get_modality, take
from imagina.core.runtime import derive_seed
from imagina.core.screening import Screen, ScreenConfig, ScreenResult

logger = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class AugmentConfig:
    """Settings of :class:`Augmenter`. A field left at None takes the modality's default
    (``Modality.augment_defaults``), else the generic one in :data:`GENERIC_DEFAULTS`.

    per_class : kept synthetic items wanted per class (the screen's budget; generic 200).
    oversample : candidates generated per wanted item (the screen chooses among them; generic 3).
    max_oversample : a class whose candidates pass the screen too rarely to fill ``per_class`` gets
        more candidates, in up to ``top_up_rounds`` rounds sized by its pass rate, until it has had
        at most ``max_oversample × per_class`` candidates (generic 10; 1 or ``top_up_rounds=0``:
        no top-up).
    steps : generator training steps (None: the modality's default).
    embedder : a pretrained embedder name or local path (None: the offline default trained on the data).
    screen : the screen's thresholds (generic: :class:`ScreenConfig`'s defaults).
    """

    per_class: int | None = None
    oversample: float | None = None
    max_oversample: float | None = None
    top_up_rounds: int = 2
    steps: int | None = None
    seed: int = 0
    device: str = "auto"
    embedder: str | None = None
    screen: ScreenConfig | None = None

    def __post_init__(self) -> None:
        if self.per_class is not None:
            check_int("per_class", self.per_class, minimum=1)
        if self.oversample is not None:
            check_float("oversample", self.oversample, minimum=1.0)
        if self.max_oversample is not None:
            check_float("max_oversample", self.max_oversample, minimum=1.0)
        check_int("top_up_rounds", self.top_up_rounds, minimum=0)
        if self.steps is not None:
            check_int("steps", self.steps, minimum=1)
        check_int("seed", self.seed, minimum=0)

    def resolved(self, modality: Modality) -> AugmentConfig:
        """This config with every None filled from the modality's defaults, then the generic ones."""
        fill = {**GENERIC_DEFAULTS, **modality.augment_defaults}
        return replace(self, **{k: (v() if callable(v) else v) for k, v in fill.items() if getattr(self, k) is None})


#: Defaults of :class:`AugmentConfig` fields that a modality may override.
GENERIC_DEFAULTS: dict[str, Any] = {"per_class": 200, "oversample": 3.0, "max_oversample": 10.0, "screen": ScreenConfig}


@dataclass
class AugmentResult:
    """Candidates, their screen outcome, metrics and the run record. ``export`` writes it all."""

    modality: Modality
    real: LabeledData
    candidates: Any
    labels: np.ndarray
    screen: ScreenResult
    metrics: dict[str, Any]
    record: dict[str, Any]
    generator: Generator | None = None
    embeddings: np.ndarray | None = None

    @property
    def keep(self) -> np.ndarray:
        return self.screen.keep

    def kept(self) -> LabeledData:
        """The screened synthetic set."""
        idx = np.flatnonzero(self.keep)
        return LabeledData(take(self.candidates, idx), self.labels[idx])

    def unscreened(self) -> LabeledData:
        """Every candidate, screened or not (the baseline of condition (d))."""
        return LabeledData(self.candidates, self.labels)

    def kept_per_class(self) -> dict[str, int]:
        return {str(c): int(((self.labels == c) & self.keep).sum()) for c in np.unique(self.labels)}

    def export(self, out: str | os.PathLike, *, overwrite: bool = False, evaluation: Any = None) -> Path:
        """Write samples, manifest, model, report and run record to ``out`` atomically.

        Layout::

            out/samples/<class>/...      kept items (the modality's format)
            out/manifest.csv             every kept item: path, label, every score
            out/rejected.csv             every rejected candidate: label, reason, every score
            out/model/                   the fitted generator (config.json, model.safetensors, ...)
            out/report.md, out/figures/  the report with its pictures
            out/run.json                 config, versions, seed, timings, cleaning, screen counts, metrics
        """
        from imagina.core.report import write_report

        out = Path(out)
        with atomic_output_dir(out, overwrite=overwrite) as tmp:
            idx = np.flatnonzero(self.keep)
            stems = [f"{sanitize_label(self.labels[i])}_{i:06d}" for i in idx]
            paths = self.modality.write_items(tmp / "samples", take(self.candidates, idx), self.labels[idx], stems,
                                              meta=self.real.meta)
            score_names = list(self.screen.scores)
            rows = [{"path": f"samples/{p}", "label": self.labels[i], **{k: self.screen.scores[k][i] for k in score_names}}
                    for p, i in zip(paths, idx)]
            write_manifest(tmp / "manifest.csv", rows)
            rejected = [{"candidate": int(i), "label": self.labels[i], "reason": self.screen.reasons[i],
                         **{k: self.screen.scores[k][i] for k in score_names}} for i in np.flatnonzero(~self.keep)]
            write_manifest(tmp / "rejected.csv", rejected)
            if self.generator is not None:
                self.generator.save(tmp / "model")
            record = dict(self.record)
            if evaluation is not None:
                record["evaluation"] = evaluation.to_dict()
            write_report(tmp, self, evaluation)
            write_json(tmp / "run.json", record)
        logger.info("wrote %s", out)
        return out


class Augmenter:
    """Fit a class-conditional generator and an embedder on real data; generate and screen.

    Parameters
    ----------
    modality : str or Modality
        ``"image"``, ``"text"``, ``"audio"`` or a :class:`~imagina.core.modality.Modality`.
    config : AugmentConfig
        Fields left at None take the modality's defaults (``Modality.augment_defaults``).
    generator_options : dict
        Extra settings passed to the modality's generator config.
    progress : bool
        Show tqdm progress bars.
    """

    def __init__(self, modality: str | Modality, config: AugmentConfig | None = None, *,
                 generator_options: dict | None = None, progress: bool = True) -> None:
        self.modality = get_modality(modality) if isinstance(modality, str) else modality
        self.config = (config or AugmentConfig()).resolved(self.modality)
        self.generator_options = dict(generator_options or {})
        self.progress = progress
        self.generator_: Generator | None = None

    def fit(self, data: LabeledData, *, checkpoint_dir: str | os.PathLike | None = None) -> Augmenter:
        """Train the generator, the embedder and the screen on ``data``."""
        cfg = self.config
        counts = {str(c): int((data.y == c).sum()) for c in np.unique(data.y)}
        if len(counts) < 2:
            raise InvalidInputError(f"the data must hold at least 2 classes; got {len(counts)} ({', '.join(counts)}).")
        self.timings_: dict[str, float] = {}
        t = time.perf_counter()
        gen = self.modality.make_generator(steps=cfg.steps, seed=cfg.seed, device=cfg.device, meta=data.meta,
                                           **self.generator_options)
        self.generator_ = gen.fit(data.X, data.y, progress=self.progress, checkpoint_dir=checkpoint_dir)
        self.timings_["fit_generator_s"] = time.perf_counter() - t
        t = time.perf_counter()
        self.embedder_ = self.modality.make_embedder(seed=cfg.seed, device=cfg.device, pretrained=cfg.embedder,
                                                     meta=data.meta)
        self.embedder_.fit(data.X, data.y)
        self.real_embeddings_ = self.embedder_.embed(data.X)
        self.screen_ = Screen(cfg.screen).fit(self.real_embeddings_, data.y)
        self.timings_["fit_embedder_s"] = time.perf_counter() - t
        self.data_ = data
        self.class_counts_ = counts
        return self

    def augment(self, per_class: int | None = None) -> AugmentResult:
        """Generate ``oversample × per_class`` candidates per class and keep up to ``per_class``;
        classes left short get more candidates (see :class:`AugmentConfig`)."""
        if self.generator_ is None:
            raise NotFittedError("This Augmenter is not fitted yet; call `fit` before using it.")
        cfg = self.config
        per_class = check_int("per_class", per_class if per_class is not None else cfg.per_class, minimum=1)
        classes = np.unique(self.data_.y)
        self.timings_["generate_s"] = self.timings_["screen_s"] = 0.0
        X, y, checks, emb = self._candidates(np.repeat(classes, math.ceil(per_class * cfg.oversample)), cfg.seed)
        result = self._screen(emb, y, checks, per_class)
        cap = math.floor(per_class * cfg.max_oversample)
        for round_ in range(1, cfg.top_up_rounds + 1):
            wanted = self._top_up(classes, y, result, per_class, cap)
            if not wanted:
                break
            logger.info("top-up round %d: %s", round_, ", ".join(f"{c}: +{n}" for c, n in wanted.items()))
            labels = np.concatenate([np.repeat(np.asarray([c], dtype=classes.dtype), n) for c, n in wanted.items()])
            X2, y2, checks2, emb2 = self._candidates(labels, derive_seed(cfg.seed, "top-up", round_))
            X, y, emb = concat([X, X2]), np.concatenate([y, y2]), np.concatenate([emb, emb2])
            checks = SanityResult({k: np.concatenate([v, checks2.scores[k]]) for k, v in checks.scores.items()},
                                  checks.reasons + checks2.reasons)
            result = self._screen(emb, y, checks, per_class)
        metrics = self._metrics(emb, X, y, result.keep)
        record = {
            "modality": self.modality.name,
            "config": asdict(cfg),
            "generator": {"model": self.generator_.registry_name, "config": asdict(self.generator_.config)},  # type: ignore[attr-defined]
            "seed": cfg.seed,
            "versions": package_versions(),
            "timings": {k: round(v, 2) for k, v in self.timings_.items()},
            "data": {"items": len(self.data_), "per_class": self.class_counts_, "cleaning": self.data_.report.to_dict()},
            "screen": {"candidates": len(y), "candidates_per_class": {str(c): int((y == c).sum()) for c in classes},
                       "kept": int(result.keep.sum()),
                       "kept_per_class": {str(c): int(((y == c) & result.keep).sum()) for c in classes},
                       "rejected_by_reason": result.rejection_counts()},
            "metrics": metrics,
            "history": self.generator_.history_,
        }
        return AugmentResult(self.modality, self.data_, X, y, result, metrics, record, self.generator_, emb)

    def _candidates(self, labels: np.ndarray, seed: int) -> tuple[Any, np.ndarray, SanityResult, np.ndarray]:
        """Generate one candidate per label; their modality checks and embeddings."""
        t = time.perf_counter()
        X, y = self.generator_.sample(len(labels), labels=labels, seed=seed)  # type: ignore[union-attr]
        self.timings_["generate_s"] += time.perf_counter() - t
        t = time.perf_counter()
        checks = self.modality.sanity(X, y, generator=self.generator_, real=self.data_)
        emb = self.embedder_.embed(X)
        self.timings_["screen_s"] += time.perf_counter() - t
        return X, y, checks, emb

    def _screen(self, emb: np.ndarray, y: np.ndarray, checks: SanityResult, per_class: int) -> ScreenResult:
        t = time.perf_counter()
        result = self.screen_.score(emb, y, checks=checks, budget_per_class=per_class)
        self.timings_["screen_s"] += time.perf_counter() - t
        return result

    @staticmethod
    def _top_up(classes: np.ndarray, y: np.ndarray, result: ScreenResult, per_class: int, cap: int) -> dict:
        """Extra candidates per short class: the deficit over the class's pass rate (+20 %), within ``cap``."""
        wanted = {}
        for c in classes.tolist():
            rows = y == c
            kept, had = int((rows & result.keep).sum()), int(rows.sum())
            room = cap - had
            if kept >= per_class or room <= 0:
                continue
            rate = max(kept, 1) / had
            wanted[c] = min(room, math.ceil(1.2 * (per_class - kept) / rate))
        return wanted

    def _metrics(self, emb: np.ndarray, X: Any, y: np.ndarray, keep: np.ndarray) -> dict[str, Any]:
        real, real_y = self.real_embeddings_, self.data_.y
        out: dict[str, Any] = {
            "all_candidates": embedding_metrics(real, emb),
            "within_class_diversity": {
                "real": _mean(within_class_diversity(real, real_y)),
                "candidates": _mean(within_class_diversity(emb, y)),
            },
        }
        if keep.sum() > 5:
            out["kept"] = embedding_metrics(real, emb[keep])
            out["within_class_diversity"]["kept"] = _mean(within_class_diversity(emb[keep], y[keep]))
        stats = {"real": self.modality.set_statistics(self.data_.X), "candidates": self.modality.set_statistics(X)}
        if stats["real"]:
            if keep.any():
                stats["kept"] = self.modality.set_statistics(take(X, np.flatnonzero(keep)))
            out["set_statistics"] = stats
        # The same diversity in the generator's own input space (pixels in [-1, 1], normalised
        # spectrograms), where mode collapse shows most plainly; for models with such a transform.
        transform = getattr(self.generator_, "transform_", None)
        if transform is not None and hasattr(transform, "transform") and isinstance(X, np.ndarray):
            space = {"real": _mean(within_class_diversity(transform.transform(self.data_.X), real_y)),
                     "candidates": _mean(within_class_diversity(transform.transform(X), y))}
            if keep.sum() > 5:
                space["kept"] = _mean(within_class_diversity(transform.transform(X[keep]), y[keep]))
            out["within_class_diversity_generator_space"] = space
        return out


def _mean(d: dict[str, float]) -> float:
    return float(np.mean(list(d.values()))) if d else 0.0
