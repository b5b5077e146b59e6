"""Declarative parameter schemas.

A component lists its parameters once, as :class:`Param` objects. That one list validates
pipeline files, converts ``--set`` overrides, fills defaults, and is what the desktop app
renders as a form: so a parameter is never described in two places.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from penchant.errors import PipelineError

TYPES = ("int", "float", "str", "bool", "path", "duration", "timepoint", "date", "list",
         "table")

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|min|h|d|w)\s*$")
_DURATION_UNITS = {"s": 1, "min": 60, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


def parse_duration(text: str) -> timedelta:
    """``"90d"`` → 90 days. Units: s, min (or m), h, d, w; months are ambiguous, so absent."""
    match = _DURATION.match(str(text))
    if not match:
        raise ValueError(f"{text!r} is not a duration; write e.g. '7d', '12h', '4w'")
    number, unit = match.groups()
    try:
        return timedelta(seconds=float(number) * _DURATION_UNITS[unit])
    except OverflowError:
        raise ValueError(f"{text!r} is longer than the longest duration, "
                         f"{timedelta.max.days} days") from None


@dataclass(frozen=True)
class Param:
    """One parameter of a component.

    ``type`` is one of :data:`TYPES`; ``items`` is the element type of a ``list`` or the
    value type of a ``table`` (a TOML inline table such as a column mapping). ``secret``
    parameters are meant to be given as ``"${env:NAME}"`` and are masked wherever shown.
    """

    name: str
    type: str
    default: Any = None
    help: str = ""
    min: float | None = None
    max: float | None = None
    choices: tuple[Any, ...] | None = None
    items: str | None = None
    required: bool = False
    secret: bool = False
    keys: tuple[str, ...] | None = field(default=None)

    def __post_init__(self) -> None:
        problems = self.contract_problems()
        if problems:
            raise ValueError(f"parameter {self.name!r}: " + "; ".join(problems))

    def contract_problems(self) -> list[str]:
        """What makes this declaration unusable (empty when it is fine)."""
        problems = []
        if not _NAME.match(self.name or ""):
            problems.append("name must be lower_snake_case")
        if self.type not in TYPES:
            problems.append(f"type {self.type!r} is not one of {', '.join(TYPES)}")
        if self.items is not None and self.items not in TYPES:
            problems.append(f"items type {self.items!r} is not one of {', '.join(TYPES)}")
        if self.type in ("list", "table") and self.items is None:
            problems.append(f"a {self.type} parameter needs an items type")
        if not problems and self.default is not None and not self.required:
            try:
                self.convert(self.default)
            except ValueError as exc:
                problems.append(f"default {self.default!r} is invalid: {exc}")
        return problems

    def convert(self, value: Any) -> Any:
        """Check ``value`` against this parameter and return it in its Python form."""
        value = _convert(self.type, value, self.items)
        if self.choices is not None:
            options = value if self.type == "list" else [value]
            for option in options:
                if option not in self.choices:
                    allowed = ", ".join(repr(c) for c in self.choices)
                    raise ValueError(f"{option!r} is not one of {allowed}")
        if self.type == "table" and self.keys is not None:
            unknown = sorted(set(value) - set(self.keys))
            if unknown:
                raise ValueError(
                    f"unknown key(s) {', '.join(unknown)}; allowed: {', '.join(self.keys)}"
                )
        if self.min is not None or self.max is not None:
            for number in value if self.type == "list" else [value]:
                if self.min is not None and number < self.min:
                    raise ValueError(f"{number!r} is below the minimum {self.min}")
                if self.max is not None and number > self.max:
                    raise ValueError(f"{number!r} is above the maximum {self.max}")
        return value

    def describe(self) -> str:
        """One line for ``plugins info`` and tooltips."""
        bits = [self.type if self.items is None else f"{self.type} of {self.items}"]
        if self.required:
            bits.append("required")
        elif self.default is not None:
            bits.append(f"default {self.default!r}")
        if self.choices is not None:
            bits.append("one of " + ", ".join(repr(c) for c in self.choices))
        if self.min is not None or self.max is not None:
            bits.append(f"range {self.min if self.min is not None else '-inf'}.."
                        f"{self.max if self.max is not None else 'inf'}")
        if self.secret:
            bits.append("secret: give as ${env:NAME}")
        return f"{self.name} ({'; '.join(bits)}): {self.help}"


def _convert(kind: str, value: Any, items: str | None) -> Any:
    if kind == "bool":
        if isinstance(value, bool):
            return value
        raise ValueError(f"expected true or false, got {value!r}")
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"expected an integer, got {value!r}")
        return value
    if kind == "float":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"expected a number, got {value!r}")
        return float(value)
    if kind in ("str", "path"):
        if not isinstance(value, str):
            raise ValueError(f"expected a string, got {value!r}")
        if kind == "path" and "\0" in value:
            raise ValueError(f"{value!r} holds a NUL character, which no file name can")
        return value
    if kind == "duration":
        if not isinstance(value, str):
            raise ValueError(f"expected a duration such as '30d', got {value!r}")
        parse_duration(value)
        return value
    if kind == "timepoint":
        return _timepoint(value)
    if kind == "date":
        return _date(value)
    if kind == "list":
        if not isinstance(value, list | tuple):
            raise ValueError(f"expected a list, got {value!r}")
        return [_convert(items or "str", v, None) for v in value]
    if kind == "table":
        if not isinstance(value, Mapping):
            raise ValueError(f"expected a table such as {{ key = value }}, got {value!r}")
        return {str(k): _convert(items or "str", v, None) for k, v in value.items()}
    raise ValueError(f"unknown parameter type {kind!r}")


def _timepoint(value: Any) -> Any:
    """A quantile of event times (a number strictly between 0 and 1) or a date, as
    :func:`_date` reads one (a TOML date too: ``--set evaluation.cutoff=2025-01-15``)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        if not 0 < value < 1:
            raise ValueError(f"quantile {value!r} must be strictly between 0 and 1")
        return float(value)
    try:
        return _date(value)
    except ValueError:
        raise ValueError(f"{value!r} is neither a quantile such as 0.8 nor an ISO date "
                         "such as '2024-06-01'") from None


def _date(value: Any) -> str:
    """An ISO date or date-time, kept as text so that a pipeline file round-trips; a TOML
    date (``since = 2024-01-01``) is accepted too. Without a zone it means UTC."""
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, str):
        try:
            datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(f"{value!r} is not an ISO date such as '2024-06-01' or "
                             "'2024-06-01T08:00:00Z'") from None
        return value
    raise ValueError(f"expected an ISO date such as '2024-06-01', got {value!r}")


class ParamValues(dict):
    """Validated parameter values, readable as attributes (``self.params.epochs``)."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError as exc:
            raise AttributeError(name) from exc


def validate(params: Iterable[Param], values: Mapping[str, Any], where: str) -> ParamValues:
    """Fill defaults and check ``values``; raise one error listing every problem.

    ``where`` prefixes each message (e.g. ``"shop.toml [model]"``) so the user knows which
    file and table to fix.
    """
    schema = {p.name: p for p in params}
    problems = []
    for key in values:
        if key not in schema:
            allowed = ", ".join(sorted(schema)) or "none"
            problems.append(f"{where}: unknown key {key!r}; allowed keys: {allowed}")
    out = ParamValues()
    for name, param in schema.items():
        if values.get(name) is None:  # absent, or a saved unset value
            if param.required:
                problems.append(f"{where}: key {name!r} is required ({param.help})")
            out[name] = copy.deepcopy(param.default)  # never share a mutable default
            continue
        try:
            out[name] = param.convert(values[name])
        except ValueError as exc:
            problems.append(f"{where}: key {name!r}: {exc}")
    if problems:
        raise PipelineError("\n".join(problems))
    return out


def mask(params: Iterable[Param], values: Mapping[str, Any]) -> dict[str, Any]:
    """A copy safe to show or store: secret values that are not env references become ***."""
    secret = {p.name for p in params if p.secret}
    return {
        k: ("***" if k in secret and not str(v).startswith("${env:") else v)
        for k, v in values.items()
    }
