import numpy as np
import pytest

from imagina.core.errors import InvalidInputError, NotFittedError
from imagina.core.modality import SanityResult
from imagina.core.screening import Screen, ScreenConfig


@pytest.fixture
def real():
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(120, 8)).astype(np.float32)
    y = np.repeat([0, 1, 2], 40)
    emb[y == 1] += 6
    emb[y == 2] -= 6
    return emb, y


def test_rejects_copies_offmanifold_and_wrong_labels(real):
    emb, y = real
    rng = np.random.default_rng(1)
    good = emb[y == 0][:20] + rng.normal(scale=0.4, size=(20, 8)).astype(np.float32)
    copies = emb[y == 0][:5] + 1e-5
    far = np.full((5, 8), 40.0, dtype=np.float32)
    wrong = emb[y == 1][:5] + rng.normal(scale=0.2, size=(5, 8)).astype(np.float32)
    cand = np.concatenate([good, copies, far, wrong])
    cy = np.zeros(len(cand), dtype=int)
    before = cand.copy()
    result = Screen(ScreenConfig(duplicate_ratio=0.0)).fit(emb, y).score(cand, cy)
    np.testing.assert_array_equal(cand, before)  # inputs are not modified
    reasons = result.reasons
    assert all(r.startswith("near-copy") for r in reasons[20:25])
    assert all(r is not None for r in reasons[25:30])
    assert all(r.startswith("label-inconsistent") for r in reasons[30:35])
    assert result.keep[:20].mean() > 0.7
    assert set(result.scores) >= {"quality", "consistency", "realism", "novelty"}
    assert result.rejection_counts()["near-copy"] == 5


def test_selector_spreads_over_the_class_and_respects_budget(real):
    emb, y = real
    rng = np.random.default_rng(2)
    # 50 near-identical candidates at one real point plus 20 spread over the class
    centre = emb[y == 0][0]
    clump = centre + rng.normal(scale=0.05, size=(50, 8)).astype(np.float32) + 0.5
    spread = emb[y == 0][5:25] + rng.normal(scale=0.3, size=(20, 8)).astype(np.float32)
    cand = np.concatenate([clump, spread])
    cy = np.zeros(len(cand), dtype=int)
    result = Screen(ScreenConfig(copy_ratio=0.0)).fit(emb, y).score(cand, cy, budget_per_class=15)
    assert result.keep.sum() <= 15
    assert result.keep[:50].sum() <= 3  # the clump is redundant: at most a few of it
    assert any(r and r.startswith("redundant") for r in result.reasons[:50])


def test_checks_reasons_take_precedence(real):
    emb, y = real
    cand = emb[:4] + 0.5
    checks = SanityResult({"contrast": np.array([1.0, 2.0, 3.0, 4.0])}, ["insane: blank", None, None, None])
    result = Screen().fit(emb, y).score(cand, y[:4], checks=checks)
    assert result.reasons[0] == "insane: blank" and not result.keep[0]
    assert "contrast" in result.scores


def test_chunking_gives_the_same_result(real):
    emb, y = real
    rng = np.random.default_rng(3)
    cand = emb + rng.normal(scale=0.5, size=emb.shape).astype(np.float32)
    a = Screen(ScreenConfig(chunk_size=16)).fit(emb, y).score(cand, y)
    b = Screen(ScreenConfig(chunk_size=4096)).fit(emb, y).score(cand, y)
    np.testing.assert_array_equal(a.keep, b.keep)
    for k in a.scores:
        np.testing.assert_allclose(a.scores[k], b.scores[k], rtol=1e-5)


def test_errors(real):
    emb, y = real
    with pytest.raises(NotFittedError):
        Screen().score(emb, y)
    s = Screen().fit(emb, y)
    with pytest.raises(InvalidInputError, match="absent from the real data"):
        s.score(emb[:2], np.array([7, 7]))
    with pytest.raises(InvalidInputError, match="2-D"):
        s.score(emb[0], y[:1])
    with pytest.raises(InvalidInputError, match="budget_per_class"):
        ScreenConfig(budget_per_class=0)


def test_random_selector_keeps_the_shape_of_the_candidates(real):
    emb, y = real
    rng = np.random.default_rng(2)
    clump = emb[y == 0][0] + rng.normal(scale=0.05, size=(50, 8)).astype(np.float32) + 0.5
    spread = emb[y == 0][5:25] + rng.normal(scale=0.3, size=(20, 8)).astype(np.float32)
    cand = np.concatenate([clump, spread])
    cy = np.zeros(len(cand), dtype=int)
    base = dict(copy_ratio=0.0, duplicate_ratio=0.0)
    screen = Screen(ScreenConfig(**base)).fit(emb, y)
    maxmin = screen.score(cand, cy, budget_per_class=15).keep
    runs = [Screen(ScreenConfig(**base, selector="random", seed=s)).fit(emb, y).score(cand, cy, budget_per_class=15).keep
            for s in (0, 0, 1)]
    assert maxmin[:50].sum() <= 3                     # max-min spreads out: few from the clump
    assert runs[0][:50].sum() >= 6                    # random keeps about the clump's share (50/70)
    assert runs[0].sum() == 15
    np.testing.assert_array_equal(runs[0], runs[1])   # seeded
    assert not np.array_equal(runs[0], runs[2])
    with pytest.raises(InvalidInputError, match="selector"):
        ScreenConfig(selector="best")


def test_value_selector_fills_the_budget_by_value_then_knn_shapley(real):
    emb, y = real
    rng = np.random.default_rng(4)
    cand = emb[y == 0][:30] + rng.normal(scale=0.3, size=(30, 8)).astype(np.float32)
    cy = np.zeros(30, dtype=int)
    value = np.round(rng.normal(size=30), 1)                 # ties, broken by KNN-Shapley
    shapley = rng.normal(size=30)
    checks = SanityResult({"value": value, "knn_shapley": shapley}, [None] * 30)
    cfg = ScreenConfig(selector="value", copy_ratio=0.0, duplicate_ratio=0.0, min_consistency=0.0,
                       require_manifold=False)
    kept = Screen(cfg).fit(emb, y).score(cand, cy, checks=checks, budget_per_class=8).keep
    best = np.lexsort((shapley, value))[::-1][:8]            # the 8 largest (value, KNN-Shapley)
    assert sorted(np.flatnonzero(kept).tolist()) == sorted(best.tolist())
    with pytest.raises(InvalidInputError, match="needs the candidates' values"):
        Screen(cfg).fit(emb, y).score(cand, cy, budget_per_class=8)


def test_priority_weights_the_random_draw(real):
    emb, y = real
    rng = np.random.default_rng(3)
    cand = emb[y == 0][:40] + rng.normal(scale=0.3, size=(40, 8)).astype(np.float32)
    cy = np.zeros(40, dtype=int)
    cfg = ScreenConfig(selector="random", copy_ratio=0.0, duplicate_ratio=0.0, min_consistency=0.0,
                       require_manifold=False)
    heavy = np.r_[np.full(10, 50.0), np.ones(30)]           # 10 candidates 50 times as likely
    kept = [Screen(ScreenConfig(**{**cfg.__dict__, "seed": s})).fit(emb, y)
            .score(cand, cy, budget_per_class=10, priority=heavy).keep for s in range(5)]
    assert np.mean([k[:10].sum() for k in kept]) >= 7         # uniform would give 2.5 of 10
    again = Screen(ScreenConfig(**{**cfg.__dict__, "seed": 0})).fit(emb, y).score(cand, cy, budget_per_class=10,
                                                                                 priority=heavy).keep
    np.testing.assert_array_equal(kept[0], again)             # seeded
    uniform = Screen(cfg).fit(emb, y)
    with pytest.raises(InvalidInputError, match="priority"):
        uniform.score(cand, cy, priority=np.r_[0.0, np.ones(39)])
    with pytest.raises(InvalidInputError, match="priority"):
        uniform.score(cand, cy, priority=np.ones(3))
    with pytest.raises(InvalidInputError, match="random"):
        Screen(ScreenConfig(copy_ratio=0.0)).fit(emb, y).score(cand, cy, priority=np.ones(40))


def test_priority_score_of_the_checks_weights_the_draw(real):
    emb, y = real
    rng = np.random.default_rng(3)
    cand = emb[y == 0][:40] + rng.normal(scale=0.3, size=(40, 8)).astype(np.float32)
    cy = np.zeros(40, dtype=int)
    base = dict(selector="random", copy_ratio=0.0, duplicate_ratio=0.0, min_consistency=0.0, require_manifold=False)
    score = np.r_[np.ones(10), np.full(30, 0.02)]            # 10 candidates 50 times as likely
    score[12] = np.nan                                        # nan (a failed check) weighs 1
    checks = SanityResult({"rarity": score}, [None] * 40)
    weighted = [Screen(ScreenConfig(**base, priority_score="rarity", seed=s)).fit(emb, y)
                .score(cand, cy, checks=checks, budget_per_class=10).keep for s in range(5)]
    assert np.mean([k[:10].sum() for k in weighted]) >= 7     # uniform would give 2.5 of 10
    flat = [Screen(ScreenConfig(**base, priority_score="rarity", priority_power=0.0, seed=s)).fit(emb, y)
            .score(cand, cy, checks=checks, budget_per_class=10).keep for s in range(5)]
    plain = [Screen(ScreenConfig(**base, seed=s)).fit(emb, y).score(cand, cy, checks=checks, budget_per_class=10).keep
             for s in range(5)]
    np.testing.assert_array_equal(flat, plain)                # power 0 is the uniform draw, exactly
    missing = Screen(ScreenConfig(**base, priority_score="absent")).fit(emb, y)
    np.testing.assert_array_equal(missing.score(cand, cy, checks=checks, budget_per_class=10).keep, plain[0])
    with pytest.raises(InvalidInputError, match="random"):
        ScreenConfig(priority_score="rarity")
    with pytest.raises(InvalidInputError, match="priority_power"):
        ScreenConfig(selector="random", priority_score="rarity", priority_power=-1.0)


def test_label_consistency_is_calibrated_on_small_tight_classes():
    """Ten classes of 8 items in a small-scale embedding: held-out items of the same clusters must
    get a high probability of their label (a fixed C = 1 gave about 1/10 here)."""
    rng = np.random.default_rng(0)
    centres = rng.normal(scale=0.3, size=(10, 16))
    y = np.repeat(np.arange(10), 8)
    real = centres[y] + rng.normal(scale=0.03, size=(80, 16))
    held_out = centres[y] + rng.normal(scale=0.03, size=(80, 16))
    screen = Screen(ScreenConfig(require_manifold=False, copy_ratio=0.0)).fit(real, y)
    result = screen.score(held_out, y)
    assert np.median(result.scores["consistency"]) > 0.8


def _reference_screen(screen, cand, cy, budget):
    """Per-candidate loops on whole float64 distance matrices, as the screen is specified."""
    cfg = screen.config
    n = len(cand)
    p = screen.classifier_.predict_proba(cand)
    consistency = p[np.arange(n), [list(screen.classifier_.classes_).index(c) for c in cy]]
    reasons, keep = [None] * n, np.zeros(n, dtype=bool)
    density, novelty = np.zeros(n), np.zeros(n)
    for c in np.unique(cy):
        rows = np.flatnonzero(cy == c)
        emb, radii, scale = screen.real_[c]
        D = np.sqrt(((cand[rows, None].astype(np.float64) - emb[None].astype(np.float64)) ** 2).sum(-1))
        density[rows] = (D <= radii[None]).sum(1) / cfg.k
        novelty[rows] = D.min(1) / scale
        for r, i in enumerate(rows):
            if consistency[i] < cfg.min_consistency:
                reasons[i] = f"label-inconsistent: p(label)={consistency[i]:.2f} < {cfg.min_consistency}"
            elif cfg.require_manifold and density[i] <= cfg.min_density:
                reasons[i] = "unrealistic: outside the real k-NN manifold of its class"
            elif novelty[i] < cfg.copy_ratio:
                reasons[i] = f"near-copy: of real item {D[r].argmin()} of its class (novelty {novelty[i]:.2f})"
        quality = 0.5 * consistency + 0.5 * np.minimum(density, 1.0)
        open_ = [i for i in rows if reasons[i] is None]
        mind = {i: np.inf for i in open_}
        nearest = {}
        taken = 0
        while taken < budget and open_:
            for i in [i for i in open_ if mind[i] < cfg.duplicate_ratio * scale]:
                reasons[i] = f"redundant: near-duplicate of kept candidate {nearest[i]}"
                open_.remove(i)
            if not open_:
                break
            spread = {i: 1.0 if np.isinf(mind[i]) else mind[i] / scale for i in open_}
            j = max(open_, key=lambda i: (np.float32(quality[i]) * max(spread[i], 1e-12), -i))
            keep[j] = True
            open_.remove(j)
            taken += 1
            for i in open_:
                d = np.linalg.norm(cand[i] - cand[j])
                if d < mind[i]:
                    mind[i], nearest[i] = d, j
        for i in open_:
            reasons[i] = f"over budget: class budget of {budget} reached"
    return keep, reasons, density, novelty


def test_score_equals_a_per_candidate_reference(real):
    emb, y = real
    rng = np.random.default_rng(5)
    cy = rng.integers(0, 3, 300)
    cand = emb[rng.integers(0, 40, 300) + 40 * cy] + rng.normal(scale=0.6, size=(300, 8)).astype(np.float32)
    cand[:10] = emb[40 * cy[:10]] + 1e-4                     # near-copies
    cand[10:40] = cand[40] + 0.02 * rng.normal(size=(30, 8)).astype(np.float32)  # a clump: redundant
    cy[10:40] = cy[40]
    cy[290:] = (cy[290:] + 1) % 3                             # wrong labels
    screen = Screen(ScreenConfig(duplicate_ratio=0.5)).fit(emb, y)
    result = screen.score(cand, cy, budget_per_class=60)
    keep, reasons, density, novelty = _reference_screen(screen, cand, cy, 60)
    np.testing.assert_allclose(result.scores["realism"], density, rtol=0, atol=0)
    np.testing.assert_allclose(result.scores["novelty"], novelty, rtol=1e-6)
    assert result.reasons == reasons
    np.testing.assert_array_equal(result.keep, keep)
    kinds = result.rejection_counts()
    assert {"near-copy", "redundant", "over budget", "label-inconsistent"} <= set(kinds)
    assert "over budget: class budget of 60 reached" in result.reasons


def test_value_order_ranks_by_value_then_shapley_with_unvalued_last():
    from imagina.core.screening import value_order

    value = np.array([0.1, np.nan, 0.3, 0.1, 0.3])
    shapley = np.array([0.0, 9.0, -1.0, 0.5, 2.0])
    # 0.3 (Shapley 2.0) before 0.3 (-1.0); 0.1 (0.5) before 0.1 (0.0); the unvalued last
    assert value_order(value, shapley).tolist() == [4, 2, 3, 0, 1]
    assert value_order(np.zeros(3), np.zeros(3)).tolist() == [0, 1, 2]  # full ties keep the index order
