"""The small error hierarchy. The CLI turns every :class:`ImaginaError` into one line and exit code 2."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields


class ImaginaError(Exception):
    """Base class of every error imagina raises on purpose."""


class InvalidInputError(ImaginaError, ValueError):
    """Bad user input: a file, a field or an argument. The message names it."""


class NotFittedError(ImaginaError, AttributeError):
    """A method that needs a fitted estimator was called before ``fit``."""


class MissingDependencyError(ImaginaError, ImportError):
    """An optional dependency is missing; the message names the package to install."""


def check_is_fitted(obj: object, attribute: str) -> None:
    """Raise :class:`NotFittedError` unless ``obj`` has the fitted attribute ``attribute``."""
    if getattr(obj, attribute, None) is None:
        raise NotFittedError(
            f"This {type(obj).__name__} is not fitted yet; call `fit` before using it."
        )


def _check_number(name: str, value: object, kind: str, ok: bool, minimum, maximum) -> None:
    if ok and value != value:  # NaN
        ok = False
    if ok and minimum is not None and value < minimum:
        ok = False
    if ok and maximum is not None and value > maximum:
        ok = False
    if not ok:
        bounds = [f">= {minimum}"] * (minimum is not None) + [f"<= {maximum}"] * (maximum is not None)
        constraint = kind + (" " + " and ".join(bounds) if bounds else "")
        raise InvalidInputError(f"`{name}` must be {constraint}; got {value!r}.")


def check_int(name: str, value: object, *, minimum: int | None = None, maximum: int | None = None) -> int:
    """Validate an integer setting with the one error template: *name, constraint, value received*."""
    _check_number(name, value, "an int", isinstance(value, int) and not isinstance(value, bool), minimum, maximum)
    return value  # type: ignore[return-value]


def check_float(
    name: str, value: object, *, minimum: float | None = None, maximum: float | None = None
) -> float:
    """Validate a real-valued setting (ints accepted) with the one error template."""
    _check_number(name, value, "a number", isinstance(value, (int, float)) and not isinstance(value, bool), minimum, maximum)
    return float(value)  # type: ignore[arg-type]


def check_choice(name: str, value: object, choices: tuple[str, ...] | list[str]) -> str:
    """Validate that ``value`` is one of ``choices``."""
    if value not in choices:
        raise InvalidInputError(f"`{name}` must be one of {', '.join(map(repr, choices))}; got {value!r}.")
    return value  # type: ignore[return-value]


def check_fields(config_class: type, options: Mapping[str, object], *, unknown: str, known: str) -> None:
    """Refuse a setting that the dataclass ``config_class`` has no field for, in one line:
    ``"{unknown} 'name'; {known}: <its fields>."``."""
    names = {f.name for f in fields(config_class)}
    extra = sorted(set(options) - names)
    if extra:
        raise InvalidInputError(f"{unknown} {extra[0]!r}; {known}: {', '.join(sorted(names))}.")
