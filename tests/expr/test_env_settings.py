"""`env('NAME')` settings: a fallback as second argument, `| default(...)` applies when the setting is
not set, and an unset setting used without either is an error that names it."""

from __future__ import annotations

from typing import Any

import pytest

from runtime.errors import ExpressionError
from runtime.expr import ENV_KEY, ExpressionEngine

SET = {"REGION": "eu-1", "EMPTY": ""}


@pytest.fixture(scope="module")
def engine() -> ExpressionEngine:
    return ExpressionEngine()


def render(engine: ExpressionEngine, source: str, environ: dict[str, str] = SET) -> Any:
    return engine.compile(source).render({ENV_KEY: environ.get})


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("{{ env('REGION') }}", "eu-1"),
        ("{{ env('UNSET') | default('http://127.0.0.1:8080') }}", "http://127.0.0.1:8080"),
        ("{{ env('REGION') | default('us-1') }}", "eu-1"),
        ("{{ env('UNSET') | d('x') }}", "x"),
        ("{{ env('UNSET', 'fallback') }}", "fallback"),
        ("{{ env('REGION', 'fallback') }}", "eu-1"),
        ("{{ env('UNSET', none) }}", None),
        ("{{ env('UNSET', 'a') | default('b') }}", "a"),
        ("{{ env('EMPTY') | default('b') }}", ""),
        ("{{ env('EMPTY') | default('b', true) }}", "b"),
        ("{{ env('UNSET') | default('http://h') }}/v1", "http://h/v1"),
        ("{{ (env('UNSET') | default('8')) ~ '0' }}", "80"),
        ("{{ env('UNSET', 3) + 1 }}", 4),
    ],
)
def test_fallbacks(engine: ExpressionEngine, source: str, expected: Any) -> None:
    assert render(engine, source) == expected


@pytest.mark.parametrize(
    "source",
    [
        "{{ env('SYNC_TARGET_URL') }}",
        "{{ env('SYNC_TARGET_URL') | upper | default('x') }}",
        "x-{{ env('SYNC_TARGET_URL') }}",
    ],
)
def test_unset_without_fallback_names_the_setting(engine: ExpressionEngine, source: str) -> None:
    with pytest.raises(ExpressionError) as caught:
        render(engine, source)
    message = str(caught.value)
    assert "SYNC_TARGET_URL" in message and "not set" in message, message
    assert "env('SYNC_TARGET_URL', " in message and "default(" in message, message


def test_fallback_is_checked_at_compile_time(engine: ExpressionEngine) -> None:
    with pytest.raises(Exception, match="env"):
        engine.compile("{{ env('A', 'b', 'c') }}")
