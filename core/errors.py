"""The small error hierarchy. The CLI turns every :class:`ImaginaError` into one line and exit code 2."""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from dataclasses import fields, is_dataclass, replace
from typing import Any, TypeVar

T = TypeVar("T")


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


def _is_bool(value: object) -> bool:
    """Python's or numpy's bool (numpy is not imported here: ``imagina --help`` stays light)."""
    return isinstance(value, bool) or (type(value).__module__ == "numpy" and type(value).__name__ in ("bool", "bool_"))


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
    """Validate an integer setting with the one error template: *name, constraint, value received*.
    numpy integers are ints here, as in scikit-learn; the value comes back as a Python int."""
    _check_number(name, value, "an int", isinstance(value, numbers.Integral) and not _is_bool(value),
                  minimum, maximum)
    return int(value)  # type: ignore[arg-type]


def check_float(
    name: str, value: object, *, minimum: float | None = None, maximum: float | None = None
) -> float:
    """Validate a real-valued setting (ints and numpy numbers accepted) with the one error template."""
    _check_number(name, value, "a number", isinstance(value, numbers.Real) and not _is_bool(value),
                  minimum, maximum)
    return float(value)  # type: ignore[arg-type]


def check_bool(name: str, value: object) -> bool:
    """Validate a flag: ``True`` or ``False`` (a string such as "no" would be truthy)."""
    if not _is_bool(value):
        raise InvalidInputError(f"`{name}` must be True or False; got {value!r}.")
    return bool(value)


def check_instance(name: str, value: object, kind: type, *, optional: bool = True) -> None:
    """Refuse a setting of the wrong type at once (a dict or a string in place of a config would
    fail later, inside training): ``"`name` must be a Kind (or None); got value."``."""
    if (value is None and optional) or isinstance(value, kind):
        return
    article = "an" if kind.__name__[0] in "AEIOU" else "a"
    raise InvalidInputError(f"`{name}` must be {article} {kind.__name__}{' or None' if optional else ''}; got {value!r}.")


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


def with_options(base: T, options: Mapping[str, Any], *, flag: str) -> T:
    """The dataclass ``base`` with the settings named in ``options`` (a flag's ``KEY=VALUE`` pairs, e.g.
    ``--dose-option``): a list, or one value where the setting holds several, becomes a tuple; an
    unknown key is a one-line error naming ``flag`` and the known settings; the class's own checks run
    on the result."""
    if not is_dataclass(base) or isinstance(base, type):
        raise TypeError(f"with_options takes a dataclass instance; got {base!r}")
    check_fields(type(base), options, unknown=f"{flag}: unknown setting", known="known")
    values = {k: tuple(v) if isinstance(v, list) else ((v,) if isinstance(getattr(base, k), tuple) else v)
              for k, v in options.items()}
    return replace(base, **values)
