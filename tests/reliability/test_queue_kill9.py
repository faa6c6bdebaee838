"""`kill -9` of `syncline serve` during a burst of 2,000 RabbitMQ messages: after a restart every
message is processed exactly once per key.

The node consumes a durable queue (`trigger: {queue: ...}`, the message id as each run's identity)
and its one step posts the message to the idempotent sink (tests/reliability/sink.py), whose
`Idempotency-Key` is the engine's default step key (stable across resumes of one run). While the
burst is being published, once the sink has seen a few hundred messages, the node is killed with
SIGKILL (runs in flight, batches accepted but not acknowledged) and started again on the same store.

Proven, read from the store and the sink:
- every message has exactly one run (keyed by its message id) and it succeeded; nothing was lost;
- the sink applied every message, and every delivery of one message carried one and the same
  idempotency key (a repeat after the kill is the same call, which the sink recognises);
- the queue is empty at the end: every message was acknowledged.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.connectors.brokers import need, unique
from tests.reliability.node import Node, eventually, write_project
from tests.reliability.sink import Sink

pytestmark = pytest.mark.service

MESSAGES = 2000
URL = "amqp://guest:guest@127.0.0.1:5672/"

BUS = """\
kind: Connection
name: bus
type: amqp
config: {{url: "amqp://127.0.0.1:5672/", username: guest, password: guest}}
"""

FLOW = """\
kind: Flow
name: ingest
trigger:
  queue: {{connection: bus, subject: {queue}, prefetch: 64}}
steps:
  - id: deliver
    call: sink.deliver
    with: {{body: "{{{{ input }}}}"}}
    retry: {{attempts: 6, backoff: exponential, initial: 100ms, max: 2s}}
on_failure: dead_letter
"""


def runs_by_key(store: Path) -> tuple[Counter[str], Counter[str]]:
    """(runs per message id, statuses) of the flow, read from the node's SQLite store."""
    with sqlite3.connect(f"file:{store}?mode=ro", uri=True) as db:
        rows = db.execute("SELECT meta, status FROM syncline_runs WHERE flow = 'ingest'").fetchall()
    keys: Counter[str] = Counter()
    statuses: Counter[str] = Counter()
    for meta, status in rows:
        keys[str(json.loads(meta)["source"]["key"])] += 1
        statuses[status] += 1
    return keys, statuses


async def test_kill9_during_a_rabbitmq_burst_processes_every_message_once(
    tmp_path: Path, nodes: Callable[..., Node], record_property: Callable[[str, object], None]
) -> None:
    need("rabbitmq", 5672)
    aio_pika = pytest.importorskip("aio_pika")
    started = time.monotonic()
    queue = unique("syncline_kill9")
    project = write_project(tmp_path / "project", {"ingest": FLOW.format(queue=queue)})
    (project / "systems" / "bus.yaml").write_text(BUS.format())
    store = tmp_path / "store.db"
    connection = await aio_pika.connect(URL)
    channel = await connection.channel(publisher_confirms=True)
    await channel.declare_queue(queue, durable=True)
    try:
        with Sink(delay=0.002) as sink:
            node = nodes(
                project, f"sqlite:///{store}", tmp_path / "node.log", env={"SINK_URL": sink.url}, lease=2.0, workers=32
            )
            node.start()
            await node.wait_ready()

            async def publish() -> None:
                for n in range(MESSAGES):
                    body = json.dumps({"id": f"e-{n}", "n": n}).encode()
                    message = aio_pika.Message(
                        body, message_id=f"e-{n}", delivery_mode=aio_pika.DeliveryMode.PERSISTENT
                    )
                    await channel.default_exchange.publish(message, routing_key=queue)
                    if n % 100 == 99:
                        await asyncio.sleep(0.05)  # a burst that lasts about a second: the kill lands inside it

            burst = asyncio.create_task(publish())
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 30
            while len(sink.keys_by_event()) < 300:  # mid-burst: runs in flight, batches not yet acknowledged
                assert loop.time() < deadline, f"the node took too few messages:\n{node.log_tail()}"
                await asyncio.sleep(0.01)
            node.kill()
            seen_at_kill = len(sink.keys_by_event())
            publishing_at_kill = not burst.done()
            await node.restart()
            await burst

            async def all_done() -> str | None:
                keys, statuses = runs_by_key(store)
                if len(keys) < MESSAGES or statuses["succeeded"] < MESSAGES:
                    return f"{len(keys)} messages with runs, statuses {dict(statuses)}"
                return None

            await eventually(all_done, timeout=60, interval=0.3)
            declared = await channel.declare_queue(queue, passive=True)
            assert await node.stop() == 0, node.log_tail()
    finally:
        await channel.queue_delete(queue)
        await connection.close()

    context = f"node log {node.log_path}"
    keys, statuses = runs_by_key(store)
    assert set(keys) == {f"e-{n}" for n in range(MESSAGES)}, context
    twice = {k: c for k, c in keys.items() if c > 1}
    assert not twice, f"messages with more than one run: {list(twice.items())[:5]} ({context})"
    assert statuses == Counter({"succeeded": MESSAGES}), f"{statuses} ({context})"
    by_event = sink.keys_by_event()
    assert set(by_event) == {f"e-{n}" for n in range(MESSAGES)}, "the sink missed messages"
    several = {e: k for e, k in by_event.items() if len(k) != 1 or None in k}
    assert not several, f"messages delivered under more than one key: {list(several.items())[:5]}"
    applied = sink.applied()
    assert len(applied) == MESSAGES  # one effect per message
    assert declared.declaration_result.message_count == 0, "messages left in the queue"
    repeated = sum(1 for deliveries in applied.values() if len(deliveries) > 1)
    summary = (
        f"queue kill -9: {MESSAGES} messages, killed with {seen_at_kill} seen by the sink "
        f"(burst {'still publishing' if publishing_at_kill else 'over'}), {repeated} calls repeated with the "
        f"same key after the restart, {time.monotonic() - started:.1f}s"
    )
    record_property("summary", summary)
    print(summary)
