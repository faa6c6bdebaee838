"""Built-in filters (`x | upper`, `lines | sum_of('qty * unit_price') | round_money(2)`).

Each filter is a plain function over JSON values. String filters return null for null input (so a
missing field stays missing instead of becoming the text "None") and keep a `Secret` a `Secret`.
Filters that build large results or iterate take the render state first: they check the size
limit before building (a list or object is measured before it is written as JSON, a decimal's
size before it becomes an integer) and the time budget while iterating (every `CHECK_EVERY`
items). Regular expressions run on the `regex` module with the render's remaining time as timeout
(no catastrophic backtracking hangs), and a replacement is sized as it is built.
"""

from __future__ import annotations

import base64
import binascii
import builtins
import datetime as dt
import hashlib
import hmac
import urllib.parse
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

import regex  # type: ignore[import-untyped]

from runtime.errors import ExpressionError
from runtime.expr import ops
from runtime.expr.decimals import round_money, short_text, to_decimal, type_name
from runtime.expr.errors import CompileError, LimitError
from runtime.expr.jsonpath import JSONPath, PathCompiler
from runtime.expr.jsonvalues import dumps, loads
from runtime.expr.regexcost import MAX_EXPANDED, expanded_size
from runtime.expr.registry import Spec
from runtime.expr.secrets import Secret

State = ops.RenderState
_CHECK_EVERY = ops.CHECK_EVERY


# --------------------------------------------------------------------------- helpers


def _keep(source: Any, result: str) -> str:
    """A string derived from a Secret is a Secret."""
    return Secret(result) if isinstance(source, Secret) else result


def _text(value: Any, name: str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, int | Decimal | float) and not isinstance(value, bool):
        return ops._to_text_basic(value)
    raise ExpressionError(f"{name}: expected a string, got {type_name(value)}")


def _seq(value: Any, name: str) -> list[Any]:
    if isinstance(value, list):
        return value
    if value is None:
        return []
    if isinstance(value, tuple):
        return list(value)
    raise ExpressionError(f"{name}: expected a list, got {type_name(value)}")


def _path_getter(attribute: Any, name: str) -> Callable[[Any], Any]:
    """`attribute='customer.id'` → a function looking that path up in an item."""
    if isinstance(attribute, int) and not isinstance(attribute, bool):
        parts: list[Any] = [attribute]
    elif isinstance(attribute, str) and attribute:
        parts = [int(p) if p.isdigit() else p for p in attribute.split(".")]
    else:
        raise ExpressionError(f"{name}: attribute must be a name such as 'sku' or 'customer.id'")
    if len(parts) == 1:
        key = parts[0]
        return lambda item: ops.getitem(item, key)

    def get(item: Any) -> Any:
        for p in parts:
            item = ops.getitem(item, p)
        return item

    return get


def _sort_key(case_sensitive: bool, getter: Callable[[Any], Any] | None) -> Callable[[Any], Any]:
    def key(item: Any) -> Any:
        v = getter(item) if getter else item
        if not case_sensitive and isinstance(v, str):
            return v.lower()
        if type(v) is float:
            return Decimal(repr(v))
        return v

    return key


def _hashable(state: State, v: Any) -> Any:
    if isinstance(v, dict | list | tuple):
        state.check_json(v, "an item")
        return dumps(v, sort_keys=True)
    if isinstance(v, bool):
        return ("bool", v)
    return v


def _ticker(state: State) -> Callable[[int], None]:
    def tick(i: int) -> None:
        if i % _CHECK_EVERY == 0:
            state.check()

    return tick


# --------------------------------------------------------------------------- strings


def upper(value: Any) -> Any:
    """`'eur' | upper` → `'EUR'`."""
    return None if value is None else _keep(value, _text(value, "upper").upper())


def lower(value: Any) -> Any:
    """`'EUR' | lower` → `'eur'`."""
    return None if value is None else _keep(value, _text(value, "lower").lower())


def title(value: Any) -> Any:
    """`'jane doe' | title` → `'Jane Doe'`."""
    return None if value is None else _keep(value, _text(value, "title").title())


def capitalize(value: Any) -> Any:
    """`'hello World' | capitalize` → `'Hello world'`."""
    return None if value is None else _keep(value, _text(value, "capitalize").capitalize())


def trim(value: Any, chars: str | None = None) -> Any:
    """Strip whitespace (or the given characters) at both ends."""
    return None if value is None else _keep(value, _text(value, "trim").strip(chars))


def replace(state: State, value: Any, old: str, new: str, count: int | None = None) -> Any:
    """`'a-b-c' | replace('-', '/')` → `'a/b/c'`; `count` limits how many."""
    if value is None:
        return None
    s = _text(value, "replace")
    old, new = _text(old, "replace"), _text(new, "replace")
    if count is not None and (type(count) is not int):
        raise ExpressionError(f"replace: count must be an integer, got {type_name(count)}")
    n = s.count(old) if old else len(s) + 1
    if count is not None and count >= 0:
        n = min(n, count)
        count = n
    if len(s) + n * (len(new) - len(old)) > state.limits.max_string:
        raise ExpressionError(f"replace: result would exceed the limit of {state.limits.max_string} characters")
    out = s.replace(old, new, -1 if count is None else count)
    return Secret(out) if isinstance(value, Secret) or isinstance(new, Secret) else out


def truncate(value: Any, length: int = 255, killwords: bool = False, end: str = "...", leeway: int = 0) -> Any:
    """Shorten to `length` characters, cutting at a word boundary unless `killwords`, appending `end`."""
    if value is None:
        return None
    s = _text(value, "truncate")
    if len(s) <= length + leeway:
        return s
    keep = max(length - len(end), 0)
    if killwords:
        return _keep(value, s[:keep] + end)
    cut = s[:keep].rsplit(" ", 1)[0] if " " in s[:keep] else s[:keep]
    return _keep(value, cut + end)


def wordcount(value: Any) -> int:
    """Number of words (whitespace-separated)."""
    return 0 if value is None else len(_text(value, "wordcount").split())


def string(state: State, value: Any) -> str:
    """The value as text: null → '', true → 'true', 0.30 → '0.30', objects and arrays → compact JSON."""
    return state.to_text(value)


def default(value: Any, default_value: Any = "", boolean: bool = False) -> Any:
    """`x | default('n/a')`: the fallback when x is null (or, with boolean=true, when falsy)."""
    if value is None or (boolean and not value):
        return default_value
    return value


# --------------------------------------------------------------------------- lists and objects


def length(value: Any) -> int:
    """Number of items in a list or object, or characters in a string; null → 0."""
    if value is None:
        return 0
    if isinstance(value, str | list | tuple | Mapping):
        return len(value)
    raise ExpressionError(f"length: {type_name(value)} has no length")


def first(value: Any) -> Any:
    """First item of a list (or character of a string); null when empty."""
    if isinstance(value, list | tuple | str):
        return value[0] if value else None
    if value is None:
        return None
    raise ExpressionError(f"first: expected a list, got {type_name(value)}")


def last(value: Any) -> Any:
    """Last item of a list (or character of a string); null when empty."""
    if isinstance(value, list | tuple | str):
        return value[-1] if value else None
    if value is None:
        return None
    raise ExpressionError(f"last: expected a list, got {type_name(value)}")


def join(state: State, value: Any, d: str = "", attribute: Any = None) -> str:
    """`['a', 'b'] | join(', ')` → `'a, b'`; `attribute='sku'` joins that field of each item."""
    items = _seq(value, "join")
    state.check()
    if attribute is not None:
        get = _path_getter(attribute, "join")
        items = [get(x) for x in items]
    tick = _ticker(state)
    parts = []
    for i, x in enumerate(items):
        if type(x) is not str:
            tick(i)
            x = state.to_text(x)
        parts.append(x)
    sep = _text(d, "join")
    total = sum(len(p) for p in parts) + len(sep) * max(len(parts) - 1, 0)
    if total > state.limits.max_string:
        raise ExpressionError(f"join: result would exceed the limit of {state.limits.max_string} characters")
    out = sep.join(parts)
    if isinstance(sep, Secret) or any(type(p) is not str for p in parts):
        return Secret(out)
    return out


def list_(state: State, value: Any) -> list[Any]:
    """A list: a list as is (copied), an object's keys, a string's characters; null → []."""
    if value is None:
        return []
    if isinstance(value, str):
        state.check_items(len(value), "list")
    if isinstance(value, list | tuple | str | Mapping):
        return list(value)
    raise ExpressionError(f"list: cannot make a list of {type_name(value)}")


def sort(
    state: State, value: Any, reverse: bool = False, case_sensitive: bool = False, attribute: Any = None
) -> list[Any]:
    """Sorted copy; `attribute='price'` sorts items by a field; strings ignore case unless asked."""
    items = _seq(value, "sort")
    state.check()
    getter = _path_getter(attribute, "sort") if attribute is not None else None
    try:
        return sorted(items, key=_sort_key(case_sensitive, getter), reverse=bool(reverse))
    except TypeError:
        raise ExpressionError("sort: items of different types (or null) cannot be ordered") from None


def unique(state: State, value: Any, case_sensitive: bool = False, attribute: Any = None) -> list[Any]:
    """Items with duplicates removed, first occurrence kept."""
    items = _seq(value, "unique")
    state.check()
    getter = _path_getter(attribute, "unique") if attribute is not None else None
    key = _sort_key(case_sensitive, getter)
    seen: set[Any] = set()
    out = []
    tick = _ticker(state)
    for i, item in enumerate(items):
        tick(i)
        k = _hashable(state, key(item))
        if k not in seen:
            seen.add(k)
            out.append(item)
    return out


def reverse(value: Any) -> Any:
    """Reversed list or string."""
    if isinstance(value, str):
        return _keep(value, value[::-1])
    if value is None:
        return None
    return _seq(value, "reverse")[::-1]


def _extreme(state: State, value: Any, name: str, pick: Any, case_sensitive: bool, attribute: Any) -> Any:
    items = _seq(value, name)
    state.check()
    if not items:
        return None
    getter = _path_getter(attribute, name) if attribute is not None else None
    try:
        return pick(items, key=_sort_key(case_sensitive, getter))
    except TypeError:
        raise ExpressionError(f"{name}: items of different types (or null) cannot be compared") from None


def min_(state: State, value: Any, case_sensitive: bool = False, attribute: Any = None) -> Any:
    """Smallest item (by `attribute` if given); null for an empty list."""
    return _extreme(state, value, "min", builtins.min, case_sensitive, attribute)


def max_(state: State, value: Any, case_sensitive: bool = False, attribute: Any = None) -> Any:
    """Largest item (by `attribute` if given); null for an empty list."""
    return _extreme(state, value, "max", builtins.max, case_sensitive, attribute)


def sum_(state: State, value: Any, attribute: Any = None, start: Any = 0) -> Any:
    """Exact sum of numbers; `attribute='amount'` sums that field of each item."""
    items = _seq(value, "sum")
    state.check()
    if attribute is not None:
        get = _path_getter(attribute, "sum")
        items = [get(x) for x in items]
    return ops.sum_numbers([start, *items], "sum")


def items(value: Any) -> list[list[Any]]:
    """An object's entries as `[key, value]` pairs (for `{% for k, v in x | items %}`)."""
    if value is None:
        return []
    if isinstance(value, Mapping):
        return [[k, v] for k, v in value.items()]
    raise ExpressionError(f"items: expected an object, got {type_name(value)}")


def keys(value: Any) -> list[Any]:
    """An object's keys."""
    if value is None:
        return []
    if isinstance(value, Mapping):
        return list(value.keys())
    raise ExpressionError(f"keys: expected an object, got {type_name(value)}")


def values(value: Any) -> list[Any]:
    """An object's values."""
    if value is None:
        return []
    if isinstance(value, Mapping):
        return list(value.values())
    raise ExpressionError(f"values: expected an object, got {type_name(value)}")


def dictsort(
    state: State, value: Any, case_sensitive: bool = False, by: str = "key", reverse: bool = False
) -> list[list[Any]]:
    """An object's `[key, value]` pairs sorted by key (or `by='value'`)."""
    pairs = items(value)
    state.check()
    if by not in ("key", "value"):
        raise ExpressionError("dictsort: by must be 'key' or 'value'")
    pos = 0 if by == "key" else 1
    key = _sort_key(case_sensitive, lambda p: p[pos])
    try:
        return sorted(pairs, key=key, reverse=bool(reverse))
    except TypeError:
        raise ExpressionError("dictsort: values of different types cannot be ordered") from None


def groupby(
    state: State, value: Any, attribute: Any, default: Any = None, case_sensitive: bool = False
) -> list[dict[str, Any]]:
    """Group items by a field: `[{'grouper': 'EUR', 'list': [...]}, ...]`, sorted by the grouper."""
    items_ = _seq(value, "groupby")
    state.check()
    get = _path_getter(attribute, "groupby")
    groups: dict[Any, dict[str, Any]] = {}
    tick = _ticker(state)
    for i, item in enumerate(items_):
        tick(i)
        g = get(item)
        if g is None:
            g = default
        k = _hashable(state, g.lower() if isinstance(g, str) and not case_sensitive else g)
        if k not in groups:
            groups[k] = {"grouper": g, "list": []}
        groups[k]["list"].append(item)
    try:
        return sorted(groups.values(), key=_sort_key(case_sensitive, lambda e: e["grouper"]))
    except TypeError:
        return list(groups.values())


def batch(state: State, value: Any, linecount: int, fill_with: Any = None) -> list[list[Any]]:
    """Split into lists of `linecount` items; the last is padded with `fill_with` if given."""
    items_ = _seq(value, "batch")
    if type(linecount) is not int or linecount < 1:
        raise ExpressionError("batch: linecount must be a positive integer")
    state.check_items(len(items_) + linecount, "batch")
    out = [items_[i : i + linecount] for i in range(0, len(items_), linecount)]
    if fill_with is not None and out and len(out[-1]) < linecount:
        out[-1] = out[-1] + [fill_with] * (linecount - len(out[-1]))
    return out


def slice_(state: State, value: Any, slices: int, fill_with: Any = None) -> list[list[Any]]:
    """Split into `slices` columns of (nearly) equal length."""
    items_ = _seq(value, "slice")
    if type(slices) is not int or slices < 1:
        raise ExpressionError("slice: the number of slices must be a positive integer")
    state.check_items(slices + len(items_), "slice")
    per, extra = divmod(len(items_), slices)
    out, offset = [], 0
    for i in range(slices):
        n = per + (1 if i < extra else 0)
        part = items_[offset : offset + n]
        offset += n
        if fill_with is not None and extra and i >= extra:
            part = [*part, fill_with]
        out.append(part)
    return out


# --------------------------------------------------------------------------- numbers


def abs_(value: Any) -> Any:
    """Absolute value."""
    if isinstance(value, bool) or not isinstance(value, int | Decimal | float):
        raise ExpressionError(f"abs: expected a number, got {type_name(value)}")
    return builtins.abs(to_decimal(value) if type(value) is float else value)


def round_(value: Any, precision: int = 0, method: str = "common") -> Decimal:
    """Round to `precision` places: method 'common' (half up), 'ceil' or 'floor'. Returns a decimal."""
    modes = {"common": "half_up", "ceil": "ceiling", "floor": "floor"}
    if method not in modes:
        raise ExpressionError("round: method must be 'common', 'ceil' or 'floor'")
    return round_money(value, precision, modes[method])


def int_(state: State, value: Any, default: Any = None, base: int = 10) -> Any:
    """Convert to an integer (decimals are truncated; '42' → 42). Unconvertible → `default`, else an error.
    A number beyond the integer limit (4,300 digits; `1e999999999`) is an error even with a default."""
    try:
        if isinstance(value, bool):
            return int(value)
        if isinstance(value, int):
            return value
        if isinstance(value, Decimal | float):
            return state.to_int(to_decimal(value), "int")
        if isinstance(value, str):
            s = value.strip()
            try:
                n = int(s, base)
            except ValueError:
                if base != 10:
                    raise
                return state.to_int(to_decimal(s), "int")
            if n.bit_length() > state.limits.max_int_bits:
                raise LimitError(f"int: {short_text(value)} is too large for an integer")
            return n
    except LimitError:
        raise
    except (ValueError, TypeError, ExpressionError, ArithmeticError):
        pass
    if default is not None:
        return default
    raise ExpressionError(f"int: cannot convert {type_name(value)} {_short(value)} to an integer")


def decimal_(value: Any, default: Any = None) -> Any:
    """Convert to an exact decimal ('12.50' → 12.50). Unconvertible → `default`, else an error."""
    if isinstance(value, Decimal):
        return value
    if isinstance(value, int | float | str) and not isinstance(value, bool):
        try:
            d = to_decimal(value, "decimal")
            return d
        except ExpressionError:
            pass
    if default is not None:
        return default
    raise ExpressionError(f"decimal: cannot convert {type_name(value)} {_short(value)} to a number")


def _short(value: Any) -> str:
    r = repr(value) if not isinstance(value, Secret) else "'***'"
    return r if len(r) <= 40 else r[:37] + "..."


# --------------------------------------------------------------------------- JSON, encodings, hashes


def tojson(state: State, value: Any, indent: Any = None) -> str:
    """Compact JSON text of a value (decimals exact); `indent=2` pretty-prints."""
    state.check_json(value, "tojson: the JSON text")
    try:
        text = dumps(value, pretty=bool(indent))
    except (TypeError, ValueError) as exc:
        raise ExpressionError(f"tojson: {exc}") from None
    return state.check_size(text)


def fromjson(value: Any) -> Any:
    """Parse JSON text (numbers as exact decimals)."""
    if value is None:
        return None
    try:
        return loads(_text(value, "fromjson"))
    except ValueError as exc:
        raise ExpressionError(f"fromjson: invalid JSON: {exc}") from None


def urlencode(state: State, value: Any) -> str:
    """Percent-encode a string for a URL; an object becomes `a=1&b=x`."""
    if isinstance(value, Mapping):
        pairs = [(state.to_text(k), state.to_text(v)) for k, v in value.items()]
        out = urllib.parse.urlencode(pairs)
    elif isinstance(value, list | tuple):
        out = urllib.parse.urlencode([(state.to_text(k), state.to_text(v)) for k, v in value])
    elif value is None:
        return ""
    else:
        out = urllib.parse.quote(_text(value, "urlencode"), safe="/")
    return _keep(value, state.check_size(out))


def b64encode(value: Any) -> Any:
    """Base64 of the UTF-8 text."""
    if value is None:
        return None
    return _keep(value, base64.b64encode(_text(value, "b64encode").encode()).decode("ascii"))


def b64decode(value: Any) -> Any:
    """Decode base64 into UTF-8 text."""
    if value is None:
        return None
    try:
        raw = base64.b64decode(_text(value, "b64decode").encode("ascii"), validate=True)
        return _keep(value, raw.decode("utf-8"))
    except (binascii.Error, UnicodeError, ValueError):
        raise ExpressionError("b64decode: not valid base64 of UTF-8 text") from None


def sha256(value: Any) -> str:
    """Hex SHA-256 of the UTF-8 text."""
    return hashlib.sha256(_text(value, "sha256").encode()).hexdigest()


def hmac_sha256(value: Any, key: Any, digest: str = "hex") -> str:
    """HMAC-SHA256 of the text with `key`, as hex (or `digest='base64'`)."""
    mac = hmac.new(_text(key, "hmac_sha256").encode(), _text(value, "hmac_sha256").encode(), hashlib.sha256)
    if digest == "hex":
        return mac.hexdigest()
    if digest == "base64":
        return base64.b64encode(mac.digest()).decode("ascii")
    raise ExpressionError("hmac_sha256: digest must be 'hex' or 'base64'")


# --------------------------------------------------------------------------- regular expressions


_TOO_BIG = f"its counted repetitions ({{n}}) expand to more than {MAX_EXPANDED:,} characters"


def compile_pattern(pattern: Any) -> Any:
    """Compile-time check of a literal pattern (raises CompileError SL030)."""
    if not isinstance(pattern, str):
        raise CompileError("a regular expression must be a string")
    if expanded_size(pattern) > MAX_EXPANDED:
        raise CompileError(f"regular expression {short_text(pattern)} repeats too much: {_TOO_BIG}")
    try:
        regex.compile(pattern)
    except regex.error as exc:
        raise CompileError(f"invalid regular expression {pattern!r}: {exc}") from None
    return pattern


def _pattern(pattern: Any, ignorecase: bool, name: str) -> Any:
    if not isinstance(pattern, str):
        raise ExpressionError(f"{name}: the pattern must be a string")
    if expanded_size(pattern) > MAX_EXPANDED:  # compiling it could take minutes, uninterruptibly
        raise LimitError(f"{name}: the regular expression {short_text(pattern)} repeats too much: {_TOO_BIG}")
    try:
        return regex.compile(pattern, regex.IGNORECASE if ignorecase else 0)
    except regex.error as exc:
        raise ExpressionError(f"{name}: invalid regular expression {pattern!r}: {exc}") from None


def regex_replace(
    state: State, value: Any, pattern: Any, replacement: str = "", count: int = 0, ignorecase: bool = False
) -> Any:
    """Replace matches of a regular expression; `\\1` or `\\g<name>` in `replacement` insert groups."""
    if value is None:
        return None
    rx = _pattern(pattern, ignorecase, "regex_replace")
    text, template = _text(value, "regex_replace"), _text(replacement, "regex_replace")
    if type(count) is not int:
        raise ExpressionError(f"regex_replace: count must be an integer, got {type_name(count)}")
    try:
        # every match may become the whole replacement: when that could pass the size limit, the
        # replacement is expanded match by match and the size counted as it grows
        worst = len(text) + (len(text) + 1) * len(template)
        if worst > state.limits.max_string or "\\" in template:
            sized = _SizedReplacement(state, template, len(text))
            out = rx.sub(sized, text, count=max(count, 0), timeout=state.remaining())
        else:
            out = rx.sub(template, text, count=max(count, 0), timeout=state.remaining())
    except TimeoutError:
        raise ExpressionError("regex_replace: the regular expression took too long") from None
    except (regex.error, IndexError) as exc:
        raise ExpressionError(f"regex_replace: {exc}") from None
    return _keep(value, state.check_size(out))


class _SizedReplacement:
    """A `sub` replacement that expands the template per match and stops past the size limit."""

    __slots__ = ("_added", "_limit", "_matches", "_state", "_template")

    def __init__(self, state: State, template: str, base: int) -> None:
        self._state, self._template = state, template
        self._limit = state.limits.max_string - base
        self._added = self._matches = 0

    def __call__(self, match: Any) -> str:
        out: str = match.expand(self._template)
        self._added += len(out) - (match.end() - match.start())
        if self._added > self._limit:
            raise LimitError(
                f"regex_replace: result would exceed the limit of {self._state.limits.max_string} characters"
            )
        self._matches += 1
        if not self._matches % ops.CHECK_EVERY:
            self._state.check()
        return out


def regex_match(state: State, value: Any, pattern: Any, ignorecase: bool = False) -> bool:
    """True when the pattern matches at the start of the string (anchor with `$` for a full match)."""
    if value is None:
        return False
    rx = _pattern(pattern, ignorecase, "regex_match")
    try:
        return rx.match(_text(value, "regex_match"), timeout=state.remaining()) is not None
    except TimeoutError:
        raise ExpressionError("regex_match: the regular expression took too long") from None


def regex_search(state: State, value: Any, pattern: Any, ignorecase: bool = False) -> Any:
    """The first match anywhere in the string (first group if the pattern has one), or null."""
    if value is None:
        return None
    rx = _pattern(pattern, ignorecase, "regex_search")
    try:
        m = rx.search(_text(value, "regex_search"), timeout=state.remaining())
    except TimeoutError:
        raise ExpressionError("regex_search: the regular expression took too long") from None
    if m is None:
        return None
    return m.group(1) if rx.groups else m.group(0)


# --------------------------------------------------------------------------- dates (ISO 8601)


def _parse_iso(value: Any, name: str) -> dt.datetime | dt.date:
    if isinstance(value, dt.datetime | dt.date):
        return value
    s = _text(value, name).strip()
    try:
        if len(s) == 10:
            return dt.date.fromisoformat(s)
        return dt.datetime.fromisoformat(s)
    except ValueError:
        raise ExpressionError(f"{name}: {_short(value)} is not an ISO 8601 date or date-time") from None


def format_date(value: Any, fmt: str = "%Y-%m-%d") -> Any:
    """Format an ISO 8601 date or date-time with strftime codes: `x | format_date('%d.%m.%Y')`."""
    if value is None:
        return None
    d = _parse_iso(value, "format_date")
    if not isinstance(fmt, str) or len(fmt) > 200:
        raise ExpressionError("format_date: the format must be a string of at most 200 characters")
    return d.strftime(fmt)


def parse_date(value: Any, fmt: str | None = None) -> Any:
    """Parse a date into ISO 8601: with a strptime `fmt` ('%d.%m.%Y'), or any ISO 8601 form without one."""
    if value is None:
        return None
    if fmt is None:
        return _parse_iso(value, "parse_date").isoformat()
    try:
        parsed = dt.datetime.strptime(_text(value, "parse_date").strip(), fmt)
    except ValueError as exc:
        raise ExpressionError(f"parse_date: {exc}") from None
    has_time = any(code in fmt for code in ("%H", "%I", "%M", "%S", "%f", "%p", "%z", "%X", "%c", "%T"))
    return parsed.isoformat() if has_time else parsed.date().isoformat()


# ------------------------------------------------------------------ higher-order: tests, filters by name


def _test_fn(state: State, name: Any, args: tuple[Any, ...]) -> Callable[[Any], bool]:
    if name is None:
        return bool
    spec = state.registry.get("test", name) if isinstance(name, str) else None
    if spec is None:
        hint = state.registry.suggest("test", name) if isinstance(name, str) else None
        raise ExpressionError(f"unknown test {name!r}" + (f" (did you mean {hint!r}?)" if hint else ""))
    fn = spec.fn
    if spec.needs_state:
        return lambda x: bool(fn(state, x, *args))
    return lambda x: bool(fn(x, *args))


def select(state: State, value: Any, test: Any = None, *args: Any) -> list[Any]:
    """Items passing a test: `xs | select('odd')`, `xs | select('gt', 10)`; no test → truthy items."""
    items_ = _seq(value, "select")
    fn, tick = _test_fn(state, test, args), _ticker(state)
    out = []
    for i, x in enumerate(items_):
        tick(i)
        if fn(x):
            out.append(x)
    return out


def reject(state: State, value: Any, test: Any = None, *args: Any) -> list[Any]:
    """Items failing a test (the opposite of select)."""
    items_ = _seq(value, "reject")
    fn, tick = _test_fn(state, test, args), _ticker(state)
    out = []
    for i, x in enumerate(items_):
        tick(i)
        if not fn(x):
            out.append(x)
    return out


def selectattr(state: State, value: Any, attribute: Any, test: Any = None, *args: Any) -> list[Any]:
    """Items whose field passes a test: `lines | selectattr('qty', 'gt', 0)`; no test → truthy field."""
    items_ = _seq(value, "selectattr")
    get, fn, tick = _path_getter(attribute, "selectattr"), _test_fn(state, test, args), _ticker(state)
    out = []
    for i, x in enumerate(items_):
        tick(i)
        if fn(get(x)):
            out.append(x)
    return out


def rejectattr(state: State, value: Any, attribute: Any, test: Any = None, *args: Any) -> list[Any]:
    """Items whose field fails a test."""
    items_ = _seq(value, "rejectattr")
    get, fn, tick = _path_getter(attribute, "rejectattr"), _test_fn(state, test, args), _ticker(state)
    out = []
    for i, x in enumerate(items_):
        tick(i)
        if not fn(get(x)):
            out.append(x)
    return out


def map_(state: State, value: Any, *args: Any, attribute: Any = None, default: Any = None) -> list[Any]:
    """`lines | map(attribute='sku')` picks a field of each item; `map('upper')` applies a filter."""
    items_ = _seq(value, "map")
    state.check()
    if attribute is not None:
        if args:
            raise ExpressionError("map: give either a filter name or attribute=..., not both")
        get = _path_getter(attribute, "map")
        return [default if (v := get(x)) is None else v for x in items_]
    if not args or not isinstance(args[0], str):
        raise ExpressionError("map: give a filter name (map('upper')) or attribute='field'")
    name, rest = args[0], args[1:]
    spec = state.registry.get("filter", name)
    if spec is None or spec.inline or spec.literal_arg:
        hint = state.registry.suggest("filter", name)
        why = "cannot be used inside map()" if spec is not None else "is not a filter"
        raise ExpressionError(f"map: {name!r} {why}" + (f" (did you mean {hint!r}?)" if hint and not spec else ""))
    fn, tick = spec.fn, _ticker(state)
    out = []
    for i, x in enumerate(items_):
        tick(i)
        out.append(fn(state, x, *rest) if spec.needs_state else fn(x, *rest))
    return out


def _inline_only(name: str) -> Callable[..., Any]:
    def fn(*_: Any, **__: Any) -> Any:
        raise ExpressionError(f"{name} must be applied directly with a literal argument, e.g. x | {name}(...)")

    fn.__doc__ = f"Inline-only filter {name}."
    return fn


def sum_of_doc(value: Any, expression: str) -> Any:
    """`lines | sum_of('qty * unit_price')`: the exact sum of an expression evaluated for each item.
    Inside the expression, names are the item's fields and `item` is the item itself."""
    raise ExpressionError("sum_of must be applied directly with a literal expression")


def map_each_doc(value: Any, template: Any) -> Any:
    """`lines | map_each({'sku': '{{ item.sku }}', 'amount': '{{ item.qty * item.unit_price }}'})`:
    a new object per item, built from templates with `item` bound to the item (compiled once)."""
    raise ExpressionError("map_each must be applied directly with a literal object")


def builtin_filters(paths: PathCompiler) -> dict[str, Spec]:
    """The built-in filters; JSONPath filters compile their literal path with `paths`."""

    def jsonpath(state: State, value: Any, path: JSONPath | str) -> list[Any]:
        """`input | jsonpath('$.lines[*].sku')`: all matches of an RFC 9535 JSONPath, as a list."""
        state.check()
        compiled = path if isinstance(path, JSONPath) else paths.compile(path)
        return compiled.find(value, state.check, state.limits.max_items)

    def jsonpath_first(state: State, value: Any, path: JSONPath | str) -> Any:
        """`input | jsonpath_first('$.lines[?@.qty > 1].sku')`: the first match, or null."""
        state.check()
        compiled = path if isinstance(path, JSONPath) else paths.compile(path)
        return compiled.first(value)

    def spec(name: str, fn: Callable[..., Any], **kw: Any) -> Spec:
        return Spec(name, fn, doc=(fn.__doc__ or "").strip().splitlines()[0] if fn.__doc__ else "", **kw)

    plain: dict[str, Callable[..., Any]] = {
        "upper": upper,
        "lower": lower,
        "title": title,
        "capitalize": capitalize,
        "trim": trim,
        "truncate": truncate,
        "wordcount": wordcount,
        "default": default,
        "d": default,
        "length": length,
        "count": length,
        "first": first,
        "last": last,
        "reverse": reverse,
        "abs": abs_,
        "round": round_,
        "round_money": round_money,
        "decimal": decimal_,
        "float": decimal_,
        "items": items,
        "keys": keys,
        "values": values,
        "fromjson": fromjson,
        "b64encode": b64encode,
        "b64decode": b64decode,
        "sha256": sha256,
        "hmac_sha256": hmac_sha256,
        "format_date": format_date,
        "parse_date": parse_date,
    }
    stateful: dict[str, Callable[..., Any]] = {
        "int": int_,
        "list": list_,
        "replace": replace,
        "string": string,
        "join": join,
        "sort": sort,
        "unique": unique,
        "min": min_,
        "max": max_,
        "sum": sum_,
        "dictsort": dictsort,
        "groupby": groupby,
        "batch": batch,
        "slice": slice_,
        "tojson": tojson,
        "urlencode": urlencode,
        "select": select,
        "reject": reject,
        "selectattr": selectattr,
        "rejectattr": rejectattr,
        "map": map_,
    }
    out = {name: spec(name, fn) for name, fn in plain.items()}
    out.update({name: spec(name, fn, needs_state=True) for name, fn in stateful.items()})
    for name, fn in (
        ("regex_replace", regex_replace),
        ("regex_match", regex_match),
        ("regex_search", regex_search),
    ):
        out[name] = spec(name, fn, needs_state=True, prepare=compile_pattern)
    for name, path_fn in (("jsonpath", jsonpath), ("jsonpath_first", jsonpath_first)):
        out[name] = spec(name, path_fn, needs_state=True, literal_arg=True, prepare=paths.compile)
    out["sum_of"] = Spec(
        "sum_of",
        _inline_only("sum_of"),
        doc=(sum_of_doc.__doc__ or "").strip(),
        inline=True,
        signature=_signature(sum_of_doc),
    )
    out["map_each"] = Spec(
        "map_each",
        _inline_only("map_each"),
        doc=(map_each_doc.__doc__ or "").strip(),
        inline=True,
        signature=_signature(map_each_doc),
    )
    return out


def _signature(fn: Callable[..., Any]) -> Any:
    import inspect

    return inspect.signature(fn)
