"""Known Jinja2 sandbox escapes and resource attacks: each fails fast with a clear Syncline error."""

from __future__ import annotations

import tracemalloc
from collections.abc import Iterator
from typing import Any

import pytest

from runtime.errors import ExpressionError, SandboxError, SynclineError
from runtime.expr import CompileError, ExpressionEngine, Limits, loads

# every attack is refused before it builds what it asks for (a gigabyte string, a 10**9 list): measured
# as the memory Python held meanwhile, which a busy machine does not skew as it skews seconds
SMALL = 64 * 1024 * 1024


@pytest.fixture
def engine() -> ExpressionEngine:
    return ExpressionEngine(limits=Limits(time_budget=0.3))


@pytest.fixture
def bounded() -> Iterator[None]:
    tracemalloc.start()
    try:
        yield
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < SMALL, f"the attack was refused only after building {peak / 2**20:.0f} MiB"


ESCAPES = [
    "''.__class__.__mro__",
    "''.__class__.__mro__[1].__subclasses__()",
    "'{0.__class__}'.format(x)",
    "'{0.__class__.__init__.__globals__}'.format(x)",
    "x | attr('format')",
    "x | attr('__class__')",
    "'%s' | format(x)",
    "x.format_map(y)",
    "x.format",  # a plain lookup is fine ...
    "cycler.__init__.__globals__",
    "joiner.__init__.__globals__.os",
    "namespace.__init__.__globals__",
    "lipsum()",
    "lipsum.__globals__",
    "cycler(1, 2)",
    "self.__init__",
    "__builtins__",
    "x['__class__']",
    "x.__dict__",
    "().__class__.__base__",
    "range.__self__",
    "x.items()",
    "x.pop('a')",
    "getattr(x, 'y')",
    "__import__('os')",
    "x.__secrets__",
]


@pytest.mark.parametrize("source", ESCAPES)
def test_escape_attempts_are_refused(engine: ExpressionEngine, source: str, bounded: None) -> None:
    if source == "x.format":
        # ... because it is a dictionary lookup on JSON data, never a Python attribute
        assert engine.compile_expression(source).render({"x": "text"}) is None
        assert engine.compile_expression(source).render({"x": {"format": 1}}) == 1
        return
    with pytest.raises((SandboxError, CompileError)) as info:
        engine.compile_expression(source).render({"x": "abc", "y": {}})
    assert isinstance(info.value, SynclineError)
    message = str(info.value)
    assert "not allowed" in message or "unknown" in message or "not available" in message


@pytest.mark.parametrize(
    "source",
    ["x | attr('format')", "''.__class__", "x.upper()", "lipsum()", "'a'.format_map(y)"],
)
def test_sandbox_violations_are_both_compile_and_sandbox_errors(engine: ExpressionEngine, source: str) -> None:
    with pytest.raises(SandboxError) as info:
        engine.compile_expression(source)
    assert isinstance(info.value, CompileError)
    assert info.value.code in ("SL030", "SL033")


def test_dunder_keys_from_data_are_only_dictionary_lookups(engine: ExpressionEngine) -> None:
    compiled = engine.compile_expression("x[k]")
    assert compiled.render({"x": "abc", "k": "__class__"}) is None
    assert compiled.render({"x": {"__class__": "data"}, "k": "__class__"}) == "data"
    assert engine.compile_expression("x[k][k]").render({"x": [], "k": "__class__"}) is None


def test_reserved_context_keys_are_unreachable(engine: ExpressionEngine) -> None:
    with pytest.raises(SandboxError):
        engine.compile_expression("__secrets__('TOKEN')")
    with pytest.raises(SandboxError):
        engine.compile_expression("__secrets__")


def test_generated_code_contains_no_source_text_and_no_builtins(engine: ExpressionEngine) -> None:
    evil = 'input["\'); import os; os.system(\'x\'); (\'"] ~ "\\"\\"\\" hi" ~ input.exec_me'
    compiled = engine.compile({"k') or __import__('os') #": "{{ " + evil + " }}", "n": "import os"})
    assert "import" not in compiled.python
    assert "os" not in compiled.python.replace("_pos", "")
    assert "exec_me" not in compiled.python
    assert compiled._fn.__globals__["__builtins"[:11] + "__"] == {}
    out = compiled.render({"input": {"exec_me": "!"}})
    assert out == {"k') or __import__('os') #": '""" hi!', "n": "import os"}


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("range(10**9)", "limit"),
        ("range(10**9) | length", "limit"),
        ("'a' * 10**9", "limit"),
        ("10**9 * 'a'", "limit"),
        ("10**100000", "digits"),
        ("2**(2**40)", "digits"),
        ("(10**4000) * (10**4000)", "digits"),
        ("[1] * 10**9", "limit"),
        ("[1, 2] * 10**6", "limit"),
        ("('a' * 1000000) ~ ('a' * 1000000)", "limit"),
        ("('a' * 1000000) + ('a' * 1000000)", "limit"),
        ("('a' * 1000000) | replace('a', 'aa')", "limit"),
        ("range(1000) | map('string') | join('x' * 10000)", "limit"),
        ("('\"' * 600000) | tojson", "limit"),
        ("[1] | slice(10**9)", "limit"),
        ("range(10) | batch(10**9)", "limit"),
        ("('a' * 60 ~ '!') | regex_match('(a|aa)+$')", "too long"),
        ("range(100000) | map_each({'a': '{{ range(100000) | sum }}'})", "time budget"),
    ],
)
def test_resource_bounds(engine: ExpressionEngine, source: str, message: str, bounded: None) -> None:
    with pytest.raises(ExpressionError, match=message):
        engine.compile_expression(source).render({})


def test_loops_that_would_run_forever_hit_the_time_budget(engine: ExpressionEngine, bounded: None) -> None:
    template = "{% for i in range(100000) %}{% for j in range(100000) %}{% set k = j %}{% endfor %}{% endfor %}"
    with pytest.raises(ExpressionError, match=r"time budget of 0\.3 s"):
        engine.compile_template(template, "forever.j2").render({})


def test_nested_data_loops_check_the_budget(engine: ExpressionEngine, bounded: None) -> None:
    big = {"rows": list(range(50_000))}
    source = "{{ input.rows | map_each({'n': '{{ input.rows | sum_of(\"item\") }}'}) }}"
    with pytest.raises(ExpressionError, match="time budget"):
        engine.compile(source).render({"input": big})


def test_template_output_is_bounded(engine: ExpressionEngine, bounded: None) -> None:
    with pytest.raises(ExpressionError, match="output exceeds"):
        engine.compile_template("{% for i in range(3000) %}{{ 'a' * 1000 }}{% endfor %}").render({})


def _deep(n: int) -> Any:
    value: list[Any] = []
    for _ in range(n):
        value = [value]
    return value


@pytest.mark.parametrize(
    "source", ["x | tojson", "x | string", "'v=' ~ x", "x | jsonpath('$..a')", "x | unique", "[x] | unique"]
)
def test_deeply_nested_data(engine: ExpressionEngine, source: str, bounded: None) -> None:
    with pytest.raises(ExpressionError):
        engine.compile_expression(source).render({"x": _deep(100_000)})


def test_deeply_nested_json_is_refused_by_loads(bounded: None) -> None:
    with pytest.raises(ValueError):
        loads("[" * 100_000 + "]" * 100_000)


@pytest.mark.parametrize(
    "source",
    ["(" * 300 + "1" + ")" * 300, "a" + ".b" * 500, "[" * 200 + "]" * 200, "-" * 300 + "1", "x" + " | upper" * 300],
)
def test_deeply_nested_expressions_do_not_compile(engine: ExpressionEngine, source: str, bounded: None) -> None:
    with pytest.raises(CompileError) as info:
        engine.compile_expression(source)
    assert info.value.code == "SL030"


def test_deeply_nested_values_do_not_compile(engine: ExpressionEngine) -> None:
    with pytest.raises(CompileError, match="nested too deeply"):
        engine.compile(_deep(1000))


@pytest.mark.parametrize(
    "template",
    [
        "{% set f = 'x'.format %}{{ f('{0.__class__}') }}",
        "{% set f = x.format_map %}{{ f(y) }}",
        "{% for f in [x.format] %}{{ f(1) }}{% endfor %}",
    ],
)
def test_stored_format_references_cannot_be_called(engine: ExpressionEngine, template: str) -> None:
    with pytest.raises(SandboxError, match="unknown function"):
        engine.compile_template(template)


def test_template_and_include_names_never_come_from_data(engine: ExpressionEngine) -> None:
    with pytest.raises(CompileError, match="include"):
        engine.compile_template("{% include input.file %}")
