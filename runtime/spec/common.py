"""Field types shared by the document models: durations, templated values, strict scalars.

`Duration` is a string such as `500ms`, `30s`, `5m`, `2h`, `7d` (or a plain number of seconds);
`parse_duration` turns it into seconds. `Template` marks a string that may hold `{{ ... }}`
(the JSON Schema says so, and the checker compiles it). Integers and booleans are strict: YAML 1.1
words such as `yes`/`on` are strings in Syncline and are refused where a boolean is expected.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictBool, StrictInt, WithJsonSchema
from pydantic_core import PydanticCustomError

_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_YAML11_BOOLS = frozenset({"yes", "no", "on", "off", "y", "n"})


def parse_duration(value: str | int | float | Decimal) -> float:
    """Seconds in a duration (`500ms`, `30s`, `5m`, `2h`, `7d`, or a number of seconds)."""
    if isinstance(value, bool):
        raise ValueError("a duration is not a boolean")
    if isinstance(value, int | float | Decimal):
        if value < 0:
            raise ValueError("a duration cannot be negative")
        return float(value)
    match = _DURATION_RE.match(value)
    if not match:
        raise ValueError(f"{value!r} is not a duration")
    return float(Decimal(match.group(1))) * _UNIT_SECONDS[match.group(2)]


def _check_duration(value: Any) -> Any:
    if isinstance(value, str | int | Decimal) and not isinstance(value, bool):
        try:
            parse_duration(value)
        except ValueError:
            pass
        else:
            return str(value) if not isinstance(value, str) else value
    raise PydanticCustomError(
        "duration",
        "'{value}' is not a duration; use a number with a unit: 500ms, 30s, 5m, 2h, 7d",
        {"value": value},
    )


Duration = Annotated[
    str,
    BeforeValidator(_check_duration),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "pattern": r"^\s*\d+(\.\d+)?\s*(ms|s|m|h|d)\s*$"},
                {"type": "number", "minimum": 0},
            ],
            "description": "A duration: 500ms, 30s, 5m, 2h, 7d (or seconds as a number).",
        }
    ),
]


def _strict_bool(value: Any) -> Any:
    if isinstance(value, str) and value.lower() in _YAML11_BOOLS:
        raise PydanticCustomError(
            "yaml11_bool",
            "'{value}' is a string in Syncline (YAML 1.2), not a boolean: write true or false",
            {"value": value},
        )
    return value


Bool = Annotated[StrictBool, BeforeValidator(_strict_bool)]
Int = StrictInt
PositiveInt = Annotated[StrictInt, Field(ge=1)]

Template = Annotated[
    str,
    Field(json_schema_extra={"x-syncline-template": True}),
]
"""A string that may contain `{{ expression }}`; exactly one expression yields its native value."""

Expression = Annotated[
    str,
    Field(json_schema_extra={"x-syncline-expression": True}),
]
"""A condition or value written as `{{ expression }}` (the braces may be left out)."""

JsonPath = Annotated[str, Field(pattern=r"^\$", json_schema_extra={"x-syncline-jsonpath": True})]
"""An RFC 9535 JSONPath query starting with `$`."""

AnyValue = Annotated[Any, Field(json_schema_extra={"x-syncline-template": True})]
"""Any YAML value; strings inside it may hold templates."""

Name = Annotated[
    str,
    Field(
        min_length=1,
        max_length=128,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9 _.\-]*$",
        description="A name: letters, digits, space, `_`, `-`, `.`.",
    ),
]
Identifier = Annotated[
    str,
    Field(min_length=1, max_length=64, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$"),
]


class Model(BaseModel):
    """Base of every document part: unknown keys are errors, values are validated on assignment."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, validate_default=False, frozen=False)


class Document(Model):
    """Fields every document kind has."""

    name: Name = Field(description="Unique name of the document within its kind.")
    description: str | None = Field(None, description="Free text for people reading the project.")
