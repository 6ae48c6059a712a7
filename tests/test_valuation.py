"""Utility valuation of candidates (KNN-Shapley, probe influence) and the dose / verdict."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from sklearn.preprocessing import StandardScaler

from imagina.core.dose import DoseConfig, corrected_interval, recommend_dose
from imagina.core.errors import InvalidInputError
from imagina.core.valuation import (
    ValuationConfig,
    knn_marginal,
    knn_shapley,
    probe_influence,
    stratified_folds,
    value_candidates,
)


def _brute_force_shapley(train, train_y, v, vy, k):
    """Shapley values by enumerating every coalition: U(S) = (1/k)·#label matches among S's k nearest."""
    n = len(train)
    d = np.linalg.norm(train - v, axis=1)
    order = np.argsort(d, kind="stable")
    rank = np.empty(n, dtype=int)
    rank[order] = np.arange(n)

    def utility(S):
        if not S:
            return 0.0
        near = sorted(S, key=lambda i: rank[i])[:k]
        return sum(train_y[i] == vy for i in near) / k

    out = np.zeros(n)
    for i in range(n):
        others = [j for j in range(n) if j != i]
        for size in range(n):
            w = math.factorial(size) * math.factorial(n - size - 1) / math.factorial(n)
            for S in itertools.combinations(others, size):
                out[i] += w * (utility(list(S) + [i]) - utility(list(S)))
    return out


@pytest.mark.parametrize("k", [1, 2, 3])
def test_knn_shapley_matches_brute_force(k):
    rng = np.random.default_rng(k)
    train = rng.normal(size=(7, 3))
    train_y = rng.integers(0, 2, 7)
    test = rng.normal(size=(3, 3))
    test_y = np.array([0, 1, 1])
    expected = sum(_brute_force_shapley(train, train_y, v, vy, k) for v, vy in zip(test, test_y))
    np.testing.assert_allclose(knn_shapley(train, train_y, test, test_y, k=k), expected, atol=1e-9)


def test_knn_shapley_does_not_depend_on_block_size():
    rng = np.random.default_rng(0)
    train, test = rng.normal(size=(400, 5)), rng.normal(size=(90, 5))
    ty, vy = rng.integers(0, 3, 400), rng.integers(0, 3, 90)
    a = knn_shapley(train, ty, test, vy, k=5, max_pairs=1000)
    b = knn_shapley(train, ty, test, vy, k=5, max_pairs=10_000_000)
    np.testing.assert_allclose(a, b, atol=1e-12)


def _blobs(n_per_class=30, seed=0):
    rng = np.random.default_rng(seed)
    centres = np.array([[0.0, 0.0], [4.0, 0.0], [0.0, 4.0]])
    y = np.repeat(np.arange(3), n_per_class)
    X = centres[y] + rng.normal(scale=0.9, size=(len(y), 2))
    return X.astype(np.float32), y


def test_mislabelled_candidate_has_negative_value_and_good_one_positive():
    real, real_y = _blobs()
    good = np.array([[4.1, 0.35], [0.25, 4.15], [0.3, -0.2]], np.float32)
    bad = np.array([[4.0, 0.0], [0.0, 4.0]], np.float32)  # in class 1's and 2's blobs, labelled 0
    cand = np.concatenate([good, bad])
    cand_y = np.array([1, 2, 0, 0, 0])
    val = value_candidates(real, real_y, cand, cand_y)
    assert not val.copy.any()
    assert (val.knn_shapley[:3] > 0).all() and (val.marginal[:3] >= 0).all()
    assert (val.knn_shapley[3:] < 0).all() and (val.marginal[3:] < 0).all()
    assert (val.probe[3:] < 0).all()
    reasons = val.harmful_reasons()
    assert reasons[:3] == [None, None, None]
    assert all(r.startswith("harmful: value -") for r in reasons[3:])


def test_duplicated_real_item_is_not_rewarded():
    real, real_y = _blobs()
    cand = np.concatenate([real[[5, 40]], np.array([[4.2, 0.4]], np.float32)])
    cand_y = np.array([real_y[5], real_y[40], 1])
    val = value_candidates(real, real_y, cand, cand_y)
    assert val.copy.tolist() == [True, True, False]
    for values in (val.marginal, val.knn_shapley, val.probe):
        assert values[:2].tolist() == [0.0, 0.0]
    assert val.harmful_reasons()[:2] == [None, None]


def test_candidates_never_value_against_the_real_item_they_echo():
    real, real_y = _blobs()
    val = value_candidates(real, real_y, real[:3] + 0.5, real_y[:3], ValuationConfig(copy_ratio=0.0, folds=3))
    fold_of = {int(i): f for f, rows in enumerate(val.folds) for i in rows}
    assert len(val.folds) == 3 and all(val.nearest_real[j] in fold_of for j in range(3))


def test_knn_marginal_matches_a_direct_count():
    rng = np.random.default_rng(2)
    train, ty = rng.normal(size=(30, 3)), rng.integers(0, 2, 30)
    test, vy = rng.normal(size=(12, 3)), rng.integers(0, 2, 12)
    cand, cy = rng.normal(size=(9, 3)), rng.integers(0, 2, 9)
    k = 3
    expected = np.zeros(len(cand))
    for v, y in zip(test, vy):
        d = np.linalg.norm(train - v, axis=1)
        kth = np.argsort(d)[k - 1]
        for j, (c, label) in enumerate(zip(cand, cy)):
            if np.linalg.norm(c - v) < d[kth]:
                expected[j] += (int(label == y) - int(ty[kth] == y)) / k
    got = knn_marginal(train, ty, test, vy, cand, cy, k=k, max_pairs=1000)
    np.testing.assert_allclose(got, expected, atol=1e-9)


def test_probe_influence_sign():
    real, real_y = _blobs(seed=3)
    cand = np.array([[4.0, 0.0], [4.0, 0.0]], np.float32)
    infl = probe_influence(real[::2], real_y[::2], real[1::2], real_y[1::2], cand, np.array([1, 2]))
    # a well-classified candidate barely moves the probe; a mislabelled one works against held-out items
    assert infl[1] < 0 and abs(infl[0]) < 0.1 * abs(infl[1])


def test_stratified_folds_partition():
    y = np.array([0] * 7 + [1] * 3)
    folds = stratified_folds(y, 3, seed=0)
    assert sorted(np.concatenate(folds).tolist()) == list(range(10))
    assert all(set(y[f]) == {0, 1} for f in folds)


def test_valuation_rejects_unknown_labels():
    real, real_y = _blobs()
    with pytest.raises(InvalidInputError, match="not classes of the real data"):
        value_candidates(real, real_y, real[:2], np.array([7, 7]))


# ----------------------------------------------------------------------------- dose and verdict
def _features():
    return StandardScaler()


def test_per_item_features_are_computed_once_per_item_with_the_same_result(monkeypatch):
    """A probe pipeline that starts with a per-item function runs it once per item, not once per fit,
    and the recommendation does not change (the same fits on the same numbers)."""
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    from imagina.core.dose import per_item_prefix

    rng = np.random.default_rng(0)
    real_y = np.repeat(np.arange(3), 30)
    real = rng.normal(size=(90, 4)).astype(np.float32) + real_y[:, None]
    syn_y = np.repeat(np.arange(3), 20)
    syn = rng.normal(size=(60, 4)).astype(np.float32) + syn_y[:, None]
    attribution = rng.integers(0, 90, 60)
    rows = []

    def square(X):
        rows.append(len(X))
        return np.asarray(X) ** 2

    def views(X, k, seed):
        return np.concatenate([np.asarray(X) + 0.1 * (v + 1) for v in range(k)])

    prefix, rest = per_item_prefix(make_pipeline(FunctionTransformer(square), StandardScaler()))
    assert prefix is not None and isinstance(rest[0], StandardScaler)
    scaler = StandardScaler()
    assert per_item_prefix(scaler) == (None, scaler)
    cached = recommend_dose({"sq": make_pipeline(FunctionTransformer(square), StandardScaler())}, real, real_y, syn,
                            syn_y, attribution, views=views)
    assert sum(rows) == 90 + 90 * 4 + 60                     # real items, their views, the synthetic ones: once
    # the same probe written as one transformer that is not a pipeline runs at every fit
    from sklearn.base import BaseEstimator, TransformerMixin

    class Squared(TransformerMixin, BaseEstimator):
        def fit(self, X, y=None):
            self.scaler_ = StandardScaler().fit(np.asarray(X) ** 2)
            return self

        def transform(self, X):
            return self.scaler_.transform(np.asarray(X) ** 2)

    plain = recommend_dose({"sq": Squared()}, real, real_y, syn, syn_y, attribution, views=views)
    a, b = cached.to_dict(), plain.to_dict()
    a.pop("seconds"), b.pop("seconds")
    assert a == b


def test_no_screened_item_tries_no_dose(monkeypatch):
    """Every dose of an empty pool equals the reference: none is fitted (a --smoke run spent 48 of its
    56 s fitting them), and the verdict says there is nothing to add."""
    from imagina.core import dose as dose_module

    real, real_y = _blobs(n_per_class=20, seed=4)
    calls = []
    fit = dose_module._probe_accuracy
    monkeypatch.setattr(dose_module, "_probe_accuracy", lambda *a: (calls.append(1), fit(*a))[1])
    rec = recommend_dose(_features(), real, real_y, np.zeros((0, 2), np.float32), np.zeros(0, dtype=np.int64),
                         np.zeros(0, dtype=np.int64), DoseConfig(folds=3, repeats=1, classical=()))
    assert rec.verdict == "don't use" and rec.trials == [] and "no synthetic item passed the screen" in rec.message
    settings = len(DoseConfig().probe_cs) + len(DoseConfig().svm_cs)
    assert len(calls) == 3 * settings  # the real-only probes on 3 splits, nothing else


def test_verdict_on_pure_noise_is_dont_use():
    real, real_y = _blobs(n_per_class=20, seed=4)
    rng = np.random.default_rng(5)
    noise = rng.uniform(-3, 7, size=(300, 2)).astype(np.float32)
    noise_y = rng.integers(0, 3, 300)
    rec = recommend_dose(_features(), real, real_y, noise, noise_y, np.zeros(300, dtype=np.int64))
    assert rec.verdict == "don't use" and not rec.use
    assert rec.per_class == {"0": 0, "1": 0, "2": 0} and rec.ratio == 0.0
    assert "did not help" in rec.message
    assert len(rec.trials) == len(DoseConfig().ratios)


def _signal_case():
    rng = np.random.default_rng(6)
    centres = np.stack([np.full(500, -0.15), np.full(500, 0.15)])
    real_y = np.repeat([0, 1], 30)
    real = (centres[real_y] + rng.normal(scale=2.0, size=(60, 500))).astype(np.float32)
    syn_y = np.repeat([0, 1], 400)
    syn = (centres[syn_y] + rng.normal(scale=2.0, size=(800, 500))).astype(np.float32)
    attribution = np.array([int(np.argmin(np.linalg.norm(real - s, axis=1))) for s in syn])
    return real, real_y, syn, syn_y, attribution


def test_verdict_use_when_synthetic_items_carry_the_missing_signal():
    # Real data: 30 items per class in 500 dimensions (a linear probe overfits them); synthetic items
    # drawn from the true class distributions carry what the real items are too few to show.
    real, real_y, syn, syn_y, attribution = _signal_case()
    rec = recommend_dose(_features(), real, real_y, syn, syn_y, attribution)
    assert rec.verdict == "use", rec.to_markdown()
    assert rec.lift > 0 and rec.interval[0] > 0
    assert sum(rec.per_class.values()) > 0
    assert "Verdict: use" in rec.to_markdown()
    # the verdict's figure (fresh splits) is a row of the table, beside the splits that chose the dose
    assert rec.best_ratio == rec.ratio and rec.fresh_splits > 0
    assert (f"| {rec.ratio:g}, again on {rec.fresh_splits} fresh splits (the verdict's figure) | "
            f"{100 * rec.share:.0f} % | {100 * rec.lift:+.2f} |") in rec.to_markdown()


@pytest.mark.parametrize("pool", ["signal", "noise"])
def test_a_use_must_hold_on_real_items_no_generator_of_the_check_saw(pool):
    # The candidates carry the signal (the probe and its fresh splits say "use"); the generators of the
    # unseen check get each half of the real items and return items from the true class distributions
    # ("signal": the use stands) or items with random labels ("noise": a generator that only helped the
    # items it had seen, so the use must fall).
    real, real_y, syn, syn_y, attribution = _signal_case()
    centres = np.stack([np.full(500, -0.15), np.full(500, 0.15)])
    halves = []

    def unseen(seen):
        halves.append(np.sort(seen))
        g = np.random.default_rng(len(halves))
        y = np.repeat([0, 1], 400)
        X = (centres[y] + g.normal(scale=2.0, size=(800, 500))).astype(np.float32)
        return X, (y if pool == "signal" else g.integers(0, 2, 800))

    rec = recommend_dose(_features(), real, real_y, syn, syn_y, attribution, unseen=unseen)
    assert len(halves) == 2 and not set(halves[0]) & set(halves[1])
    assert sorted(np.concatenate(halves).tolist()) == list(range(len(real_y)))
    assert all(np.bincount(real_y[h]).tolist() == [15, 15] for h in halves)  # stratified halves
    assert rec.unseen is not None and rec.unseen["splits"] == 10 and rec.unseen["generators"] == 2
    assert 0 < rec.unseen["ratio_tested"] <= max(DoseConfig().ratios)
    if pool == "signal":
        assert rec.verdict == "use" and rec.unseen["low"] > 0, rec.message
        # 16x of 27 training items per class wants 432 per class; the pools hold 400: what was added is recorded
        assert rec.ratio == 16 and rec.unseen["ratio_tested"] == pytest.approx(800 / 54)
        assert "real items its generators never saw" in rec.message and "more cautious" in rec.message  # probe + unseen
    else:
        assert rec.verdict == "don't use" and rec.unseen["low"] <= 0, rec.unseen
        assert "did not hold up on real items their generator never saw" in rec.message
        assert "never saw" in rec.to_markdown()


def test_the_unseen_check_can_fit_a_generator_per_fold():
    # unseen_folds=3: three generators, each given two stratified thirds; the thirds they did not get
    # are disjoint and cover every real item
    real, real_y, syn, syn_y, attribution = _signal_case()
    centres = np.stack([np.full(500, -0.15), np.full(500, 0.15)])
    given = []

    def unseen(seen):
        given.append(np.sort(seen))
        y = np.repeat([0, 1], 400)
        return (centres[y] + np.random.default_rng(len(given)).normal(scale=2.0, size=(800, 500))).astype(np.float32), y

    rec = recommend_dose(_features(), real, real_y, syn, syn_y, attribution, DoseConfig(unseen_folds=3), unseen=unseen)
    held = [np.setdiff1d(np.arange(len(real_y)), g) for g in given]
    assert len(given) == 3 and all(len(g) == 40 and np.bincount(real_y[g]).tolist() == [20, 20] for g in given)
    assert sorted(np.concatenate(held).tolist()) == list(range(len(real_y)))
    assert rec.unseen["generators"] == 3 and rec.unseen["splits"] == 3 * DoseConfig().folds
    assert rec.verdict == "use", rec.message
    assert "3 generators, each trained on 2 of 3 parts" in rec.to_markdown()
    with pytest.raises(InvalidInputError, match="unseen_folds"):
        DoseConfig(unseen_folds=1)


def test_the_unseen_check_runs_only_for_a_use():
    real, real_y = _blobs(n_per_class=20, seed=4)
    rng = np.random.default_rng(5)
    noise = rng.uniform(-3, 7, size=(300, 2)).astype(np.float32)
    calls = []
    rec = recommend_dose(_features(), real, real_y, noise, rng.integers(0, 3, 300), np.zeros(300, dtype=np.int64),
                         unseen=lambda seen: calls.append(seen) or (noise, np.zeros(300, dtype=int)))
    assert rec.verdict == "don't use" and rec.unseen is None and not calls


def test_verdict_compares_with_classical_augmentation_not_with_real_only():
    # Classical views here are fresh draws from the true class distributions (a perfect classical
    # augmentation); the synthetic items are noise. The reference arm must take the views, and
    # noise on top of them must not be recommended.
    rng = np.random.default_rng(6)
    centres = np.stack([np.full(500, -0.15), np.full(500, 0.15)])
    real_y = np.repeat([0, 1], 30)
    real = (centres[real_y] + rng.normal(scale=2.0, size=(60, 500))).astype(np.float32)

    def views(X, n_views, seed):
        y = real_y if len(X) == len(real_y) else np.zeros(len(X), dtype=int)
        g = np.random.default_rng(seed + 100)
        return np.concatenate([centres[y] + g.normal(scale=2.0, size=(len(X), 500)) for _ in range(n_views)]).astype(np.float32)

    noise = rng.normal(scale=2.0, size=(400, 500)).astype(np.float32)
    noise_y = rng.integers(0, 2, 400)
    rec = recommend_dose(_features(), real, real_y, noise, noise_y, np.zeros(400, dtype=np.int64), views=views)
    assert rec.classical_views == 4 and rec.classical_interval[0] > 0, rec.to_markdown()
    assert [t["views"] for t in rec.classical_trials] == [1, 2, 4]
    assert rec.verdict == "don't use" and "classical augmentation (4 view(s)" in rec.message
    assert "classical views per real item" in rec.to_markdown()
    assert rec.to_dict()["classical_interval"] == list(rec.classical_interval)


def _strength_case():
    """60 real points of two classes in 500 dimensions (and the generator that drew them), and a factory
    of ``views`` callables whose "strong" views are draws from the class distributions and all others
    noise; each call appends ``entry(strength, n_views)`` to ``asked``."""
    rng = np.random.default_rng(6)
    centres = np.stack([np.full(500, -0.15), np.full(500, 0.15)])
    real_y = np.repeat([0, 1], 30)
    real = (centres[real_y] + rng.normal(scale=2.0, size=(60, 500))).astype(np.float32)

    def recording(asked, entry):
        def views(X, n_views, seed, *strength):
            asked.append(entry(strength, n_views))
            g = np.random.default_rng(seed + 100)
            if strength == ("strong",):
                return np.concatenate([centres[real_y] + g.normal(scale=2.0, size=(len(X), 500))
                                       for _ in range(n_views)]).astype(np.float32)
            return g.normal(scale=2.0, size=(n_views * len(X), 500)).astype(np.float32)
        return views

    return rng, real, real_y, recording


def test_the_classical_reference_takes_its_best_strength_when_several_are_tried():
    """With ``classical_strengths`` the reference is the best (strength, count) pair: here only the
    "strong" views are draws from the class distributions (the others are noise), so it must take
    them; ``views`` gets a strength only when it is not "default", and an unknown strength is one line."""
    from imagina.core.errors import InvalidInputError

    rng, real, real_y, recording = _strength_case()
    asked = []
    views = recording(asked, lambda strength, n_views: strength)
    noise = rng.normal(scale=2.0, size=(100, 500)).astype(np.float32)
    cfg = DoseConfig(classical_strengths=("strong", "default"), classical=(2, 4))
    rec = recommend_dose(_features(), real, real_y, noise, rng.integers(0, 2, 100), np.zeros(100, dtype=np.int64),
                         cfg, views=views)
    assert sorted(asked) == [(), ("strong",)]
    assert (rec.classical_strength, rec.classical_views) == ("strong", 4) and rec.classical_interval[0] > 0
    assert [(t["strength"], t["views"]) for t in rec.classical_trials] == [("default", 2), ("default", 4),
                                                                          ("strong", 2), ("strong", 4)]
    assert "classical augmentation (4 strong view(s)" in rec.message
    assert "| 4 (strong) ← reference |" in rec.to_markdown()
    with pytest.raises(InvalidInputError, match="classical_strengths"):
        DoseConfig(classical_strengths=("huge",))
    with pytest.raises(InvalidInputError, match="classical_strengths"):
        DoseConfig(classical_strengths=())


def test_count_first_search_tries_the_other_strengths_at_the_chosen_count_only():
    """``classical_search="count-first"`` chooses the count at "default", then tries the other strengths
    at that count only, with their views made up to it: the same winner as the grid here (only "strong"
    views carry the classes), from 3 + 2 arms instead of 3 × 3, and an unknown search is one line."""
    from imagina.core.errors import InvalidInputError

    _, real, real_y, recording = _strength_case()

    def run(search):
        asked = []
        views = recording(asked, lambda strength, n_views: (strength, n_views))
        cfg = DoseConfig(classical_strengths=("strong", "default", "mild"), classical=(1, 2, 4), classical_search=search)
        noise = np.random.default_rng(7).normal(scale=2.0, size=(100, 500)).astype(np.float32)
        rec = recommend_dose(_features(), real, real_y, noise, np.repeat([0, 1], 50), np.zeros(100, dtype=np.int64),
                             cfg, views=views)
        return rec, asked

    grid, grid_asked = run("grid")
    first, first_asked = run("count-first")
    tried = [(t["strength"], t["views"]) for t in first.classical_trials]
    at = first_asked[1][1]  # the count chosen at "default" (noise views: 1, the fewest, on a tie or a loss)
    assert first_asked == [((), 4), (("mild",), at), (("strong",), at)]
    assert tried == [("mild", at), ("default", 1), ("default", 2), ("default", 4), ("strong", at)]
    assert len(grid.classical_trials) == 9 and len(grid_asked) == 3
    assert first.classical_strength == grid.classical_strength == "strong"
    assert next(t for t in first.classical_trials if t["strength"] == "strong")["lift"] > 0.05
    with pytest.raises(InvalidInputError, match="classical_search"):
        DoseConfig(classical_search="random")


def test_views_of_held_out_items_never_train():
    # Random features with random labels: nothing to learn. Views that are exact copies of their
    # items would let a held-out item's own copy train (and be memorised) if views leaked across the split.
    rng = np.random.default_rng(7)
    real = rng.normal(size=(60, 300)).astype(np.float32)
    real_y = rng.integers(0, 2, 60)
    rec = recommend_dose(_features(), real, real_y, real[:0], real_y[:0], np.zeros(0, dtype=np.int64),
                         views=lambda X, n, seed: np.concatenate([X] * n))
    assert all(t["lift"] < 0.15 for t in rec.classical_trials), rec.classical_trials


@pytest.mark.parametrize(("without", "with_", "verdict"), [(0.80, 0.70, "don't use"), (0.70, 0.80, "use")])
def test_a_use_needs_the_second_model_family_to_gain_too(without, with_, verdict):
    real, real_y, syn, syn_y, attribution = _signal_case()
    calls = []

    def check(train_X, train_y, syn_X, syn_y_, test_X, test_y, share, seed):
        # the check sees one split: disjoint real parts, synthetic items at their share of the training set
        assert len(train_X) + len(test_X) == len(real) and not (set(map(bytes, train_X)) & set(map(bytes, test_X)))
        assert share == pytest.approx(len(syn_X) / (len(train_X) + len(syn_X))) and 0 < share < 1
        calls.append(seed)
        return without, with_

    rec = recommend_dose(_features(), real, real_y, syn, syn_y, attribution, check=check)
    assert len(calls) == DoseConfig().check_splits
    assert rec.verdict == verdict and rec.check["lift"] == pytest.approx(with_ - without)
    if verdict == "don't use":
        assert "help only some models" in rec.message and sum(rec.per_class.values()) == 0
    assert "second model family" in rec.to_markdown()


@pytest.mark.parametrize(("rule", "gains", "verdict", "unseen_runs"), [
    ("interval", [0.10, -0.06, 0.12, -0.04, 0.08], "don't use", False),  # mean +4 points, interval across 0
    ("sign", [0.10, -0.06, 0.12, -0.04, 0.08], "use", True),  # the unseen check decides
    ("sign", [-0.10, 0.06, -0.12, 0.04, -0.08], "don't use", False),  # a loss in the mean vetoes under both
])
def test_the_check_rule_decides_what_the_network_must_show(rule, gains, verdict, unseen_runs):
    real, real_y, syn, syn_y, attribution = _signal_case()
    centres = np.stack([np.full(500, -0.15), np.full(500, 0.15)])
    halves = []

    def check(train_X, train_y, syn_X, syn_y_, test_X, test_y, share, seed):
        return 0.5, 0.5 + gains[seed % len(gains)]

    def unseen(seen):  # generators that carry the signal: the unseen check clears zero
        halves.append(seen)
        y = np.repeat([0, 1], 400)
        return (centres[y] + np.random.default_rng(len(halves)).normal(scale=2.0, size=(800, 500))).astype(np.float32), y

    rec = recommend_dose(_features(), real, real_y, syn, syn_y, attribution, DoseConfig(check_rule=rule),
                         check=check, unseen=unseen)
    assert rec.check is not None and rec.check["rule"] == rule and rec.check["low"] < 0 < rec.check["high"]
    assert rec.verdict == verdict, rec.message
    assert (rec.unseen is not None) == unseen_runs and bool(halves) == unseen_runs
    assert ('check rule "sign"' in rec.to_markdown()) == (rule == "sign")
    if verdict == "don't use":
        assert "help only some models" in rec.message
        assert ("not a clear gain" if rule == "interval" else "no gain") in rec.message


def test_dose_options_from_the_command_line():
    cfg = DoseConfig.from_options({"check_rule": "sign", "ratios": [1, 2], "classical": 2})
    assert cfg.check_rule == "sign" and cfg.ratios == (1, 2) and cfg.classical == (2,)
    assert cfg.check_splits == DoseConfig().check_splits
    with pytest.raises(InvalidInputError, match="unknown setting 'check_rul'; known: check_rule"):
        DoseConfig.from_options({"check_rul": "sign"})
    with pytest.raises(InvalidInputError, match="check_rule"):
        DoseConfig.from_options({"check_rule": "loose"})


def test_the_check_trains_on_the_reference_arm_and_the_message_promises_the_cautious_lift():
    real, real_y, syn, syn_y, attribution = _signal_case()
    seen = []

    def check(train_X, train_y, syn_X, syn_y_, test_X, test_y, share, seed):
        seen.append((len(train_X), len(real) - len(test_X)))  # (training items, real training items)
        return 0.70, 0.71

    def views(X, n, seed):  # jittered copies: classical views of each item, view-major
        return np.concatenate([X + np.random.default_rng(seed + v).normal(0, 0.05, X.shape).astype(X.dtype)
                               for v in range(n)])

    rec = recommend_dose(_features(), real, real_y, syn, syn_y, attribution, views=views, check=check)
    assert rec.verdict == "use", rec.message
    assert all(n == (1 + rec.classical_views) * n_real for n, n_real in seen), (seen, rec.classical_views)
    assert rec.check["lift"] == pytest.approx(0.01) and rec.check["lift"] < rec.lift
    assert rec.expected == {"lift": rec.check["lift"], "low": rec.check["low"], "high": rec.check["high"],
                            "source": rec.check["classifier"]}
    assert "expected +1.00 points" in rec.message and "more cautious" in rec.message
    assert rec.to_dict()["expected"]["source"] == rec.check["classifier"]


@pytest.mark.parametrize(("choosing_low", "verdict"), [(-0.02, "don't use"), (0.01, "use")])
def test_a_use_needs_a_clear_gain_on_the_choosing_splits_and_on_fresh_ones(monkeypatch, choosing_low, verdict):
    import imagina.core.dose as dose

    real, real_y, syn, syn_y, attribution = _signal_case()
    # the intervals the verdict reads, in call order: the one dose's trial (choosing splits), then fresh splits
    intervals = iter([(0.01, choosing_low, 0.04), (0.03, 0.005, 0.06)])
    monkeypatch.setattr(dose, "corrected_interval", lambda diffs, share, confidence: next(intervals))
    rec = recommend_dose(_features(), real, real_y, syn, syn_y, attribution, DoseConfig(ratios=(1.0,)))
    assert rec.verdict == verdict, rec.message
    if verdict == "don't use":
        assert "did not help reliably" in rec.message and "+1.00 points [-2.00, +4.00]" in rec.message
        assert sum(rec.per_class.values()) == 0


@pytest.mark.parametrize(("lift", "words"), [(0.02, "no clear gain"), (-0.01, "did not help on this data")])
def test_a_dont_use_says_whether_the_gain_was_unconfirmed_or_absent(monkeypatch, lift, words):
    import imagina.core.dose as dose

    real, real_y, syn, syn_y, attribution = _signal_case()
    # the one dose's interval straddles zero on both sets of splits: a positive mean is "not shown", not "none"
    intervals = iter([(lift, lift - 0.03, lift + 0.03), (lift, lift - 0.03, lift + 0.03)])
    monkeypatch.setattr(dose, "corrected_interval", lambda diffs, share, confidence: next(intervals))
    rec = recommend_dose(_features(), real, real_y, syn, syn_y, attribution, DoseConfig(ratios=(1.0,)))
    assert rec.verdict == "don't use" and sum(rec.per_class.values()) == 0
    assert words in rec.message and f"{100 * lift:+.2f} points" in rec.message, rec.message
    assert ("validate" in rec.message) == (lift > 0)


def test_no_check_without_a_use():
    real, real_y = _blobs(n_per_class=20, seed=4)
    noise = np.random.default_rng(5).uniform(-3, 7, size=(300, 2)).astype(np.float32)
    rec = recommend_dose(_features(), real, real_y, noise, np.random.default_rng(5).integers(0, 3, 300),
                         np.zeros(300, dtype=np.int64), check=lambda *a: pytest.fail("checked a don't use"))
    assert rec.verdict == "don't use" and rec.check is None


def test_corrected_interval_is_wider_than_naive():
    diffs = np.array([0.02, 0.05, -0.01, 0.03, 0.04, 0.0, 0.02, 0.03, 0.01, 0.05])
    mean, low, high = corrected_interval(diffs, 0.2, 0.9)
    naive_half = 1.833 * diffs.std(ddof=1) / math.sqrt(len(diffs))
    assert mean == pytest.approx(diffs.mean())
    assert (high - low) / 2 > naive_half


def test_dose_checks_attribution_length():
    real, real_y = _blobs()
    with pytest.raises(InvalidInputError, match="attribution"):
        recommend_dose(_features(), real, real_y, real[:4], real_y[:4], np.zeros(3, dtype=np.int64))


@pytest.mark.parametrize("name", ["image", "text", "audio"])
def test_classical_views_keep_shape_labels_and_seed(name):
    from imagina.core.modality import get_modality

    modality = get_modality(name)
    rng = np.random.default_rng(0)
    if name == "image":
        X = rng.integers(0, 256, size=(4, 12, 10, 1), dtype=np.uint8)
    elif name == "text":
        X = ["the cat sat on the mat", "a dog ran far away", "what is the capital", "how do birds fly south"]
    else:
        X = rng.normal(scale=0.1, size=(4, 800)).astype(np.float32)
    views = modality.classical_views(X, 2, seed=3)
    assert len(views) == 8
    again = modality.classical_views(X, 2, seed=3)
    if name == "text":
        assert views == again and all(isinstance(v, str) and v for v in views)
        assert all(set(v.split()) <= set(X[i % 4].split()) for i, v in enumerate(views))
    else:
        assert views.shape == (8, *np.asarray(X).shape[1:]) and views.dtype == np.asarray(X).dtype
        np.testing.assert_array_equal(views, again)
        assert not np.array_equal(views[:4], X)


def test_large_real_sets_are_subsampled_for_valuation_and_dose():
    from imagina.core.valuation import stratified_subsample

    y = np.repeat([0, 1, 2], [500, 300, 200])
    sub = stratified_subsample(y, 100, seed=0)
    assert len(sub) == 100 and np.bincount(y[sub]).tolist() == [50, 30, 20]
    assert stratified_subsample(y, 5000, seed=0).tolist() == list(range(1000))
    real, real_y = _blobs(n_per_class=100)
    cand, cand_y = real[:6] + 0.4, real_y[:6]
    val = value_candidates(real, real_y, cand, cand_y, ValuationConfig(max_real=60))
    assert all(len(f) for f in val.folds) and sum(len(f) for f in val.folds) == 60
    assert set(val.nearest_real.tolist()) <= set(np.concatenate(val.folds).tolist())
    rec = recommend_dose(_features(), real, real_y, cand, cand_y, val.nearest_real, DoseConfig(max_real=60))
    assert rec.splits == 10 and rec.verdict in ("use", "don't use")


def test_echoes_of_held_out_items_are_left_out():
    from imagina.core.dose import echoes

    real = np.array([[0.0, 0.0], [1.0, 0.0], [10.0, 0.0], [10.0, 10.0]], np.float32)
    syn = np.array([[0.1, 0.0], [5.0, 5.0], [0.0, 1.5]], np.float32)
    mask = echoes(real, syn, train=np.array([1, 2, 3]), test=np.array([0]))
    # held-out item 0's nearest training item lies 1 away: only a sample nearer than that echoes it
    assert mask.tolist() == [True, False, False]
    # with echoes left out, a synthetic set made of copies of the real items gains nothing
    real, real_y = _blobs(n_per_class=20, seed=7)
    syn = np.repeat(real, 4, axis=0) + np.float32(1e-3)
    syn_y = np.repeat(real_y, 4)
    att = np.repeat(np.arange(len(real_y)), 4)
    rec = recommend_dose(_features(), real, real_y, syn, syn_y, att, embeddings=(real, syn))
    assert rec.verdict == "don't use"
