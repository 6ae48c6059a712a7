"""The registry of modalities and their generator classes: one small explicit table.

A modality registers itself with :func:`register_modality`: its name, the module that exports its
:class:`~imagina.core.modality.Modality` object as ``MODALITY``, and the generator classes it
saves (registry name -> defining module). The three built-in modalities register below, through
the same call a fourth one uses. The table feeds the CLI's ``choices``, :func:`get_modality` and
:func:`~imagina.core.generator.load_model`; a model directory's ``config.json`` names its class,
which is looked up here and never imported from a path found in the file.

This module imports neither torch nor numpy: ``imagina --help`` reads it.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from imagina.core.errors import InvalidInputError

if TYPE_CHECKING:
    from imagina.core.modality import Modality


@dataclass(frozen=True)
class ModalityEntry:
    """What the registry knows of a modality without importing it.

    name : the CLI's and the API's name (``"image"``).
    module : the module that exports the :class:`~imagina.core.modality.Modality` as ``MODALITY``.
    generators : generator registry name -> the module defining that class.
    """

    name: str
    module: str
    generators: dict[str, str] = field(default_factory=dict)


_MODALITIES: dict[str, ModalityEntry] = {}


def register_modality(name: str, module: str, *, generators: dict[str, str] | None = None) -> ModalityEntry:
    """Register a modality (a new name, or the same entry again). Returns its entry."""
    if not isinstance(name, str) or not name.isidentifier():
        raise InvalidInputError(f"`name` must be an identifier such as 'image'; got {name!r}.")
    entry = ModalityEntry(name, module, dict(generators or {}))
    if name in _MODALITIES and _MODALITIES[name] != entry:
        raise InvalidInputError(f"a modality named {name!r} is already registered (module {_MODALITIES[name].module}).")
    for model, owner in ((m, e.name) for e in _MODALITIES.values() for m in e.generators):
        if model in entry.generators and owner != name:
            raise InvalidInputError(f"generator {model!r} is already registered by the {owner} modality.")
    _MODALITIES[name] = entry
    return entry


def modality_names() -> tuple[str, ...]:
    """The registered modality names, in registration order (the CLI's choices)."""
    return tuple(_MODALITIES)


def modality_entry(name: str) -> ModalityEntry:
    """The entry of modality ``name``; a one-line error listing the registered names otherwise."""
    if name not in _MODALITIES:
        raise InvalidInputError(f"`modality` must be one of {', '.join(_MODALITIES)}; got {name!r}.")
    return _MODALITIES[name]


def get_modality(name: str) -> Modality:
    """The :class:`~imagina.core.modality.Modality` registered as ``name`` (its module is imported now)."""
    from imagina.core.modality import Modality

    entry = modality_entry(name)
    modality = getattr(importlib.import_module(entry.module), "MODALITY", None)
    if not isinstance(modality, Modality) or modality.name != name:
        raise InvalidInputError(f"{entry.module}.MODALITY must be a Modality named {name!r}; got {modality!r}.")
    return modality


def generator_modality(model: str) -> str | None:
    """The name of the modality whose generator class is ``model``; None when none registered it."""
    for entry in _MODALITIES.values():
        if model in entry.generators:
            return entry.name
    return None


def generator_class(model: str) -> Any:
    """The :class:`~imagina.core.generator.Generator` subclass registered as ``model``."""
    owner = generator_modality(model)
    if owner is None:
        known = [m for e in _MODALITIES.values() for m in e.generators]
        raise InvalidInputError(f"unknown generator {model!r}; registered: {', '.join(known)}.")
    cls = getattr(importlib.import_module(_MODALITIES[owner].generators[model]), model, None)
    if cls is None or getattr(cls, "registry_name", None) != model:
        raise InvalidInputError(f"{_MODALITIES[owner].generators[model]} defines no generator class {model!r}.")
    return cls


register_modality("image", "imagina.image.modality", generators={"ConditionalDCGAN": "imagina.image.model"})
register_modality("text", "imagina.text.modality", generators={"ConditionalSeqVAE": "imagina.text.model"})
register_modality("audio", "imagina.audio.modality", generators={"ConditionalSpecGAN": "imagina.audio.model"})
