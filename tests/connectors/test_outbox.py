"""Publishing through the transactional outbox, under a service, against the real brokers.

A flow publishes to RabbitMQ and to NATS JetStream. The service commits each message with its step
and its dispatcher sends it after (`runtime/service/outbox.py`). Tested: both messages arrive with
the outbox's message id; a node that crashed between the commit and the send (its dispatcher down)
leaves the messages to the next node on the same SQLite file, which sends them — and when it also
loses the "sent" mark after the broker confirmed, the resend is the same message by id: JetStream
stores it once, a RabbitMQ consumer deduping by `message_id` sees it once; a send refused because
the broker cannot be reached (a cut loopback proxy) is retried with backoff and delivered.
"""

from __future__ import annotations

import textwrap
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from runtime.engine.outbox import OutboxRetry
from runtime.service.gauges import ScrapeGauges
from runtime.service.service import Service
from runtime.store.base import OutboxRecord, StoreError
from runtime.store.sql import SqlStore
from tests.connectors.brokers import TcpProxy, need, unique, wait_until

pytestmark = pytest.mark.service

AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"
NATS_URL = "nats://127.0.0.1:4222"

FLOW = """
kind: Flow
name: ship
trigger: {manual: {}}
steps:
  - id: to_rabbit
    call: rabbit.publish
    with: {shipment: "{{ input.shipment }}", weight: "{{ input.weight }}"}
  - id: to_jetstream
    call: js.publish
    with: {shipment: "{{ input.shipment }}"}
"""


@dataclass
class Brokers:
    queue: str
    stream: str
    subject: str
    aio_pika: Any
    nats: Any

    async def rabbit_messages(self) -> list[Any]:
        """Every message in the queue, taken (acknowledged)."""
        connection = await self.aio_pika.connect(AMQP_URL)
        taken = []
        async with connection:
            queue = await (await connection.channel()).get_queue(self.queue)
            while (message := await queue.get(no_ack=True, fail=False)) is not None:
                taken.append(message)
        return taken

    async def stream_messages(self) -> list[Any]:
        client = await self.nats.connect(NATS_URL)
        try:
            js = client.jetstream()
            count = (await js.stream_info(self.stream)).state.messages
            return [await js.get_msg(self.stream, seq) for seq in range(1, count + 1)]
        finally:
            await client.close()


@pytest.fixture
async def brokers() -> AsyncIterator[Brokers]:
    need("rabbitmq", 5672)
    need("nats", 4222)
    aio_pika = pytest.importorskip("aio_pika")
    nats = pytest.importorskip("nats")
    found = Brokers(unique("syncline_outbox"), unique("SYNCLINE_OUTBOX").upper(), "", aio_pika, nats)
    found.subject = f"{found.stream.lower()}.shipments"
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        await (await connection.channel()).declare_queue(found.queue, durable=False)
    client = await nats.connect(NATS_URL)
    await client.jetstream().add_stream(name=found.stream, subjects=[found.subject])
    await client.close()
    yield found
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        await (await connection.channel()).queue_delete(found.queue)
    client = await nats.connect(NATS_URL)
    await client.jetstream().delete_stream(found.stream)
    await client.close()


def project(tmp_path: Path, brokers: Brokers, *, amqp_port: int = 5672) -> Path:
    root = tmp_path / "project"
    for folder in ("systems", "flows"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    (root / "syncline.yaml").write_text("kind: Project\nname: outbox\ndefaults:\n  retry: {attempts: 1}\n")
    (root / "systems" / "rabbit.yaml").write_text(
        textwrap.dedent(
            f"""
            kind: Connection
            name: rabbit
            type: amqp
            config:
              url: "amqp://127.0.0.1:{amqp_port}/"
              username: guest
              password: guest
              connect_timeout: 2s
              reconnect: {{min_delay: 20ms, max_delay: 100ms}}
            operations:
              publish: {{routing_key: {brokers.queue}, headers: {{X-Event-Type: shipment.created}}}}
            """
        )
    )
    (root / "systems" / "js.yaml").write_text(
        textwrap.dedent(
            f"""
            kind: Connection
            name: js
            type: nats
            config: {{servers: "{NATS_URL}"}}
            operations:
              publish: {{subject: {brokers.subject}, stream: {brokers.stream}}}
            """
        )
    )
    (root / "flows" / "ship.yaml").write_text(FLOW)
    return root


async def start(root: Path, store_url: str, *, dispatch: bool = True) -> Service:
    service = Service(root, store_url, lease=1.0, poll_interval=0.05, triggers=False)
    service.outbox.poll_interval = 0.05
    service.outbox.retry = OutboxRetry(first=0.02, cap=0.1, attempts=100)
    await service.start()
    if not dispatch:  # the node dies between the commit and the send: its dispatcher never runs
        await service.outbox.stop()
    return service


async def submit(service: Service, shipment: str = "S-9") -> str:
    created = await service.executor(service.plan).submit("ship", {"shipment": shipment, "weight": 12.5})
    service.workers.notify()
    return created.run.id


async def ended(service: Service, run_id: str) -> Any:
    async def check() -> Any:
        run = await service.store.get_run(run_id)
        return run if run is not None and run.status == "succeeded" else None

    return await wait_until(check, timeout=20)


async def all_sent(service: Service, run_id: str, count: int = 2) -> list[OutboxRecord]:
    async def check() -> list[OutboxRecord] | None:
        records = await service.store.list_outbox(run_id=run_id)
        return records if len(records) == count and all(r.status == "sent" for r in records) else None

    found: list[OutboxRecord] = await wait_until(check, timeout=20)
    return found


def sent_metric(service: Service, operation: str) -> float:
    value = service.metrics.registry.get_sample_value("syncline_outbox_sent_total", {"operation": operation})
    return value or 0.0


async def test_a_flow_publishes_to_rabbitmq_and_jetstream_through_the_outbox(tmp_path: Path, brokers: Brokers) -> None:
    service = await start(project(tmp_path, brokers), f"sqlite:///{tmp_path / 'state.db'}")
    try:
        run_id = await submit(service)
        run = await ended(service, run_id)
        journal = {step.step_key: step.output for step in await service.store.journal(run_id)}
        assert journal["to_rabbit"]["queued"] is True and journal["to_jetstream"]["queued"] is True
        records = {r.operation: r for r in await all_sent(service, run_id)}
        assert records["rabbit.publish"].message_id == journal["to_rabbit"]["message_id"]
        assert records["rabbit.publish"].attempts == 1 and records["rabbit.publish"].sent_at is not None
        assert records["js.publish"].result["seq"] == 1 and records["js.publish"].result["duplicate"] is False
        assert sent_metric(service, "rabbit.publish") == 1 and sent_metric(service, "js.publish") == 1
    finally:
        await service.stop()
    [message] = await brokers.rabbit_messages()
    assert message.message_id == records["rabbit.publish"].message_id
    assert message.headers["X-Syncline-Run"] == run.id and message.headers["X-Event-Type"] == "shipment.created"
    [stored] = await brokers.stream_messages()
    assert stored.headers["Nats-Msg-Id"] == records["js.publish"].message_id
    assert stored.data == b'{"shipment":"S-9"}'


async def test_a_crash_between_commit_and_send_sends_once_on_resume(
    tmp_path: Path, brokers: Brokers, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = project(tmp_path, brokers)
    store_url = f"sqlite:///{tmp_path / 'state.db'}"
    crashed = await start(root, store_url, dispatch=False)
    try:
        run_id = await submit(crashed)
        await ended(crashed, run_id)  # the run and its messages are committed ...
        pending = await crashed.store.list_outbox(run_id=run_id)
        assert [(r.status, r.attempts) for r in pending] == [("pending", 0), ("pending", 0)]
        await ScrapeGauges(crashed, store_interval=0).refresh()
        assert crashed.metrics.registry.get_sample_value("syncline_outbox_pending") == 2
    finally:
        await crashed.stop()
    assert await brokers.rabbit_messages() == [] and await brokers.stream_messages() == []  # ... and not sent

    # the next node also loses its first "sent" marks (a crash after the broker confirmed): each
    # message goes out again once its lease runs out, with the same id
    lost: list[int] = []
    real = SqlStore.outbox_sent

    async def lose_first_mark(self: SqlStore, seq: int, *, now: float, result: Any = None) -> bool:
        if seq not in lost:
            lost.append(seq)
            raise StoreError("injected: sent, then the store was gone")
        return await real(self, seq, now=now, result=result)

    monkeypatch.setattr(SqlStore, "outbox_sent", lose_first_mark)
    resumed = await start(root, store_url)
    try:
        records = {r.operation: r for r in await all_sent(resumed, run_id)}
        assert records["rabbit.publish"].attempts == 2 and records["js.publish"].attempts == 2
        assert records["js.publish"].result["duplicate"] is True  # JetStream dropped the resend itself
    finally:
        await resumed.stop()
    deliveries = await brokers.rabbit_messages()
    assert len(deliveries) == 2  # RabbitMQ cannot drop it: both carry the one message id ...
    assert {m.message_id for m in deliveries} == {records["rabbit.publish"].message_id}  # ... so a consumer sees one
    stored = await brokers.stream_messages()
    assert [m.headers["Nats-Msg-Id"] for m in stored] == [records["js.publish"].message_id]


async def test_a_send_the_broker_cannot_take_is_retried_then_delivered(tmp_path: Path, brokers: Brokers) -> None:
    proxy = await TcpProxy(5672).start()
    service = await start(project(tmp_path, brokers, amqp_port=proxy.port), f"sqlite:///{tmp_path / 'state.db'}")
    try:
        await proxy.cut()  # RabbitMQ is unreachable: connections are refused
        run_id = await submit(service)
        await ended(service, run_id)

        async def failed_twice() -> OutboxRecord | None:
            failures = service.metrics.registry.get_sample_value(
                "syncline_outbox_failures_total", {"operation": "rabbit.publish"}
            )
            if failures is None or failures < 2:
                return None
            pending = await service.store.list_outbox(run_id=run_id, status="pending")
            return next((r for r in pending if r.operation == "rabbit.publish" and r.last_error), None)

        record = await wait_until(failed_twice)
        assert "cannot connect to the broker" in (record.last_error or "") and record.attempts >= 2
        await proxy.restore()
        records = {r.operation: r for r in await all_sent(service, run_id)}
        assert records["rabbit.publish"].attempts >= 3
    finally:
        await service.stop()
        await proxy.close()
    deliveries = await brokers.rabbit_messages()
    assert [m.message_id for m in deliveries] == [records["rabbit.publish"].message_id]
    assert len(await brokers.stream_messages()) == 1
