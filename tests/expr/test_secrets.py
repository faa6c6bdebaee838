"""Secrets are masked wherever they would be shown."""

from __future__ import annotations

from runtime.expr import Secret, redact, redact_value


def test_secret_repr_never_shows_the_value() -> None:
    s = Secret("hunter2")
    assert s == "hunter2" and isinstance(s, str)
    assert "hunter2" not in repr(s) and "hunter2" not in repr({"token": s})


def test_redact_text_masks_every_occurrence_longest_first() -> None:
    text = "token=abc123 again abc123; short abc"
    assert redact(text, ["abc", "abc123", ""]) == "token=*** again ***; short ***"


def test_redact_value_walks_json() -> None:
    value = {"auth": "Bearer abc123", "list": ["x abc123"], "n": 1, "abc123": None}
    assert redact_value(value, [Secret("abc123")]) == {"auth": "Bearer ***", "list": ["x ***"], "n": 1, "***": None}
