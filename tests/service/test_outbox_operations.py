"""Operating the outbox: given-up messages listed and requeued through the admin API (viewer lists,
operator requeues, same message id) and through `syncline outbox list|requeue` on the store."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from runtime.store.base import NewRun, OutboxMessage, Store
from runtime.store.factory import open_store
from tests.service.conftest import StartNode
from tests.service.harness import OPERATOR, VIEWER, Sink, write_project

FLOW = """
trigger:
  webhook: {path: /hooks/orders}
steps:
  - call: sink.post
    with: {path: orders, body: "{{ input }}"}
"""
ROOT = Path(__file__).resolve().parents[2]


async def given_up(store: Store, *, sent: int = 1) -> tuple[str, list[str]]:
    """One run with a message given up after its attempts and `sent` messages sent; their ids."""
    now = time.time()
    run = (await store.create_run(NewRun(flow="orders", input={}), now=now)).run
    messages = [
        OutboxMessage(run.id, f"step{i}", "bus.publish", f"msg-{run.id}-{i}", {"spec": {}, "params": {"i": i}}, now)
        for i in range(1 + sent)
    ]
    await store.write_journal(run.id, [], outbox=messages)
    for claimed in await store.claim_outbox("elsewhere", now=now, lease=60):
        if claimed.message_id == messages[0].message_id:
            await store.outbox_failed(
                claimed.seq, "elsewhere", "bus.publish: connection refused", now=now, retry_at=None
            )
        else:
            await store.outbox_sent(claimed.seq, now=now)
    return messages[0].message_id, [m.message_id for m in messages[1:]]


async def test_the_api_lists_given_up_messages_and_requeues_them_with_their_id(
    tmp_path: Path, sink: Sink, nodes: StartNode
) -> None:
    node = await nodes(write_project(tmp_path / "p", sink.url, {"orders": FLOW}))
    await node.service.outbox.stop()  # nothing sends: the test sees the rows as the API leaves them
    failed_id, sent_ids = await given_up(node.service.store, sent=2)

    listed = await node.admin("GET", "/api/v1/outbox", VIEWER, params={"status": "failed"})
    assert listed.status_code == 200, listed.text
    [message] = listed.json()["messages"]
    assert (message["message_id"], message["status"], message["attempts"]) == (failed_id, "failed", 1)
    assert message["last_error"] == "bus.publish: connection refused" and message["operation"] == "bus.publish"
    assert listed.json()["next_after"] is None

    page = await node.admin("GET", "/api/v1/outbox", VIEWER, params={"limit": "2"})
    assert [m["message_id"] for m in page.json()["messages"]] == [failed_id, sent_ids[0]]
    after = page.json()["next_after"]
    rest = await node.admin("GET", "/api/v1/outbox", VIEWER, params={"after": str(after)})
    assert [m["message_id"] for m in rest.json()["messages"]] == [sent_ids[1]]

    bad = await node.admin("GET", "/api/v1/outbox", VIEWER, params={"status": "lost"})
    assert bad.status_code == 400 and bad.json()["param"] == "status"
    refused = await node.admin("POST", f"/api/v1/outbox/{failed_id}/requeue", VIEWER)
    assert refused.status_code == 403

    done = await node.admin("POST", f"/api/v1/outbox/{failed_id}/requeue", OPERATOR)
    assert done.status_code == 200, done.text
    [requeued] = done.json()["requeued"]
    assert (requeued["message_id"], requeued["seq"], requeued["status"], requeued["attempts"]) == (
        failed_id,
        message["seq"],
        "pending",
        0,
    )
    again = await node.admin("POST", f"/api/v1/outbox/{failed_id}/requeue", OPERATOR)
    assert again.status_code == 404 and again.json()["code"] == "not_found"
    sent = await node.admin("POST", f"/api/v1/outbox/{sent_ids[0]}/requeue", OPERATOR)
    assert sent.status_code == 404  # a sent message is never sent twice by a requeue
    pending = await node.admin("GET", "/api/v1/outbox", VIEWER, params={"status": "pending"})
    assert [m["message_id"] for m in pending.json()["messages"]] == [failed_id]


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "runtime.cli", *args], cwd=ROOT, capture_output=True, text=True, timeout=120
    )


async def test_the_cli_lists_and_requeues_a_given_up_message(tmp_path: Path) -> None:
    project = write_project(tmp_path / "p", "http://127.0.0.1:9", {"orders": FLOW})
    url = f"sqlite:///{tmp_path / 'ops.db'}"
    store = open_store(url, project)
    await store.open()
    try:
        failed_id, _sent = await given_up(store)
    finally:
        await store.close()
    common = ("--project", str(project), "--store", url)

    listing = cli("outbox", "list", "--status", "failed", *common)
    assert listing.returncode == 0, listing.stderr
    assert failed_id in listing.stdout and "bus.publish: connection refused" in listing.stdout
    requeued = cli("outbox", "requeue", failed_id, *common, "--format", "json")
    assert requeued.returncode == 0, requeued.stderr
    [shown] = json.loads(requeued.stdout)
    assert (shown["message_id"], shown["status"], shown["attempts"]) == (failed_id, "pending", 0)
    assert cli("outbox", "list", "--status", "failed", *common).stdout == "no outbox messages\n"
    again = cli("outbox", "requeue", failed_id, *common)
    assert again.returncode == 1 and "no given-up (failed) message" in again.stderr
