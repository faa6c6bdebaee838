"""Hostile values (issue 8, item 1): data that would make one operation run away is refused before
the work, with a `LimitError` whose render error has reason `expression_limit`, and the render's
time budget is checked inside filters and list helpers, not only in template loops.

Time is never measured here: the budget tests give `Limits` a clock that moves one second each
time it is read, so "over budget" means "the budget was checked often enough", deterministically.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from runtime.engine.errors import classify
from runtime.expr import CompileError, ExpressionEngine, Limits, RenderError, loads

POISON = loads('{"id": "D-1", "qty": 1e999999999}')  # parsed as Decimal('1E+999999999') in microseconds


@pytest.fixture
def engine() -> ExpressionEngine:
    return ExpressionEngine()


def refused(engine: ExpressionEngine, source: Any, context: dict[str, Any]) -> RenderError:
    with pytest.raises(RenderError) as info:
        engine.compile(source).render(context)
    assert info.value.reason == "expression_limit", str(info.value)
    return info.value


def test_the_poison_order_of_the_issue_fails_its_field_with_a_clear_error(engine: ExpressionEngine) -> None:
    error = refused(engine, {"id": "{{ input.id }}", "qty": "{{ input.qty | int }}"}, {"input": POISON})
    assert str(error) == (
        "int: the number 1E+999999999 is too large to convert to an integer (more than 4300 digits) "
        "at qty in '{{ input.qty | int }}'"
    )
    failure = classify(error)  # how the step fails: fatal, reason `expression_limit`
    assert failure.as_dict() == {"message": str(error), "class": "fatal", "reason": "expression_limit"}


HUGE = Decimal("1E+999999999")
LONG = Decimal("9" * 5000)


@pytest.mark.parametrize(
    ("source", "x", "message"),
    [
        ("{{ x | int }}", HUGE, "too large to convert to an integer"),
        ("{{ x | int(0) }}", HUGE, "too large to convert to an integer"),  # not silently the default
        ("{{ x | int }}", "1e999999999", "too large to convert to an integer"),
        ("{{ x | int }}", LONG, "too large to convert to an integer"),
        ("{{ x | int(base=16) }}", "f" * 5000, "too large for an integer"),
        ("{{ x | map('int') }}", [1, HUGE], "too large to convert to an integer"),
        ("{{ x is even }}", HUGE, "too large to convert to an integer"),
        ("{{ x is odd }}", HUGE, "too large to convert to an integer"),
        ("{{ x is divisibleby 3 }}", HUGE, "too large to convert to an integer"),
        ("{{ 6 is divisibleby x }}", HUGE, "too large to convert to an integer"),
        ("{{ x | select('even') | list }}", [2, HUGE], "too large to convert to an integer"),
        ("{{ x | round(2) }}", HUGE, "too many digits to round"),
        ("{{ x | round_money(2) }}", Decimal("9" * 100_000), "99999999999999999999999999999999999..."),
        ("{{ x * 2 }}", HUGE, "number too large"),
        ("{{ 2 ** x }}", HUGE, "number too large"),
        ("{{ range(10 ** 4000) }}", None, "more than the limit of 100000 items"),
        ("{{ [x] * 1000 }}", "a" * 10_000, "more than 1048576 characters as JSON"),
        ("{{ [[x] * 100] * 1000 }}", "a" * 100, "more than 1048576 characters as JSON"),
        ("{{ x | regex_replace('', 'b' * 2000) }}", "a" * 1000, "would exceed the limit"),
        ("{{ x | regex_replace('(a+)', '\\\\1' * 400) }}", "a" * 5000, "would exceed the limit"),
        ("{{ (x * 10000) | string }}", ["a" * 100] * 10, "more than 1048576 characters"),
        ("{{ x | list }}", "a" * 200_000, "more than the limit of 100000"),
        ("{{ 'aaaa' | regex_match(x) }}", "((a{1000}){1000}){1000}", "repeats too much"),
        ("{{ 'aaaa' is regex_match(x) }}", "[a-z]{4000000000}", "repeats too much"),
        ("{{ 'aaaa' | regex_search(x) }}", "(a|b){60000}", "repeats too much"),
        ("{{ 'aaaa' | regex_replace(x, 'b') }}", "(a{1000,}){1000,}", "repeats too much"),
    ],
)
def test_hostile_values_are_refused_before_the_work(
    engine: ExpressionEngine, source: str, x: Any, message: str
) -> None:
    assert message in str(refused(engine, source, {"x": x}))


def _shared(width: int, depth: int, leaf: Any) -> str:
    """A template building a value of width**depth leaves by sharing (each level is `width` names)."""
    lines = [f"{{% set v0 = [{', '.join(['x'] * width)}] %}}"]
    for level in range(1, depth):
        lines.append(f"{{% set v{level} = [{', '.join([f'v{level - 1}'] * width)}] %}}")
    return "".join(lines)


@pytest.mark.parametrize(
    "output", ["{{ v7 | tojson }}", "{{ v7 }}", "{{ 'v=' ~ v7 }}", "{{ v7 | join(',') }}", "{{ [v7] | unique }}"]
)
def test_shared_values_are_measured_before_they_are_written(engine: ExpressionEngine, output: str) -> None:
    # 10**8 copies of a 1,000-character string: 100 GB of JSON if written
    template = _shared(10, 8, "x") + output
    with pytest.raises(RenderError, match="characters") as info:
        engine.compile_template(template, "shared.j2").render({"x": "a" * 1000})
    assert info.value.reason == "expression_limit"


@pytest.mark.parametrize(
    ("source", "x", "expected"),
    [
        ("{{ [1, 2, 3][x] }}", HUGE, None),  # out of range like any other index
        ("{{ [1, 2, 3][x] }}", Decimal("-1E+999999999"), None),
        ("{{ 'abc'[x] }}", HUGE, None),
        ("{{ [1, 2, 3][x] }}", Decimal("1E-999999999"), None),
        ("{{ [1, 2, 3][x] }}", Decimal("2.0"), 3),
        ("{{ [1, 2, 3][x] }}", 10**4000, None),
        ("{{ x | int }}", Decimal("1E-999999999"), 0),
        ("{{ x | int }}", Decimal("-42.9"), -42),
        ("{{ x | int('n/a') }}", "twelve", "n/a"),
        ("{{ x is even }}", Decimal("4E+3"), True),
        ("{{ '' * x }}", 10**4000, ""),
        ("{{ [] * x }}", 10**4000, []),
        ("{{ 'abc' | replace('a', 'b', x) }}", 10**4000, "bbc"),
        ("{{ x | regex_replace('(b)', '[\\\\1]') }}", "abcb", "a[b]c[b]"),
        ("{{ [x] * 3 }}", "ab", ["ab", "ab", "ab"]),
        ("{{ x | string }}", HUGE, "1E+999999999"),
        ("{{ x | regex_match('^\\\\d{4}-\\\\d{2}-\\\\d{2}$') }}", "2026-12-03", True),
        ("{{ x | regex_search('(?:a{0,65535}){0,65535}') }}", "aaa", "aaa"),
        ("{{ x | regex_match(x) }}", "a{100000}", False),
    ],
)
def test_large_but_harmless_values_still_work(engine: ExpressionEngine, source: str, x: Any, expected: Any) -> None:
    assert engine.compile(source).render({"x": x}) == expected


def test_a_literal_pattern_that_repeats_too_much_is_refused_when_the_file_is_checked(engine: ExpressionEngine) -> None:
    with pytest.raises(CompileError, match="repeats too much") as info:
        engine.compile("{{ x | regex_match('((a{1000}){1000}){1000}') }}")
    assert info.value.code == "SL030"


def test_the_remainder_of_a_huge_decimal_is_refused_not_rounded(engine: ExpressionEngine) -> None:
    # x - 7 * (x // 7) at 28 digits answered 7.8E+999971, a "remainder" larger than 7
    with pytest.raises(RenderError, match="invalid arithmetic"):
        engine.compile("{{ x % 7 }}").render({"x": Decimal("7" * 100_000)})
    remainders = engine.compile(["{{ -7.5 % 2 }}", "{{ 7.5 % -2 }}", "{{ -0.3 % 0.1 }}", "{{ 10 % 3 }}"]).render({})
    assert [str(r) for r in remainders] == ["0.5", "-0.5", "0.0", "1"]


# ------------------------------------------------------------------------------- the time budget


class Ticking:
    """A monotonic clock that moves one second every time it is read."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 1.0
        return self.now


@pytest.fixture
def ticking() -> ExpressionEngine:
    """An engine whose 50 s budget is used up after about 50 budget checks."""
    return ExpressionEngine(limits=Limits(time_budget=50.0, clock=Ticking()))


ROWS = [{"n": i, "s": f"r{i}"} for i in range(2000)]


@pytest.mark.parametrize(
    "source",
    [
        "{{ rows | select('defined') | list }}",
        "{{ rows | reject('none') | list }}",
        "{{ rows | selectattr('n', 'ge', 0) | list }}",
        "{{ rows | rejectattr('n', 'lt', 0) | list }}",
        "{{ rows | map(attribute='n') | map('string') | list }}",
        "{{ rows | unique(attribute='n') }}",
        "{{ rows | groupby('n') }}",
        "{{ rows | join(',') }}",
        "{{ rows | map_each({'n': '{{ item.n }}'}) }}",
        "{{ rows | sum_of('n') }}",
        "{{ rows | map(attribute='s') | join(',') | regex_replace('r', '\\\\g<0>') }}",
        "{{ rows | jsonpath('$[*].n') }}",
    ],
)
def test_the_budget_is_checked_inside_filters_and_list_helpers(ticking: ExpressionEngine, source: str) -> None:
    with pytest.raises(RenderError, match=r"render exceeded its time budget of 50 s") as info:
        ticking.compile(source).render({"rows": ROWS})
    assert info.value.reason == "expression_limit"


@pytest.mark.parametrize(
    "source",
    [
        "{{ rows[:20] | select('defined') | list | length }}",
        "{{ rows[:20] | map_each({'n': '{{ item.n }}'}) | length }}",
        "{{ rows[:20] | sum_of('n') }}",
    ],
)
def test_a_render_within_its_budget_is_not_stopped(ticking: ExpressionEngine, source: str) -> None:
    assert ticking.compile(source).render({"rows": ROWS}) in (20, 190)


def test_the_step_of_an_over_budget_render_fails_with_reason_expression_limit(ticking: ExpressionEngine) -> None:
    with pytest.raises(RenderError) as info:
        ticking.compile({"n": "{{ rows | map_each({'n': '{{ item.n }}'}) }}"}).render({"rows": ROWS})
    failure = classify(info.value)
    assert failure.as_dict()["reason"] == "expression_limit"
    assert failure.as_dict()["class"] == "fatal"
