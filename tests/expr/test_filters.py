"""Every built-in filter, test and function, at least once (a guard test keeps the table complete)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest

from runtime.errors import ExpressionError
from runtime.expr import CLOCK_KEY, ENV_KEY, SECRETS_KEY, ExpressionEngine, Secret, SecretText, default_registry, loads

ORDER = loads(
    """{"id": "A-1", "note": "  hello World  ", "currency": "eur", "tags": ["b", "a", "B", "c"],
        "customer": {"id": "C-9", "name": "jane doe"},
        "lines": [{"sku": "X", "qty": 3, "unit_price": 0.1, "group": "g1"},
                  {"sku": "Y", "qty": 1, "unit_price": 2.50, "group": "g2"},
                  {"sku": "Z", "qty": 2, "unit_price": 1.25, "group": "g1"}],
        "nums": [3, 1, 2, 3], "when": "2024-03-01T10:15:00+01:00", "empty": [], "nothing": null}"""
)

# (expression, expected result). Every entry is one evaluation against CONTEXT.
FILTERS: list[tuple[str, Any]] = [
    ("input.currency | upper", "EUR"),
    ("'EUR' | lower", "eur"),
    ("input.customer.name | title", "Jane Doe"),
    ("'hello World' | capitalize", "Hello world"),
    ("input.note | trim", "hello World"),
    ("'xxabcxx' | trim('x')", "abc"),
    ("'a-b-c' | replace('-', '/')", "a/b/c"),
    ("'a-b-c' | replace('-', '', 1)", "ab-c"),
    ("'the quick brown fox' | truncate(13)", "the quick..."),
    ("'the quick brown fox' | truncate(12, true)", "the quick..."),
    ("'abcdefghij' | truncate(6, killwords=true, end='~')", "abcde~"),
    ("input.nothing | default('n/a')", "n/a"),
    ("input.missing | d(5)", 5),
    ("'' | default('x', true)", "x"),
    ("input.lines | length", 3),
    ("input.customer | count", 2),
    ("input.lines | first", {"sku": "X", "qty": 3, "unit_price": Decimal("0.1"), "group": "g1"}),
    ("input.nums | last", 3),
    ("input.empty | first", None),
    ("input.tags | join(', ')", "b, a, B, c"),
    ("input.lines | join('|', attribute='sku')", "X|Y|Z"),
    ("'abc' | list", ["a", "b", "c"]),
    ("input.customer | list", ["id", "name"]),
    ("input.tags | sort", ["a", "b", "B", "c"]),
    ("input.tags | sort(case_sensitive=true)", ["B", "a", "b", "c"]),
    ("input.lines | sort(attribute='unit_price', reverse=true) | map(attribute='sku') | list", ["Y", "Z", "X"]),
    ("input.tags | unique", ["b", "a", "c"]),
    ("input.lines | unique(attribute='group') | map(attribute='sku') | list", ["X", "Y"]),
    ("input.nums | reverse", [3, 2, 1, 3]),
    ("'abc' | reverse", "cba"),
    ("input.nums | min", 1),
    ("input.lines | max(attribute='qty') | attribute_free", None),  # replaced below
    ("input.nums | sum", 9),
    ("input.lines | sum(attribute='unit_price')", Decimal("3.85")),
    ("-3.5 | abs", Decimal("3.5")),
    ("2.345 | round(2)", Decimal("2.35")),
    ("2.345 | round(1, 'floor')", Decimal("2.3")),
    ("'42' | int", 42),
    ("3.99 | int", 3),
    ("'abc' | int(0)", 0),
    ("'12.50' | decimal", Decimal("12.50")),
    ("'1.5' | float", Decimal("1.5")),
    ("input.nothing | string", ""),
    ("true | string", "true"),
    ("0.30 | string", "0.30"),
    ("input.customer | tojson", '{"id":"C-9","name":"jane doe"}'),
    ("{'a': 0.10} | tojson(2)", '{\n  "a": 0.10\n}'),
    ("'{\"a\": 1.5}' | fromjson", {"a": Decimal("1.5")}),
    ("input.lines | map(attribute='sku') | list", ["X", "Y", "Z"]),
    ("input.tags | map('upper') | list", ["B", "A", "B", "C"]),
    ("input.lines | map(attribute='missing', default=0) | list", [0, 0, 0]),
    ("input.nums | select('odd') | list", [3, 1, 3]),
    ("input.nums | select('gt', 1)", [3, 2, 3]),
    ("[0, 1, none, 'x'] | select", [1, "x"]),
    ("input.nums | reject('odd')", [2]),
    ("input.lines | selectattr('qty', 'gt', 1) | map(attribute='sku') | list", ["X", "Z"]),
    ("input.lines | selectattr('group', 'eq', 'g2') | map(attribute='sku') | list", ["Y"]),
    ("input.lines | rejectattr('group', 'eq', 'g1') | map(attribute='sku') | list", ["Y"]),
    ("input.lines | groupby('group') | map(attribute='grouper') | list", ["g1", "g2"]),
    ("(input.lines | groupby('group'))[0].list | length", 2),
    ("{'b': 1, 'a': 2} | dictsort", [["a", 2], ["b", 1]]),
    ("{'b': 1, 'a': 2} | dictsort(by='value', reverse=true)", [["a", 2], ["b", 1]]),
    ("{'b': 1, 'a': 2} | items", [["b", 1], ["a", 2]]),
    ("{'b': 1, 'a': 2} | keys", ["b", "a"]),
    ("{'b': 1, 'a': 2} | values", [1, 2]),
    ("[1, 2, 3, 4, 5] | batch(2)", [[1, 2], [3, 4], [5]]),
    ("[1, 2, 3] | batch(2, 0)", [[1, 2], [3, 0]]),
    ("[1, 2, 3, 4, 5] | slice(2)", [[1, 2, 3], [4, 5]]),
    ("'one two  three' | wordcount", 3),
    ("'a b/c&d' | urlencode", "a%20b/c%26d"),
    ("{'q': 'a b', 'n': 1} | urlencode", "q=a+b&n=1"),
    ("'user:pass' | b64encode", "dXNlcjpwYXNz"),
    ("'dXNlcjpwYXNz' | b64decode", "user:pass"),
    ("'abc' | sha256", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
    ("'msg' | hmac_sha256('key')", "2d93cbc1be167bcb1637a4a23cbff01a7878f0c50ee833954ea5221bb1b8c628"),
    ("'msg' | hmac_sha256('key', 'base64')", "LZPLwb4We8sWN6SiPL/wGnh48MUO6DOVTqUiG7G4xig="),
    ("'ord-12-x' | regex_replace('[0-9]+', '#')", "ord-#-x"),
    ("'ord-12-x' | regex_replace('(\\\\w+)-(\\\\d+)', '\\\\2:\\\\1')", "12:ord-x"),
    ("'DE123' | regex_match('^[A-Z]{2}[0-9]+$')", True),
    ("'de123' | regex_match('^[A-Z]{2}', ignorecase=true)", True),
    ("'order 42 of 7' | regex_search('[0-9]+')", "42"),
    ("'order 42' | regex_search('order ([0-9]+)')", "42"),
    ("input.when | format_date('%d.%m.%Y %H:%M')", "01.03.2024 10:15"),
    ("'2024-03-01' | format_date('%Y/%m/%d')", "2024/03/01"),
    ("'01.03.2024' | parse_date('%d.%m.%Y')", "2024-03-01"),
    ("'01.03.2024 10:15' | parse_date('%d.%m.%Y %H:%M')", "2024-03-01T10:15:00"),
    ("'2024-03-01T10:15:00Z' | parse_date", "2024-03-01T10:15:00+00:00"),
    ("2.345 | round_money", Decimal("2.35")),
    ("2.345 | round_money(2, 'half_even')", Decimal("2.34")),
    ("2.341 | round_money(2, 'up')", Decimal("2.35")),
    ("2.349 | round_money(2, 'down')", Decimal("2.34")),
    ("-2.341 | round_money(2, 'ceiling')", Decimal("-2.34")),
    ("-2.341 | round_money(2, 'floor')", Decimal("-2.35")),
    ("input.lines | sum_of('qty * unit_price')", Decimal("5.30")),
    ("input.lines | sum_of('{{ item.qty }}')", 6),
    (
        "input.lines | map_each({'sku': '{{ item.sku }}', 'n': '{{ item.qty * 2 }}', 'k': 'fixed'}) | first",
        {"sku": "X", "n": 6, "k": "fixed"},
    ),
    ("input | jsonpath('$.lines[?@.unit_price > 1].sku')", ["Y", "Z"]),
    ("input | jsonpath_first('$.lines[?@.qty == 2].sku')", "Z"),
    ("input | jsonpath_first('$.nope')", None),
]
FILTERS[31] = ("input.lines | max(attribute='qty') | jsonpath_first('$.sku')", "X")

TESTS: list[tuple[str, Any]] = [
    ("input.customer is defined", True),
    ("input.customer.nope is defined", False),
    ("input.nothing is defined", True),  # the key exists (holding null)
    ("input.nope is undefined", True),
    ("(input.nope | default(none)) is defined", False),
    ("input.nothing is none", True),
    ("1.5 is number and not (true is number)", True),
    ("'x' is string", True),
    ("input.customer is mapping", True),
    ("input.tags is sequence and not ('x' is sequence)", True),
    ("false is boolean", True),
    ("3 is integer and not (3.0 is integer)", True),
    ("3.0 is decimal and not (3 is decimal)", True),
    ("3 is eq 3.0", True),
    ("3 is ne 4", True),
    ("3 is lt 4", True),
    ("3 is gt 4", False),
    ("3 is le 3", True),
    ("3 is ge 4", False),
    ("'a' is in ['a', 'b']", True),
    ("[1] is truthy", True),
    ("0 is falsy", True),
    ("4 is even", True),
    ("3 is odd", True),
    ("9 is divisibleby 3", True),
    ("'AB12' is regex_match('^[A-Z]+[0-9]+$')", True),
    ("input.nums | select('divisibleby', 3) | list", [3, 3]),
    ("input.nums | select('in', [1, 2]) | list", [1, 2]),
    ("[1, 'a', none] | select('string') | list", ["a"]),
]

FUNCTIONS: list[tuple[str, Any]] = [
    ("range(3)", [0, 1, 2]),
    ("range(1, 10, 4)", [1, 5, 9]),
    ("dict(a=1, b='x')", {"a": 1, "b": "x"}),
    ("uuid() | regex_match('^[0-9a-f]{8}-[0-9a-f]{4}-4')", True),
    ("now()", "2026-01-02T03:04:05.000+00:00"),
    ("env('REGION')", "eu-1"),
    ("secret('TOKEN')", SecretText("s3cr3t")),
]

CONTEXT = {
    "input": ORDER,
    CLOCK_KEY: lambda: dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC),
    ENV_KEY: {"REGION": "eu-1"}.get,
    SECRETS_KEY: {"TOKEN": "s3cr3t"}.get,
}


@pytest.fixture(scope="module")
def engine() -> ExpressionEngine:
    return ExpressionEngine()


@pytest.mark.parametrize(("source", "expected"), FILTERS + TESTS + FUNCTIONS)
def test_builtin(engine: ExpressionEngine, source: str, expected: Any) -> None:
    got = engine.compile_expression(source).render(CONTEXT)
    assert got == expected
    assert type(got) is type(expected)


def test_every_builtin_is_exercised() -> None:
    registry = default_registry()
    sources = " ".join(src for src, _ in FILTERS + TESTS + FUNCTIONS)
    aliases = {"==", "!=", "<", "<=", ">", ">=", "equalto", "lessthan", "greaterthan", "float"}
    missing = [
        name
        for table in (registry.filters, registry.tests, registry.functions)
        for name in table
        if name not in aliases and not _mentions(sources, name)
    ]
    assert not missing, f"no test uses: {missing}"


def _mentions(text: str, name: str) -> bool:
    import re

    return re.search(rf"(\| *{name}\b|\bis {name}\b|'{name}'|\b{name}\()", text) is not None


def test_secret_is_a_secret_and_stays_one_through_string_work(engine: ExpressionEngine) -> None:
    value = engine.compile_expression("secret('TOKEN')").render(CONTEXT)
    assert isinstance(value, Secret) and repr(value) == "Secret('***')"
    header = engine.compile("Bearer {{ secret('TOKEN') }}").render(CONTEXT)
    assert header == "Bearer s3cr3t" and isinstance(header, Secret)
    basic = engine.compile_expression("('me:' ~ secret('TOKEN')) | b64encode").render(CONTEXT)
    assert isinstance(basic, Secret)
    assert engine.compile_expression("secret('TOKEN') is defined").is_constant is False


def test_secret_and_env_without_resolvers_say_so(engine: ExpressionEngine) -> None:
    for fn in ("secret", "env"):
        with pytest.raises(ExpressionError, match=rf"{fn}\(\) is not available here"):
            engine.compile_expression(f"{fn}('X')").render({})
    with pytest.raises(ExpressionError, match="is not defined"):
        engine.compile_expression("secret('NOPE')").render(CONTEXT)


def test_now_without_a_clock_is_current_utc(engine: ExpressionEngine) -> None:
    text = engine.compile_expression("now()").render({})
    moment = dt.datetime.fromisoformat(text)
    assert moment.utcoffset() == dt.timedelta(0)
    assert abs((dt.datetime.now(dt.UTC) - moment).total_seconds()) < 5


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("input.nums | select('nope')", "unknown test 'nope'"),
        ("input.tags | map('nope')", "'nope' is not a filter"),
        ("input.tags | map('sum_of')", "cannot be used inside map"),
        ("'x' | b64decode", "not valid base64"),
        ("'x' | fromjson", "invalid JSON"),
        ("'abc' | decimal", "cannot convert"),
        ("[1, 'a'] | sort", "cannot be ordered"),
        ("'x' | round_money", "not a number"),
        ("1 | round_money(2, 'sideways')", "unknown mode"),
        ("'x' | format_date", "not an ISO 8601"),
        ("'2.5' is even", "expected an integer"),
        ("3 is divisibleby 0", "division by zero"),
        ("range(1, 2, 0)", "step cannot be zero"),
        ("'a' | regex_replace(input.id ~ '(', '')", "invalid regular expression"),
    ],
)
def test_filter_errors_are_clear(engine: ExpressionEngine, source: str, message: str) -> None:
    with pytest.raises(ExpressionError, match=message):
        engine.compile_expression(source).render(CONTEXT)


def test_string_filters_pass_null_through(engine: ExpressionEngine) -> None:
    assert engine.compile_expression("input.nope | upper").render(CONTEXT) is None
    assert engine.compile_expression("input.nope | length").render(CONTEXT) == 0
