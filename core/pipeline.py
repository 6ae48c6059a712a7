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
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from imagina.core.dose import DoseConfig, Recommendation, recommend_dose
from imagina.core.embedding import pretrained_name
from imagina.core.errors import InvalidInputError, NotFittedError, check_float, check_instance, check_int
from imagina.core.export import atomic_output_dir, sanitize_label, write_json, write_manifest
from imagina.core.generator import Generator, package_versions
from imagina.core.metrics import embedding_metrics, within_class_diversity
from imagina.core.modality import (
    LabeledData,
    Modality,
    SanityResult,
    as_labeled,
    classical_views_at,
    concat,
    get_modality,
    take,
)
from imagina.core.runtime import derive_seed
from imagina.core.screening import Screen, ScreenConfig, ScreenResult, value_order
from imagina.core.valuation import ValuationConfig, attribute, value_candidates

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
    embedder : "own" (a small network trained on the data, offline), "minilm", "efficientnet-lite0[@SIZE]"
        (the ``pretrained`` extra's packaged weights), "combined:<name>" (the own and a pretrained one,
        each L2-normalised, concatenated), a local model path, or "auto" (the one of own / packaged /
        combined whose label consistency cross-validates best on the real items). None: "auto" where the
        ``pretrained`` extra ships this modality's packaged model, else "own"
        (:meth:`~imagina.core.modality.Modality.default_embedder`).
    screen : the screen's thresholds (generic: :class:`ScreenConfig`'s defaults).
    valuation : how candidates are valued by what they do to held-out real items
        (:mod:`imagina.core.valuation`); a candidate that hurts is rejected as "harmful". None: no valuation.
    train_views : classically augmented views per real item added to the generator's training data
        (:meth:`~imagina.core.modality.Modality.classical_views`), so that it imagines beyond the
        blends of a handful of items; 0 trains on the real items alone. The embedder, the screen, the
        valuation and the dose see only real items.
    dose : how the number of synthetic items to use is chosen (:mod:`imagina.core.dose`); ``samples/``
        then holds that many per class, the rest of the kept items go to ``reserve/``. None: every
        kept item goes to ``samples/`` and no recommendation is made.
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
    valuation: ValuationConfig | None = field(default_factory=ValuationConfig)
    train_views: int = 0
    dose: DoseConfig | None = field(default_factory=DoseConfig)

    def __post_init__(self) -> None:
        if self.per_class is not None:
            check_int("per_class", self.per_class, minimum=1)
        if self.oversample is not None:
            check_float("oversample", self.oversample, minimum=1.0)
        if self.max_oversample is not None:
            check_float("max_oversample", self.max_oversample, minimum=1.0)
        check_int("top_up_rounds", self.top_up_rounds, minimum=0)
        check_int("train_views", self.train_views, minimum=0)
        if self.steps is not None:
            check_int("steps", self.steps, minimum=1)
        check_int("seed", self.seed, minimum=0)
        for name, kind in (("screen", ScreenConfig), ("valuation", ValuationConfig), ("dose", DoseConfig)):
            check_instance(name, getattr(self, name), kind)
        if self.screen is not None and self.screen.selector == "value" and self.valuation is None:
            raise InvalidInputError('`screen` selector "value" ranks by the valuation: keep `valuation` on.')
        if self.embedder is not None and not isinstance(self.embedder, str):
            raise InvalidInputError(f"`embedder` must be a string such as 'own' or 'auto'; got {self.embedder!r}.")

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
    #: The dose and verdict (None when no dose was chosen: every kept item is recommended).
    recommendation: Recommendation | None = None
    #: Kept candidates' indices, best first within each class (by utility value, else quality).
    order: np.ndarray | None = None
    #: Warnings about the run (classes left short, a "don't use" verdict), also logged and in run.json.
    warnings: list[str] = field(default_factory=list)
    #: Seed of the classical views the dose measured (its ``DoseConfig.seed``): :meth:`classical` makes them.
    classical_seed: int = 0

    @property
    def keep(self) -> np.ndarray:
        return self.screen.keep

    @property
    def in_dose(self) -> np.ndarray:
        """Bool mask of shape (n,): the kept candidates the recommendation adds (``samples/``)."""
        if self.recommendation is None:
            return self.keep.copy()
        order = self.order if self.order is not None else np.flatnonzero(self.keep)
        mask = np.zeros(len(self.labels), dtype=bool)
        for c in np.unique(self.labels):
            rows = order[self.labels[order] == c]
            mask[rows[: self.recommendation.per_class.get(str(c), 0)]] = True
        return mask

    def recommended(self) -> LabeledData:
        """The synthetic items to add to the real training set at the recommended dose."""
        idx = np.flatnonzero(self.in_dose)
        return LabeledData(take(self.candidates, idx), self.labels[idx])

    def classical(self) -> LabeledData | None:
        """The classical views of the real items that the dose's reference arm held
        (``recommendation.classical_views`` per item at ``recommendation.classical_strength``:
        TrivialAugmentWide, EDA, shift / speed / noise), view-major, made with the dose's seed: the
        recommended mix is the real items, these views and :meth:`recommended`. None when that reference was the real items alone or no dose was chosen."""
        k = self.recommendation.classical_views if self.recommendation is not None else 0
        if not k:
            return None
        X = classical_views_at(self.modality, self.real.X, k, seed=self.classical_seed, meta=self.real.meta,
                               strength=self.recommendation.classical_strength)
        if X is None:
            return None
        n = len(self.real.y)
        sources = [f"view {j // n + 1} of {self.real.sources[j % n] if self.real.sources else f'real item {j % n}'}"
                   for j in range(k * n)]
        return LabeledData(X, np.tile(self.real.y, k), sources, meta=dict(self.real.meta))

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

            out/samples/<class>/...      the items to add at the recommended dose (the modality's format);
                                         every kept item when no dose was chosen
            out/manifest.csv             every item in samples/: path, label, every score
            out/reserve/<class>/...      kept items beyond the dose (present only then)
            out/reserve.csv              every item in reserve/
            out/classical/<class>/...    classical views of the real items, when the dose's reference arm
                                         held them (:meth:`classical`): part of the recommended mix
            out/classical.csv            every item in classical/: path, label, view, the real item it comes from
            out/rejected.csv             every rejected candidate: label, reason, every score
            out/model/                   the fitted generator (config.json, model.safetensors, ...)
            out/report.md, out/figures/  the report with its pictures
            out/run.json                 config, versions, seed, timings, cleaning, screen counts, metrics
        """
        from imagina.core.report import write_report

        out = Path(out)
        with atomic_output_dir(out, overwrite=overwrite) as tmp:
            score_names = list(self.screen.scores)
            in_dose = self.in_dose
            (tmp / "samples").mkdir()  # present even when the verdict adds nothing: the dose is then empty
            for folder, mask in (("samples", in_dose), ("reserve", self.keep & ~in_dose)):
                idx = np.flatnonzero(mask)
                if folder == "reserve" and not len(idx):
                    continue
                stems = [f"{sanitize_label(self.labels[i])}_{i:06d}" for i in idx]
                paths = self.modality.write_items(tmp / folder, take(self.candidates, idx), self.labels[idx], stems,
                                                  meta=self.real.meta)
                rows = [{"path": f"{folder}/{p}", "label": self.labels[i], **{k: self.screen.scores[k][i] for k in score_names}}
                        for p, i in zip(paths, idx)]
                write_manifest(tmp / ("manifest.csv" if folder == "samples" else "reserve.csv"), rows,
                               columns=("path", "label", *score_names))
            classical = self.classical()
            if classical is not None:
                n = len(self.real.y)
                stems = [f"{sanitize_label(label)}_v{j // n + 1}_{j % n:06d}" for j, label in enumerate(classical.y)]
                paths = self.modality.write_items(tmp / "classical", classical.X, classical.y, stems, meta=self.real.meta)
                rows = [{"path": f"classical/{p}", "label": classical.y[j], "view": j // n + 1,
                         "real_item": self.real.sources[j % n] if self.real.sources else j % n} for j, p in enumerate(paths)]
                write_manifest(tmp / "classical.csv", rows, columns=("path", "label", "view", "real_item"))
            rejected = [{"candidate": int(i), "label": self.labels[i], "reason": self.screen.reasons[i],
                         **{k: self.screen.scores[k][i] for k in score_names}} for i in np.flatnonzero(~self.keep)]
            write_manifest(tmp / "rejected.csv", rejected, columns=("candidate", "label", "reason", *score_names))
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
        if not isinstance(self.modality, Modality):
            raise InvalidInputError(f"`modality` must be a name such as 'image' or a Modality; got {modality!r}.")
        check_instance("config", config, AugmentConfig)
        self.config = (config or AugmentConfig()).resolved(self.modality)
        self.generator_options = dict(generator_options or {})
        self.progress = progress
        #: Log :meth:`augment`'s warnings (``--auto`` logs only the chosen trial's).
        self.log_warnings = True
        self.generator_: Generator | None = None

    def fit(self, data: LabeledData, *, checkpoint_dir: str | os.PathLike | None = None) -> Augmenter:
        """Train the generator, the embedder and the screen on ``data`` (a :class:`LabeledData`, e.g. from
        ``MODALITY.load``, or an ``(X, y)`` pair as scikit-learn's ``fit`` takes them)."""
        data = self.modality.standard(as_labeled(data, "data"))
        cfg = self.config
        counts = {str(c): int((data.y == c).sum()) for c in np.unique(data.y)}
        if len(counts) < 2:
            raise InvalidInputError(f"the data must hold at least 2 classes; got {len(counts)} ({', '.join(counts)}).")
        self._check_embedder(data)
        self.timings_: dict[str, float] = {}
        t = time.perf_counter()
        gen = self.modality.make_generator(steps=cfg.steps, seed=cfg.seed, device=cfg.device, meta=data.meta,
                                           **self.generator_options)
        # items given as arrays carry no meta: what the generator was told (an audio sample rate) then
        # stands for it, so the embedder and the written files use it too; a loader's meta wins
        data = replace(data, meta={**getattr(gen, "data_meta", dict)(), **data.meta})
        X, y = self._generator_items(data)
        self.generator_ = gen.fit(X, y, progress=self.progress, checkpoint_dir=checkpoint_dir)
        self.timings_["fit_generator_s"] = time.perf_counter() - t
        t = time.perf_counter()
        self.embedder_, self.embedder_choice_ = self.modality.fit_embedder(
            data.X, data.y, spec=cfg.embedder, seed=cfg.seed, device=cfg.device, meta=data.meta, progress=self.progress)
        self.real_embeddings_ = self.embedder_.embed(data.X)
        self.screen_ = Screen(cfg.screen).fit(self.real_embeddings_, data.y)
        self.timings_["fit_embedder_s"] = time.perf_counter() - t
        self.data_ = data
        self.class_counts_ = counts
        return self

    def _check_embedder(self, data: LabeledData) -> None:
        """Load the pretrained embedder ``embedder`` names and embed one real item with it, so that a
        misspelt name, a missing extra or an unusable model directory fails in seconds, not after the
        generator has trained. (The load is repeated after training: a few seconds, against keeping a
        transformer in memory through the generator's training.)"""
        name = pretrained_name(self.config.embedder)
        if name is not None:
            self.modality.make_embedder(seed=self.config.seed, device=self.config.device, pretrained=name,
                                        meta=data.meta, progress=False).embed(take(data.X, [0]))

    def _generator_items(self, data: LabeledData) -> tuple[Any, np.ndarray]:
        """What the generator trains on: the real items, plus ``train_views`` classical views of each."""
        cfg = self.config
        if not cfg.train_views:
            return data.X, data.y
        views = self.modality.classical_views(data.X, cfg.train_views, seed=cfg.seed, meta=data.meta)
        if views is None:
            raise InvalidInputError(f"`train_views` needs classical views, which the {self.modality.name} modality does not offer.")
        logger.info("the generator trains on %d real items and %d classical views", len(data.y), cfg.train_views * len(data.y))
        return concat([data.X, views]), np.concatenate([data.y, np.tile(data.y, cfg.train_views)])

    def augment(self, per_class: int | None = None) -> AugmentResult:
        """Generate ``oversample × per_class`` candidates per class and keep up to ``per_class``;
        classes left short get more candidates (see :class:`AugmentConfig`)."""
        if self.generator_ is None:
            raise NotFittedError("This Augmenter is not fitted yet; call `fit` before using it.")
        cfg = self.config
        per_class = check_int("per_class", per_class if per_class is not None else cfg.per_class, minimum=1)
        self.per_class_ = per_class
        classes = np.unique(self.data_.y)
        self.timings_["generate_s"] = self.timings_["screen_s"] = self.timings_["value_s"] = 0.0
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
        t = time.perf_counter()
        metrics = self._metrics(emb, X, y, result.keep)
        self.timings_["metrics_s"] = time.perf_counter() - t
        order = self._rank(result, y)
        recommendation = self._recommend(X, y, emb, order)
        warnings = self._warnings(classes, y, result, per_class, recommendation)
        record = {
            "modality": self.modality.name,
            "config": asdict(cfg),
            "embedder": {"spec": cfg.embedder or self.modality.default_embedder(),
                         **({"auto": self.embedder_choice_} if self.embedder_choice_ else {})},
            "generator": {"model": self.generator_.registry_name, "config": asdict(self.generator_.config),
                          "diagnostics": self.generator_.diagnostics()},
            "seed": cfg.seed,
            "versions": package_versions(),
            "timings": {k: round(v, 2) for k, v in self.timings_.items()},
            "data": {"items": len(self.data_), "per_class": self.class_counts_, "cleaning": self.data_.report.to_dict(),
                     **{k: self.data_.meta[k] for k in ("converted_modes",) if self.data_.meta.get(k)}},
            "screen": {"candidates": len(y), "candidates_per_class": {str(c): int((y == c).sum()) for c in classes},
                       "kept": int(result.keep.sum()),
                       "kept_per_class": {str(c): int(((y == c) & result.keep).sum()) for c in classes},
                       "rejected_by_reason": result.rejection_counts()},
            "metrics": metrics,
            "recommendation": recommendation.to_dict() if recommendation is not None else None,
            "warnings": warnings,
            "history": self.generator_.history_,
        }
        return AugmentResult(self.modality, self.data_, X, y, result, metrics, record, self.generator_, emb,
                             recommendation, order, warnings,
                             classical_seed=self.config.dose.seed if self.config.dose is not None else 0)

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
        """Value the candidates that pass the modality checks (a harmful one is rejected), then screen."""
        if self.config.valuation is not None:
            t = time.perf_counter()
            checks = self._valued(self.real_embeddings_, self.data_.y, emb, y, checks)
            self.timings_["value_s"] = self.timings_.get("value_s", 0.0) + time.perf_counter() - t
        t = time.perf_counter()
        result = self.screen_.score(emb, y, checks=checks, budget_per_class=per_class)
        self.timings_["screen_s"] += time.perf_counter() - t
        return result

    def _valued(self, real_emb: np.ndarray, real_y: np.ndarray, emb: np.ndarray, y: np.ndarray,
                checks: SanityResult) -> SanityResult:
        """``checks`` plus each candidate's value against ``real_emb`` (those that pass the checks;
        NaN for the others), a harmful one rejected with its value as the reason."""
        ok = np.flatnonzero([r is None for r in checks.reasons])
        value, shapley, influence = (np.full(len(y), np.nan) for _ in range(3))
        reasons = list(checks.reasons)
        if len(ok):
            val = value_candidates(real_emb, real_y, emb[ok], y[ok], self.config.valuation)
            value[ok], shapley[ok], influence[ok] = val.marginal, val.knn_shapley, val.probe
            for j, reason in zip(ok.tolist(), val.harmful_reasons()):
                reasons[j] = reason
        return SanityResult({**checks.scores, "value": value, "knn_shapley": shapley, "probe_influence": influence}, reasons)

    @staticmethod
    def _rank(result: ScreenResult, y: np.ndarray) -> np.ndarray:
        """Kept candidates' indices grouped by class, best first: by marginal value, then KNN-Shapley
        value where the candidates were valued, else by the screen's quality."""
        kept = np.flatnonzero(result.keep)
        if "value" not in result.scores:
            return kept[np.lexsort((-result.scores["quality"][kept], y[kept]))]
        best = kept[value_order(result.scores["value"][kept], result.scores["knn_shapley"][kept])]
        return best[np.argsort(y[best], kind="stable")]

    def _recommend(self, X: Any, y: np.ndarray, emb: np.ndarray, order: np.ndarray,
                   dose: DoseConfig | None = None) -> Recommendation | None:
        """The dose and verdict for the kept candidates ``order`` (None without a dose config or a
        probe); ``dose`` overrides the config's (``--auto`` re-estimates on other splits)."""
        dose = dose or self.config.dose
        features = self.modality.probe_features(self.data_.meta) if dose is not None else None
        if features is None:
            return None
        t = time.perf_counter()
        nearest, _ = attribute(self.real_embeddings_, self.data_.y, emb[order], y[order])
        from imagina.core.evaluation import ReferenceCheck

        meta = self.data_.meta
        try:  # a "use" is checked with the modality's small reference network, where it has one
            check = ReferenceCheck(self.modality.evaluation_task(meta), device=self.config.device)
        except NotImplementedError:
            check = None
        rec = recommend_dose(features, self.data_.X, self.data_.y, take(X, order), y[order], nearest, dose,
                             embeddings=(self.real_embeddings_, emb[order]), progress=self.progress,
                             views=lambda items, n, seed, strength="default": classical_views_at(
                                 self.modality, items, n, seed=seed, meta=meta, strength=strength),
                             check=check, unseen=self._unseen_pool, shift_examples=self.modality.shift_examples)
        self.timings_["dose_s"] = time.perf_counter() - t
        return rec

    def _unseen_pool(self, seen: np.ndarray) -> tuple[Any, np.ndarray]:
        """What this run would keep had its generator seen only the real items ``seen`` (indices): a
        generator of the same settings trained on them, the same number of candidates per class, the
        modality checks, values and screen fitted on those items alone; kept items best first within
        each class. The dose's "use" must hold on the other real items (:func:`recommend_dose`,
        ``unseen``). The embedder stays the run's (trained on every real item): refitting it would
        double the cost for a leak the screen's label test alone could carry."""
        cfg = self.config
        data = self.data_.subset(np.asarray(seen))
        half = int(np.sum(np.asarray(seen)))  # a seed of its own per half
        # as many passes over its items as the run's generator made over all of them: with the run's step
        # count on half the items, a sequence VAE memorised them (TREC: reconstruction 0.08 against 0.91
        # nats per token) and the screen kept a quarter as many candidates as the run's
        steps = getattr(self.generator_.config, "steps", None)
        steps = max(1, round(steps * len(data) / len(self.data_))) if steps else None
        gen = self.modality.make_generator(steps=steps, seed=derive_seed(cfg.seed, "unseen", half),
                                           device=cfg.device, meta=data.meta, **self.generator_options)
        t = time.perf_counter()
        gen.fit(*self._generator_items(data), progress=False)
        labels = np.repeat(np.unique(data.y), math.ceil(self.per_class_ * cfg.oversample))
        cand, cand_y = gen.sample(len(labels), labels=labels, seed=derive_seed(cfg.seed, "unseen-sample", half))
        checks = self.modality.sanity(cand, cand_y, generator=gen, real=data)
        emb = self.embedder_.embed(cand)
        real_emb = self.real_embeddings_[np.asarray(seen)]
        if cfg.valuation is not None:
            checks = self._valued(real_emb, data.y, emb, cand_y, checks)
        result = Screen(cfg.screen).fit(real_emb, data.y).score(emb, cand_y, checks=checks, budget_per_class=self.per_class_)
        order = self._rank(result, cand_y)
        self.timings_["unseen_s"] = self.timings_.get("unseen_s", 0.0) + time.perf_counter() - t
        logger.info("unseen check: a generator on %d real items kept %d of %d candidates", len(data), len(order), len(cand_y))
        return take(cand, order), cand_y[order]

    def _warnings(self, classes: np.ndarray, y: np.ndarray, result: ScreenResult, per_class: int,
                  recommendation: Recommendation | None) -> list[str]:
        """Lines a user must see even under ``--quiet``: classes left short of ``per_class``, with the
        likely cause, and a "don't use" verdict. Each is logged as a WARNING."""
        out = []
        kept = {c: int(((y == c) & result.keep).sum()) for c in classes.tolist()}
        short = {c: n for c, n in kept.items() if n < per_class}
        if short:
            counts = result.rejection_counts()
            top = max(counts, key=counts.get) if counts else "none"
            steps = getattr(self.generator_, "config", None)
            steps = getattr(steps, "steps", None)
            default = getattr(self.modality, "default_steps", None)
            if steps is not None and default is not None and steps < default:
                hint = f"the generator trained {steps} steps (default {default}); try more"
            else:
                hint = f"most rejections were '{top}' ({counts.get(top, 0)} of {len(y)} candidates); see report.md"
            none = [str(c) for c, n in short.items() if n == 0]
            out.append(f"{len(short)} of {len(classes)} classes kept fewer than {per_class} synthetic items ("
                       + ", ".join(f"{c}: {n}" for c, n in short.items()) + ")"
                       + (f"; none at all for {', '.join(none)}" if none else "") + f"; likely cause: {hint}.")
        if recommendation is not None and not recommendation.use:
            out.append(f"recommendation: don't use: {recommendation.message}"
                       + (" The kept items are in reserve/." if result.keep.any() else "")
                       + (f" classical/ holds the {recommendation.classical_views} classical view(s) per real item of "
                          "the probe's reference (report.md gives their own lift)." if recommendation.classical_views else ""))
        for line in out if self.log_warnings else ():
            logger.warning(line)
        return out

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
        real_X = self.data_.X
        stats = {"real": self.modality.set_statistics(real_X, real=real_X),
                 "candidates": self.modality.set_statistics(X, real=real_X)}
        if stats["real"]:
            if keep.any():
                stats["kept"] = self.modality.set_statistics(take(X, np.flatnonzero(keep)), real=real_X)
            out["set_statistics"] = stats
        # The same diversity in the generator's own input space (pixels in [-1, 1], normalised
        # spectrograms), where mode collapse shows most plainly; for models with such a space.
        real_space = self.generator_.to_model_space(self.data_.X)  # type: ignore[union-attr]
        if real_space is not None:
            cand_space = self.generator_.to_model_space(X)  # type: ignore[union-attr]
            space = {"real": _mean(within_class_diversity(real_space, real_y)),
                     "candidates": _mean(within_class_diversity(cand_space, y))}
            if keep.sum() > 5:
                space["kept"] = _mean(within_class_diversity(cand_space[keep], y[keep]))
            out["within_class_diversity_generator_space"] = space
        return out


def _mean(d: dict[str, float]) -> float:
    return float(np.mean(list(d.values()))) if d else 0.0
