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
