"""`syncline run` and the outbox: a publish call is committed with its step and sent once the run has
ended (through `--mock` here, so no broker is needed); a send that fails leaves the message in the
store's outbox with its error, says so on standard error, and does not fail the run."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from runtime.cli import main
from runtime.store.base import OutboxRecord
from runtime.store.sql import SqlStore

FLOW = """
kind: Flow
name: ship
trigger: {manual: {}}
steps:
  - id: announce
    call: bus.publish
    with: {shipment: "{{ input.shipment }}"}
"""
BUS = """
kind: Connection
name: bus
type: amqp
config: {url: "amqp://127.0.0.1:1/"}
operations:
  publish: {routing_key: shipments}
"""


def _project(tmp_path: Path, mock: dict[str, object]) -> Path:
    root = tmp_path / "project"
    for folder in ("systems", "flows"):
        (root / folder).mkdir(parents=True)
    (root / "syncline.yaml").write_text("kind: Project\nname: run-outbox\n")
    (root / "systems" / "bus.yaml").write_text(BUS)
    (root / "flows" / "ship.yaml").write_text(FLOW)
    (root / "input.json").write_text(json.dumps({"shipment": "S-9"}))
    (root / "mocks.json").write_text(json.dumps({"bus.publish": mock}))
    return root


def _run(root: Path, store: str, capsys: pytest.CaptureFixture[str]) -> tuple[dict[str, object], str]:
    args = ["run", "ship", "--input", str(root / "input.json"), "--project", str(root), "--store", store]
    code = main([*args, "--mock", str(root / "mocks.json"), "--format", "json"])
    out, err = capsys.readouterr()
    assert code == 0, out + err
    report: dict[str, object] = json.loads(out)
    return report, err


def _outbox(store_url: str) -> list[OutboxRecord]:
    async def read() -> list[OutboxRecord]:
        store = SqlStore(store_url)
        await store.open()
        try:
            return await store.list_outbox()
        finally:
            await store.close()

    return asyncio.run(read())


def test_run_sends_the_message_after_the_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = _project(tmp_path, {"output": {"confirmed": True}})
    store = f"sqlite:///{tmp_path / 'ops.db'}"
    report, err = _run(root, store, capsys)
    [step] = report["steps"]  # type: ignore[misc]
    assert step["output"]["queued"] is True
    assert "outbox: 1 message(s) sent" in err
    [message] = _outbox(store)
    assert (message.status, message.result, message.message_id) == (
        "sent",
        {"confirmed": True},
        step["output"]["message_id"],
    )


def test_a_failed_send_stays_in_the_outbox(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = _project(tmp_path, {"error": {"message": "broker unreachable", "reason": "connect"}})
    store = f"sqlite:///{tmp_path / 'ops.db'}"
    report, err = _run(root, store, capsys)
    assert report["run"]["status"] == "succeeded"  # type: ignore[index]
    assert "not sent: broker unreachable; kept for the next attempt" in err
    [message] = _outbox(store)
    assert (message.status, message.attempts, message.last_error) == ("pending", 1, "broker unreachable")
