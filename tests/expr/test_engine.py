"""The engine: native values, text, literals, exact decimals, references, templates, errors, caching."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from runtime.errors import ExpressionError, SynclineError
from runtime.expr import CompileError, ExpressionEngine, Limits, RenderError, dumps, loads

ORDER = loads(
    '{"id": "A-1", "customer": {"id": "C-9", "tax_id": "DE1"}, "currency": "eur", "flag": true, '
    '"lines": [{"sku": "X", "qty": 3, "unit_price": 0.1}, {"sku": "Y", "qty": 1, "unit_price": 2.5}]}'
)
CTX = {"input": ORDER, "steps": {"customer": {"output": [{"customer_no": "C-9"}]}}}


@pytest.fixture
def engine() -> ExpressionEngine:
    return ExpressionEngine()


# --------------------------------------------------------------------------- values


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("{{ 1 }}", 1),
        ("{{ 0.1 }}", Decimal("0.1")),
        ("{{ 'x' }}", "x"),
        ("{{ true }}", True),
        ("{{ none }}", None),
        ("{{ [1, 'a', none] }}", [1, "a", None]),
        ("{{ {'a': 1, 'b': [true]} }}", {"a": 1, "b": [True]}),
        ("  {{ input.customer }}\n", {"id": "C-9", "tax_id": "DE1"}),
        ("{{ input.lines | length }}", 2),
        ("{{ input.missing }}", None),
        ("{{ input.lines[1].unit_price }}", Decimal("2.5")),
    ],
)
def test_single_expression_gives_native_value(engine: ExpressionEngine, source: str, expected: Any) -> None:
    got = engine.compile(source).render(CTX)
    assert got == expected and type(got) is type(expected)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("Order {{ input.id }} for {{ input.customer.id }}", "Order A-1 for C-9"),
        ("n={{ 1 }}", "n=1"),
        ("[{{ input.missing }}]", "[]"),
        ("flag={{ input.flag }}/{{ false }}", "flag=true/false"),
        ("p={{ 0.30 }}", "p=0.30"),
        ("big={{ 1E+2 * 1 }}", "big=100"),
        ("obj={{ input.customer }}", 'obj={"id":"C-9","tax_id":"DE1"}'),
        ("{{ 1 }}{{ 2 }}", "12"),
        ("{% if input.flag %}yes{% else %}no{% endif %}", "yes"),
    ],
)
def test_text_around_expressions_renders_a_string(engine: ExpressionEngine, source: str, expected: str) -> None:
    assert engine.compile(source).render(CTX) == expected


@pytest.mark.parametrize("text", ["webshop", "", "price in {EUR}", "Issue {#12}", "50% {off}"])
def test_plain_strings_are_literals(engine: ExpressionEngine, text: str) -> None:
    compiled = engine.compile(text)
    assert compiled.render({}) == text
    assert compiled.is_constant


def test_yaml_scalars_and_nesting(engine: ExpressionEngine) -> None:
    value = {"a": 1, "b": 0.1, "c": None, "d": True, "e": ["x", {"f": "{{ input.id }}"}], 7: "seven"}
    got = engine.compile(value).render(CTX)
    assert got == {"a": 1, "b": Decimal("0.1"), "c": None, "d": True, "e": ["x", {"f": "A-1"}], "7": "seven"}
    assert type(got["b"]) is Decimal


def test_a_whole_mapping_is_one_generated_function(engine: ExpressionEngine) -> None:
    fields: dict[str, Any] = {f"f{i}": f"{{{{ input.lines[{i % 2}].sku }}}}" for i in range(20)}
    fields["nested"] = {"lines": "{{ input.lines | map_each({'s': '{{ item.sku }}'}) }}"}
    compiled = engine.compile(fields)
    assert compiled.python.count("def ") == 1
    assert compiled.render(CTX)["nested"] == {"lines": [{"s": "X"}, {"s": "Y"}]}


def test_render_returns_fresh_objects(engine: ExpressionEngine) -> None:
    compiled = engine.compile({"a": ["x"]})
    first = compiled.render({})
    first["a"].append("mutated")
    assert compiled.render({}) == {"a": ["x"]}


# --------------------------------------------------------------------------- decimals


def test_decimal_sums_are_exact(engine: ExpressionEngine) -> None:
    order = loads('{"lines": [{"amount": 0.1}, {"amount": 0.1}, {"amount": 0.1}]}')
    mapping = engine.compile(
        {"total": "{{ input.lines | sum(attribute='amount') }}", "total2": "{{ input.lines | sum_of('amount') }}"}
    )
    out = mapping.render({"input": order})
    assert out == {"total": Decimal("0.3"), "total2": Decimal("0.3")}
    assert dumps(out) == '{"total":0.3,"total2":0.3}'


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("0.1 + 0.2 == 0.3", True),
        ("0.1 + 0.2", Decimal("0.3")),
        ("1 / 4", Decimal("0.25")),
        ("10 / 4 * 2", Decimal("5.0")),
        ("3 * 0.1", Decimal("0.3")),
        ("7 // 2", 3),
        ("-7 // 2", -4),
        ("7.5 // 2", Decimal("3")),
        ("-7 % 3", 2),
        ("7.5 % 2", Decimal("1.5")),
        ("2 ** 10", 1024),
        ("2 ** -2", Decimal("0.25")),
        ("-(1.5)", Decimal("-1.5")),
        ("1 == 1.0", True),
        ("1 == true", False),
        ("'a' ~ 1.50 ~ none ~ false", "a1.50false"),
    ],
)
def test_arithmetic(engine: ExpressionEngine, source: str, expected: Any) -> None:
    got = engine.compile_expression(source).render({})
    assert got == expected and type(got) is type(expected)


def test_mapping_from_the_language_sketch(engine: ExpressionEngine) -> None:
    fields = {
        "order_ref": "{{ input.id }}",
        "customer_no": "{{ input.customer.id }}",
        "currency": "{{ input.currency | upper }}",
        "source": "webshop",
        "lines": "{{ input.lines | map_each({'item': '{{ item.sku }}', 'quantity': '{{ item.qty }}',\n"
        "   'price': '{{ item.unit_price }}', 'amount': '{{ item.qty * item.unit_price }}'}) }}\n",
        "total": "{{ input.lines | sum_of('qty * unit_price') | round_money(2) }}",
    }
    order = loads(
        '{"id": "A-1", "customer": {"id": "C-9"}, "currency": "eur", '
        '"lines": [{"sku": "X", "qty": 3, "unit_price": 0.1}]}'
    )
    out = engine.compile(fields).render({"input": order})
    assert dumps(out) == (
        '{"order_ref":"A-1","customer_no":"C-9","currency":"EUR","source":"webshop",'
        '"lines":[{"item":"X","quantity":3,"price":0.1,"amount":0.3}],"total":0.30}'
    )


# --------------------------------------------------------------------------- references


@pytest.mark.parametrize(
    ("source", "refs", "free"),
    [
        ("{{ steps.customer.output | length }}", {("steps", "customer", "output")}, {"steps"}),
        ("{{ input.customer.tax_id }}", {("input", "customer", "tax_id")}, {"input"}),
        ("{{ input['lines'][0].sku }}", {("input", "lines", 0, "sku")}, {"input"}),
        ("{{ input.lines[vars.i].sku }}", {("input", "lines"), ("vars", "i")}, {"input", "vars"}),
        ("{{ input.x is defined }}", {("input", "x")}, {"input"}),
        ("{{ 1 + 2 }}", set(), set()),
        (
            "{{ input.lines | map_each({'s': '{{ item.sku }}', 'c': '{{ input.currency }}'}) }}",
            {("input", "lines"), ("item", "sku"), ("input", "currency")},
            {"input"},
        ),
        (
            "{% for l in input.lines %}{{ l.sku }}{{ loop.index }}{% endfor %}",
            {("input", "lines"), ("l", "sku"), ("loop", "index")},
            {"input"},
        ),
        ("{% set t = vars.total %}{{ t.amount }}", {("vars", "total"), ("t", "amount")}, {"vars"}),
    ],
)
def test_references(engine: ExpressionEngine, source: str, refs: set[Any], free: set[str]) -> None:
    compiled = engine.compile(source)
    assert compiled.references == refs
    assert compiled.free_names == free


def test_is_constant(engine: ExpressionEngine) -> None:
    assert engine.compile("{{ 1 + 2 }}").is_constant
    assert engine.compile({"a": "x", "b": "{{ range(3) | sum }}"}).is_constant
    assert not engine.compile("{{ input.id }}").is_constant
    assert not engine.compile("{{ now() }}").is_constant
    assert not engine.compile("{{ uuid() }}").is_constant


# --------------------------------------------------------------------------- conditions


@pytest.mark.parametrize(
    "source",
    [
        "input.flag and input.id == 'A-1'",
        "{{ input.flag and input.id == 'A-1' }}",
        "  {{ input.flag and input.id == 'A-1' }}\n",
    ],
)
def test_conditions_bare_or_braced(engine: ExpressionEngine, source: str) -> None:
    assert engine.compile_expression(source).render(CTX) is True


def test_condition_must_be_one_expression(engine: ExpressionEngine) -> None:
    with pytest.raises(CompileError) as info:
        engine.compile_expression("{{ a }} and {{ b }}")
    assert info.value.code == "SL030"


def test_non_string_conditions(engine: ExpressionEngine) -> None:
    assert engine.compile_expression(True).render({}) is True


# --------------------------------------------------------------------------- templates

TEMPLATE = """\
{#- an order as text -#}
Order {{ input.id }}
{% for line in input.lines if line.qty > 0 -%}
  {{ loop.index }}/{{ loop.length }} {{ line.sku }}{% if loop.first %} (first){% elif loop.last %} (last){% endif %}
{% else -%}
  no lines
{% endfor -%}
{% set total = input.lines | sum_of('qty * unit_price') -%}
Total: {{ total | round_money(2) }}
{% for k, v in input.customer | items %}{{ k }}={{ v }};{% endfor %}
"""


def test_template_for_if_set_loop_whitespace_comments(engine: ExpressionEngine) -> None:
    out = engine.compile_template(TEMPLATE, "order.txt.j2").render(CTX)
    assert out == "Order A-1\n1/2 X (first)\n2/2 Y (last)\nTotal: 2.80\nid=C-9;tax_id=DE1;"


def test_template_for_else_and_set_scoping(engine: ExpressionEngine) -> None:
    source = (
        "{% set n = 'outer' %}{% for x in [] %}x{% else %}empty{% endfor %}|"
        "{% for x in [1, 2] %}{% set n = x %}{{ n }}{% endfor %}|{{ n }}|"
        "{% set block %}B{{ 1 + 1 }}{% endset %}{{ block }}|"
        "{% for a, b in [[1, 2], [3, 4]] %}{{ a + b }},{% endfor %}|"
        "{% for x in [1, 2, 3] %}{{ loop.revindex }}{{ loop.previtem }}{{ loop.nextitem }}{% endfor %}"
    )
    assert engine.compile_template(source).render({}) == "empty|12|outer|B2|3,7,|3221312"


JINJA_COMPATIBLE = [
    TEMPLATE.replace("input.lines | sum_of('qty * unit_price')", "'2.80'").replace(" | round_money(2)", ""),
    "{% for x in input.lines %}{{ x.sku }}{% if not loop.last %}, {% endif %}{% endfor %}",
    "{%- if input.flag -%}\n  yes\n{%- endif %}\n{# gone #}\n{{ input.id ~ '!' }}   {{- input.currency }}",
    "{% set a = 1 %}{% if input.flag %}{% set a = 2 %}{% endif %}{{ a }}",
    "{% for s in ['b', 'a'] | sort %}{{ s | upper }}{% endfor %}{{ [1, 2, 3] | select('odd') | join('-') }}",
    "{{ input.customer | dictsort | map('first') | join(',') }} {{ 'abc'[1:] }}",
    "{{ input.lines | map(attribute='sku') | join }}",
]


@pytest.mark.parametrize("source", JINJA_COMPATIBLE)
def test_templates_render_like_jinja(engine: ExpressionEngine, source: str) -> None:
    """Differential check against Jinja2 itself on templates whose values render the same in both."""
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    expected = ImmutableSandboxedEnvironment().from_string(source).render(CTX)
    assert engine.compile_template(source).render(CTX) == expected


def test_statement_templates_inside_values_see_item(engine: ExpressionEngine) -> None:
    mapping = engine.compile(
        {
            "labels": "{{ input.lines | map_each({'label': '{% if item.qty > 1 %}{{ item.sku }}x{{ item.qty }}"
            "{% else %}{{ item.sku }}{% endif %}'}) }}"
        }
    )
    assert mapping.render(CTX) == {"labels": [{"label": "Xx3"}, {"label": "Y"}]}


@pytest.mark.parametrize(
    ("source", "line", "what"),
    [
        ("a\n{% macro m() %}{% endmacro %}", 2, "macro"),
        ("a\n\n{% include 'other.j2' %}", 3, "include"),
        ("{% import 'x.j2' as x %}", 1, "import"),
        ("{% extends 'base.j2' %}", 1, "extends"),
        ("{% call foo() %}{% endcall %}", 1, "call"),
        ("{% filter upper %}x{% endfilter %}", 1, "filter"),
        ("{% with a = 1 %}{% endwith %}", 1, "with"),
        ("{% for x in y recursive %}{% endfor %}", 1, "recursive"),
        ("{% set ns.a = 1 %}", 1, "namespace"),
    ],
)
def test_unsupported_template_features(engine: ExpressionEngine, source: str, line: int, what: str) -> None:
    with pytest.raises(CompileError) as info:
        engine.compile_template(source, "t.j2")
    assert info.value.code == "SL030"
    assert info.value.line == line
    assert what in str(info.value)


# --------------------------------------------------------------------------- compile errors


def test_syntax_error_has_code_and_line(engine: ExpressionEngine) -> None:
    with pytest.raises(CompileError) as info:
        engine.compile_template("line one\nline two\n{{ input.id + }}\n", "x.j2")
    assert (info.value.code, info.value.line, info.value.col) == ("SL030", 3, 0)
    assert isinstance(info.value, SynclineError)


def test_unknown_filter_suggests(engine: ExpressionEngine) -> None:
    with pytest.raises(CompileError) as info:
        engine.compile({"fields": {"total": "{{ input.lines\n | sum_off('qty') }}"}})
    err = info.value
    assert err.code == "SL033" and err.line == 2
    assert err.hint is not None and "sum_of" in err.hint
    assert err.path == ("fields", "total")


@pytest.mark.parametrize(
    ("source", "code", "hint"),
    [
        ("x is nmber", "SL033", "number"),
        ("uuidd()", "SL033", "uuid"),
        ("x | uppr", "SL033", "upper"),
        ("x | jsonpath('$[')", "SL031", "RFC 9535"),
        ("x | jsonpath(vars.path)", "SL030", None),
        ("x | regex_match('(')", "SL030", None),
        ("x | sum_of(vars.e)", "SL030", None),
        ("x | map_each(vars.e)", "SL030", None),
        ("x | sum_of('qty *')", "SL030", None),
        ("x | round_money(2, 'up', 3, 4)", "SL030", "round_money(places=2, mode='half_up')"),
        ("x | truncate(bogus=1)", "SL030", "truncate"),
        ("x.upper()", "SL030", "x | upper"),
        ("x[1:2:3:4]", "SL030", None),
    ],
)
def test_compile_error_codes(engine: ExpressionEngine, source: str, code: str, hint: str | None) -> None:
    with pytest.raises(CompileError) as info:
        engine.compile_expression(source)
    assert info.value.code == code
    if hint:
        assert hint in str(info.value)


def test_values_that_are_not_json_are_rejected(engine: ExpressionEngine) -> None:
    with pytest.raises(CompileError):
        engine.compile({"a": object()})


# --------------------------------------------------------------------------- runtime errors


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("{{ input.id + 1 }}", "cannot add string and number"),
        ("{{ input.missing * 2 }}", "cannot multiply null and number"),
        ("{{ 1 / 0 }}", "division by zero"),
        ("{{ 1 // 0 }}", "division by zero"),
        ("{{ 1 % 0 }}", "modulo by zero"),
        ("{{ input.id < 3 }}", "cannot compare string and number"),
        ("{{ -input.id }}", "cannot negate string"),
        ("{{ 1E+999999 * 1E+999999 }}", "too large"),
        ("{{ input.lines | sum_of('sku') }}", "item 0 is string"),
        ("{% for x in 5 %}{% endfor %}", "cannot loop over number"),
        ("{% for a, b in [1] %}{% endfor %}", "cannot unpack"),
        ("{{ input.lines | map_each({'a': '{{ item.qty + item.sku }}'}) }}", "cannot add number and string"),
    ],
)
def test_runtime_errors_are_expression_errors(engine: ExpressionEngine, source: str, message: str) -> None:
    with pytest.raises(ExpressionError, match=message) as info:
        engine.compile(source).render(CTX)
    assert isinstance(info.value, RenderError)


def test_runtime_error_names_the_field_and_source(engine: ExpressionEngine) -> None:
    mapping = engine.compile(
        {
            "order_ref": "{{ input.id }}",
            "lines": "{{ input.lines | map_each({'sku': '{{ item.sku }}', 'bad': '{{ item.sku * item.sku }}'}) }}",
        },
        name="fields",
    )
    with pytest.raises(RenderError) as info:
        mapping.render(CTX)
    err = info.value
    assert err.path == ("lines", "map_each", "bad")
    assert err.source == "{{ item.sku * item.sku }}"
    assert "cannot multiply string and string" in str(err)


def test_runtime_error_in_template_has_the_line(engine: ExpressionEngine) -> None:
    compiled = engine.compile_template("a\nb\n{{ 1 }}\n{{ input.id + 1 }}\n", "t.j2")
    with pytest.raises(RenderError) as info:
        compiled.render(CTX)
    assert info.value.line == 4
    assert "line 4" in str(info.value)


def test_context_values_that_are_not_json_do_not_leak_python_errors(engine: ExpressionEngine) -> None:
    with pytest.raises(ExpressionError):
        engine.compile("x={{ obj }}").render({"obj": object()})


# --------------------------------------------------------------------------- caching


def test_compiled_once_and_cached(engine: ExpressionEngine) -> None:
    a = engine.compile({"x": "{{ input.id }}"})
    assert engine.compile({"x": "{{ input.id }}"}) is a
    assert engine.compile({"x": "{{ input.id }}", "y": 1}) is not a
    assert engine.compile_expression("1 + 1") is engine.compile_expression("1 + 1")
    assert engine.compile_template("{{ 1 }}", "a") is engine.compile_template("{{ 1 }}", "a")
    assert engine.compile("1") is not engine.compile(1)


def test_cache_is_bounded() -> None:
    engine = ExpressionEngine(limits=Limits(cache_size=3))
    first = engine.compile_expression("1")
    for i in range(2, 6):
        engine.compile_expression(str(i))
    assert engine.compile_expression("1") is not first
