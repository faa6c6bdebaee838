"""Text contrast of the console's stylesheet (WCAG 2, AA: 4.5:1), computed from the CSS colours: each
rule's `color` against the `background-color` of the same rule, or else against the background it is
drawn on (the header's under `.top`, the page's elsewhere). The browser test measures the rendered
pages too; this one names the rule that is off."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

CSS = Path(__file__).resolve().parents[2] / "runtime" / "console" / "static" / "console.css"
PAGE = "#ffffff"
HEADER = "#1b1f24"


def luminance(colour: str) -> float:
    value = colour.lstrip("#")
    if len(value) == 3:
        value = "".join(ch * 2 for ch in value)
    channels = [int(value[i : i + 2], 16) / 255 for i in (0, 2, 4)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(a: str, b: str) -> float:
    high, low = sorted((luminance(a), luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def text_rules() -> list[tuple[str, str, str]]:
    """(selector, colour, background) for every rule that sets a text colour."""
    text = re.sub(r"/\*.*?\*/", "", CSS.read_text(), flags=re.S)
    found = []
    for selector, body in re.findall(r"([^{}]+)\{([^{}]*)\}", text):
        colour = re.search(r"(?:^|;)\s*color:\s*(#[0-9a-fA-F]{3,6})", body)
        if colour is None:
            continue
        background = re.search(r"background-color:\s*(#[0-9a-fA-F]{3,6})", body)
        drawn_on = HEADER if selector.strip().startswith(".top") else PAGE
        found.append((selector.strip(), colour.group(1), background.group(1) if background else drawn_on))
    return found


def test_the_formula_matches_wcag_examples() -> None:
    assert contrast("#000000", "#ffffff") == pytest.approx(21.0)
    assert contrast("#777777", "#ffffff") == pytest.approx(4.48, abs=0.01)  # the classic near miss


def test_every_text_colour_meets_aa() -> None:
    rules = text_rules()
    assert len(rules) > 20
    low = [f"{sel}: {fg} on {bg} = {contrast(fg, bg):.2f}" for sel, fg, bg in rules if contrast(fg, bg) < 4.5]
    assert low == []


def test_status_badges_are_distinguishable_by_text_too() -> None:
    """Status badges carry their name as text, so colour is never the only cue."""
    template = (CSS.parents[1] / "templates" / "macros.j2").read_text()
    assert '{{ value | replace("_", " ") }}</span>' in template
