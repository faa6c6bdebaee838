"""`syncline validate` on queue triggers: the kind is installed, its options are checked with
positions, and a connection whose connector cannot be consumed from is refused (SL047)."""

from __future__ import annotations

from pathlib import Path

from runtime.compiler import check_project
from tests.triggers.trigger_project import trigger_project

BUS = """\
kind: Connection
name: bus
type: amqp
system: wms
config: {url: "amqp://127.0.0.1:5672/"}
"""


def _project(root: Path, trigger: str) -> Path:
    return trigger_project(root, "queue", trigger, ("bus", BUS))


def test_a_queue_trigger_on_a_broker_connection_validates(tmp_path: Path) -> None:
    trigger = "{connection: bus, subject: wms.shipments, prefetch: 8, max_redeliveries: 2, format: text}"
    result = check_project(_project(tmp_path, trigger))
    assert not result.errors, result.errors
    assert not [w for w in result.warnings if w.code == "SL051"], "the trigger's connection counts as used"


def test_a_connection_that_cannot_be_consumed_from_is_refused_with_its_position(tmp_path: Path) -> None:
    result = check_project(_project(tmp_path, "{connection: api, subject: orders}"))
    (error,) = result.errors
    assert error.code == "SL047"
    assert "connection 'api' is of type 'http', which provides no messages" in error.message
    assert error.line == 4 and error.path.endswith("f.yaml")
    assert "'amqp'" in (error.hint or "") and "'mqtt'" in (error.hint or "")


def test_bad_options_are_reported_at_the_trigger(tmp_path: Path) -> None:
    result = check_project(_project(tmp_path, "{connection: bus, subject: q, prefetch: 0, format: xml}"))
    messages = " ".join(e.message for e in result.errors)
    assert "prefetch" in messages and "format" in messages, result.errors
    assert all(e.line == 4 for e in result.errors), result.errors


def test_a_missing_schema_file_is_reported_at_the_schema_line(tmp_path: Path) -> None:
    root = _project(tmp_path, "\n    connection: bus\n    subject: q\n    schema: schemas/shipment.json")
    result = check_project(root)
    (error,) = result.errors
    assert error.code == "SL023"
    assert "schema file 'schemas/shipment.json' not found" in error.message
    assert error.line == 7 and error.path.endswith("f.yaml")
    (root / "schemas").mkdir()
    (root / "schemas" / "shipment.json").write_text('{"type": "object", "required": ["id"]}')
    assert not check_project(root).errors


def test_a_canonical_schema_and_a_bad_schema_file(tmp_path: Path) -> None:
    assert not check_project(
        _project(tmp_path / "a", "{connection: bus, subject: q, schema: canonical:shipment}")
    ).errors
    root = _project(tmp_path / "b", "{connection: bus, subject: q, schema: schemas/s.json}")
    (root / "schemas").mkdir()
    (root / "schemas" / "s.json").write_text('{"type": 12}')
    (error,) = check_project(root).errors
    assert error.code == "SL024" and "not a valid JSON Schema" in error.message
