"""Embedding-based screening of generated candidates: quality, diversity, and a selector.

Per candidate, against the real items of its conditioning class:

* **realism** — Naeem et al.'s per-sample density: the share of real k-NN balls it falls in
  (divided by k). Zero means outside the real manifold (improved precision's test).
* **consistency** — probability that a logistic regression fitted on real embeddings gives the
  conditioning label. Its regularisation is chosen by cross-validated log-loss on the real items:
  a fixed C = 1 gave flat probabilities on small sets (MNIST, 10 per class: median p(label) of
  held-out *real* digits 0.34, so a 0.5 threshold refused 93 % of them).
* **novelty** — distance to the nearest real item, relative to the median real-to-real
  nearest-neighbour distance of the class; below ``copy_ratio`` the candidate is a near-copy.
* modality **checks** (sanity, fluency, ...) arrive as a :class:`~imagina.core.modality.SanityResult`.

The selector then keeps, per class and up to a budget, the best candidates by quality while
greedily maximising diversity (quality-weighted max-min / k-center); candidates closer than
``duplicate_ratio`` to a kept one are rejected as redundant. Every rejection carries a reason.
All distance work is chunked (:mod:`imagina.core.neighbors`): memory is O(n), never O(n²).
Scoring has no per-candidate Python branch: each candidate gets a reason code from vectorised
masks, and only the rejection messages are formatted, once each; the selector loops over picks
(the budget), each an O(m) tensor step over the class's m candidates.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass

import numpy as np
import torch

from imagina.core.errors import InvalidInputError, NotFittedError, check_choice, check_float, check_int
from imagina.core.modality import SanityResult
from imagina.core.neighbors import ball_stats, knn
from imagina.core.runtime import numpy_rng

logger = logging.getLogger(__name__)


SELECTORS = ("maxmin", "random", "value")


@dataclass(frozen=True, kw_only=True)
class ScreenConfig:
    """Thresholds of the screen.

    k : neighbours for the manifold balls (improved precision / density).
    min_consistency : lowest accepted probability of the conditioning label.
    min_density : lowest accepted realism (share of real k-NN balls containing the candidate);
        0 keeps everything inside at least one ball's closure only if ``require_manifold``.
    require_manifold : reject candidates inside no real k-NN ball of their class.
    copy_ratio : near-copy if the nearest real item is closer than this × the class's median
        real-to-real nearest-neighbour distance.
    duplicate_ratio : redundant if a kept candidate is closer than this × that same median.
    budget_per_class : keep at most this many per class (None: all that pass).
    diversity_weight : exponent of the max-min distance in the selector's pick score
        ``quality · distance^w`` (0 ranks by quality alone).
    selector : "maxmin" (the quality-weighted max-min pick above) or "random": candidates that pass
        are taken in a seeded random order (redundant ones still rejected), which keeps the shape of
        the candidate distribution instead of spreading the kept set over its tails; or "value": taken
        in order of their marginal value (ties by KNN-Shapley; the ``value`` and ``knn_shapley`` scores
        of ``checks``, which the pipeline's valuation adds), redundant ones still rejected. "value" is
        an option, not a default: on 13 fresh draws it left outside classifiers no better off than the
        default pick (docs/value_selector_plan.md).
    seed : seed of the "random" selector.
    priority_score : name of a modality check score (:class:`~imagina.core.modality.SanityResult`
        ``scores``) that weights the "random" selector's draw, or None (a uniform draw). Candidates are
        drawn without replacement with probability proportional to ``score ** priority_power``: the text
        checks' ``bigram_rarity`` makes a sentence built of word pairs that many other candidates repeat
        less likely to be taken, so the kept set is less repetitive while the draw stays random. A
        missing, non-finite or non-positive score counts as 1 (no preference).
    priority_power : exponent of ``priority_score`` (0: the uniform draw, exactly as without it).
    """

    k: int = 5
    min_consistency: float = 0.5
    min_density: float = 0.0
    require_manifold: bool = True
    copy_ratio: float = 0.2
    duplicate_ratio: float = 0.2
    budget_per_class: int | None = None
    diversity_weight: float = 1.0
    selector: str = "maxmin"
    seed: int = 0
    priority_score: str | None = None
    priority_power: float = 1.0
    chunk_size: int = 2048

    def __post_init__(self) -> None:
        check_int("k", self.k, minimum=1)
        check_float("min_consistency", self.min_consistency, minimum=0.0, maximum=1.0)
        check_float("min_density", self.min_density, minimum=0.0)
        check_float("copy_ratio", self.copy_ratio, minimum=0.0)
        check_float("duplicate_ratio", self.duplicate_ratio, minimum=0.0)
        if self.budget_per_class is not None:
            check_int("budget_per_class", self.budget_per_class, minimum=1)
        check_float("diversity_weight", self.diversity_weight, minimum=0.0)
        check_choice("selector", self.selector, SELECTORS)
        check_int("seed", self.seed, minimum=0)
        if self.priority_score is not None:
            if not isinstance(self.priority_score, str) or not self.priority_score:
                raise InvalidInputError(f"`priority_score` must be a score name (str) or None; got {self.priority_score!r}.")
            if self.selector != "random":
                raise InvalidInputError('`priority_score` needs the "random" selector; got selector '
                                        f'{self.selector!r}. Hint: ScreenConfig(selector="random", priority_score=...).')
        check_float("priority_power", self.priority_power, minimum=0.0)
        check_int("chunk_size", self.chunk_size, minimum=16)


@dataclass
class ScreenResult:
    """Outcome of :meth:`Screen.score` for n candidates.

    keep : ndarray of shape (n,), bool.
    scores : dict of name -> ndarray of shape (n,), float.
    reasons : list of n items: None for kept candidates, else why it was rejected.
    """

    keep: np.ndarray
    scores: dict[str, np.ndarray]
    reasons: list[str | None]

    def rejection_counts(self) -> dict[str, int]:
        """How many candidates each kind of reason rejected (text before the first ':')."""
        out: dict[str, int] = {}
        for r in self.reasons:
            if r is not None:
                key = r.split(":")[0]
                out[key] = out.get(key, 0) + 1
        return out


def label_classifier(emb: np.ndarray, y: np.ndarray):
    """A logistic regression on embeddings whose C (10⁻² … 10³) minimises cross-validated log-loss,
    so that its probabilities are calibrated on real items (C = 1 when a class has one item)."""
    from sklearn.linear_model import LogisticRegression, LogisticRegressionCV
    from sklearn.model_selection import StratifiedKFold

    folds = min(5, int(np.unique(y, return_counts=True)[1].min()))
    if folds < 2:
        return LogisticRegression(max_iter=2000, C=1.0).fit(emb, y)
    cv = StratifiedKFold(folds, shuffle=True, random_state=0)
    with warnings.catch_warnings():  # scikit-learn 1.9 announces a change of fitted attributes we do not read
        warnings.simplefilter("ignore", FutureWarning)
        return LogisticRegressionCV(Cs=np.logspace(-2, 3, 6), cv=cv, scoring="neg_log_loss", max_iter=2000).fit(emb, y)


class Screen:
    """Score and select generated candidates against real data in an embedding space.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> real = rng.normal(size=(60, 8)).astype("float32"); y = np.repeat([0, 1], 30); real[y == 1] += 4
    >>> cand = real + rng.normal(scale=0.3, size=real.shape).astype("float32")
    >>> result = Screen().fit(real, y).score(cand, y)
    >>> result.keep.shape
    (60,)
    """

    def __init__(self, config: ScreenConfig | None = None) -> None:
        self.config = config or ScreenConfig()
        self.classes_: np.ndarray | None = None

    def fit(self, real_emb: np.ndarray, real_y: np.ndarray) -> Screen:
        """Learn per-class manifolds, distance scales and the label classifier from real embeddings."""
        real_emb = _as_embeddings("real_emb", real_emb)
        real_y = np.asarray(real_y)
        if len(real_y) != len(real_emb):
            raise InvalidInputError(f"`real_y` must have one label per embedding ({len(real_emb)}); got {len(real_y)}.")
        self.classes_ = np.unique(real_y)
        if len(self.classes_) < 2:
            raise InvalidInputError("`real_y` must hold at least 2 classes for the label-consistency score.")
        cfg = self.config
        self.real_ = {}
        for c in self.classes_:
            emb = real_emb[real_y == c]
            d, _ = knn(emb, emb, cfg.k, exclude_self=True, chunk=cfg.chunk_size)  # both radii in one pass
            radii, nn1 = (d[:, -1], d[:, 0]) if d.shape[1] else (np.full(len(emb), np.inf),) * 2
            finite = nn1[np.isfinite(nn1)]
            scale = float(np.median(finite)) if len(finite) else 1.0
            self.real_[c] = (emb, radii, max(scale, 1e-8))
        self.classifier_ = label_classifier(real_emb, real_y)
        return self

    def score(
        self,
        cand_emb: np.ndarray,
        cand_y: np.ndarray,
        *,
        checks: SanityResult | None = None,
        budget_per_class: int | None = None,
        priority: np.ndarray | None = None,
    ) -> ScreenResult:
        """Score every candidate, then select per class. ``budget_per_class`` overrides the config's.

        ``priority`` (n positive weights, "random" selector only): candidates are drawn without
        replacement with probability proportional to it (Efraimidis & Spirakis 2006) instead of
        uniformly. Without it, the config's ``priority_score`` (a score of ``checks``) gives the weights.
        """
        if self.classes_ is None:
            raise NotFittedError("This Screen is not fitted yet; call `fit` before using it.")
        cfg = self.config
        budget = budget_per_class if budget_per_class is not None else cfg.budget_per_class
        cand_emb = _as_embeddings("cand_emb", cand_emb)
        cand_y = np.asarray(cand_y)
        n = len(cand_emb)
        if len(cand_y) != n:
            raise InvalidInputError(f"`cand_y` must have one label per candidate ({n}); got {len(cand_y)}.")
        unknown = set(np.unique(cand_y).tolist()) - set(self.classes_.tolist())
        if unknown:
            raise InvalidInputError(f"`cand_y` holds labels absent from the real data: {sorted(unknown)[:5]}.")
        if checks is not None and len(checks.reasons) != n:
            raise InvalidInputError(f"`checks` must cover every candidate ({n}); got {len(checks.reasons)}.")
        if priority is not None:
            priority = np.asarray(priority, dtype=np.float64)
            if priority.shape != (n,) or not (np.isfinite(priority) & (priority > 0)).all():
                raise InvalidInputError(f"`priority` must hold {n} positive finite weights, one per candidate.")
            if cfg.selector != "random":
                raise InvalidInputError('`priority` needs the "random" selector (ScreenConfig(selector="random")).')
        else:
            priority = _check_priority(cfg, checks, n)
        if cfg.selector == "value":
            priority = _value_keys(checks, n)

        proba = self.classifier_.predict_proba(cand_emb) if n else np.zeros((0, len(self.classes_)))
        col = np.searchsorted(self.classifier_.classes_, cand_y)  # classes_ is sorted (np.unique)
        consistency = proba[np.arange(n), col]
        density = np.zeros(n)
        novelty = np.zeros(n)
        nearest_real = np.zeros(n, dtype=np.int64)
        by_class = [(c, np.flatnonzero(cand_y == c)) for c in np.unique(cand_y)]
        for c, rows in by_class:
            emb, radii, scale = self.real_[c]
            stats = ball_stats(cand_emb[rows], emb, radii, nearest=True, chunk=cfg.chunk_size)
            density[rows] = stats.count / cfg.k
            novelty[rows] = stats.nearest_dist / scale
            nearest_real[rows] = stats.nearest_index
        quality = 0.5 * consistency + 0.5 * np.minimum(density, 1.0)

        # one reason code per candidate, first failing test wins (np.select keeps the order)
        checked = np.zeros(n, dtype=bool)
        if checks is not None:
            checked = np.fromiter((r is not None for r in checks.reasons), dtype=bool, count=n)
        code = np.select(
            [checked, consistency < cfg.min_consistency,
             cfg.require_manifold & (density <= cfg.min_density), novelty < cfg.copy_ratio],
            [_CHECKS, _INCONSISTENT, _UNREALISTIC, _NEAR_COPY], _OPEN)
        redundant_of = np.full(n, -1, dtype=np.int64)
        for c, rows in by_class:
            rows = rows[code[rows] == _OPEN]
            if len(rows):
                _, _, scale = self.real_[c]
                self._select(cand_emb, rows, quality, scale, budget, code, redundant_of,
                             None if priority is None else priority[rows])
        keep = code == _KEPT
        reasons = _reasons(code, checks, consistency, nearest_real, novelty, redundant_of, cfg, budget)

        scores = {"quality": quality, "consistency": consistency, "realism": density, "novelty": novelty}
        if checks is not None:
            scores.update({k: np.asarray(v, dtype=np.float64) for k, v in checks.scores.items()})
        logger.info("screen kept %d of %d candidates", int(keep.sum()), n)
        return ScreenResult(keep, scores, reasons)

    def _select(self, emb, rows, quality, scale, budget, code, redundant_of, priority=None) -> None:
        """Quality-weighted greedy max-min selection inside one class (O(len(rows)) memory).

        Sets ``code[rows]`` to kept, redundant or over budget and ``redundant_of`` to the kept
        candidate a redundant one duplicates; one O(len(rows)) tensor step per pick.
        """
        cfg = self.config
        x = torch.as_tensor(emb[rows])
        q = torch.as_tensor(quality[rows], dtype=torch.float32)
        mind = torch.full((len(rows),), float("inf"))
        state = torch.full((len(rows),), _OPEN, dtype=torch.int8)
        dup_of = torch.full((len(rows),), -1, dtype=torch.long)
        limit = budget if budget is not None else len(rows)
        taken = 0
        dup = cfg.duplicate_ratio * scale
        order = None
        if cfg.selector == "value":  # the keys rank by value, then KNN-Shapley
            order = torch.as_tensor(priority, dtype=torch.float64)
        elif cfg.selector == "random":
            u = numpy_rng(cfg.seed, "screen-select", int(rows[0]), len(rows)).random(len(rows))
            if priority is not None:  # weighted draw without replacement: the largest u^(1/w) first
                u = np.log1p(-u) / priority  # log(1 - u) with 1 - u in (0, 1]; -inf never occurs
                u = u - u.min() + 1.0  # positive keys in the same order (rejected ones score -1)
            order = torch.as_tensor(u, dtype=torch.float32 if priority is None else torch.float64)
        n_open = len(rows)
        while taken < limit and n_open:
            open_ = state == _OPEN
            if order is not None:
                pick_score = order.clone()
            else:
                spread = torch.where(torch.isinf(mind), torch.ones_like(mind), mind / scale)
                pick_score = q * spread.clamp_min(1e-12) ** cfg.diversity_weight
            pick_score[~open_] = -1.0
            j = int(torch.argmax(pick_score))
            state[j] = _KEPT
            taken += 1
            d = torch.linalg.vector_norm(x - x[j], dim=1)  # (m,): one row, never m×m
            mind = torch.minimum(d, mind)
            if taken < limit:  # near the last pick, candidates stay open and end over budget
                redundant = open_ & (d < dup)
                redundant[j] = False
                state[redundant] = _REDUNDANT
                dup_of[redundant] = j
            n_open = int((state == _OPEN).sum())
        state[state == _OPEN] = _OVER_BUDGET
        code[rows] = state.numpy()
        hit = dup_of.numpy() >= 0
        redundant_of[rows[hit]] = rows[dup_of.numpy()[hit]]


#: The reason of a candidate that passed every test after its class's budget was full.
OVER_BUDGET = "over budget"

# reason codes, in the order the tests run
_OPEN, _KEPT, _CHECKS, _INCONSISTENT, _UNREALISTIC, _NEAR_COPY, _REDUNDANT, _OVER_BUDGET = range(8)


def _reasons(code, checks, consistency, nearest_real, novelty, redundant_of, cfg, budget) -> list[str | None]:
    """The reason of every candidate from its code; each message is formatted once, for the
    candidates that carry it (a list comprehension over those, no branch per candidate)."""
    out = np.full(len(code), None, dtype=object)
    if checks is not None:
        rows = np.flatnonzero(code == _CHECKS)
        out[rows] = [checks.reasons[i] for i in rows.tolist()]
    rows = np.flatnonzero(code == _INCONSISTENT)
    out[rows] = [f"label-inconsistent: p(label)={p:.2f} < {cfg.min_consistency}" for p in consistency[rows].tolist()]
    out[code == _UNREALISTIC] = "unrealistic: outside the real k-NN manifold of its class"
    rows = np.flatnonzero(code == _NEAR_COPY)
    out[rows] = [f"near-copy: of real item {i} of its class (novelty {v:.2f})"
                 for i, v in zip(nearest_real[rows].tolist(), novelty[rows].tolist())]
    rows = np.flatnonzero(code == _REDUNDANT)
    out[rows] = [f"redundant: near-duplicate of kept candidate {i}" for i in redundant_of[rows].tolist()]
    out[code == _OVER_BUDGET] = f"{OVER_BUDGET}: class budget of {budget} reached"
    return out.tolist()


def _check_priority(cfg: ScreenConfig, checks: SanityResult | None, n: int) -> np.ndarray | None:
    """Weights (n,) of the random draw from the check score ``cfg.priority_score`` raised to
    ``cfg.priority_power``; None when no score is named, the power is 0 or the checks lack the score.
    A missing, non-finite or non-positive score weighs 1."""
    if cfg.priority_score is None or cfg.priority_power == 0 or checks is None:
        return None
    if cfg.priority_score not in checks.scores:
        logger.warning("screen: no check score %r to weight the draw; drawing uniformly", cfg.priority_score)
        return None
    score = np.asarray(checks.scores[cfg.priority_score], dtype=np.float64)
    if score.shape != (n,):
        raise InvalidInputError(f"check score `{cfg.priority_score}` must hold {n} values; got shape {score.shape}.")
    score = np.where(np.isfinite(score) & (score > 0), score, 1.0)
    return np.clip(score ** cfg.priority_power, 1e-300, 1e300)  # a zero weight would give a -inf key


def value_order(value: np.ndarray, shapley: np.ndarray) -> np.ndarray:
    """Indices (n,) best first by marginal value, ties by KNN-Shapley, then by index; NaN (unvalued)
    counts as the lowest. One order for the "value" selector and for the dose's take of kept items."""
    value = np.nan_to_num(np.asarray(value, dtype=np.float64), nan=-np.inf)
    shapley = np.nan_to_num(np.asarray(shapley, dtype=np.float64), nan=-np.inf)
    return np.lexsort((-shapley, -value))


def _value_keys(checks: SanityResult | None, n: int) -> np.ndarray:
    """Keys (n,) of the "value" selector: positive and distinct, the largest for the first of
    :func:`value_order`."""
    if checks is None or "value" not in checks.scores or "knn_shapley" not in checks.scores:
        raise InvalidInputError('the "value" selector needs the candidates\' values: keep the valuation on '
                                "(AugmentConfig(valuation=ValuationConfig())).")
    keys = np.empty(n)
    keys[value_order(checks.scores["value"], checks.scores["knn_shapley"])] = np.arange(n, 0, -1)
    return keys


def _as_embeddings(name: str, emb: np.ndarray) -> np.ndarray:
    emb = np.asarray(emb, dtype=np.float32)
    if emb.ndim != 2:
        raise InvalidInputError(f"`{name}` must be a 2-D array (n, d); got shape {emb.shape}.")
    if not np.isfinite(emb).all():
        raise InvalidInputError(f"`{name}` holds NaN or infinite values.")
    return emb
