"""JSON Schema checks of payloads at run time: a compiled check first, Python's jsonschema for errors.

`jsonschema` (pure Python) is the authority: its errors are what users see, with their paths. It
costs about 90 µs for the 5-line P1 order, more than mapping that order; `jsonschema-rs` (compiled,
exact with `Decimal`) answers the same question in about 1.2 µs. So a payload is first checked by
jsonschema-rs; only when that says "invalid" (or cannot take the value) does jsonschema run, and its
verdict stands — where the two differ on a document (regular-expression dialects, for one), the
Python result is the one that counts. The fast check is used only for schemas whose `$ref`s stay
inside the schema (nothing is ever fetched), and it asserts formats as the Python one does.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from jsonschema.exceptions import ValidationError
from jsonschema.validators import validator_for

_fast_module: Any
try:
    import jsonschema_rs as _fast_module
except ImportError:  # pragma: no cover - a dependency; kept optional so a missing wheel only costs speed
    _fast_module = None


class PayloadSchema:
    """A compiled JSON Schema: `iter_errors(document)` and `is_valid(document)`."""

    def __init__(self, schema: dict[str, Any]) -> None:
        cls = validator_for(schema)
        self.schema = schema
        self._python = cls(schema, format_checker=cls.FORMAT_CHECKER)
        self._fast = _compiled(schema)

    def _fast_valid(self, document: Any) -> bool:
        if self._fast is None:
            return False
        try:
            return bool(self._fast.is_valid(document))
        except (ValueError, TypeError, OverflowError):  # a value it cannot take: ask jsonschema
            return False

    def iter_errors(self, document: Any) -> Iterator[ValidationError]:
        if self._fast_valid(document):
            return iter(())
        return self._python.iter_errors(document)

    def is_valid(self, document: Any) -> bool:
        return self._fast_valid(document) or bool(self._python.is_valid(document))


def _compiled(schema: dict[str, Any]) -> Any:
    if _fast_module is None or not _refs_stay_inside(schema):
        return None
    try:
        return _fast_module.validator_for(schema, validate_formats=True)
    except Exception:  # a schema it does not support: jsonschema alone
        return None


def _refs_stay_inside(node: Any) -> bool:
    """No `$ref`/`$dynamicRef` leaves the document: each is a `#...` fragment."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("$ref", "$dynamicRef", "$recursiveRef") and not (isinstance(value, str) and value[:1] == "#"):
                return False
            if not _refs_stay_inside(value):
                return False
    elif isinstance(node, list):
        return all(_refs_stay_inside(item) for item in node)
    return True


def first_error(schema: PayloadSchema, document: Any) -> tuple[str, str] | None:
    """The first failure of `document` (by path): its JSON pointer (`/items/0/sku`, `/` for the root)
    and jsonschema's message; None when the document satisfies the schema."""
    errors = sorted(schema.iter_errors(document), key=lambda e: [str(p) for p in e.absolute_path])
    if not errors:
        return None
    first = errors[0]
    return "/" + "/".join(str(p).replace("~", "~0").replace("/", "~1") for p in first.absolute_path), first.message
