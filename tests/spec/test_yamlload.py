"""The safe YAML loader: positions, YAML 1.2 scalars, exact decimals, and hostile input."""

from __future__ import annotations

import tracemalloc
from decimal import Decimal

import pytest

from runtime.spec.yamlload import MAX_DEPTH, MAX_FILE_BYTES, YamlLoadError, load_bytes, load_text


def _codes(text: str | bytes) -> list[str]:
    with pytest.raises(YamlLoadError) as info:
        if isinstance(text, bytes):
            load_bytes(text, "t.yaml")
        else:
            load_text(text, "t.yaml")
    return [d.code for d in info.value.diagnostics]


def _codes_and_peak_memory(text: str) -> tuple[list[str], int]:
    """The codes, and the most memory Python held while loading (a measure of work that no busy core skews)."""
    tracemalloc.start()
    try:
        codes = _codes(text)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return codes, peak


def test_positions_of_values_and_keys() -> None:
    (doc,) = load_text("kind: Flow\nsteps:\n  - id: a\n    retry: {attempts: 3}\n", "f.yaml")
    assert doc.pos(("steps", 0, "retry", "attempts")) == (4, 23)
    assert doc.pos(("steps", 0, "retry"), key=True) == (4, 5)
    assert doc.pos(("steps", 0, "nope", "deeper")) == (3, 5)  # nearest ancestor


def test_yaml12_scalars_and_exact_decimals() -> None:
    (doc,) = load_text(
        "a: on\nb: NO\nc: 0777\nd: 0.10\ne: 12\nf: true\ng: ~\nh: '5'\ni: 0x1F\nj: 2026-01-01\nk: yes\n", "f"
    )
    assert doc.data == {
        "a": "on",
        "b": "NO",
        "c": "0777",
        "d": Decimal("0.10"),
        "e": 12,
        "f": True,
        "g": None,
        "h": "5",
        "i": 31,
        "j": "2026-01-01",
        "k": "yes",
    }
    assert isinstance(doc.data["d"], Decimal)


def test_on_as_a_key_stays_a_string() -> None:
    (doc,) = load_text("retry: {on: [timeout, 429]}\n", "f")
    assert doc.data == {"retry": {"on": ["timeout", 429]}}


def test_multi_document_files_keep_their_own_positions() -> None:
    docs = load_text("kind: A\nname: a\n---\nkind: B\nname: b\n---\n", "f")
    assert [d.data["kind"] for d in docs] == ["A", "B"]
    assert docs[1].pos(("name",)) == (5, 7)


def test_merge_keys_are_supported() -> None:
    (doc,) = load_text("base: &b {x: 1, y: 2}\nthing:\n  <<: *b\n  y: 3\n", "f")
    assert doc.data["thing"] == {"x": 1, "y": 3}


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("a: 1\na: 2\n", "SL002"),
        ("x: !!python/object/apply:os.system ['id']\n", "SL003"),
        ("x: !!python/name:os.system\n", "SL003"),
        ("x: !!binary aGVsbG8=\n", "SL003"),
        ("x: !custom 1\n", "SL003"),
        ("x: [" * 100_000, "SL005"),
        ("x:\n" + "".join("  " * i + "- \n" for i in range(1, 200)), "SL005"),
        ("- " * 50_000 + "x\n", "SL005"),
        ("{" * 50_000, "SL005"),
        ("a: b: c\n", "SL001"),
        ("x: *nowhere\n", "SL001"),
        ("x: [1, 2\n", "SL001"),
    ],
)
def test_hostile_yaml_fails_fast_with_a_code(text: str, code: str) -> None:
    codes, peak = _codes_and_peak_memory(text)
    assert codes[0] == code
    assert peak < 64 * len(text) + 4_000_000  # stopped early: nothing built in proportion to what it expands to


def test_alias_bomb_is_stopped() -> None:
    lines = ['a: &a ["x","x","x","x","x","x","x","x","x"]']
    prev = "a"
    for name in "bcdefghi":
        lines.append(f"{name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]")
        prev = name
    codes, peak = _codes_and_peak_memory("\n".join(lines) + "\n")
    assert codes == ["SL004"]
    assert peak < 4_000_000  # 9**9 expanded strings would take gigabytes; stopped before building them


def test_depth_limit_allows_reasonable_nesting() -> None:
    text = "x: " + "[" * (MAX_DEPTH - 2) + "]" * (MAX_DEPTH - 2) + "\n"
    (doc,) = load_text(text, "f")
    assert isinstance(doc.data["x"], list)


def test_size_and_encoding_limits() -> None:
    assert _codes(b"a: 1\n" + b"#" * MAX_FILE_BYTES) == ["SL006"]
    assert _codes(b"a: \xff\xfe\n") == ["SL007"]


def test_keys_must_be_scalars() -> None:
    assert _codes("? [a, b]\n: 1\n") == ["SL012"]
