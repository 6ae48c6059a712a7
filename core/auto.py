"""``--auto``: try a few settings within a time budget and keep the one whose output helps most.

The settings that decide most of an output's worth are tried, cheapest last: whether the generator
also trains on classical views of the real items (each such trial trains a generator), and, for
every trained generator, the default screen against a relaxed one that keeps every candidate the
modality checks and the valuation let through (a new screen and sample only, seconds). Every trial
is judged by the same cross-validated lift of the probe that chooses the dose
(:mod:`imagina.core.dose`): the best dose's mean lift over real-only.

Choosing the best of several trials on the same splits flatters the winner, so where more than one
trial ran, the verdict of the chosen trial is estimated again on fresh splits (another split seed)
before it is reported; a lone trial keeps its own estimate.

The budget bounds the wall time: a trial that would train a generator starts only when the time
already spent plus the measured time of the first generator fits in the budget. The first trial
always runs (it is the run ``--auto`` was asked to improve on).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from imagina.core.errors import InvalidInputError, check_float, check_int
from imagina.core.modality import LabeledData, Modality, take
from imagina.core.pipeline import AugmentConfig, Augmenter, AugmentResult
from imagina.core.screening import Screen, ScreenConfig

logger = logging.getLogger(__name__)

#: A screen that keeps what passes the modality checks and the valuation, in random order.
RELAXED_SCREEN = ScreenConfig(min_consistency=0.0, require_manifold=False, selector="random")


@dataclass(frozen=True, kw_only=True)
class AutoConfig:
    """Settings of :func:`auto_augment`.

    time_budget : seconds the whole search may take (the first trial always runs).
    views : classical views per real item to try for the generator's training data, in order.
    relaxed_screen : also try :data:`RELAXED_SCREEN` with every trained generator.
    """

    time_budget: float = 1800.0
    views: tuple[int, ...] = (0, 2)
    relaxed_screen: bool = True

    def __post_init__(self) -> None:
        check_float("time_budget", self.time_budget, minimum=1.0)
        if not self.views:
            raise InvalidInputError("`views` must hold at least one setting.")
        for v in self.views:
            check_int("views", v, minimum=0)


def _score(result: AugmentResult) -> float:
    """The best dose's mean cross-validated lift (−inf when there is nothing to add)."""
    rec = result.recommendation
    return max((t["lift"] for t in rec.trials), default=float("-inf")) if rec is not None else float("-inf")


def auto_augment(modality: Modality, data: LabeledData, config: AugmentConfig | None = None,
                 auto: AutoConfig | None = None, *, generator_options: dict | None = None,
                 progress: bool = True) -> AugmentResult:
    """Run the trials of :class:`AutoConfig` on ``data`` and return the best one's result; every trial
    (settings, lift, interval, verdict, seconds, or why it was skipped) is in ``record["auto"]``."""
    auto = auto or AutoConfig()
    base = (config or AugmentConfig()).resolved(modality)
    if base.dose is None or modality.probe_features(data.meta) is None:
        raise InvalidInputError("--auto chooses by the dose's cross-validated lift; it needs a dose config and a "
                                f"probe, which the {modality.name} modality does not offer.")
    start = time.perf_counter()
    trials: list[dict[str, Any]] = []
    best: tuple[float, AugmentResult, Augmenter] | None = None
    fit_seconds = None
    for views in auto.views:
        elapsed = time.perf_counter() - start
        if fit_seconds is not None and elapsed + fit_seconds > auto.time_budget:
            trials.append({"views": views, "skipped": f"would exceed the budget ({elapsed:.0f} s spent, a generator "
                                                      f"takes about {fit_seconds:.0f} s of {auto.time_budget:.0f} s)"})
            continue
        if views and modality.classical_views(take(data.X, [0]), 1, seed=0, meta=data.meta) is None:
            trials.append({"views": views, "skipped": f"the {modality.name} modality offers no classical views"})
            continue
        t = time.perf_counter()
        augmenter = Augmenter(modality, replace(base, train_views=views), generator_options=generator_options,
                              progress=progress)
        augmenter.log_warnings = False  # only the chosen trial's warnings are shown
        augmenter.fit(data)
        fit_seconds = fit_seconds or time.perf_counter() - t
        screens = [("default", base.screen)] + ([("relaxed", RELAXED_SCREEN)] if auto.relaxed_screen else [])
        for name, screen in screens:
            if trials and time.perf_counter() - start > auto.time_budget:
                trials.append({"views": views, "screen": name, "skipped": "the budget is spent"})
                continue
            t = time.perf_counter()
            augmenter.config = replace(augmenter.config, screen=screen)
            augmenter.screen_ = Screen(screen).fit(augmenter.real_embeddings_, data.y)
            result = augmenter.augment()
            rec = result.recommendation
            score = _score(result)
            best_trial = max(rec.trials, key=lambda r: r["lift"]) if rec.trials else {}
            trials.append({"views": views, "screen": name, "lift": score, "low": best_trial.get("low"),
                           "high": best_trial.get("high"), "ratio": best_trial.get("ratio"), "verdict": rec.verdict,
                           "kept": int(result.keep.sum()), "seconds": round(time.perf_counter() - t, 1)})
            logger.info("auto trial views=%d screen=%s: best lift %+.2f points (%s)", views, name, 100 * score, rec.verdict)
            if best is None or score > best[0]:
                best = (score, result, augmenter)
    assert best is not None  # the first trial always runs
    _, result, augmenter = best
    chosen = next(i for i, t in enumerate(trials) if "skipped" not in t and t["lift"] == best[0])
    # the winner's verdict, estimated again on splits the choice did not see; a lone trial was not
    # chosen from several, so its own estimate stands (and the budget is not spent twice)
    dose = base.dose
    if sum("skipped" not in t for t in trials) > 1:
        dose = replace(base.dose, seed=base.dose.seed + 1)  # type: ignore[union-attr]
        kept = result.order if result.order is not None else np.zeros(0, dtype=np.int64)
        result.recommendation = augmenter._recommend(result.candidates, result.labels, result.embeddings, kept, dose)
        result.classical_seed = dose.seed
    rec = result.recommendation
    augmenter.log_warnings = True
    result.warnings = augmenter._warnings(np.unique(data.y), result.labels, result.screen,
                                          augmenter.config.per_class, rec)  # type: ignore[arg-type]
    result.record.update(recommendation=rec.to_dict(), warnings=result.warnings,
                         auto={"time_budget_s": auto.time_budget, "elapsed_s": round(time.perf_counter() - start, 1),
                               "trials": trials, "chosen": chosen, "verdict_split_seed": dose.seed},
                         config={**result.record["config"], "train_views": trials[chosen]["views"]})
    logger.info("auto: chose trial %d of %d (%s) in %.0f s", chosen + 1, len(trials), trials[chosen],
                time.perf_counter() - start)
    return result
