"""The canonical data model: every shipped schema is a valid JSON Schema (2020-12) that accepts the bundled
example's realistic documents and refuses broken ones; `canonical:<name>` works wherever a schema path
goes, and an unknown name is a diagnostic naming the known ones."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from runtime import canonical
from runtime.compiler import check_project

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "examples" / "back-office" / "samples"


def load(name: str) -> dict:
    return json.loads((canonical.FOLDER / f"{name}.json").read_text())


def test_the_eight_schemas_are_shipped_and_valid() -> None:
    assert canonical.names() == [
        "customer",
        "invoice",
        "order",
        "payment",
        "product",
        "quote",
        "shipment",
        "subscription",
    ]
    for name in canonical.names():
        schema = load(name)
        jsonschema.Draft202012Validator.check_schema(schema)
        assert schema["$id"].endswith(f"/canonical/{name}.json") and schema["description"]


@pytest.mark.parametrize(
    ("schema", "sample"),
    [("order", "order_jpy.json"), ("subscription", "subscription_jpy.json"), ("invoice", "invoice_usd.json")],
)
def test_realistic_documents_are_valid(schema: str, sample: str) -> None:
    jsonschema.Draft202012Validator(load(schema)).validate(json.loads((SAMPLES / sample).read_text()))


def test_broken_documents_are_refused() -> None:
    order = json.loads((SAMPLES / "order_jpy.json").read_text())
    validator = jsonschema.Draft202012Validator(load("order"))
    for broken in (
        {**order, "currency": "yen"},
        {**order, "lines": []},
        {**order, "totals": {"subtotal": 1}},
        {**order, "ship_to": {"city": "Tokyo"}},
        {**order, "surprise": True},
    ):
        assert list(validator.iter_errors(broken)), broken


def test_an_unknown_canonical_schema_names_the_known_ones(tmp_path: Path) -> None:
    (tmp_path / "syncline.yaml").write_text("kind: Project\nname: p\n")
    (tmp_path / "mappings").mkdir()
    (tmp_path / "mappings" / "m.yaml").write_text(
        "kind: Mapping\nname: m\ninput_schema: canonical:ordr\nfields: {a: 1}\n"
    )
    result = check_project(tmp_path)
    (error,) = [d.text() for d in result.errors]
    assert "mappings/m.yaml:3" in error and "'canonical:ordr' not found" in error and "order, payment" in error
