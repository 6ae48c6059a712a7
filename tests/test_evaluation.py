import numpy as np
import pytest
import torch
from torch import nn

from imagina.core.errors import InvalidInputError
from imagina.core.evaluation import (
    EvalConfig,
    EvalReport,
    EvalTask,
    ReferenceCheck,
    accuracy,
    class_recalls,
    evaluate,
    holdout,
    match_counts,
    stratified_split,
    train_classifier,
)
from imagina.core.modality import LabeledData


class TinyTask(EvalTask):
    name = "linear"
    steps = 30
    batch_size = 16
    lr = 0.05

    def prepare(self, X):
        return torch.as_tensor(np.asarray(X, dtype=np.float32))

    def make_classifier(self, n_classes):
        return nn.Linear(2, n_classes)

    def augmentations(self, prepared, y):
        return {"jitter 0.1": lambda x, rng: x + 0.1 * torch.randn(x.shape, generator=rng),
                "jitter 1.0": lambda x, rng: x + 1.0 * torch.randn(x.shape, generator=rng)}


def blobs(n, seed, noise=0.6):
    rng = np.random.default_rng(seed)
    y = np.repeat([0, 1], n // 2)
    X = rng.normal(scale=noise, size=(n, 2)) + np.where(y[:, None] == 1, 1.0, -1.0)
    return LabeledData(X.astype(np.float32), y)


def test_all_conditions_with_settings_chosen_on_validation():
    train, test = blobs(20, 0), blobs(200, 1)
    good = blobs(40, 2)
    bad = LabeledData(good.X, 1 - good.y)  # wrong labels: the unscreened pool
    report = evaluate(TinyTask(), train, test, screened=good, unscreened=bad,
                      config=EvalConfig(seeds=(0, 1), device="cpu"), progress=False)
    assert list(report.conditions) == ["real", "real+classical", "real+screened", "real+unscreened",
                                       "real+classical+screened", "synthetic-only"]
    assert all(len(c.accuracies) == 2 for c in report.conditions.values())
    assert report.conditions["real+screened"].mean > report.conditions["real+unscreened"].mean
    assert set(report.validation["real+classical"]) == {"jitter 0.1", "jitter 1.0"}
    assert "share" in report.conditions["real+screened"].setting
    md = report.to_markdown()
    assert "(c) real+screened" in md and "paired" in md
    assert "(f) real+dose is not run: no synthetic item was recommended" in md  # no dose: says why (f) is missing
    assert report.to_dict()["sizes"]["test"] == 200


def test_selection_averages_seeds_and_e_keeps_the_classical_choice():
    train, test = blobs(20, 0), blobs(100, 1)
    good = blobs(40, 2)
    calls = []

    class Counting(TinyTask):
        def make_classifier(self, n_classes):
            calls.append(1)
            return super().make_classifier(n_classes)

    cfg = EvalConfig(seeds=(0,), synthetic_shares=(0.25, 0.5), selection_seeds=2, device="cpu", tune_classifier=False)
    report = evaluate(Counting(), train, test, screened=good, config=cfg, progress=False)
    # selection: real 1 + classical 2 + screened 2 + (e) 2 shares at (b)'s setting = 7 settings x 2 seeds
    assert len(calls) == 7 * 2 + 4 * 1 + 1
    b_setting = report.conditions["real+classical"].setting
    assert report.conditions["real+classical+screened"].setting.startswith(b_setting)
    assert set(report.validation["real+classical+screened"]) == {f"{b_setting}, share 0.25", f"{b_setting}, share 0.5"}
    assert report.selection_seeds == 2 and "2 classifier seed" in report.to_markdown()
    # the validation score is the mean over classifier seeds selection_seed, selection_seed + 1
    task, y = TinyTask(), torch.as_tensor(train.y)
    tr, va = stratified_split(train.y, cfg.val_fraction, cfg.selection_seed)
    x = task.prepare(train.X)
    accs = [accuracy(train_classifier(task, 2, (x[tr], y[tr]), seed=cfg.selection_seed + r), x[va], y[va]) for r in range(2)]
    assert report.validation["real"]["-"] == pytest.approx(np.mean(accs))
    with pytest.raises(InvalidInputError, match="selection_seeds"):
        EvalConfig(selection_seeds=0)


def test_same_seed_same_accuracy():
    train, test = blobs(20, 0), blobs(100, 1)
    a = evaluate(TinyTask(), train, test, config=EvalConfig(seeds=(3,), device="cpu"), progress=False)
    b = evaluate(TinyTask(), train, test, config=EvalConfig(seeds=(3,), device="cpu"), progress=False)
    assert a.conditions["real"].accuracies == b.conditions["real"].accuracies


def test_unknown_test_label():
    train, test = blobs(20, 0), blobs(10, 1)
    test.y[0] = 5
    with pytest.raises(InvalidInputError, match="test data holds labels absent"):
        evaluate(TinyTask(), train, test, config=EvalConfig(seeds=(0,), device="cpu"), progress=False)


def test_split_helpers():
    y = np.array([0] * 10 + [1] * 5)
    tr, va = stratified_split(y, 0.2, 0)
    assert len(np.intersect1d(tr, va)) == 0 and len(tr) + len(va) == 15
    assert (y[va] == 0).sum() == 2 and (y[va] == 1).sum() == 1
    idx = match_counts(np.array([0, 0, 1]), np.array([1, 1, 0, 0, 0, 1]), 0)
    assert sorted(np.array([1, 1, 0, 0, 0, 1])[idx].tolist()) == [0, 0, 1]


def test_settings_are_chosen_on_the_given_validation_items():
    train, test = blobs(40, 0), blobs(100, 1)
    flipped = blobs(20, 3)
    flipped = LabeledData(flipped.X, 1 - flipped.y)   # a validation set no sound classifier gets right
    cfg = EvalConfig(seeds=(0,), device="cpu")
    report = evaluate(TinyTask(), train, test, validation=flipped, config=cfg, progress=False)
    assert report.validation["real"]["-"] < 0.3
    assert report.to_dict()["sizes"]["real train"] == 60 and report.to_dict()["sizes"]["of which validation"] == 20
    carved = evaluate(TinyTask(), train, test, config=cfg, progress=False)
    assert carved.validation["real"]["-"] > 0.7
    with pytest.raises(InvalidInputError, match="validation"):
        evaluate(TinyTask(), train, test, validation=LabeledData(train.X[:0], train.y[:0]), config=cfg, progress=False)


def test_holdout_is_stratified_and_disjoint():
    data = LabeledData(np.arange(15, dtype=np.float32)[:, None], np.array([0] * 10 + [1] * 5))
    rest, val = holdout(data, 0.2, seed=0)
    assert len(rest) + len(val) == 15 and not set(rest.X[:, 0]) & set(val.X[:, 0])
    assert (val.y == 0).sum() == 2 and (val.y == 1).sum() == 1


def test_balanced_accuracy_weighs_every_class_alike():
    class Majority(nn.Module):  # always class 0
        def __init__(self):
            super().__init__()
            self.bias = nn.Parameter(torch.tensor([1.0, 0.0, 0.0]))

        def forward(self, x):
            return self.bias.expand(len(x), 3)

    y = torch.tensor([0] * 8 + [1] + [2])
    acc, balanced, recalls = class_recalls(Majority(), torch.zeros(10, 2), y, 4)
    assert acc == pytest.approx(0.8) and balanced == pytest.approx(1 / 3)
    assert recalls[:3] == [1.0, 0.0, 0.0] and np.isnan(recalls[3])  # class 3 is not in the test split
    train, test = blobs(20, 0), blobs(100, 1)
    report = evaluate(TinyTask(), train, test, config=EvalConfig(seeds=(0, 1), device="cpu"), progress=False)
    real = report.conditions["real"]
    assert len(real.balanced) == 2 and all(0.0 <= b <= 1.0 for b in real.balanced)
    assert report.to_dict()["conditions"]["real"]["balanced_mean"] == pytest.approx(np.mean(real.balanced))
    assert "balanced accuracy" in report.to_markdown()
    assert report.classes == ["0", "1"] and np.mean(real.recall_mean) == pytest.approx(np.mean(real.balanced))
    assert report.to_dict()["conditions"]["real"]["recall_per_class"] == dict(zip(["0", "1"], real.recall_mean))
    assert np.mean(report.to_dict()["conditions"]["real"]["recalls_per_seed"], axis=0).tolist() == real.recall_mean
    assert "| (a) real | " + " | ".join(f"{100 * r:.1f}" for r in real.recall_mean) + " |" in report.to_markdown()
    diff = np.subtract(report.conditions["real+classical"].balanced, real.balanced).mean()
    assert report.paired_difference("real+classical", "real", balanced=True)[0] == pytest.approx(diff)


def test_validation_warns_when_no_setting_beats_real_only(caplog):
    report = EvalReport({}, (0,), {"real": {"-": 0.80}, "real+classical": {"a": 0.82, "b": 0.70},
                                   "real+screened": {"share 0.1": 0.78, "share 0.5": 0.60},
                                   "real+classical+screened": {"a, share 0.1": 0.81}})
    line, line_e = report.validation_warnings()
    assert line.startswith("real+screened:") and "78.00" in line and "below real (80.00)" in line
    assert line_e.startswith("real+classical+screened:") and "below real+classical (82.00)" in line_e
    assert "real+screened: its best setting" in report.to_markdown()
    assert report.to_dict()["validation_warnings"] == [line, line_e]
    assert EvalReport({}, (0,), {"real": {"-": 0.8}, "real+screened": {"share 0.1": 0.8}}).validation_warnings() == []
    few = EvalReport({}, (0,), {"real": {"-": 0.8}, "real+screened": {"share 0.1": 0.7}}, sizes={"of which validation": 60})
    assert "on 60 validation items" in few.validation_warnings()[0] and "a hint" in few.validation_warnings()[0]
    assert "a hint" not in line

    train, test = blobs(40, 0), blobs(100, 1)
    flipped = blobs(80, 2)  # synthetic items with every label wrong
    flipped = LabeledData(flipped.X, 1 - flipped.y)
    with caplog.at_level("WARNING", logger="imagina.core.evaluation"):
        report = evaluate(TinyTask(), train, test, screened=flipped,
                          config=EvalConfig(seeds=(0,), synthetic_shares=(0.5, 0.75), device="cpu"), progress=False)
    warned = [w for w in report.validation_warnings() if w.startswith("real+screened:")]
    assert warned and warned[0] in caplog.text


def test_weight_averaging_over_the_last_steps():
    data = blobs(40, 0)
    real = (torch.as_tensor(data.X), torch.as_tensor(data.y))

    def weights(average_last):
        task = TinyTask()
        task.average_last = average_last
        model = train_classifier(task, 2, real, seed=1)
        return torch.cat([p.detach().flatten() for p in model.parameters()])

    last = weights(0.0)
    assert torch.equal(weights(1 / TinyTask.steps), last)  # an average over one step is the last weights
    averaged = weights(0.5)
    assert not torch.allclose(averaged, last)
    assert torch.equal(weights(0.5), averaged)  # deterministic
    task = TinyTask()
    task.average_last = 0.25
    assert "averaged over the last 25% of steps" in task.describe()


def test_reference_setting_is_chosen_on_validation_and_used_everywhere():
    train, test = blobs(30, 0), blobs(100, 1)
    calls = []

    class Recording(TinyTask):
        def settings(self):
            return {"default": {}, "tiny lr": {"lr": 1e-6}}

        def make_classifier(self, n_classes):
            calls.append(self.lr)
            return super().make_classifier(n_classes)

    cfg = EvalConfig(seeds=(0,), selection_seeds=1, device="cpu")
    report = evaluate(Recording(), train, test, config=cfg, progress=False)
    assert set(report.classifier_settings) == {"default", "tiny lr"}
    assert report.classifier_setting == "default"  # a learning rate of 1e-6 learns nothing in 30 steps
    assert calls[:2] == [0.05, 1e-6] and set(calls[2:]) == {0.05}
    assert "setting chosen on validation: default" in report.to_markdown()
    assert report.to_dict()["classifier_setting"] == "default"


def test_standard_baseline_and_the_dose_condition():
    from sklearn.preprocessing import StandardScaler

    train, test = blobs(30, 0), blobs(100, 1)
    dose = blobs(20, 3)
    report = evaluate(TinyTask(), train, test, dose=dose, baseline=StandardScaler(),
                      config=EvalConfig(seeds=(0, 1), device="cpu", tune_classifier=False), progress=False)
    assert "real+dose" in report.conditions
    assert report.conditions["real+dose"].setting == "synthetic share 0.4"  # 20 recommended beside 30 real
    assert report.sizes["recommended synthetic"] == 20
    assert 0.5 < report.baseline["accuracy"] <= 1.0 and "logistic regression" in report.baseline["name"]
    md = report.to_markdown()
    assert "(f) real+dose" in md and "Standard baseline on the same real items" in md
    assert "is not run" not in md


def test_reference_check_trains_alone_and_with_synthetic_items():
    train, test = blobs(40, 0), blobs(60, 1)
    check = ReferenceCheck(TinyTask())
    assert check.name.startswith("linear")
    wrong = LabeledData(train.X, 1 - train.y)  # synthetic items with every label flipped
    without, with_wrong = check(train.X, train.y, wrong.X, wrong.y, test.X, test.y, 0.5, 0)
    assert without > 0.85 and with_wrong < without - 0.2
    again = check(train.X, train.y, wrong.X, wrong.y, test.X, test.y, 0.5, 0)
    assert again == (without, with_wrong)                               # seeded
    assert check(train.X, train.y, train.X[:0], train.y[:0], test.X, test.y, 0.0, 0)[1] == without


def test_smoke_setup_is_the_clis_smoke_run():
    """Scripts get what `--smoke` runs: 2 steps everywhere, 4 kept per class, a small dose, one seed."""
    from imagina.core.cli import SMOKE, SMOKE_DOSE
    from imagina.core.evaluation import smoke_setup
    from imagina.image import MODALITY

    modality, config, evaluation = smoke_setup("image", seed=3)
    assert modality is not MODALITY and modality.embedder_steps == 2 and MODALITY.embedder_steps > 2
    assert (config.steps, config.per_class, config.embedder, config.seed) == (2, SMOKE["per_class"], "own", 3)
    assert config.dose.folds == SMOKE_DOSE["folds"] and config.dose.max_real == SMOKE_DOSE["max_real"]
    assert evaluation.seeds == SMOKE["seeds"] and evaluation.classifier_steps == 2
