"""`syncline schema` is a valid JSON Schema that accepts the bundled project and rejects typos."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match

from runtime.plugins import default_registry
from runtime.spec.schema import json_schema
from runtime.spec.yamlload import load_file

ROOT = Path(__file__).resolve().parents[2]
PROJECT_FILES = sorted(
    [ROOT / "syncline.yaml"]
    + [p for d in ("systems", "governance", "flows", "mappings", "tests/flows") for p in (ROOT / d).glob("*.yaml")]
)


@pytest.fixture(scope="module")
def validator() -> Draft202012Validator:
    schema = json_schema(default_registry())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


@pytest.mark.parametrize("path", PROJECT_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_bundled_documents_satisfy_the_schema(path: Path, validator: Draft202012Validator) -> None:
    for doc in load_file(path):
        errors = [e.message for e in validator.iter_errors(doc.data)]
        assert not errors, errors[:3]


def test_schema_rejects_unknown_keys_and_wrong_kinds(validator: Draft202012Validator) -> None:
    flow = {"kind": "Flow", "name": "x", "trigger": {"manual": {}}, "steps": [{"call": "a.b", "retires": 3}]}
    assert not validator.is_valid(flow)
    assert not validator.is_valid({"kind": "Flwo", "name": "x"})
    ok = {
        "kind": "Flow",
        "name": "x",
        "trigger": {"manual": {}},
        "steps": [{"call": "a.b", "retry": {"attempts": 3}}],
    }
    assert validator.is_valid(ok)


def _walk(node: object) -> list[dict[str, object]]:
    found: list[dict[str, object]] = []
    if isinstance(node, dict):
        found.append(node)
        for value in node.values():
            found += _walk(value)
    elif isinstance(node, list):
        for value in node:
            found += _walk(value)
    return found


def test_the_committed_schema_needs_no_openapi_discriminator() -> None:
    """Standard validators ignore OpenAPI's `discriminator`: the choice by `kind` (and by `type`)
    is made with if/then, which every JSON Schema 2020-12 validator understands."""
    committed = json.loads((ROOT / "schemas" / "syncline.schema.json").read_text())
    assert not [n for n in _walk(committed) if "discriminator" in n]


@pytest.mark.parametrize(
    ("doc", "where"),
    [
        ({"kind": "Flow", "name": "x", "trigger": {"manual": {}}, "stepz": []}, "stepz"),
        (
            {"kind": "Flow", "name": "x", "trigger": {"manual": {}}, "steps": [{"id": "a", "set": {}, "oops": 1}]},
            "oops",
        ),
        ({"kind": "Mapping", "name": "m", "fields": 3}, "fields"),
        ({"kind": "Connection", "name": "c", "type": "http", "system": "s", "config": {"base_url": 1}}, "base_url"),
    ],
)
def test_best_match_reports_the_error_against_the_documents_own_kind(doc: dict[str, object], where: str) -> None:
    """check-jsonschema and editors report `best_match`: for a Flow it must be the Flow's own error,
    not "does not match the Project branch"."""
    committed = json.loads((ROOT / "schemas" / "syncline.schema.json").read_text())
    error = best_match(Draft202012Validator(committed).iter_errors(doc))
    assert error is not None
    text = f"{error.message} at {list(error.absolute_path)}"
    assert where in text, text
    assert "Project" not in text, text
    assert error.absolute_path or error.validator not in ("oneOf", "anyOf"), text  # not "matches no kind"
