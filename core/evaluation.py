"""The proof: does the synthetic data help a reference classifier on held-out real data?

Conditions, each trained from scratch with the modality's fixed reference classifier and tested
on the real test split, over several seeds:

(a) ``real``                     real training items only
(b) ``real+classical``           with classical augmentation (setting chosen on validation)
(c) ``real+screened``            with the screened synthetic items
(d) ``real+unscreened``          with as many unscreened synthetic items (same count per class)
(e) ``real+classical+screened``  both
(f) ``real+dose``                the recommended items (``samples/``) simply added to the real ones,
                                 as a user would: no share chosen on validation; left out when
                                 nothing is recommended (a "don't use" verdict); without the
                                 output's ``classical/`` views (outside_view.py's ``real+output``)

plus ``synthetic-only`` (the classification accuracy score: train on screened synthetic, test on
real). The share of synthetic items in every training batch and the classical augmentation setting
are chosen per condition on a validation split of the real training data, each candidate scored by
the mean validation accuracy of ``selection_seeds`` classifiers (one classifier on a validation set
of a few dozen items is too noisy to choose by); (e) keeps the classical setting chosen for (b) and
chooses only its share, so that (e) − (b) measures what the synthetic items add. The test split is
used once, for the final figures.

The validation items must be unseen by the generator too, or synthetic items that echo them
flatter the synthetic conditions during selection. So the intended use is: carve the validation
split first (:func:`holdout`), fit the generator on the rest, and pass both to :func:`evaluate`
(``train=`` the rest, ``validation=`` the held-out items); the final classifiers train on both.
Without ``validation`` the split is carved from ``train`` here, which is honest only if the
synthetic data did not come from a generator fitted on ``train``.
"""

from __future__ import annotations

import copy
import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.optim.swa_utils import AveragedModel
from tqdm.auto import tqdm

from imagina.core.errors import InvalidInputError, check_bool, check_float, check_instance, check_int
from imagina.core.modality import LabeledData, concat
from imagina.core.runtime import autocast, derive_seed, numpy_rng, resolve_device, seeded

logger = logging.getLogger(__name__)

Augment = Callable[[torch.Tensor, torch.Generator], torch.Tensor]
CONDITIONS = ("real", "real+classical", "real+screened", "real+unscreened", "real+classical+screened", "real+dose")


class EvalTask(ABC):
    """A modality's reference classifier and classical augmentation.

    ``fit(X, y)`` learns what the classifier's input depends on (an image size, a vocabulary) from
    the real training items and returns ``self``; :func:`evaluate` calls it on the training data
    first, so results do not depend on which items happen to be prepared first. ``prepare`` turns
    items into one CPU tensor (first axis = items); ``make_classifier`` builds a module mapping a
    prepared batch (on the device) to logits; ``augmentations`` offers the candidate
    classical-augmentation settings (name -> callable on a prepared batch).
    """

    name: str = "reference"
    steps: int = 500
    batch_size: int = 64
    lr: float = 2e-3
    weight_decay: float = 5e-4
    #: Share of the final steps whose weights are averaged into the returned classifier (stochastic
    #: weight averaging, Izmailov et al. 2018, with ``torch.optim.swa_utils.AveragedModel``; buffers
    #: such as batch-norm statistics are averaged too). 0 returns the last weights.
    average_last: float = 0.0

    def fit(self, X: Any, y: Any = None) -> EvalTask:
        """Learn input sizes or a vocabulary from the real training items; returns ``self``. Nothing
        to learn by default."""
        return self

    @abstractmethod
    def prepare(self, X: Any) -> torch.Tensor:
        """Items -> one tensor (CPU)."""

    @abstractmethod
    def make_classifier(self, n_classes: int) -> nn.Module:
        """A fresh reference classifier."""

    def augmentations(self, prepared: torch.Tensor, y: np.ndarray) -> dict[str, Augment]:
        """Candidate classical-augmentation settings, fitted on the training part only if needed."""
        return {}

    def settings(self) -> dict[str, dict[str, Any]]:
        """Candidate training settings of the reference classifier (name -> attributes to set), one of
        which :func:`evaluate` chooses on the real training data before any condition runs, so that
        real-only accuracy is that of a tuned model, not of a fixed recipe: twice the steps, half and
        twice the learning rate, ten times the weight decay. Tasks add architecture widths."""
        return {"default": {}, "2× steps": {"steps": 2 * self.steps}, "lr ÷2": {"lr": self.lr / 2},
                "lr ×2": {"lr": self.lr * 2}, "weight decay ×10": {"weight_decay": self.weight_decay * 10}}

    def describe(self) -> str:
        """One line describing the reference classifier (for the report)."""
        averaging = f", weights averaged over the last {self.average_last:.0%} of steps" if self.average_last else ""
        return f"{self.name}: {self.steps} steps, batch {self.batch_size}, AdamW lr {self.lr}, cosine schedule{averaging}"


@dataclass(frozen=True, kw_only=True)
class EvalConfig:
    """Settings of :func:`evaluate`. ``synthetic_shares`` are the candidate shares of synthetic
    items in a training batch; the best on validation is used. Every candidate setting is scored by
    the mean validation accuracy of ``selection_seeds`` classifiers (seeds ``selection_seed``,
    ``selection_seed + 1``, ...)."""

    seeds: tuple[int, ...] = (0, 1, 2)
    synthetic_shares: tuple[float, ...] = (0.1, 0.25, 0.5)
    val_fraction: float = 0.2
    selection_seed: int = 1000
    selection_seeds: int = 3
    #: Training steps of the reference classifier (None: the modality task's own).
    classifier_steps: int | None = None
    #: Choose the reference classifier's setting (:meth:`EvalTask.settings`) on validation first.
    tune_classifier: bool = True
    device: str = "auto"

    def __post_init__(self) -> None:
        for name in ("seeds", "synthetic_shares"):
            value = getattr(self, name)
            if isinstance(value, (str, bytes)) or not isinstance(value, (tuple, list)) or not value:
                raise InvalidInputError(f"`{name}` must be a non-empty tuple, e.g. {getattr(EvalConfig, name)!r}; got {value!r}.")
        object.__setattr__(self, "seeds", tuple(check_int("seeds", s, minimum=0) for s in self.seeds))  # frozen
        if self.classifier_steps is not None:
            check_int("classifier_steps", self.classifier_steps, minimum=1)
        object.__setattr__(self, "synthetic_shares", tuple(check_float("synthetic_shares", s, minimum=0.0, maximum=0.95)
                                                           for s in self.synthetic_shares))
        check_bool("tune_classifier", self.tune_classifier)
        check_float("val_fraction", self.val_fraction, minimum=0.05, maximum=0.5)
        check_int("selection_seed", self.selection_seed, minimum=0)
        check_int("selection_seeds", self.selection_seeds, minimum=1)


@dataclass
class ConditionResult:
    """Test accuracy per seed, and balanced accuracy (the mean of per-class recalls) per seed: on a
    test split whose class mix differs from training (TREC: 138 DESC, 9 ABBR of 500) accuracy
    mostly follows the recall of the largest class, balanced accuracy weighs every class alike."""

    name: str
    setting: str
    accuracies: list[float]
    balanced: list[float] = field(default_factory=list)
    #: Per seed, the recall of every class (NaN for a class absent from the test split).
    recalls: list[list[float]] = field(default_factory=list)

    @property
    def mean(self) -> float:
        return float(np.mean(self.accuracies))

    @property
    def std(self) -> float:
        return float(np.std(self.accuracies, ddof=1)) if len(self.accuracies) > 1 else 0.0

    @property
    def balanced_mean(self) -> float:
        return float(np.mean(self.balanced)) if self.balanced else float("nan")

    @property
    def recall_mean(self) -> list[float]:
        """Recall of every class, mean over seeds."""
        return np.mean(np.asarray(self.recalls, dtype=float), axis=0).tolist() if self.recalls else []


@dataclass
class EvalReport:
    """Accuracy per condition and seed, the settings chosen on validation, and timings."""

    conditions: dict[str, ConditionResult]
    seeds: tuple[int, ...]
    validation: dict[str, dict[str, float]] = field(default_factory=dict)
    classifier: str = ""
    sizes: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    selection_seeds: int = 1
    #: Class names in the order of :attr:`ConditionResult.recalls`.
    classes: list[str] = field(default_factory=list)
    #: Validation accuracy of every reference-classifier setting tried, and the one chosen.
    classifier_settings: dict[str, float] = field(default_factory=dict)
    classifier_setting: str = "default"
    #: A standard baseline trained on the same real items: {"name": ..., "accuracy": test accuracy}.
    baseline: dict[str, Any] = field(default_factory=dict)

    def per_seed_difference(self, a: str, b: str, *, balanced: bool = False) -> np.ndarray:
        """accuracy(a) − accuracy(b) (or of balanced accuracy) per seed: ndarray of shape (n_seeds,)."""
        what = "balanced" if balanced else "accuracies"
        return np.array(getattr(self.conditions[a], what)) - np.array(getattr(self.conditions[b], what))

    def paired_difference(self, a: str, b: str, *, balanced: bool = False) -> tuple[float, float]:
        """Mean and std over seeds of accuracy(a) − accuracy(b) (or of balanced accuracy), paired by seed."""
        d = self.per_seed_difference(a, b, balanced=balanced)
        return float(d.mean()), float(d.std(ddof=1)) if len(d) > 1 else 0.0

    def validation_warnings(self) -> list[str]:
        """One line per augmented condition whose best setting scored below what it adds to on
        validation (real only; for real+classical+screened, real+classical): the evidence, before any
        test item is seen, that the augmentation does not help this data."""
        best = {name: max(scores.values()) for name, scores in self.validation.items() if scores}
        n = self.sizes.get("of which validation")
        on = f"on {n} validation items" if n else "on validation"
        out = []
        for name, score in best.items():
            base = "real+classical" if name == "real+classical+screened" else "real"
            if name != "real" and base in best and score < best[base]:
                out.append(f"{name}: its best setting scored {100 * score:.2f} {on}, below {base} "
                           f"({100 * best[base]:.2f}); this augmentation did not help on validation data"
                           + (" (with so few validation items, a hint rather than a verdict)." if n and n < 200 else "."))
        return out

    def to_dict(self) -> dict:
        return {
            "classifier": self.classifier,
            "seeds": list(self.seeds),
            "sizes": self.sizes,
            "seconds": round(self.seconds, 1),
            "selection_seeds": self.selection_seeds,
            "conditions": {k: {"setting": c.setting, "accuracies": c.accuracies, "mean": c.mean, "std": c.std,
                               "balanced_accuracies": c.balanced, "balanced_mean": c.balanced_mean,
                               "recall_per_class": dict(zip(self.classes, c.recall_mean)),
                               "recalls_per_seed": c.recalls}
                           for k, c in self.conditions.items()},
            "validation": self.validation,
            "validation_warnings": self.validation_warnings(),
            "classifier_setting": self.classifier_setting,
            "classifier_settings": self.classifier_settings,
            "baseline": self.baseline,
        }

    def to_markdown(self) -> str:
        letters = dict(zip(CONDITIONS, "abcdef"))
        lines = [
            f"Reference classifier: {self.classifier}. Seeds: {', '.join(map(str, self.seeds))}. "
            + ", ".join(f"{k}: {v}" for k, v in self.sizes.items()) + ". "
            + f"Settings chosen by the mean validation accuracy of {self.selection_seeds} classifier seed(s).",
            "",
            "| condition | setting (chosen on validation) | test accuracy, mean ± std | per seed | paired Δ vs (a) "
            "| balanced accuracy, mean |",
            "|---|---|---|---|---|---|",
        ]
        for key, c in self.conditions.items():
            label = f"({letters[key]}) {key}" if key in letters else key
            spread = len(c.accuracies) > 1  # one seed has no spread: "± 0.00" would claim one
            if key != "real" and "real" in self.conditions and key != "synthetic-only":
                m, s = self.paired_difference(key, "real")
                delta = f"{100 * m:+.2f}" + (f" ± {100 * s:.2f}" if spread else "")
            else:
                delta = ""
            per = " ".join(f"{100 * a:.2f}" for a in c.accuracies)
            lines.append(f"| {label} | {c.setting} | {100 * c.mean:.2f}" + (f" ± {100 * c.std:.2f}" if spread else " (one seed)")
                         + f" | {per} | {delta} | {100 * c.balanced_mean:.2f} |")
        if "real+screened" in self.conditions and "real+dose" not in self.conditions:
            lines += ["", "(f) real+dose is not run: no synthetic item was recommended (with a \"don't use\" verdict "
                          "samples/ is empty), so there is nothing to add as a user would."]
        with_recalls = {k: c for k, c in self.conditions.items() if c.recalls}
        if self.classes and with_recalls:
            lines += ["", "Recall per class on the test split, mean over seeds (where a condition gains or loses):", "",
                      "| condition | " + " | ".join(map(str, self.classes)) + " |", "|---|" + "---|" * len(self.classes)]
            for key, c in with_recalls.items():
                label = f"({letters[key]}) {key}" if key in letters else key
                lines.append(f"| {label} | " + " | ".join("-" if np.isnan(r) else f"{100 * r:.1f}" for r in c.recall_mean) + " |")
        if self.classifier_settings:
            lines += ["", f"Reference classifier setting chosen on validation: {self.classifier_setting} (validation "
                      "accuracy: " + ", ".join(f"{k} {100 * v:.2f} %" for k, v in self.classifier_settings.items()) + ")."]
        if self.baseline and "real" in self.conditions:
            gap = 100 * (self.conditions["real"].mean - self.baseline["accuracy"])
            lines += ["", f"Standard baseline on the same real items: {self.baseline['name']}, "
                      f"{100 * self.baseline['accuracy']:.2f} % test accuracy; (a) real only is {gap:+.2f} points from it"
                      + (" — a reference below a plain baseline makes every lift over (a) suspect." if gap < 0 else ".")]
        warnings = self.validation_warnings()
        if warnings:
            lines += ["", "Validation warnings:", *(f"- {w}" for w in warnings)]
        return "\n".join(lines)


# --------------------------------------------------------------------------- training
def train_classifier(
    task: EvalTask,
    n_classes: int,
    real: tuple[torch.Tensor, torch.Tensor],
    *,
    synthetic: tuple[torch.Tensor, torch.Tensor] | None = None,
    share: float = 0.0,
    augment: Augment | None = None,
    seed: int = 0,
    device: torch.device | str = "cpu",
) -> nn.Module:
    """Train the reference classifier. Each batch holds ``round(share·B)`` synthetic items (when
    given) and real items for the rest; ``augment`` applies to the whole batch."""
    device = resolve_device(device)
    with seeded(seed, "classifier-init"):
        model = task.make_classifier(n_classes).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=task.lr, weight_decay=task.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=task.steps)
    B = task.batch_size
    n_syn = int(round(share * B)) if synthetic is not None and len(synthetic[0]) else 0
    x_real, y_real = real
    if len(x_real) == 0:
        n_syn = B
    average_from = task.steps - int(round(task.average_last * task.steps))
    averaged = AveragedModel(model, use_buffers=True) if average_from < task.steps else None
    model.train()
    with torch.random.fork_rng(devices=[]):
        for step in range(task.steps):
            rng = torch.Generator().manual_seed(derive_seed(seed, "classifier-step", step))
            torch.manual_seed(derive_seed(seed, "classifier-global", step))
            parts_x, parts_y = [], []
            if B - n_syn > 0:
                idx = torch.randint(len(x_real), (B - n_syn,), generator=rng)
                parts_x.append(x_real[idx]), parts_y.append(y_real[idx])
            if n_syn:
                idx = torch.randint(len(synthetic[0]), (n_syn,), generator=rng)  # type: ignore[index]
                parts_x.append(synthetic[0][idx]), parts_y.append(synthetic[1][idx])  # type: ignore[index]
            xb, yb = torch.cat(parts_x), torch.cat(parts_y)
            if augment is not None:
                xb = augment(xb, rng)
            with autocast(device):
                loss = F.cross_entropy(model(xb.to(device)).float(), yb.to(device))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            if averaged is not None and step >= average_from:
                averaged.update_parameters(model)
    return (averaged.module if averaged is not None else model).eval()


@torch.no_grad()
def predict(model: nn.Module, x: torch.Tensor, *, batch_size: int = 512) -> torch.Tensor:
    """Top-1 class indices of ``model`` on prepared items ``x`` (on the CPU)."""
    device = next(model.parameters()).device
    out = []
    for s in range(0, len(x), batch_size):
        with autocast(device):
            out.append(model(x[s : s + batch_size].to(device)).float().argmax(1).cpu())
    return torch.cat(out) if out else torch.zeros(0, dtype=torch.long)


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, batch_size: int = 512) -> float:
    """Top-1 accuracy of ``model`` on prepared items ``x`` with class indices ``y``."""
    return float((predict(model, x, batch_size=batch_size) == y).sum()) / max(1, len(x))


class ReferenceCheck:
    """A :func:`~imagina.core.dose.recommend_dose` ``check``: the reference classifier (a small
    neural network, another model family than the dose's probe) trained on one split's real items
    alone and with synthetic items at ``share`` of each batch, both scored on the split's held-out
    real items. The task learns its inputs (sizes, vocabulary) from the split's real training items
    only; :attr:`name` says which network it is."""

    def __init__(self, task: EvalTask, *, device: torch.device | str = "cpu") -> None:
        self.task, self.device = task, device
        self.name = task.describe()

    def __call__(self, train_X: Any, train_y: np.ndarray, syn_X: Any, syn_y: np.ndarray, test_X: Any,
                 test_y: np.ndarray, share: float, seed: int) -> tuple[float, float]:
        """(accuracy without, accuracy with) the synthetic items, on ``test_X``."""
        t = copy.copy(self.task).fit(train_X, train_y)
        lookup = {c: i for i, c in enumerate(np.unique(train_y).tolist())}

        def codes(y: np.ndarray) -> torch.Tensor:
            return torch.as_tensor([lookup[v] for v in np.asarray(y).tolist()], dtype=torch.long)

        real = (t.prepare(train_X), codes(train_y))
        test = (t.prepare(test_X), codes(test_y))
        syn = (t.prepare(syn_X), codes(syn_y)) if len(syn_y) else None
        alone = train_classifier(t, len(lookup), real, seed=seed, device=self.device)
        mixed = train_classifier(t, len(lookup), real, synthetic=syn, share=share if syn else 0.0, seed=seed,
                                 device=self.device)
        return accuracy(alone, *test), accuracy(mixed, *test)


def class_recalls(model: nn.Module, x: torch.Tensor, y: torch.Tensor, n_classes: int) -> tuple[float, float, list[float]]:
    """Of ``model`` on prepared items ``x`` with class indices ``y``: (accuracy, balanced accuracy = the
    mean recall over the classes ``y`` holds, the recall of each of ``n_classes`` classes, NaN where
    ``y`` has none)."""
    from sklearn.metrics import confusion_matrix

    pred = predict(model, x).numpy()
    cm = confusion_matrix(y.numpy(), pred, labels=np.arange(n_classes))
    support = cm.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        recalls = np.where(support > 0, np.diag(cm) / support, np.nan)
    return float(np.trace(cm) / max(1, cm.sum())), float(np.nanmean(recalls)), recalls.tolist()


def stratified_split(y: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``(train, val)``: about ``fraction`` of every class (at least one) goes to val."""
    rng = numpy_rng(seed, "val-split")
    tr, va = [], []
    for c in np.unique(y):
        rows = rng.permutation(np.flatnonzero(y == c))
        k = max(1, int(round(fraction * len(rows)))) if len(rows) > 1 else 0
        va.extend(rows[:k].tolist())
        tr.extend(rows[k:].tolist())
    return np.sort(np.array(tr, dtype=np.int64)), np.sort(np.array(va, dtype=np.int64))


def holdout(data: LabeledData, fraction: float = 0.2, seed: int = 0) -> tuple[LabeledData, LabeledData]:
    """``(rest, validation)``: a stratified ``fraction`` of ``data`` held out for choosing settings
    (at least one item of every class). Fit the generator on ``rest`` only (see :func:`evaluate`)."""
    check_float("fraction", fraction, minimum=0.05, maximum=0.5)
    tr, va = stratified_split(np.asarray(data.y), fraction, seed)
    return data.subset(tr), data.subset(va)


def match_counts(y_ref: np.ndarray, y_pool: np.ndarray, seed: int) -> np.ndarray:
    """Indices into ``y_pool`` with as many items of every class as ``y_ref`` has (or all there are)."""
    rng = numpy_rng(seed, "match-counts")
    out = []
    for c in np.unique(y_ref):
        rows = np.flatnonzero(y_pool == c)
        out.extend(rng.permutation(rows)[: int((y_ref == c).sum())].tolist())
    return np.sort(np.array(out, dtype=np.int64))


# --------------------------------------------------------------------------- protocol
def evaluate(
    task: EvalTask,
    train: LabeledData,
    test: LabeledData,
    *,
    validation: LabeledData | None = None,
    screened: LabeledData | None = None,
    unscreened: LabeledData | None = None,
    dose: LabeledData | None = None,
    baseline: Any = None,
    config: EvalConfig | None = None,
    progress: bool = True,
) -> EvalReport:
    """Run conditions (a)–(f) (those the inputs allow) and the synthetic-only score.

    Settings are chosen by training on ``train`` and scoring on ``validation`` (None: a stratified
    ``val_fraction`` of ``train``); the final classifiers train on ``train`` + ``validation``. First
    the reference classifier's own setting is chosen the same way (``tune_classifier``), then every
    condition uses it. ``dose`` is the recommended synthetic set (condition (f)); ``baseline`` an
    unfitted scikit-learn transformer (the modality's probe features) under a logistic regression
    whose regularisation is chosen by cross-validation: a standard model on the same real items,
    reported beside real-only accuracy.
    """
    cfg = config or EvalConfig()
    device = resolve_device(cfg.device)
    start = time.perf_counter()
    n_fit = len(train)
    if validation is not None:
        if len(validation) == 0:
            raise InvalidInputError("`validation` is empty.")
        train = LabeledData(concat([train.X, validation.X]), np.concatenate([train.y, validation.y]))
    if cfg.classifier_steps is not None:  # a copy: the caller's task keeps its own steps
        task = copy.copy(task)
        task.steps = cfg.classifier_steps
    task.fit(train.X, train.y)
    classes = np.unique(train.y)
    lookup = {c: i for i, c in enumerate(classes.tolist())}

    def encode(data: LabeledData, what: str) -> tuple[torch.Tensor, torch.Tensor]:
        missing = set(np.unique(data.y).tolist()) - set(lookup)
        if missing:
            raise InvalidInputError(f"{what} holds labels absent from the training data: {sorted(missing)[:5]}.")
        return task.prepare(data.X), torch.as_tensor([lookup[v] for v in data.y.tolist()], dtype=torch.long)

    real = encode(train, "the training data")
    test_t = encode(test, "the test data")
    y_np = real[1].numpy()
    syn = encode(screened, "the screened set") if screened is not None and len(screened) else None
    if syn is None and screened is not None:
        logger.warning("the screen kept no synthetic items: conditions (c), (d) and (e) are skipped")
    if unscreened is not None and syn is not None and len(unscreened):
        take = match_counts(screened.y, unscreened.y, cfg.selection_seed)
        uns = encode(unscreened.subset(take), "the unscreened set")
    else:
        uns = None

    if validation is not None:
        tr, va = np.arange(n_fit), np.arange(n_fit, len(train))
    else:
        tr, va = stratified_split(y_np, cfg.val_fraction, cfg.selection_seed)
    real_tr = (real[0][tr], real[1][tr])
    real_va = (real[0][va], real[1][va])
    n_classes = len(classes)
    setting_scores: dict[str, float] = {}
    chosen_setting = "default"
    if cfg.tune_classifier:
        candidates = task.settings()
        for name, attrs in candidates.items():
            trial = copy.copy(task)
            for k, v in attrs.items():
                setattr(trial, k, v)
            setting_scores[name] = float(np.mean([accuracy(train_classifier(trial, n_classes, real_tr, seed=cfg.selection_seed + r,
                                                                             device=device), *real_va)
                                                  for r in range(cfg.selection_seeds)]))
        chosen_setting = max(setting_scores, key=setting_scores.get)  # the first (default) wins ties
        task = copy.copy(task)
        for k, v in candidates[chosen_setting].items():
            setattr(task, k, v)
        logger.info("reference classifier: %s (validation %s)", chosen_setting,
                    ", ".join(f"{k} {100 * v:.1f}" for k, v in setting_scores.items()))
    dose_t = encode(dose, "the recommended set") if dose is not None and len(dose) else None
    augs = task.augmentations(real_tr[0], y_np[tr])
    full_augs = task.augmentations(real[0], y_np)
    plan: list[tuple[str, dict]] = [("real", {})]
    if augs:
        plan.append(("real+classical", {"augment": True}))
    if syn is not None:
        plan.append(("real+screened", {"synthetic": "screened"}))
    if uns is not None:
        plan.append(("real+unscreened", {"synthetic": "unscreened"}))
    if augs and syn is not None:
        plan.append(("real+classical+screened", {"augment": True, "synthetic": "screened"}))
    if dose_t is not None:  # as a user adds samples/: the share is what the counts make it
        plan.append(("real+dose", {"synthetic": "dose", "share": len(dose_t[0]) / (len(dose_t[0]) + len(real[0]))}))
    pools = {"screened": syn, "unscreened": uns, "dose": dose_t}

    def options(name: str, opts: dict) -> list[tuple[str | None, float]]:
        if name == "real+classical+screened":  # (b) comes first in the plan; (e) adds synthetic items to its setting
            aug_names = [chosen["real+classical"][0]]
        else:
            aug_names = list(augs) if opts.get("augment") else [None]
        shares = [opts["share"]] if "share" in opts else list(cfg.synthetic_shares) if opts.get("synthetic") else [0.0]
        return [(a, s) for a in aug_names for s in shares]

    n_options = sum((len(augs) if o.get("augment") and n != "real+classical+screened" else 1)
                    * (len(cfg.synthetic_shares) if o.get("synthetic") and "share" not in o else 1) for n, o in plan)
    n_runs = n_options * cfg.selection_seeds + len(plan) * len(cfg.seeds) + (len(cfg.seeds) if syn else 0)
    bar = tqdm(total=n_runs, desc="evaluate", disable=not progress)
    validation: dict[str, dict[str, float]] = {}
    chosen: dict[str, tuple[str | None, float]] = {}
    for name, opts in plan:
        scores: dict[str, float] = {}
        best: tuple[float, str | None, float] = (-1.0, None, 0.0)
        for aug_name, share in options(name, opts):
            accs = []
            for r in range(cfg.selection_seeds):
                model = train_classifier(
                    task, n_classes, real_tr, synthetic=pools[opts["synthetic"]] if opts.get("synthetic") else None,
                    share=share, augment=augs[aug_name] if aug_name else None, seed=cfg.selection_seed + r, device=device,
                )
                accs.append(accuracy(model, *real_va))
                bar.update()
            acc = float(np.mean(accs))
            key = ", ".join(p for p in (aug_name, f"share {share:g}" if opts.get("synthetic") else None) if p) or "-"
            scores[key] = acc
            if acc > best[0]:
                best = (acc, aug_name, share)
        validation[name] = scores
        chosen[name] = (best[1], best[2])

    results: dict[str, ConditionResult] = {}
    for name, opts in plan:
        aug_name, share = chosen[name]
        setting = ", ".join(p for p in (aug_name, f"synthetic share {share:g}" if opts.get("synthetic") else None) if p) or "-"
        per_seed = []
        for seed in cfg.seeds:
            model = train_classifier(
                task, n_classes, real, synthetic=pools[opts["synthetic"]] if opts.get("synthetic") else None,
                share=share, augment=full_augs[aug_name] if aug_name else None, seed=seed, device=device,
            )
            per_seed.append(class_recalls(model, *test_t, n_classes))
            bar.update()
        results[name] = ConditionResult(name, setting, *(list(v) for v in zip(*per_seed)))
    if syn is not None:
        empty = (real[0][:0], real[1][:0])
        per_seed = []
        for seed in cfg.seeds:
            model = train_classifier(task, n_classes, empty, synthetic=syn, share=1.0, seed=seed, device=device)
            per_seed.append(class_recalls(model, *test_t, n_classes))
            bar.update()
        results["synthetic-only"] = ConditionResult("synthetic-only", "train on screened synthetic, test on real",
                                                     *(list(v) for v in zip(*per_seed)))
    bar.close()
    sizes = {"real train": len(train), "of which validation": len(va), "test": len(test)}
    if syn is not None:
        sizes["screened synthetic"] = len(syn[0])
    if uns is not None:
        sizes["unscreened synthetic"] = len(uns[0])
    if dose_t is not None:
        sizes["recommended synthetic"] = len(dose_t[0])
    report = EvalReport(results, tuple(cfg.seeds), validation, task.describe(), sizes, time.perf_counter() - start,
                        cfg.selection_seeds, [str(c) for c in classes], setting_scores, chosen_setting,
                        standard_baseline(baseline, train, test) if baseline is not None else {})
    for line in report.validation_warnings():
        logger.warning(line)
    return report



def standard_baseline(features: Any, train: LabeledData, test: LabeledData) -> dict[str, Any]:
    """Test accuracy of ``features`` + a logistic regression whose C (10⁻² … 10²) is chosen by 5-fold
    cross-validation on ``train``: a plain, well-tuned model that real-only accuracy is read against."""
    import warnings

    from sklearn.base import clone
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV, StratifiedKFold
    from sklearn.pipeline import make_pipeline

    from imagina.core.valuation import stratified_subsample

    folds = max(2, min(5, int(np.unique(train.y, return_counts=True)[1].min())))
    families = dict(features) if isinstance(features, dict) else {type(features).__name__: features}
    search = train.subset(stratified_subsample(train.y, 2000, 0))  # the setting is chosen on at most 2,000 items
    fitted = {}
    for family, f in families.items():
        grid = GridSearchCV(make_pipeline(clone(f), LogisticRegression(max_iter=2000)),
                            {"logisticregression__C": [0.01, 0.1, 1.0, 10.0, 100.0]},
                            cv=StratifiedKFold(folds, shuffle=True, random_state=0), refit=False)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fitted[family] = grid.fit(search.X, search.y)
    family = max(fitted, key=lambda k: fitted[k].best_score_)
    c = fitted[family].best_params_["logisticregression__C"]
    model = make_pipeline(clone(families[family]), LogisticRegression(C=c, max_iter=2000))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(train.X, train.y)
    name = f"logistic regression (C={c:g}, chosen by {folds}-fold cross-validation) on {family} features"
    return {"name": name, "accuracy": float((model.predict(test.X) == np.asarray(test.y)).mean())}


# --------------------------------------------------------------------------- the proof, end to end
class Experiment:
    """The proof in one object: hold out validation items, fit the augmenter on the rest, augment,
    then :func:`evaluate` every condition on the held-out real test set.

    Parameters
    ----------
    modality : str or Modality
    augment_config : AugmentConfig, optional
        The augmenter's settings (its ``seed`` also draws the validation split).
    eval_config : EvalConfig, optional
        The evaluation's settings (``val_fraction``, seeds, ``classifier_steps``...).
    generator_options : dict, optional
        Extra generator settings, as for :class:`~imagina.core.pipeline.Augmenter`.
    progress : bool
        Show progress bars.

    Examples
    --------
    >>> from imagina.core.evaluation import EvalConfig, Experiment        # doctest: +SKIP
    >>> from imagina.core.pipeline import AugmentConfig                    # doctest: +SKIP
    >>> exp = Experiment("image", AugmentConfig(steps=300), EvalConfig(seeds=(0, 1))).fit(train, test)  # doctest: +SKIP
    >>> result, report = exp.evaluate()                                    # doctest: +SKIP

    :func:`run` does both calls. ``fit`` and ``evaluate`` are separate so that under ``torchrun``
    every process can train while rank 0 alone generates and evaluates.
    """

    def __init__(self, modality: Any, augment_config: Any = None, eval_config: EvalConfig | None = None, *,
                 generator_options: dict | None = None, progress: bool = True) -> None:
        check_instance("eval_config", eval_config, EvalConfig)
        self.modality = modality
        self.augment_config = augment_config
        self.eval_config = eval_config or EvalConfig()
        self.generator_options = generator_options
        self.progress = progress

    def fit(self, data: LabeledData, test: LabeledData, *, checkpoint_dir: Any = None) -> Experiment:
        """``data`` and ``test`` are :class:`LabeledData` or ``(X, y)`` pairs; ``test`` takes ``data``'s
        format where a standard conversion exists (grey ↔ RGB images). Check ``test`` against ``data``
        (before anything trains), hold out ``val_fraction`` of
        ``data`` and fit the augmenter on the rest. Sets ``augmenter_``, ``train_``, ``validation_``,
        ``test_``; returns ``self``."""
        from imagina.core.modality import as_labeled
        from imagina.core.pipeline import Augmenter

        augmenter = Augmenter(self.modality, self.augment_config, generator_options=self.generator_options,
                              progress=self.progress)
        modality = augmenter.modality
        data = modality.standard(as_labeled(data, "data"))
        # the test items in the training items' format (grey <-> RGB), as `imagina evaluate --test` has them
        test = modality.like(modality.standard(as_labeled(test, "test")), data, "test")
        check_test_labels(data, test)
        self.train_, self.validation_ = holdout(data, self.eval_config.val_fraction, augmenter.config.seed)
        logger.info("evaluate: the generator sees %d items; %d are held out to choose settings",
                    len(self.train_), len(self.validation_))
        self.augmenter_ = augmenter.fit(self.train_, checkpoint_dir=checkpoint_dir)
        self.test_ = test
        return self

    def evaluate(self) -> tuple[Any, EvalReport]:
        """Augment, then run every condition: ``(AugmentResult, EvalReport)``."""
        if not hasattr(self, "augmenter_"):
            from imagina.core.errors import NotFittedError

            raise NotFittedError("This Experiment is not fitted yet; call `fit` before using it.")
        result = self.augmenter_.augment()
        modality = self.augmenter_.modality
        report = evaluate(modality.evaluation_task(meta=self.train_.meta), self.train_, self.test_,
                          validation=self.validation_, screened=result.kept(), unscreened=result.unscreened(),
                          dose=result.recommended() if result.recommendation is not None else None,
                          baseline=modality.probe_features(self.train_.meta), config=self.eval_config,
                          progress=self.progress)
        logger.info("evaluation:\n%s", report.to_markdown())
        return result, report


def run(modality: Any, data: LabeledData, test: LabeledData, *, augment_config: Any = None,
        eval_config: EvalConfig | None = None, generator_options: dict | None = None, progress: bool = True,
        checkpoint_dir: Any = None) -> tuple[Any, EvalReport]:
    """Holdout → fit → augment → evaluate in one call: ``(AugmentResult, EvalReport)``.

    ``data`` is the real training data (the generator sees all of it but a validation share),
    ``test`` the held-out real test data. ``result.export(out, evaluation=report)`` writes both.
    See :class:`Experiment`.
    """
    experiment = Experiment(modality, augment_config, eval_config, generator_options=generator_options, progress=progress)
    return experiment.fit(data, test, checkpoint_dir=checkpoint_dir).evaluate()


def smoke_setup(modality: Any, **augment: Any) -> tuple[Any, Any, EvalConfig]:
    """What ``--smoke`` runs, for scripts that call the API: ``(modality, AugmentConfig, EvalConfig)``
    of a setup check that takes seconds: 2 generator, embedder and classifier steps, 4 kept per class,
    one seed, a 2-fold dose on at most 200 real items. ``modality`` (a name or a Modality) comes back as
    a copy with the 2-step embedder; ``augment`` overrides AugmentConfig fields. The figures of such a
    run mean nothing: it checks data, paths and setup before the real run.
    """
    from imagina.core.cli import SMOKE, SMOKE_DOSE
    from imagina.core.dose import DoseConfig
    from imagina.core.modality import get_modality
    from imagina.core.pipeline import AugmentConfig

    modality = copy.copy(get_modality(modality) if isinstance(modality, str) else modality)
    modality.embedder_steps = SMOKE["embedder_steps"]
    fields = {k: SMOKE[k] for k in ("steps", "per_class", "embedder")} | {"dose": DoseConfig.from_options(SMOKE_DOSE)}
    evaluation = EvalConfig(seeds=SMOKE["seeds"], selection_seeds=SMOKE["selection_seeds"],
                            classifier_steps=SMOKE["classifier_steps"])
    return modality, AugmentConfig(**(fields | augment)), evaluation


def check_test_labels(train: LabeledData, test: LabeledData) -> None:
    """Refuse a test set holding classes the training data lacks (before anything trains)."""
    known = set(np.asarray(train.y).tolist())
    extra = sorted(set(np.asarray(test.y).tolist()) - known, key=str)
    if extra:
        raise InvalidInputError(f"the test data holds {len(extra)} class(es) that the training data lacks: "
                                f"{', '.join(map(repr, extra[:5]))}.")
