"""`syncline schema` is a valid JSON Schema that accepts the bundled project and rejects typos."""

from __future__ import annotations

from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

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
