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
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass

import numpy as np
import torch

from imagina.core.errors import InvalidInputError, NotFittedError, check_choice, check_float, check_int
from imagina.core.modality import SanityResult
from imagina.core.neighbors import count_within, knn, kth_neighbour_radius
from imagina.core.runtime import numpy_rng

logger = logging.getLogger(__name__)


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
        the candidate distribution instead of spreading the kept set over its tails.
    seed : seed of the "random" selector.
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
        check_choice("selector", self.selector, ("maxmin", "random"))
        check_int("seed", self.seed, minimum=0)
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
            radii = kth_neighbour_radius(emb, cfg.k, chunk=cfg.chunk_size)
            nn1 = kth_neighbour_radius(emb, 1, chunk=cfg.chunk_size)
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
        uniformly.
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

        proba = self.classifier_.predict_proba(cand_emb) if n else np.zeros((0, len(self.classes_)))
        col = {c: i for i, c in enumerate(self.classifier_.classes_.tolist())}
        consistency = proba[np.arange(n), [col[c] for c in cand_y.tolist()]] if n else np.zeros(0)
        density = np.zeros(n)
        novelty = np.zeros(n)
        nearest_real = np.zeros(n, dtype=np.int64)
        for c in np.unique(cand_y):
            rows = np.flatnonzero(cand_y == c)
            emb, radii, scale = self.real_[c]
            density[rows] = count_within(cand_emb[rows], emb, radii, chunk=cfg.chunk_size) / cfg.k
            d, idx = knn(cand_emb[rows], emb, 1, chunk=cfg.chunk_size)
            novelty[rows] = d[:, 0] / scale
            nearest_real[rows] = idx[:, 0]
        quality = 0.5 * consistency + 0.5 * np.minimum(density, 1.0)

        reasons: list[str | None] = list(checks.reasons) if checks is not None else [None] * n
        for i in range(n):
            if reasons[i] is not None:
                continue
            if consistency[i] < cfg.min_consistency:
                reasons[i] = f"label-inconsistent: p(label)={consistency[i]:.2f} < {cfg.min_consistency}"
            elif cfg.require_manifold and density[i] <= cfg.min_density:
                reasons[i] = "unrealistic: outside the real k-NN manifold of its class"
            elif novelty[i] < cfg.copy_ratio:
                reasons[i] = f"near-copy: of real item {nearest_real[i]} of its class (novelty {novelty[i]:.2f})"

        keep = np.zeros(n, dtype=bool)
        for c in np.unique(cand_y):
            rows = np.flatnonzero((cand_y == c) & np.array([r is None for r in reasons], dtype=bool))
            _, _, scale = self.real_[c]
            self._select(cand_emb, rows, quality, scale, budget, keep, reasons,
                         None if priority is None else priority[rows])

        scores = {"quality": quality, "consistency": consistency, "realism": density, "novelty": novelty}
        if checks is not None:
            scores.update({k: np.asarray(v, dtype=np.float64) for k, v in checks.scores.items()})
        logger.info("screen kept %d of %d candidates", int(keep.sum()), n)
        return ScreenResult(keep, scores, reasons)

    def _select(self, emb, rows, quality, scale, budget, keep, reasons, priority=None) -> None:
        """Quality-weighted greedy max-min selection inside one class (O(len(rows)) memory)."""
        if len(rows) == 0:
            return
        cfg = self.config
        x = torch.as_tensor(emb[rows])
        q = torch.as_tensor(quality[rows], dtype=torch.float32)
        mind = torch.full((len(rows),), float("inf"))
        nearest = torch.full((len(rows),), -1, dtype=torch.long)
        open_ = torch.ones(len(rows), dtype=torch.bool)
        limit = budget if budget is not None else len(rows)
        taken = 0
        dup = cfg.duplicate_ratio * scale
        order = None
        if cfg.selector == "random":
            u = numpy_rng(cfg.seed, "screen-select", int(rows[0]), len(rows)).random(len(rows))
            if priority is not None:  # weighted draw without replacement: the largest u^(1/w) first
                u = np.log1p(-u) / priority  # log(1 - u) with 1 - u in (0, 1]; -inf never occurs
                u = u - u.min() + 1.0  # positive keys in the same order (rejected ones score -1)
            order = torch.as_tensor(u, dtype=torch.float32 if priority is None else torch.float64)
        while taken < limit and bool(open_.any()):
            redundant = open_ & (mind < dup)
            for j in torch.nonzero(redundant).squeeze(1).tolist():
                reasons[rows[j]] = f"redundant: near-duplicate of kept candidate {rows[int(nearest[j])]}"
            open_ &= ~redundant
            if not bool(open_.any()):
                break
            if order is not None:
                pick_score = order.clone()
            else:
                spread = torch.where(torch.isinf(mind), torch.ones_like(mind), mind / scale)
                pick_score = q * spread.clamp_min(1e-12) ** cfg.diversity_weight
            pick_score[~open_] = -1.0
            j = int(torch.argmax(pick_score))
            keep[rows[j]] = True
            open_[j] = False
            taken += 1
            d = torch.linalg.vector_norm(x - x[j], dim=1)  # (m,): one row, never m×m
            closer = d < mind
            mind = torch.where(closer, d, mind)
            nearest = torch.where(closer, torch.full_like(nearest, j), nearest)
        for j in torch.nonzero(open_).squeeze(1).tolist():
            reasons[rows[j]] = f"over budget: class budget of {limit} reached"


def _as_embeddings(name: str, emb: np.ndarray) -> np.ndarray:
    emb = np.asarray(emb, dtype=np.float32)
    if emb.ndim != 2:
        raise InvalidInputError(f"`{name}` must be a 2-D array (n, d); got shape {emb.shape}.")
    if not np.isfinite(emb).all():
        raise InvalidInputError(f"`{name}` holds NaN or infinite values.")
    return emb
