"""How many synthetic items to add, if any: a dose chosen by cross-validated lift, and a verdict.

A fast probe classifier (the modality's :meth:`~imagina.core.modality.Modality.probe_features`
followed by a logistic regression) is trained on the real training part of repeated stratified
splits of the user's real data, alone and with ``ratio × (real items of the class)`` synthetic items
per class, and scored on the split's held-out real items. The dose is the ratio whose mean lift over
the reference arm is largest; the verdict is "use" only when the lower end of its interval is above zero.

The reference arm is not the real items alone but the real items **with the modality's classical
augmentation** (:meth:`~imagina.core.modality.Modality.classical_views`: TrivialAugmentWide, EDA
edits, shift / speed / noise) at its best number of views per item on the same splits (0 included):
a user who has classical augmentation gains nothing from synthetic items that only match it, and
on unseen data sets with independent classifiers, imagined items that beat real-only often lost to
classical augmentation. The synthetic arms add the dose on top of that reference, so "use" means
"use with classical augmentation; it adds this much", and "don't use" may say "classical augmentation
alone does better".

Honesty rules, each a guard against a known way for such a check to flatter synthetic data:

* The generator saw every real item, so a synthetic item attributed to a held-out real item (its
  nearest real item of the class, see :mod:`imagina.core.valuation`) is left out of that split, and
  so is every synthetic item that lies nearer to a held-out item than that item's nearest training
  item (:func:`echoes`), in any of the modality's probe feature spaces (word and character TF-IDF
  alike: a near-copy in one space is an echo whatever the chosen probe reads) and in the screen's
  embedding space: a generator that had not seen it could not have placed a sample that close.
  Without this second rule the lift grew with the dose on MNIST, FSDD and TREC outputs while
  independent classifiers lost accuracy (benchmarks/experiments/probe_calibration.py).
* The real-only probe gets its best validated setting: its feature family (when the modality offers
  several, e.g. pixels and gradient histograms for images) and its regularisation are chosen on the
  same splits and used for every dose, so the synthetic arms cannot win by tuning, and a lift has to
  show over the strongest cheap model, not a weak one (over a weak baseline, a lift is not a lift).
* The dose is chosen as the best of several on one set of splits, which flatters it; its lift and
  interval are therefore measured again on a fresh set of splits (another split seed) before the
  verdict, and "use" needs the lower end above zero on both (discovery and replication): a dose
  that only the fresh splits favour had a lucky draw (TREC, seed 0: +0.67 [−2.62, ...] on the
  choosing splits, +3.33 [+0.53, ...] on fresh ones; fastText then lost 1.4 points on the test set).
* A "use" is checked with a second model family (the modality's small reference network, the same
  reference arm with and without the dose, fresh splits) and stands only if that network gains
  clearly too, its interval above zero (MNIST with the combined screen: +8.00 [−5.89, +21.89] on 5
  splits passed a mean-above-zero rule, and LeNet lost on the test set); the lift the message
  promises is the smaller of the two, because on unseen data the probe's intervals overstated what
  independent neural classifiers gained. (``check_rule="sign"`` asks the network only for a gain in
  the mean and leaves the interval to the unseen check below; under test, not the default.)
* The generator saw every real item, so however echoes are filtered, its items can carry what it
  learnt from a held-out item. A "use" therefore stands only if it holds on real items **no generator
  of the check saw**: two more generators are trained, each on one stratified half of the real items,
  with the run's settings and screen (the screen and the values fitted on that half); the chosen dose
  of each one's kept items is added to the reference arm of splits whose held-out items all lie in
  the *other* half, and the interval over those splits must clear zero too (``unseen``). Without it
  the final rules said "use" on TREC, seed 9 (probe +4.33 [+2.09, +6.58], TextCNN check +5.00), and the
  dose cost fastText 7.5 and an SVM 11.1 points on top of classical augmentation on the test set.
* The interval uses the corrected resampled t-test (Nadeau & Bengio 2003), whose variance term
  ``(1/J + n_test/n_train) · s²`` accounts for the overlap of repeated splits; a single lucky split
  cannot decide.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from imagina.core.errors import InvalidInputError, check_choice, check_float, check_int, with_options
from imagina.core.modality import CLASSICAL_STRENGTHS, concat, take
from imagina.core.valuation import stratified_subsample

logger = logging.getLogger(__name__)

#: What the check network must show for a "use" to stand (:attr:`DoseConfig.check_rule`).
CHECK_RULES = ("interval", "sign")
CLASSICAL_SEARCHES = ("grid", "count-first")


@dataclass(frozen=True, kw_only=True)
class DoseConfig:
    """Settings of :func:`recommend_dose`.

    ratios : candidate doses, synthetic items per real item of each class (0 = real only, always tried).
    folds, repeats : repeated stratified K-fold splits of the real data (folds shrink to the smallest class).
    confidence : two-sided level of the lift's interval; "use" needs its lower end above 0, so the
        default 0.8 asks for a one-sided 90 % bound: with a few dozen real items a stricter bound
        refuses lifts of ten points that are real.
    probe_cs : inverse regularisation strengths of the logistic-regression probes.
    svm_cs : C of the RBF-kernel SVM probes (on dense features): a non-linear cheap model, so that a lift
        that only a linear model on simple features sees does not pass for one.
    classical : classical views per real item tried for the reference arm (0, real only, is always
        tried; empty: compare with real only). Used when the caller passes ``views``.
    classical_strengths : strengths of those views tried for the reference arm
        (:data:`~imagina.core.modality.CLASSICAL_STRENGTHS`); the best (count, strength) pair tried on
        the splits is the reference (a tie goes to fewer views, then to "default"). Default
        ("default",): one strength. More are an option, not the default: on 10 fresh draws they lifted
        the output +3.1 points, on 10 more they cost −3.2 (docs/classical_strength_plan.md).
    classical_search : how counts and strengths are searched: "grid" (default), every count at every
        strength; "count-first", the counts at "default" (or the mildest strength given), then the
        other strengths at the chosen count only (at the smallest count where real only won), two arms
        instead of six with three strengths; on 10 fresh draws it never changed the reference
        (docs/classical_search_plan.md).
    check_splits : fresh splits on which a "use" is checked with a second model family (the caller's
        ``check``, the modality's small reference network); 0: no check.
    check_rule : what the second model family must show for a "use" to stand: "interval" (default), a
        clear gain, its interval above 0 as the probe's; "sign", a mean gain above 0, which leaves the
        interval to the check on items no generator saw (the network's intervals on 5 splits are
        several points wide, and on TREC they vetoed doses that helped independent classifiers).
    unseen_folds : generators of the check on items no generator saw (the caller's ``unseen``), each
        trained on all but one of this many stratified parts of the real items and tested on the part
        it did not see. 2 (default): two generators on halves; more fits more generators (cost about
        ``unseen_folds − 1`` run generators, at steps scaled to their share) that each see more items,
        so that they are less weak than the run's own generator.
    max_real : at most this many real items (a stratified random subset) take part in the splits:
        with thousands of real items a synthetic dose rarely matters, and the probe's cost grows with them.
    seed : seed of the splits and of the subset.
    """

    ratios: tuple[float, ...] = (0.5, 1.0, 2.0, 4.0, 8.0, 16.0)
    folds: int = 5
    repeats: int = 2
    confidence: float = 0.8
    probe_cs: tuple[float, ...] = (0.1, 1.0, 10.0)
    svm_cs: tuple[float, ...] = (1.0, 10.0)
    max_real: int = 2000
    classical: tuple[int, ...] = (1, 2, 4)
    classical_strengths: tuple[str, ...] = ("default",)
    classical_search: str = "grid"
    check_splits: int = 5
    check_rule: str = "interval"
    unseen_folds: int = 2
    seed: int = 0

    def __post_init__(self) -> None:
        if not self.ratios:
            raise InvalidInputError("`ratios` must hold at least one dose.")
        for r in self.ratios:
            check_float("ratios", r, minimum=0.0)
        check_int("folds", self.folds, minimum=2)
        check_int("repeats", self.repeats, minimum=1)
        check_float("confidence", self.confidence, minimum=0.5, maximum=0.999)
        if not self.probe_cs:
            raise InvalidInputError("`probe_cs` must hold at least one value.")
        for c in self.probe_cs:
            check_float("probe_cs", c, minimum=1e-6)
        for c in self.svm_cs:
            check_float("svm_cs", c, minimum=1e-6)
        check_int("max_real", self.max_real, minimum=10)
        for v in self.classical:
            check_int("classical", v, minimum=0)
        if not self.classical_strengths:
            raise InvalidInputError("`classical_strengths` must hold at least one strength.")
        for s in self.classical_strengths:
            check_choice("classical_strengths", s, CLASSICAL_STRENGTHS)
        check_choice("classical_search", self.classical_search, CLASSICAL_SEARCHES)
        check_int("check_splits", self.check_splits, minimum=0)
        check_int("unseen_folds", self.unseen_folds, minimum=2)
        if self.check_rule not in CHECK_RULES:
            raise InvalidInputError(f"`check_rule` must be one of {', '.join(CHECK_RULES)}; got {self.check_rule!r}.")
        check_int("seed", self.seed, minimum=0)

    @classmethod
    def from_options(cls, options: dict[str, Any], base: DoseConfig | None = None) -> DoseConfig:
        """``base`` (default: the defaults) with the settings named in ``options`` (``--dose-option
        KEY=VALUE``); a list, or one value where the setting holds several, becomes a tuple; an unknown key
        is a one-line error that names the known ones."""
        return with_options(base or cls(), options, flag="--dose-option")


@dataclass
class Recommendation:
    """The dose and the verdict that travel with an output.

    verdict : "use" or "don't use".
    ratio, share : the chosen dose (synthetic per real item) and the share of synthetic items it
        makes in the training set (ratio / (1 + ratio)); 0 when the verdict is "don't use".
    per_class : synthetic items to add per class (what ``samples/`` holds).
    lift, interval : mean cross-validated accuracy lift of the probe over the reference arm (real items
        plus ``classical_views`` classical views per item) at the best dose tried (the chosen one when the
        verdict is "use"), and its ``confidence`` interval (fractions).
    classical_views, classical_lift, classical_interval : the reference arm's classical views per real
        item (0: real only was best) and its lift over real only, with interval.
    classical_strength : the strength of those views (:data:`~imagina.core.modality.CLASSICAL_STRENGTHS`).
    check : when the probe said "use": the second model family's lift with the chosen dose over the
        reference arm on fresh splits (classifier, splits, lift, low, high, rule); "use" needs its
        interval above 0, as the probe's (rule "interval"), or its mean lift above 0 (rule "sign").
    expected : the lift the message promises (lift, low, high, source): the more cautious of the probe
        and the check (the smaller mean lift), since the probe's intervals overstate what neural
        classifiers gain (BENCHMARKS.md, "verdict calibration"); the probe's when no check ran.
    message : the verdict in words.
    trials : every dose tried: ratio, share, mean lift, interval, probe accuracy.
    unseen : when the probe and the check said "use": the chosen dose's lift over the reference arm on
        real items that the generators it came from never saw (two generators, each trained on one
        half; splits, lift, low, high); "use" needs its interval above 0 as well.
    best_ratio, fresh_splits : the best dose of ``trials`` and the fresh splits that measured it again
        (``lift`` and ``interval`` are that measurement, the verdict's figure); None and 0 when no
        synthetic item was kept.
    """

    verdict: str
    ratio: float
    share: float
    per_class: dict[str, int]
    lift: float
    interval: tuple[float, float]
    message: str
    probe: str
    splits: int
    confidence: float
    real_accuracy: float
    trials: list[dict[str, float]] = field(default_factory=list)
    classical_views: int = 0
    classical_lift: float = 0.0
    classical_interval: tuple[float, float] = (0.0, 0.0)
    classical_trials: list[dict[str, float]] = field(default_factory=list)
    check: dict[str, Any] | None = None
    expected: dict[str, Any] | None = None
    seconds: float = 0.0
    unseen: dict[str, Any] | None = None
    best_ratio: float | None = None
    fresh_splits: int = 0
    classical_strength: str = "default"

    @property
    def use(self) -> bool:
        return self.verdict == "use"

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["interval"] = list(self.interval)
        out["classical_interval"] = list(self.classical_interval)
        return out

    def to_markdown(self) -> str:
        lines = [f"**Verdict: {self.verdict}.** {self.message[:1].upper()}{self.message[1:]}", "",
                 f"Probe: {self.probe}; {self.splits} cross-validation splits of the real data; "
                 f"{100 * self.confidence:.0f} % intervals (corrected resampled t). Real only: "
                 f"{100 * self.real_accuracy:.2f} % probe accuracy.", ""]
        if self.classical_trials:
            lines += ["| classical views per real item | lift over real only (points) | interval |", "|---|---|---|",
                      f"| 0 (real only){' ← reference' if self.classical_views == 0 else ''} | +0.00 | — |"]
            several = len({t.get("strength", "default") for t in self.classical_trials}) > 1
            for t in self.classical_trials:
                strength = t.get("strength", "default")
                mark = " ← reference" if (t["views"], strength) == (self.classical_views, self.classical_strength) else ""
                lines.append(f"| {t['views']:g}{f' ({strength})' if several else ''}{mark} | {100 * t['lift']:+.2f} | [{100 * t['low']:+.2f}, {100 * t['high']:+.2f}] |")
            lines += ["", f"Synthetic items are added on top of the reference ({self.classical_views} classical "
                          f"view(s) per real item); lifts below are over it.", ""]
        if self.check:
            c = self.check
            lines += [f"Check with a second model family ({c['classifier']}), the reference with and without "
                      f"the dose, {c['splits']} fresh splits: {100 * c['lift']:+.2f} points "
                      f"[{100 * c['low']:+.2f}, {100 * c['high']:+.2f}]"
                      + (" (check rule \"sign\": a gain in the mean suffices)." if c.get("rule") == "sign" else "."), ""]
        if self.unseen:
            u = self.unseen
            g = u["generators"]
            each = "one half" if g == 2 else f"{g - 1} of {g} parts"
            lines += [f"Check on real items the generators never saw ({g} generators, each trained on {each} "
                      f"of the real items; the dose added on {u['splits']} splits of the items it did not see): "
                      f"{100 * u['lift']:+.2f} points [{100 * u['low']:+.2f}, {100 * u['high']:+.2f}].", ""]
        if not self.trials:
            return "\n".join(lines)
        lines += ["| synthetic per real item | synthetic share of real + synthetic | lift (points) | interval |",
                  "|---|---|---|---|"]
        for t in self.trials:
            mark = " ← chosen" if self.use and t["ratio"] == self.ratio else ""
            lines.append(f"| {t['ratio']:g}{mark} | {100 * t['share']:.0f} % | {100 * t['lift']:+.2f} | "
                         f"[{100 * t['low']:+.2f}, {100 * t['high']:+.2f}] |")
        note = ("A class whose screen kept fewer items than a dose asks for adds what it has, and the probe's "
                "training set also holds the reference's classical views.")
        if self.best_ratio is not None and self.fresh_splits:
            r = self.best_ratio
            lines.append(f"| {r:g}, again on {self.fresh_splits} fresh splits (the verdict's figure) | "
                         f"{100 * r / (1 + r):.0f} % | {100 * self.lift:+.2f} | "
                         f"[{100 * self.interval[0]:+.2f}, {100 * self.interval[1]:+.2f}] |")
            note = ("The rows above the last are the splits that chose the dose; the best of them is measured again "
                    "on splits the choice did not see, since the best of several noisy estimates is biased upwards. "
                    + note)
        return "\n".join([*lines, "", note])


def splits(y: np.ndarray, folds: int, repeats: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Repeated stratified K-fold (train, test) index pairs; K shrinks to the smallest class (≥ 2)."""
    from sklearn.model_selection import RepeatedStratifiedKFold

    k = max(2, min(folds, int(np.unique(y, return_counts=True)[1].min())))
    cv = RepeatedStratifiedKFold(n_splits=k, n_repeats=repeats, random_state=seed)
    return [(tr, te) for tr, te in cv.split(np.zeros(len(y)), y)]


def corrected_interval(diffs: np.ndarray, test_share: float, confidence: float) -> tuple[float, float, float]:
    """Mean and ``confidence`` interval of per-split differences under the corrected resampled
    t-test (Nadeau & Bengio 2003): variance ``(1/J + n_test/n_train) · s²`` with J − 1 degrees of freedom."""
    from scipy import stats

    J = len(diffs)
    mean = float(np.mean(diffs))
    if J < 2:
        return mean, -math.inf, math.inf
    var = (1.0 / J + test_share / (1.0 - test_share)) * float(np.var(diffs, ddof=1))
    half = float(stats.t.ppf(0.5 + confidence / 2, J - 1)) * math.sqrt(var)
    return mean, mean - half, mean + half


def _probe_accuracy(features, c: float | tuple[str, float], X_train: Any, y_train: np.ndarray, X_test: Any,
                    y_test: np.ndarray) -> float:
    """Test accuracy of ``features`` + a classifier: ``c`` is a logistic regression's inverse strength,
    or ``(kind, C)`` with kind "logistic" or "rbf-svm" (a kernel SVM, ``gamma="scale"``)."""
    from sklearn.base import clone
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.svm import SVC

    kind, c = c if isinstance(c, tuple) else ("logistic", c)
    head = SVC(C=c, gamma="scale") if kind == "rbf-svm" else LogisticRegression(C=c, max_iter=2000)
    model = make_pipeline(clone(features), head)
    model.fit(X_train, y_train)
    return float((model.predict(X_test) == y_test).mean())


def echoes(real_emb: Any, syn_emb: Any, train: np.ndarray, test: np.ndarray, *, chunk: int = 512) -> np.ndarray:
    """Bool mask (m,): synthetic items nearer to some held-out real item than that item's nearest
    training real item is. A generator that saw the held-out item can place a sample that close to it;
    one that had not seen it would be no nearer than the real items it was trained on, so such samples
    are echoes of held-out items and must not count for them. ``real_emb`` (n, d) and ``syn_emb``
    (m, d) may be dense or scipy-sparse (TF-IDF); memory is O(chunk · (n + m))."""
    from sklearn.metrics.pairwise import euclidean_distances

    out = np.zeros(syn_emb.shape[0], dtype=bool)
    if not syn_emb.shape[0] or not len(test) or not len(train):
        return out
    for s in range(0, len(test), chunk):
        v = real_emb[test[s : s + chunk]]
        radius = euclidean_distances(v, real_emb[train]).min(axis=1)                 # (b,)
        out |= (euclidean_distances(v, syn_emb) < radius[:, None]).any(axis=0)
    return out


def per_class_dose(syn_y: np.ndarray, allowed: np.ndarray, ratio: float, train_y: np.ndarray,
                   classes: np.ndarray) -> np.ndarray:
    """Indices of the synthetic items a dose of ``ratio`` per real training item adds: per class, the
    first ``round(ratio · real items of the class in train_y)`` of those ``allowed`` (items come best
    first within each class), grouped by class."""
    parts = [np.flatnonzero((syn_y == c) & allowed)[: int(round(ratio * int((train_y == c).sum())))] for c in classes]
    return np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, dtype=np.int64)


def per_item_prefix(features: Any) -> tuple[Callable[[Any], Any] | None, Any]:
    """Split a probe's features into a per-item function and the fitted rest: ``(prefix, rest)``.

    A :class:`~sklearn.pipeline.Pipeline` whose first step is a
    :class:`~sklearn.preprocessing.FunctionTransformer` (the modalities' pixels, gradient histograms,
    log-mel statistics and grid) gives that step as ``prefix`` and the remaining steps as ``rest``: the dose
    computes ``prefix`` once per item instead of once per fit, which is exact because such a function
    reads each item alone (:meth:`~imagina.core.modality.Modality.probe_features`). A text vectorizer
    (``CountVectorizer``, ``TfidfVectorizer``) gives its analysis (texts → lists of n-grams) as
    ``prefix`` and, as ``rest``, the same vectorizer over analysed texts, whose vocabulary and weights
    still learn from each fit's training texts (the analysed texts take about as much memory as one
    fit's count matrix: linear in the texts' length). Anything else (a one-step pipeline, a vectorizer
    with its own callable analyzer, any other transformer) gives ``(None, features)``.
    """
    from sklearn.base import clone
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer

    if isinstance(features, Pipeline) and len(features.steps) > 1 and isinstance(features.steps[0][1], FunctionTransformer):
        first = features.steps[0][1]
        return (lambda X: clone(first).fit_transform(X)), features[1:]
    if isinstance(features, CountVectorizer) and not callable(features.analyzer):
        # a vectorizer's analysis (decoding, lowercasing, n-grams of each text) reads each text alone;
        # the vocabulary and the weights learn from the training texts and stay in the fitted rest
        analyze, canon = features.build_analyzer(), {}

        def tokens(X: Any) -> list[list[str]]:  # one string object per distinct n-gram, not per occurrence
            return [[canon.setdefault(g, g) for g in analyze(x)] for x in X]

        analysis = ("input", "encoding", "decode_error", "strip_accents", "lowercase", "preprocessor", "tokenizer",
                    "stop_words", "token_pattern", "ngram_range", "analyzer")
        rest = type(features)(**{k: v for k, v in features.get_params().items() if k not in analysis},
                              analyzer=_analysed)
        return tokens, rest
    return None, features


def _analysed(tokens: list[str]) -> list[str]:
    """The analyzer of a vectorizer whose texts :func:`per_item_prefix` has analysed already."""
    return tokens


@dataclass(frozen=True)
class _Bank:
    """One feature family's view of the dose's items: its per-item features computed once where it has
    a per-item prefix (:func:`per_item_prefix`), else the items themselves; ``features`` fits on them.
    The dose's ``raw`` bank (``features`` None) holds the items themselves, for the check network."""

    features: Any
    real: Any
    views: dict[str, Any]  # classical views of every real item, by strength
    syn: Any
    prefix: Callable[[Any], Any] | None = None

    @classmethod
    def of(cls, features: Any, real: Any, views: dict[str, Any], syn: Any) -> _Bank:
        prefix, rest = per_item_prefix(features)
        if prefix is None:
            return cls(features, real, views, syn)
        return cls(rest, prefix(real), {s: prefix(v) for s, v in views.items()}, prefix(syn) if len(syn) else syn, prefix)

    def add_views(self, strength: str, made: Any) -> None:
        """Classical views of every real item at one more strength (view-major), in this bank's form."""
        self.views[strength] = made if self.prefix is None else self.prefix(made)

    def items(self, X: Any) -> Any:
        """Other items (an unseen generator's pool) in this bank's form."""
        return X if self.prefix is None else self.prefix(X)


def recommend_dose(features, real_X: Any, real_y: np.ndarray, syn_X: Any, syn_y: np.ndarray, attribution: np.ndarray,
                   config: DoseConfig | None = None, *,
                   embeddings: tuple[np.ndarray, np.ndarray] | None = None,
                   views: Callable[[Any, int, int], Any] | None = None, check: Callable[..., tuple[float, float]] | None = None,
                   unseen: Callable[[np.ndarray], tuple[Any, np.ndarray]] | None = None,
                   shift_examples: str = "new sources", progress: bool = False) -> Recommendation:
    """Choose how many synthetic items per class to add, by the cross-validated lift of a probe.

    Parameters
    ----------
    features : an unfitted scikit-learn transformer from items to a feature matrix, or a dict of
        them by name (the modality's :meth:`~imagina.core.modality.Modality.probe_features`); a
        logistic regression or, on dense features, an RBF-kernel SVM follows it: the family and
        classifier best on real data alone are used.
    real_X, real_y : the real items (n) and labels.
    syn_X, syn_y : the screened synthetic items (m) and labels, **best first** within each class.
    attribution : ndarray of shape (m,): index into the real items of each synthetic item's nearest
        real item (it is left out of every split in which that real item is held out).
    embeddings : optional ``(real_emb (n, d), syn_emb (m, d))`` in the screen's space. A synthetic item
        that :func:`echoes` a held-out item in any probe feature space, or in this space, is left out
        of that split too.
    views : optional ``views(X, n_views, seed)`` returning ``n_views`` classical views of every item of
        ``X`` (n), view-major (item ``i`` of view ``v`` at ``v·n + i``): the modality's
        :meth:`~imagina.core.modality.Modality.classical_views`. With it, the reference arm is the real
        items plus their best number of views (``config.classical``, 0 included); views of held-out
        items never train. For a strength other than "default" (``config.classical_strengths``) it is
        called as ``views(X, n_views, seed, strength)``.
    check : optional second model family, ``check(train_X, train_y, syn_X, syn_y, test_X, test_y, share,
        seed) -> (accuracy without, accuracy with)`` the synthetic items (e.g.
        :class:`~imagina.core.evaluation.ReferenceCheck`, a small neural network). When the probe says
        "use", the chosen dose is also trained with it on ``config.check_splits`` fresh splits, and the
        verdict stays "use" only if its interval is above 0 too: a cheap probe on hand-made features can
        gain from items that cost a neural network accuracy.
    unseen : optional ``unseen(seen) -> (syn_X, syn_y)``: the screened synthetic items, best first within
        each class, of a generator trained on the real items ``seen`` (indices into ``real_X``) alone.
        When the probe and the check say "use", the real items are split into ``config.unseen_folds``
        stratified parts (halves by default); it is called with all but one part, and the chosen dose of
        its items is measured on held-out items of the part it did not get (``config.folds`` splits
        each); the verdict stays "use" only if that interval is above 0.
    shift_examples : where test data may differ from the training data in this modality (e.g. "new
        speakers or microphones"), named in a "don't use" whose probe saw no gain from classical
        augmentation (:attr:`~imagina.core.modality.Modality.shift_examples`).
    progress : show a tqdm bar over the probe fits.

    The probes' numpy / scipy BLAS runs on one thread (:func:`~imagina.core.runtime.one_blas_thread`):
    their matrices are small, and a second thread cost the default MNIST run 50 CPU seconds.
    """
    from imagina.core.runtime import one_blas_thread

    with one_blas_thread():
        return _recommend_dose(features, real_X, real_y, syn_X, syn_y, attribution, config, embeddings=embeddings,
                               views=views, check=check, unseen=unseen, shift_examples=shift_examples,
                               progress=progress)


def _recommend_dose(features, real_X: Any, real_y: np.ndarray, syn_X: Any, syn_y: np.ndarray, attribution: np.ndarray,
                    config: DoseConfig | None, *, embeddings: tuple[np.ndarray, np.ndarray] | None,
                    views: Callable[[Any, int, int], Any] | None, check: Callable[..., tuple[float, float]] | None,
                    unseen: Callable[[np.ndarray], tuple[Any, np.ndarray]] | None, shift_examples: str,
                    progress: bool) -> Recommendation:
    """:func:`recommend_dose`'s work, with the BLAS cap in place."""
    cfg = config or DoseConfig()
    start = time.perf_counter()
    families = dict(features) if isinstance(features, dict) else {type(features).__name__: features}
    real_y, syn_y = np.asarray(real_y), np.asarray(syn_y)
    attribution = np.asarray(attribution, dtype=np.int64)
    if len(attribution) != len(syn_y):
        raise InvalidInputError(f"`attribution` must hold one real index per synthetic item ({len(syn_y)}); got {len(attribution)}.")
    subset = stratified_subsample(real_y, cfg.max_real, cfg.seed)
    original = np.arange(len(real_y)) if len(subset) == len(real_y) else np.asarray(subset)  # position → caller's index
    if len(subset) < len(real_y):  # attribution then points into the subset, or nowhere (-1: never held out)
        position = np.full(len(real_y), -1, dtype=np.int64)
        position[subset] = np.arange(len(subset))
        real_X, real_y, attribution = take(real_X, subset), real_y[subset], position[attribution]
        embeddings = (np.asarray(embeddings[0])[subset], embeddings[1]) if embeddings is not None else None
    classes = np.unique(real_y)
    pairs = splits(real_y, cfg.folds, cfg.repeats, cfg.seed)

    def held_share(s_pairs: list) -> float:
        """Mean share of the real items held out per split (the interval's n_test / n)."""
        return float(np.mean([len(te) / len(real_y) for _, te in s_pairs]))

    test_share = held_share(pairs)

    # The real-only probe gets its best setting on these splits; the synthetic arms reuse it.
    from scipy import sparse
    from sklearn.base import clone

    # no screened item: every dose equals the reference, so none is tried (the classical arm still is)
    ratios = sorted({float(r) for r in cfg.ratios if r > 0}) if len(syn_y) else []
    counts = sorted({int(v) for v in cfg.classical if v > 0}) if views is not None else []
    # every real item's views, made once per strength: those of a split's training items join its training set
    strengths = [s for s in CLASSICAL_STRENGTHS if s in cfg.classical_strengths] if counts else []
    grid = cfg.classical_search == "grid"
    if not grid and "default" in strengths:  # count-first: the counts are searched at "default"
        strengths = ["default"] + [s for s in strengths if s != "default"]

    def make_views(strength: str, n_views: int) -> Any:
        return views(real_X, n_views, cfg.seed) if strength == "default" else views(real_X, n_views, cfg.seed, strength)

    searched = strengths if grid else strengths[:1]  # count-first adds the other strengths later, at one count
    all_views: dict[str, Any] = {}
    for s in searched:
        made = make_views(s, max(counts))
        if made is None:  # the modality offers no classical views
            all_views, counts, strengths, searched = {}, [], [], []
            break
        all_views[s] = made
    n = len(real_y)
    raw = _Bank(None, real_X, all_views, syn_X)  # the items themselves: what the check network trains on
    banks = {name: _Bank.of(f, real_X, all_views, syn_X) for name, f in families.items()}
    settings = {}
    for name, b in banks.items():
        settings[name] = [("logistic", c) for c in cfg.probe_cs]
        tr0 = pairs[0][0]
        if not sparse.issparse(clone(b.features).fit_transform(take(b.real, tr0[:50]))):  # kernels on dense features only
            settings[name] += [("rbf-svm", c) for c in cfg.svm_cs]
    n_arms = len(counts) * len(strengths) if grid else len(counts) + len(strengths) - 1 if counts else 0
    n_fits = len(pairs) * (sum(map(len, settings.values())) + n_arms + len(ratios) + 2)
    bar = tqdm(total=n_fits, desc="choosing the dose", disable=not progress)

    def fit(*args: Any) -> float:
        acc = _probe_accuracy(*args)
        bar.update()
        return acc

    def training_set(bank: _Bank, tr: np.ndarray, ref: tuple[str, int], syn: np.ndarray | None = None) -> tuple[Any, np.ndarray]:
        """The real training items ``tr``, ``ref = (strength, n_views)`` classical views of each, and
        synthetic items ``syn``, in ``bank``'s form."""
        strength, n_views = ref
        parts, labels = [take(bank.real, tr)], [real_y[tr]]
        if n_views:
            parts.append(take(bank.views[strength], (np.arange(n_views)[:, None] * n + tr[None, :]).ravel()))
            labels.append(np.tile(real_y[tr], n_views))
        if syn is not None and len(syn):
            parts.append(take(bank.syn, syn))
            labels.append(syn_y[syn])
        return (concat(parts) if len(parts) > 1 else parts[0]), np.concatenate(labels)

    def accuracy(s_pairs: list, ref: tuple[str, int], chosen: Callable | None = None) -> np.ndarray:
        """Per split: the probe's accuracy on held-out real items with ``ref = (strength, n_views)``
        classical views per training item and the synthetic items ``chosen(tr, te)``."""
        return np.array([fit(bank.features, best_c, *training_set(bank, tr, ref, chosen(tr, te) if chosen else None),
                             take(bank.real, te), real_y[te]) for tr, te in s_pairs])

    base = {(name, s): np.array([fit(banks[name].features, s, take(banks[name].real, tr), real_y[tr],
                                     take(banks[name].real, te), real_y[te]) for tr, te in pairs])
            for name in families for s in settings[name]}
    # the strongest real-only model (a tie goes to the linear probe, then to the milder regularisation)
    family, best_c = max(base, key=lambda k: (round(base[k].mean(), 9), k[1][0] == "logistic", -abs(math.log10(k[1][1]))))
    bank = banks[family]
    real_acc = base[(family, best_c)]

    # the reference arm: real items with their best number and strength of classical views (fewest
    # views on a tie, then the default strength)
    def rank(k: tuple[str, int]) -> tuple:
        return round(arms[k].mean(), 9), -k[1], k[0] == "default"

    arms = {("default", 0): real_acc} | {(s, v): accuracy(pairs, (s, v)) for s in searched for v in counts}
    if not grid and counts:  # the other strengths at the chosen count, their views made up to it only
        at = max(arms, key=rank)[1] or counts[0]
        for s in strengths[1:]:
            made = make_views(s, at)
            for b in (raw, *banks.values()):
                b.add_views(s, made)
            arms[(s, at)] = accuracy(pairs, (s, at))
    ref = max(arms, key=rank)
    strength, n_views = ref
    classical_trials = []
    for s in (s for s in CLASSICAL_STRENGTHS if s in strengths):  # mild to strong, whatever the search order
        for v in counts:
            if (s, v) not in arms:
                continue
            mean, low, high = corrected_interval(arms[(s, v)] - real_acc, test_share, cfg.confidence)
            classical_trials.append({"views": v, "strength": s, "lift": mean, "low": low, "high": high,
                                     "accuracy": float(arms[(s, v)].mean())})
    ref_acc = arms[ref]

    cache: dict[tuple[int, int], np.ndarray] = {}

    def echo_mask(tr: np.ndarray, te: np.ndarray) -> np.ndarray:
        """Echoes of the held-out items ``te`` in every feature space the modality offers (each fitted
        on ``tr``; an item near-copied in one space is an echo whatever the chosen probe reads) and,
        when given, in the screen's embedding space; computed once per split."""
        key = (hash(tr.tobytes()), hash(te.tobytes()))
        if key not in cache:
            mask = np.zeros(len(syn_y), dtype=bool)
            for b in (banks.values() if len(syn_y) else ()):
                space = clone(b.features).fit(take(b.real, tr), real_y[tr])
                mask |= echoes(space.transform(b.real), space.transform(b.syn), tr, te)
            if embeddings is not None:
                mask |= echoes(np.asarray(embeddings[0]), np.asarray(embeddings[1]), tr, te)
            cache[key] = mask
        return cache[key]

    def dose(ratio: float) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
        """The synthetic items a split may use at ``ratio`` per real training item of each class: best
        first, never attributed to or echoing one of its held-out items."""
        def chosen(tr: np.ndarray, te: np.ndarray) -> np.ndarray:
            held = np.zeros(len(real_y) + 1, dtype=bool)  # the last entry answers for attribution -1
            held[te] = True
            echo = echo_mask(tr, te)
            return np.sort(per_class_dose(syn_y, ~held[attribution] & ~echo, ratio, real_y[tr], classes))
        return chosen

    def lifts(ratio: float, s_pairs: list, ref_accs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per split: probe accuracy of the reference arm plus ``ratio`` synthetic items per real item,
        and its lift over the reference's accuracies ``ref_accs``."""
        accs = accuracy(s_pairs, ref, dose(ratio))
        return accs, accs - ref_accs

    trials = []
    for ratio in ratios:
        accs, diffs = lifts(ratio, pairs, ref_acc)
        mean, low, high = corrected_interval(diffs, test_share, cfg.confidence)
        trials.append({"ratio": ratio, "share": ratio / (1 + ratio), "lift": mean, "low": low, "high": high,
                       "accuracy": float(np.mean(accs))})
    probe = (f"{'an RBF-kernel SVM' if best_c[0] == 'rbf-svm' else 'logistic regression'} (C={best_c[1]:g}) on {family} "
             f"features (the best of {sum(map(len, settings.values()))} cheap models on real data alone)")
    best = dict(max(trials, key=lambda t: t["lift"])) if trials else None
    # a gain must show on the splits that chose the dose (discovery) and again on fresh ones (replication)
    discovered = best is not None and best["low"] > 0
    fresh: list = []
    if best is not None and len(syn_y):  # the chosen dose, measured again on splits the choice did not see
        fresh = splits(real_y, cfg.folds, cfg.repeats, cfg.seed + 1)
        _, diffs = lifts(best["ratio"], fresh, accuracy(fresh, ref))
        best["lift"], best["low"], best["high"] = corrected_interval(diffs, held_share(fresh), cfg.confidence)
    checked = None
    if best is not None and len(syn_y) and discovered and best["low"] > 0 and check is not None and cfg.check_splits:
        chosen, diffs = dose(best["ratio"]), []
        bar.total += min(cfg.check_splits, len(fresh))
        bar.refresh()
        for j, (tr, te) in enumerate(fresh[: cfg.check_splits]):
            idx = chosen(tr, te)
            ref_X, ref_y = training_set(raw, tr, ref)  # the reference the message adds to: real + its classical views
            without, with_ = check(ref_X, ref_y, take(syn_X, idx), syn_y[idx], take(real_X, te),
                                   real_y[te], len(idx) / (len(ref_y) + len(idx)), cfg.seed + j)
            diffs.append(with_ - without)
            bar.update()
        mean, low, high = corrected_interval(np.asarray(diffs), held_share(fresh), cfg.confidence)
        checked = {"classifier": getattr(check, "name", type(check).__name__), "splits": len(diffs),
                   "lift": mean, "low": low, "high": high, "rule": cfg.check_rule}
    # the same standard as the probe's, a clear gain; or, by rule "sign", a gain in the mean
    vetoed = checked is not None and (checked["low"] if cfg.check_rule == "interval" else checked["lift"]) <= 0
    unseen_check = None
    if (best is not None and len(syn_y) and discovered and best["low"] > 0 and unseen is not None
            and not vetoed):
        diffs, shares, tested = [], [], []
        k = cfg.unseen_folds  # each generator sees k − 1 of k stratified parts; its held-out part tests it
        parts = splits(real_y, k, 1, cfg.seed + 2) if int(np.unique(real_y, return_counts=True)[1].min()) >= k else []
        for h, (seen, other) in enumerate(parts):
            pool_X, pool_y = unseen(original[seen])
            pool_y = np.asarray(pool_y)
            pool_X = bank.items(pool_X) if len(pool_y) else pool_X
            inner = splits(real_y[other], cfg.folds, 1, cfg.seed + 3 + h)
            bar.total += 2 * len(inner)
            bar.refresh()
            for _, te_inner in inner:
                te = other[te_inner]
                tr = np.setdiff1d(np.arange(n), te)
                ref_X, ref_y = training_set(bank, tr, ref)
                pick = per_class_dose(pool_y, np.ones(len(pool_y), dtype=bool), best["ratio"], real_y[tr], classes)
                without = fit(bank.features, best_c, ref_X, ref_y, take(bank.real, te), real_y[te])
                with_ = fit(bank.features, best_c, concat([ref_X, take(pool_X, pick)]) if len(pick) else ref_X,
                            np.concatenate([ref_y, pool_y[pick]]), take(bank.real, te), real_y[te])
                diffs.append(with_ - without)
                shares.append(len(te) / n)
                tested.append(len(pick) / len(tr))
        # a class of one real item leaves a half without it: nothing unseen to check on, so no "use"
        mean, low, high = (corrected_interval(np.asarray(diffs), float(np.mean(shares)), cfg.confidence) if diffs
                           else (0.0, -math.inf, math.inf))
        # the dose its pools could fill: below the chosen ratio where a half's screen kept fewer items
        unseen_check = {"generators": len(parts), "splits": len(diffs), "lift": mean, "low": low, "high": high,
                        "ratio_tested": float(np.mean(tested)) if tested else 0.0}
    bar.close()
    available = {str(c): int((syn_y == c).sum()) for c in classes}
    reference = next((t for t in classical_trials if (t["strength"], t["views"]) == ref), None)
    if reference is not None:
        over = (f"real items with classical augmentation ({n_views}{f' {strength}' if len(strengths) > 1 else ''} "
                f"view(s) per item, itself "
                f"{100 * reference['lift']:+.2f} points [{100 * reference['low']:+.2f}, {100 * reference['high']:+.2f}] "
                f"over real only)")
    else:
        # the probe's splits hold no shift between training and test: say so, since under one (new
        # speakers) classical augmentation gained 2.6-7.8 points where the probe saw none (BENCHMARKS.md)
        over = "real items alone" + (" (classical augmentation did not help the probe on splits of these items; it "
                                     f"can still help where your test data come from {shift_examples})" if counts else "")
    not_held = unseen_check is not None and unseen_check["low"] <= 0
    expected = None
    if best is not None:
        probe_says = {"lift": best["lift"], "low": best["low"], "high": best["high"], "source": "probe"}
        expected = probe_says
        if checked is not None and checked["lift"] < expected["lift"]:
            expected = {k: checked[k] for k in ("lift", "low", "high")} | {"source": checked["classifier"]}
        if unseen_check is not None and unseen_check["lift"] < expected["lift"]:
            expected = {k: unseen_check[k] for k in ("lift", "low", "high")} | {"source": "items unseen by the generator"}
    if best is not None and discovered and best["low"] > 0 and not vetoed and not not_held:
        ratio = best["ratio"]
        per_class = {str(c): min(available[str(c)], int(round(ratio * int((real_y == c).sum())))) for c in classes}
        verdict = "use"
        message = (f"add {ratio:g} synthetic item(s) per real item ({sum(per_class.values())} in all, a "
                   f"{100 * ratio / (1 + ratio):.0f} % share) to {over}: expected {100 * expected['lift']:+.2f} points "
                   f"[{100 * expected['low']:+.2f}, {100 * expected['high']:+.2f}] on cross-validation of the real data")
        says = [f"the probe ({100 * best['lift']:+.2f} [{100 * best['low']:+.2f}, {100 * best['high']:+.2f}])"]
        if checked is not None:
            says.append(f"a small neural network ({checked['classifier']}: {100 * checked['lift']:+.2f} "
                        f"[{100 * checked['low']:+.2f}, {100 * checked['high']:+.2f}])")
        if unseen_check is not None:
            says.append(f"real items its generators never saw ({100 * unseen_check['lift']:+.2f} "
                        f"[{100 * unseen_check['low']:+.2f}, {100 * unseen_check['high']:+.2f}])")
        if len(says) > 1:
            message += (f", the {'more' if len(says) == 2 else 'most'} cautious of " + ", ".join(says[:-1])
                        + " and " + says[-1])
        message += ("; other classifiers may gain less: the probe's intervals have overstated neural classifiers' "
                    "gains on held-out data.")
    else:
        ratio, per_class, verdict = 0.0, {str(c): 0 for c in classes}, "don't use"
        if best is None or not len(syn_y):
            message = "no synthetic item passed the screen, so there is nothing to add."
        elif not discovered and best["low"] > 0:
            chosen_trial = next(t for t in trials if t["ratio"] == best["ratio"])
            message = (f"the synthetic items did not help reliably: added to {over}, the best dose ({best['ratio']:g} per "
                       f"real item) was not a clear gain on the splits that chose it ({100 * chosen_trial['lift']:+.2f} "
                       f"points [{100 * chosen_trial['low']:+.2f}, {100 * chosen_trial['high']:+.2f}]), only on fresh "
                       f"ones ({100 * best['lift']:+.2f} [{100 * best['low']:+.2f}, {100 * best['high']:+.2f}]).")
        elif not_held:
            message = (f"the synthetic items did not hold up on real items their generator never saw: added to {over}, "
                       f"{best['ratio']:g} per real item lifted the probe {100 * best['lift']:+.2f} points "
                       f"[{100 * best['low']:+.2f}, {100 * best['high']:+.2f}] on cross-validation of items the "
                       f"generator had seen, but with generators trained on one half of the real items, the held-out "
                       f"items of the other half changed by {100 * unseen_check['lift']:+.2f} points "
                       f"[{100 * unseen_check['low']:+.2f}, {100 * unseen_check['high']:+.2f}] (adding "
                       f"{unseen_check['ratio_tested']:.2g} synthetic items per real training item): not a clear gain.")
        elif vetoed:
            message = (f"the synthetic items help only some models: added to {over}, {best['ratio']:g} per real item "
                       f"lifted the probe {100 * best['lift']:+.2f} points [{100 * best['low']:+.2f}, "
                       f"{100 * best['high']:+.2f}], but a small neural network ({checked['classifier']}) trained on "
                       f"{checked['splits']} fresh splits changed by {100 * checked['lift']:+.2f} points "
                       f"[{100 * checked['low']:+.2f}, {100 * checked['high']:+.2f}] with them: "
                       f"{'not a clear gain' if cfg.check_rule == 'interval' else 'no gain'}.")
        elif best["lift"] > 0:  # not shown to help is not shown not to help: say which one it is
            message = (f"the synthetic items were no clear gain on this data: added to {over}, the best dose "
                       f"({best['ratio']:g} per real item) changed the probe's accuracy by {100 * best['lift']:+.2f} points "
                       f"[{100 * best['low']:+.2f}, {100 * best['high']:+.2f}] on fresh cross-validation splits (the "
                       f"trials table holds the splits that chose it), a gain this much real data cannot confirm; "
                       f"other classifiers may gain or lose: validate on held-out data of your own before using them.")
        else:
            message = (f"the synthetic items did not help on this data: added to {over}, the best dose "
                       f"({best['ratio']:g} per real item) changed the probe's accuracy by {100 * best['lift']:+.2f} points "
                       f"[{100 * best['low']:+.2f}, {100 * best['high']:+.2f}] on fresh cross-validation splits (the "
                       f"trials table holds the splits that chose it).")
    rec = Recommendation(verdict, ratio, ratio / (1 + ratio), per_class, best["lift"] if best else 0.0,
                         (best["low"], best["high"]) if best else (0.0, 0.0), message, probe,
                         len(pairs), cfg.confidence, float(real_acc.mean()), trials,
                         n_views, reference["lift"] if reference else 0.0,
                         (reference["low"], reference["high"]) if reference else (0.0, 0.0), classical_trials,
                         checked, expected, time.perf_counter() - start, unseen_check,
                         best["ratio"] if best is not None and len(syn_y) else None, len(fresh),
                         strength if n_views else "default")
    logger.info("dose: %s (%.1f s)", message, rec.seconds)
    return rec
