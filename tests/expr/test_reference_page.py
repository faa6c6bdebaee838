"""docs/expressions.md (generated from the allow-list) shows tests as they are written and says what
`defined` does: the tested value is `x`, not an argument, operator-named tests are for select/reject,
and a key holding null is defined."""

from __future__ import annotations

import re

from runtime.expr.reference import render

PAGE = render()
ROWS = {m[0]: (m[1], m[2]) for m in re.findall(r"^\| (\S+) \| (`[^`]*`) \| (.*) \|$", PAGE, flags=re.M)}


def test_tests_are_shown_without_the_tested_value_as_an_argument() -> None:
    assert ROWS["even"][0] == "`x is even`"
    assert ROWS["defined"][0] == "`x is defined`"
    assert ROWS["divisibleby"][0] == "`x is divisibleby(num)`"
    assert "(value" not in "".join(call for call, _ in ROWS.values() if call.startswith("`x is"))


def test_operator_named_tests_are_shown_as_select_arguments() -> None:
    assert not re.search(r"`x is [^a-z_`]", PAGE), re.findall(r"`x is [^a-z_`][^`]*`", PAGE)
    assert ROWS["!="][0] == "`select('!=', other)`"


def test_defined_says_a_key_holding_null_is_defined() -> None:
    assert "even when it holds null" in ROWS["defined"][1]
    assert "missing (null)" not in PAGE
