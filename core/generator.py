"""The generator interface, the saved-model directory format and the model registry.

A saved model is a directory::

    config.json          format_version, model (registry name), config, classes, versions
    model.safetensors    weights (the EMA generator for GANs)
    preprocessor.json    the fitted, invertible preprocessing state
    (extra files)        e.g. tokenizer.json for text

Nothing in it is unpickled: weights load through safetensors, everything else is JSON.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from abc import ABC, abstractmethod
from dataclasses import asdict, fields, replace
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from imagina.core.errors import ImaginaError, InvalidInputError, NotFittedError, check_fields, check_int
from imagina.core.export import temporary_dir
from imagina.core.registry import generator_class, generator_modality

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
PREPROCESSOR_NAME = "preprocessor.json"
#: The user's own file format (an audio clip's rate and level, an image's mode), where a model keeps it.
SOURCE_FORMAT_NAME = "source_format.json"

def seeded_config(config: Any, config_class: type, seed: int | None) -> Any:
    """``config`` (None: ``config_class()``) with ``seed`` in its ``seed`` field when given."""
    config = config if config is not None else config_class()
    if not isinstance(config, config_class):  # a dict of settings would fail later, inside training
        raise InvalidInputError(f"`config` must be a {config_class.__name__} (e.g. {config_class.__name__}(steps=500)); "
                                f"got {type(config).__name__}.")
    if seed is not None:
        config = replace(config, seed=check_int("seed", seed, minimum=0))
    return config


def make_config(config_class: type, **options: Any) -> Any:
    """``config_class(**options)``, with a clear error naming an option the class does not have."""
    check_fields(config_class, options, unknown="unknown generator option", known=f"{config_class.__name__} has")
    try:
        return config_class(**options)
    except (TypeError, ValueError) as err:
        raise InvalidInputError(f"bad generator option: {err}") from None


class Generator(ABC):
    """A class-conditional generative model with a scikit-learn style contract.

    ``__init__(config=None, *, device="auto", seed=None)`` stores its arguments; the seed lives in
    ``config.seed`` (a ``seed`` given here replaces it), so a saved model keeps it. ``fit(X, y)``
    validates, trains and returns ``self`` (setting ``classes_`` and ``history_``); ``sample(n,
    labels, seed=None)`` returns ``(X, y)`` in the input's own form (uint8 images, strings, float32
    waveforms) and draws from ``config.seed`` when ``seed`` is None, so it repeats; ``save(dir)`` /
    ``load(dir)`` round-trip exactly.
    """

    #: The class's name in :mod:`imagina.core.registry` (and in a saved ``config.json``).
    registry_name: ClassVar[str]
    #: The frozen config dataclass.
    config_class: ClassVar[type]

    classes_: np.ndarray | None = None
    history_: list[dict[str, float]] | None = None
    #: The frozen config (a ``config_class`` instance) with a ``seed`` field.
    config: Any

    @abstractmethod
    def fit(self, X: Any, y: Any, *, progress: bool = True, checkpoint_dir: str | os.PathLike | None = None) -> Generator:
        """Train on items ``X`` with labels ``y``; returns ``self``."""

    @abstractmethod
    def sample(self, n: int, labels: Any = None, *, seed: int | None = None) -> tuple[Any, np.ndarray]:
        """Draw ``n`` items. ``labels`` is one class, an array of ``n`` classes, or None (classes in turn)."""

    @abstractmethod
    def _weights(self) -> dict[str, torch.Tensor]:
        """The tensors to save."""

    @abstractmethod
    def _preprocessor_state(self) -> dict:
        """The fitted preprocessing state (JSON)."""

    @abstractmethod
    def _restore(self, weights: dict[str, torch.Tensor], preprocessor: dict, directory: Path) -> None:
        """Rebuild fitted state from what :meth:`save` wrote."""

    def diagnostics(self) -> dict[str, float]:
        """The fitted model's own end-of-training diagnostics by name (text: KL per token, active
        units, collapsed as 0/1), for the run record and the report; empty by default."""
        return {}

    def to_model_space(self, X: Any) -> np.ndarray | None:
        """Items ``X`` as the generator sees them (pixels in [-1, 1], normalised spectrograms):
        ndarray of shape (n, ...), float32, where diversity and mode collapse show most plainly.
        None where the model has no such array space (the default)."""
        return None

    def log_likelihood(self, X: Any, labels: Any) -> np.ndarray | None:
        """A fluency score per item under the model (text: an ELBO estimate of log p(x | y) per token),
        ndarray of shape (n,), float64, higher is more likely. None where the model offers none (the
        default)."""
        return None

    def data_meta(self) -> dict:
        """What the modality needs to know to write or embed this model's samples (an audio sample
        rate), as in :attr:`~imagina.core.modality.LabeledData.meta`; empty by default."""
        return {}

    def _extra_files(self, directory: Path) -> None:  # noqa: B027 - optional hook
        """Write modality-specific files (e.g. a tokenizer) into ``directory``."""

    # -------------------------------------------------------------- shared helpers
    def _check_fitted(self) -> None:
        if self.classes_ is None:
            raise NotFittedError(f"This {type(self).__name__} is not fitted yet; call `fit` before using it.")

    def resolve_labels(self, n: int, labels: Any) -> np.ndarray:
        """Class indices for ``n`` samples: classes in turn (None), one class, or one label per sample."""
        self._check_fitted()
        classes = list(self.classes_.tolist())  # type: ignore[union-attr]
        if labels is None:
            return np.arange(n) % len(classes)
        arr = np.asarray(labels)
        if arr.ndim == 0:
            arr = np.full(n, arr.item(), dtype=arr.dtype)
        if len(arr) != n:
            raise InvalidInputError(f"`labels` must hold one label per sample ({n}); got {len(arr)}.")
        lookup = {c: i for i, c in enumerate(classes)}
        try:
            return np.array([lookup[v] for v in arr.tolist()], dtype=np.int64)
        except KeyError as exc:
            raise InvalidInputError(f"`labels` holds {exc.args[0]!r}, not a class of this model; classes are {classes}.") from None

    # -------------------------------------------------------------- persistence
    def save(self, path: str | os.PathLike) -> None:
        """Write the model directory atomically (a temporary sibling renamed into place)."""
        self._check_fitted()
        from safetensors.torch import save_file

        path = Path(path)
        if path.exists() and not path.is_dir():
            raise InvalidInputError(f"model directory {path} is a file; choose a folder path.")
        if path.exists() and any(path.iterdir()):
            raise InvalidInputError(f"model directory {path} exists and is not empty; choose another path.")
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = temporary_dir(path.parent, path.name)
        try:
            weights = {k: v.detach().cpu().contiguous() for k, v in self._weights().items()}
            save_file(weights, str(tmp / WEIGHTS_NAME))
            config = {
                "format_version": FORMAT_VERSION,
                "model": self.registry_name,
                "config": asdict(self.config),  # type: ignore[attr-defined]
                "classes": self.classes_.tolist(),  # type: ignore[union-attr]
                "versions": package_versions(),
            }
            (tmp / CONFIG_NAME).write_text(json.dumps(config, indent=2), encoding="utf-8")
            (tmp / PREPROCESSOR_NAME).write_text(json.dumps(self._preprocessor_state(), indent=2), encoding="utf-8")
            self._extra_files(tmp)
            if path.exists():
                path.rmdir()
            os.replace(tmp, path)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    @classmethod
    def load(cls, path: str | os.PathLike, *, device: str = "auto") -> Generator:
        """Load a directory written by :meth:`save` (of this class or, via :func:`load_model`, any)."""
        from safetensors.torch import load_file

        path = Path(path)
        config = read_model_config(path)
        if config["model"] != cls.registry_name:
            raise InvalidInputError(f"{path} holds a {config['model']}, not a {cls.registry_name}; use imagina.core.generator.load_model.")
        known = {f.name for f in fields(cls.config_class)}
        try:
            model_config = cls.config_class(**{k: v for k, v in config["config"].items() if k in known})
            obj = cls(model_config, device=device)  # type: ignore[call-arg]
            obj.classes_ = np.asarray(config["classes"])
            preprocessor = json.loads((path / PREPROCESSOR_NAME).read_text(encoding="utf-8"))
            obj._restore(load_file(str(path / WEIGHTS_NAME)), preprocessor, path)
        except ImaginaError as exc:
            raise InvalidInputError(f"{path}: {exc}") from None
        except Exception as exc:  # noqa: BLE001 - a damaged or hand-edited directory fails in many libraries' ways
            detail = (str(exc).strip().splitlines() or [""])[0][:160]
            raise InvalidInputError(f"model directory {path} is damaged or its files do not match each other "
                                    f"({exc.__class__.__name__}: {detail}); save the model again.") from None
        return obj


def read_model_config(path: Path) -> dict:
    """Read and check ``config.json`` of a model directory; one-line errors for every failure."""
    if not path.is_dir():
        raise InvalidInputError(f"model directory {path} does not exist.")
    cfg_path = path / CONFIG_NAME
    if not cfg_path.is_file() or not (path / WEIGHTS_NAME).is_file():
        raise InvalidInputError(f"{path} is not an imagina model directory (needs {CONFIG_NAME} and {WEIGHTS_NAME}).")
    try:
        config = json.loads(cfg_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidInputError(f"{cfg_path} is not valid JSON ({exc}).") from None
    if not isinstance(config, dict):
        raise InvalidInputError(f"{cfg_path}: expected a JSON object; got a JSON {type(config).__name__}.")
    if config.get("format_version") != FORMAT_VERSION or generator_modality(str(config.get("model"))) is None:
        raise InvalidInputError(f"{cfg_path}: unknown format_version or model {config.get('model')!r}.")
    missing = [k for k, kind in (("config", dict), ("classes", list)) if not isinstance(config.get(k), kind)]
    if missing:
        raise InvalidInputError(f"{cfg_path}: {' and '.join(repr(k) for k in missing)} missing or of the wrong type.")
    return config


def load_model(path: str | os.PathLike, *, device: str = "auto") -> Generator:
    """Load any saved imagina generator; the class is resolved through :mod:`imagina.core.registry`."""
    config = read_model_config(Path(path))
    return generator_class(config["model"]).load(path, device=device)


def package_versions() -> dict[str, str]:
    """Versions of imagina and the libraries whose behaviour shapes a run."""
    from importlib.metadata import PackageNotFoundError, version

    import imagina

    out = {"imagina": imagina.__version__}
    for name in ("torch", "torchvision", "torchaudio", "numpy", "scikit-learn", "transformers", "sentence-transformers", "librosa"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            pass
    return out
