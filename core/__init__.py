"""Shared mechanics of imagina: preprocessing, training, generation, embedding, screening,
export and evaluation. The modality packages (:mod:`imagina.image`, :mod:`imagina.text`,
:mod:`imagina.audio`) implement these interfaces; nothing here knows a modality."""

from imagina.core.errors import ImaginaError, InvalidInputError, MissingDependencyError, NotFittedError

__all__ = ["ImaginaError", "InvalidInputError", "MissingDependencyError", "NotFittedError"]
