"""The shared pipeline's mechanics on a toy modality: 2-D points, a generator that misses one class."""

from __future__ import annotations

import csv
from dataclasses import dataclass

import numpy as np
import pytest

from imagina.core.modality import LabeledData, Modality, SanityResult
from imagina.core.pipeline import AugmentConfig, Augmenter

CENTRES = {"a": (0.0, 0.0), "b": (10.0, 0.0), "c": (0.0, 10.0)}


@dataclass(frozen=True)
class PointConfig:
    hit_rate: float = 1.0


class PointGenerator:
    """Samples around the class centre; for class "b" only ``hit_rate`` of samples land there."""

    registry_name = "points"

    def __init__(self, hit_rate: dict[str, float]) -> None:
        self.config = PointConfig()
        self.hit_rate = hit_rate
        self.history_: list = []
        self.calls: list[int] = []

    def fit(self, X, y, **_):
        return self

    def diagnostics(self):
        return {}

    def to_model_space(self, X):
        return None

    def sample(self, n, labels=None, *, seed=None):
        self.calls.append(n)
        rng = np.random.default_rng(seed)
        labels = np.asarray(labels)
        out = np.empty((n, 2), np.float32)
        for i, c in enumerate(labels.tolist()):
            hit = rng.random() < self.hit_rate.get(c, 1.0)
            out[i] = np.asarray(CENTRES[c if hit else "a"]) + rng.normal(scale=1.0, size=2)
        return out, labels


class IdentityEmbedder:
    def fit(self, X, y):
        return self

    def embed(self, X):
        return np.asarray(X, np.float32)


class PointModality(Modality):
    name = "points"

    def __init__(self, hit_rate: dict[str, float]) -> None:
        self.hit_rate = hit_rate
        self.generator: PointGenerator | None = None

    def load(self, source, **options):
        raise NotImplementedError

    def make_generator(self, *, steps, seed, device, meta=None, **options):
        self.generator = PointGenerator(self.hit_rate)
        return self.generator

    def make_embedder(self, *, seed, device, pretrained=None, meta=None, **options):
        return IdentityEmbedder()

    def sanity(self, X, y, *, generator=None, real=None):
        return SanityResult({"norm": np.linalg.norm(X, axis=1)}, [None] * len(y))

    def write_items(self, directory, X, y, stems, *, meta=None):
        raise NotImplementedError

    def preview(self, path, X, y, *, title="", meta=None):
        raise NotImplementedError

    def evaluation_task(self, meta=None):
        raise NotImplementedError


def _real(n_per_class: int = 40) -> LabeledData:
    rng = np.random.default_rng(0)
    X = np.concatenate([np.asarray(c) + rng.normal(scale=1.0, size=(n_per_class, 2)) for c in CENTRES.values()])
    return LabeledData(X.astype(np.float32), np.repeat(list(CENTRES), n_per_class))


def test_short_class_gets_more_candidates_until_the_budget_is_met():
    modality = PointModality({"b": 0.2})
    cfg = AugmentConfig(per_class=20, oversample=2.0, max_oversample=20.0, top_up_rounds=2)
    result = Augmenter(modality, cfg, progress=False).fit(_real()).augment()
    per_class = result.record["screen"]["candidates_per_class"]
    assert per_class["a"] == per_class["c"] == 40          # full on the first round: no top-up
    assert per_class["b"] > 40                               # "b" passed rarely: more candidates
    assert result.kept_per_class() == {"a": 20, "b": 20, "c": 20}
    assert len(modality.generator.calls) >= 2
    assert len(result.screen.reasons) == len(result.labels) == len(result.screen.scores["norm"])


def test_top_up_respects_the_cap_and_can_be_turned_off():
    modality = PointModality({"b": 0.0})                     # "b" never passes: the cap bounds the work
    cfg = AugmentConfig(per_class=10, oversample=2.0, max_oversample=5.0, top_up_rounds=3)
    result = Augmenter(modality, cfg, progress=False).fit(_real()).augment()
    assert result.record["screen"]["candidates_per_class"]["b"] == 50
    assert result.kept_per_class()["b"] == 0

    off = Augmenter(PointModality({"b": 0.0}), AugmentConfig(per_class=10, oversample=2.0, top_up_rounds=0),
                    progress=False).fit(_real()).augment()
    assert off.record["screen"]["candidates_per_class"]["b"] == 20


def test_top_up_is_reproducible():
    cfg = AugmentConfig(per_class=20, oversample=2.0)
    runs = [Augmenter(PointModality({"b": 0.3}), cfg, progress=False).fit(_real()).augment() for _ in range(2)]
    np.testing.assert_array_equal(runs[0].candidates, runs[1].candidates)
    np.testing.assert_array_equal(runs[0].keep, runs[1].keep)


@pytest.mark.parametrize("field,value", [("max_oversample", 0.5), ("top_up_rounds", -1)])
def test_bad_top_up_settings_are_refused(field, value):
    from imagina.core.errors import InvalidInputError

    with pytest.raises(InvalidInputError, match=field):
        AugmentConfig(**{field: value})


def test_modality_defaults_fill_what_the_user_left_open():
    from imagina.core.screening import ScreenConfig

    modality = PointModality({})
    modality.augment_defaults = {"per_class": 7, "screen": ScreenConfig(min_consistency=0.0)}
    cfg = AugmentConfig(oversample=2.0).resolved(modality)
    assert cfg.per_class == 7 and cfg.oversample == 2.0 and cfg.max_oversample == 10.0
    assert cfg.screen.min_consistency == 0.0
    assert AugmentConfig(per_class=3).resolved(modality).per_class == 3
    assert AugmentConfig().resolved(PointModality({})).screen == ScreenConfig()


class ProbedPointModality(PointModality):
    """Points with a probe for the dose, and items written as one-line text files."""

    def probe_features(self, meta=None):
        from sklearn.preprocessing import StandardScaler

        return StandardScaler()

    def write_items(self, directory, X, y, stems, *, meta=None):
        paths = []
        for x, label, stem in zip(X, y, stems):
            (directory / str(label)).mkdir(parents=True, exist_ok=True)
            (directory / str(label) / f"{stem}.txt").write_text(" ".join(map(str, x)))
            paths.append(f"{label}/{stem}.txt")
        return paths

    def preview(self, path, X, y, *, title="", meta=None):
        path.write_bytes(b"")


def test_harmful_candidates_are_rejected_and_the_short_class_is_loud(caplog):
    # "b" candidates land in class "a" three times in four: mislabelled, and valued as harmful.
    cfg = AugmentConfig(per_class=20, oversample=2.0, max_oversample=2.0)
    with caplog.at_level("WARNING"):
        result = Augmenter(ProbedPointModality({"b": 0.25}), cfg, progress=False).fit(_real()).augment()
    reasons = [r for r, c in zip(result.screen.reasons, result.labels) if r and c == "b"]
    assert any(r.startswith("harmful: value -") for r in reasons)
    assert np.isfinite(result.screen.scores["value"]).any() and "probe_influence" in result.screen.scores
    warning = result.record["warnings"][0]
    assert "classes kept fewer than 20" in warning and "b: " in warning
    assert warning in caplog.text


def test_dose_follows_the_recommendation_and_export_splits_samples_and_reserve(tmp_path):
    from imagina.core.dose import DoseConfig

    cfg = AugmentConfig(per_class=30, oversample=2.0, dose=DoseConfig(folds=3, repeats=1))
    result = Augmenter(ProbedPointModality({}), cfg, progress=False).fit(_real(12)).augment()
    rec = result.recommendation
    assert rec is not None and result.record["recommendation"]["verdict"] == rec.verdict
    assert result.record["embedder"] == {"spec": "own"}
    per_class = {str(c): int((result.in_dose & (result.labels == c)).sum()) for c in CENTRES}
    assert per_class == rec.per_class
    assert not (result.in_dose & ~result.keep).any()
    result.generator = None  # the toy generator has nothing to save
    out = result.export(tmp_path / "out")
    assert (out / "samples").is_dir()
    in_samples = sorted(p.name for p in (out / "samples").rglob("*.txt"))
    in_reserve = sorted(p.name for p in (out / "reserve").rglob("*.txt"))
    assert len(in_samples) == sum(rec.per_class.values())
    assert len(in_samples) + len(in_reserve) == int(result.keep.sum())
    report = (out / "report.md").read_text()
    assert "## Recommendation" in report
    expected = (f"`samples/` holds the {len(in_samples)} items to add" if in_samples else
                "`samples/` is empty: add nothing synthetic")
    assert expected in report and f"{len(in_reserve)} kept items are in `reserve/`" in report
    assert "fresh splits (the verdict's figure)" in report  # the message's lift is a row of the table
    over = sum(r is not None and r.startswith("over budget") for r in result.screen.reasons)
    passed = int(result.keep.sum()) + over
    lines = report.splitlines()
    start = lines.index("| class | candidates | passed every test | kept | rejected: reasons |") + 2
    rows = lines[start: lines.index("", start)]  # one row per class
    assert sum(int(line.split("|")[3]) for line in rows) == passed  # "passed every test" = kept + over budget


def test_export_writes_the_classical_views_of_the_recommended_mix(tmp_path):
    """The dose's reference arm holds k classical views per real item: classical/ holds them (the same
    views, seeded as the dose's), classical.csv names each one's real item, and the report says that the
    mix is real + classical/ + samples/. A reference of real items alone writes no classical/."""
    from dataclasses import replace

    from imagina.core.dose import DoseConfig

    modality = ViewedPointModality({})
    cfg = AugmentConfig(per_class=10, oversample=2.0, dose=DoseConfig(folds=3, repeats=1, seed=5))
    result = Augmenter(modality, cfg, progress=False).fit(_real(12)).augment()
    result.generator = None
    assert result.classical_seed == 5
    result.recommendation = replace(result.recommendation, classical_views=0)
    assert result.classical() is None
    assert not (result.export(tmp_path / "none") / "classical").exists()
    result.recommendation = replace(result.recommendation, classical_views=2, verdict="use", per_class={"a": 1})
    views = result.classical()
    n = len(result.real.y)
    np.testing.assert_array_equal(views.X, modality.classical_views(result.real.X, 2, seed=5))
    assert views.y.tolist() == result.real.y.tolist() * 2
    out = result.export(tmp_path / "two")
    rows = list(csv.DictReader(open(out / "classical.csv")))
    assert len(rows) == 2 * n == len(list((out / "classical").rglob("*.txt")))
    assert [int(r["view"]) for r in rows] == [1] * n + [2] * n
    assert rows[n + 3]["real_item"] == "3" and rows[n + 3]["label"] == str(result.real.y[3])
    first = np.array((out / rows[n + 3]["path"]).read_text().split(), dtype=np.float32)
    np.testing.assert_array_equal(first, views.X[n + 3])
    report = (out / "report.md").read_text()
    assert f"`classical/` holds 2 classical view(s) of each real item ({2 * n} in all" in report
    # the reference's strength makes the views (the report names it when it is not "default")
    strong = replace(result.recommendation, classical_strength="strong")
    result.recommendation = strong
    np.testing.assert_array_equal(result.classical().X, modality.classical_views(result.real.X, 2, seed=5, strength="strong"))
    assert "2 classical view(s) (strong) of each" in (result.export(tmp_path / "strong") / "report.md").read_text()
    result.recommendation = replace(strong, classical_strength="default")
    assert "The recommended mix is your real items, `classical/` and `samples/`." in report
    # a "don't use" keeps the reference alone, and says whether the views themselves were a clear gain
    for interval, says in (((-0.02, 0.03), "Not a clear gain"), ((0.01, 0.05), "A clear gain")):
        result.recommendation = replace(result.recommendation, verdict="don't use", per_class={"a": 0, "b": 0, "c": 0},
                                        classical_lift=0.005 + interval[0], classical_interval=interval)
        report = (result.export(tmp_path / says) / "report.md").read_text()
        assert f"over real only on the probe. {says}" in report and "`classical/` and `samples/`" not in report


def test_no_dose_keeps_every_kept_item_in_samples():
    cfg = AugmentConfig(per_class=10, oversample=2.0, dose=None, valuation=None)
    result = Augmenter(ProbedPointModality({}), cfg, progress=False).fit(_real()).augment()
    assert result.recommendation is None and "value" not in result.screen.scores
    np.testing.assert_array_equal(result.in_dose, result.keep)


class ViewedPointModality(ProbedPointModality):
    """Points whose classical views are the items moved by a little noise."""

    def classical_views(self, X, n_views, *, seed=0, meta=None, strength="default"):
        rng = np.random.default_rng(seed)
        scale = {"mild": 0.1, "default": 0.3, "strong": 0.9}[strength]
        return np.concatenate([X + rng.normal(scale=scale, size=X.shape).astype(np.float32) for _ in range(n_views)])


def test_train_views_reach_the_generator_and_need_a_modality_that_offers_them():
    from imagina.core.errors import InvalidInputError

    modality = ViewedPointModality({})
    seen = []
    make = modality.make_generator

    def recording(**kwargs):
        gen = make(**kwargs)
        fit = gen.fit
        gen.fit = lambda X, y, **kw: (seen.append(len(y)), fit(X, y, **kw))[1]
        return gen

    modality.make_generator = recording
    Augmenter(modality, AugmentConfig(per_class=5, train_views=2, dose=None), progress=False).fit(_real(10))
    assert seen == [90]  # 30 real items and 2 views of each
    with pytest.raises(InvalidInputError, match="classical views"):
        Augmenter(PointModality({}), AugmentConfig(train_views=1), progress=False).fit(_real(10))


def test_auto_records_every_trial_and_respects_its_budget(monkeypatch):
    from imagina.core import auto as auto_module
    from imagina.core.auto import AutoConfig, auto_augment
    from imagina.core.dose import DoseConfig

    clock = {"t": 0.0}
    monkeypatch.setattr(auto_module.time, "perf_counter", lambda: clock["t"])
    fit = Augmenter.fit

    def slow_fit(self, data, **kw):  # every generator "takes" 100 s
        clock["t"] += 100.0
        return fit(self, data, **kw)

    monkeypatch.setattr(Augmenter, "fit", slow_fit)
    cfg = AugmentConfig(per_class=10, oversample=2.0, dose=DoseConfig(folds=3, repeats=1))
    result = auto_augment(ViewedPointModality({}), _real(12), cfg, AutoConfig(time_budget=150, views=(0, 2)), progress=False)
    trials = result.record["auto"]["trials"]
    assert [t.get("screen") for t in trials[:2]] == ["default", "relaxed"]
    assert "would exceed the budget" in trials[2]["skipped"]  # a second generator would end at 200 s > 150 s
    assert result.record["auto"]["elapsed_s"] <= 150
    assert result.record["recommendation"]["verdict"] in ("use", "don't use")
    assert result.record["auto"]["verdict_split_seed"] == cfg.dose.seed + 1  # chosen from two: estimated again

    clock["t"] = 0.0
    lone = auto_augment(ViewedPointModality({}), _real(12), cfg, AutoConfig(time_budget=50, views=(0, 2)), progress=False)
    assert [("skipped" in t) for t in lone.record["auto"]["trials"]] == [False, True, True]
    assert lone.record["auto"]["verdict_split_seed"] == cfg.dose.seed  # nothing was chosen: its own estimate stands

    clock["t"] = 0.0
    wide = auto_augment(ViewedPointModality({}), _real(12), cfg, AutoConfig(time_budget=1000, views=(0, 2)), progress=False)
    assert [("skipped" in t) for t in wide.record["auto"]["trials"]] == [False] * 4
    assert wide.record["auto"]["trials"][2]["views"] == 2


def test_the_unseen_pool_comes_from_a_generator_that_saw_only_those_items():
    # the dose's "use" is checked on real items the generator never saw (recommend_dose's `unseen`):
    # the pool must come from a fresh generator fitted on the given items alone, screened as the run is
    fits = []

    class Recording(PointGenerator):
        def fit(self, X, y, **_):
            fits.append((np.asarray(X).copy(), np.asarray(y).copy()))
            return self

    modality = PointModality({})
    modality.make_generator = lambda **_: Recording({})
    real = _real(10)
    aug = Augmenter(modality, AugmentConfig(per_class=5, oversample=2.0, dose=None), progress=False).fit(real)
    aug.augment()
    seen = np.arange(0, len(real), 2)
    X, y = aug._unseen_pool(seen)
    assert len(fits) == 2 and fits[0][0].shape[0] == len(real)
    np.testing.assert_array_equal(fits[1][0], real.X[seen])
    np.testing.assert_array_equal(fits[1][1], real.y[seen])
    assert len(X) == len(y) > 0 and all((y == c).sum() <= 5 for c in CENTRES)
    assert list(y) == sorted(y)  # grouped by class, best first within each
    assert aug.timings_["unseen_s"] > 0


def test_fit_takes_an_x_y_pair_and_labels_as_a_list():
    real = _real(10)
    cfg = AugmentConfig(per_class=3, oversample=2.0, dose=None)
    a = Augmenter(PointModality({}), cfg, progress=False).fit((real.X, real.y.tolist())).augment()
    b = Augmenter(PointModality({}), cfg, progress=False).fit(LabeledData(real.X, real.y.tolist())).augment()
    assert a.kept_per_class() == b.kept_per_class() == {c: 3 for c in CENTRES}
    from imagina.core.errors import InvalidInputError

    with pytest.raises(InvalidInputError, match="LabeledData .* or an \\(X, y\\) pair; got dict"):
        Augmenter(PointModality({}), cfg, progress=False).fit({"X": real.X})



def test_value_selector_keeps_the_most_valuable_of_what_passes():
    from imagina.core.errors import InvalidInputError
    from imagina.core.screening import ScreenConfig

    cfg = AugmentConfig(per_class=10, oversample=3.0, top_up_rounds=0, dose=None, screen=ScreenConfig(selector="value"))
    result = Augmenter(ProbedPointModality({}), cfg, progress=False).fit(_real(12)).augment()
    value = result.screen.scores["value"]
    compared = 0
    for c in np.unique(result.labels):
        kept = result.keep & (result.labels == c)
        over = (result.labels == c) & np.array([r is not None and r.startswith("over budget") for r in result.screen.reasons])
        if kept.any() and over.any():
            assert value[kept].min() >= value[over].max()  # the budget went to the most valuable
            compared += 1
    assert compared  # some class had more that passed than its budget
    with pytest.raises(InvalidInputError, match="keep `valuation` on"):
        AugmentConfig(screen=ScreenConfig(selector="value"), valuation=None)


@pytest.mark.parametrize("spec", ["nosuch", "combined:", "combined:own", "combined:nosuch"])
def test_a_bad_embedder_fails_before_the_generator_trains(spec, monkeypatch):
    """A misspelt --embedder used to surface only after the whole generator training."""
    import copy

    from image_factories import make_images

    from imagina.core.errors import InvalidInputError
    from imagina.image import MODALITY

    modality = copy.copy(MODALITY)

    def no_training(**_):
        raise AssertionError("the generator was built before the embedder was checked")

    modality.make_generator = no_training
    X, y = make_images(4)
    with pytest.raises(InvalidInputError, match="embedder"):
        Augmenter(modality, AugmentConfig(steps=2, embedder=spec, device="cpu"), progress=False).fit((X, y))
