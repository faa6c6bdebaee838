"""Poison messages of a `queue` trigger also reach the broker's own dead-letter place, on a served node
against the real brokers: an unparseable message and one delivered more than `max_redeliveries`
times end in Syncline's dead letters AND, once each, in

- RabbitMQ: the bound queue of the consumed queue's dead-letter exchange (`x-dead-letter-exchange`),
  with the `x-death` header RabbitMQ sets (reason `rejected`, count 1);
- NATS JetStream: a `MSG_TERMINATED` advisory of the durable consumer, nothing left pending;
- Redis Streams: the connection's `dead_letter_stream`, with the reason and where the entry came from.

Each test makes and drops its own queues, exchange, stream and keys. The message after the poison
runs, so nothing blocks, and nothing comes back to the consumed queue (nothing loops).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from runtime.store.base import RunFilter
from tests.connectors.brokers import need
from tests.service.conftest import StartNode
from tests.service.harness import Node, Sink, until
from tests.service.test_queue_trigger import Amqp, Kit, Nats, Redis, body, flow, got, serve

pytestmark = pytest.mark.service


async def _poison_then_bad_then_next(
    tmp_path: Path, sink: Sink, nodes: StartNode, kit: Kit
) -> tuple[Node, dict[str, tuple[str, str]]]:
    """A message delivered 3 times before (over `max_redeliveries: 1`), then an unparseable one, then
    one that runs; returns the node and Syncline's dead letters by message id: (reason, message)."""
    await kit.publish(body(1), "m-poison")
    await kit.redeliver(f"syncline-test-{kit.tag}", 3)
    node = await serve(tmp_path, sink, nodes, kit, flow(kit, max_redeliveries=1))
    await kit.publish(b"{not json", "m-bad")
    await kit.publish(body(2), "m-next")
    await until(lambda: got(sink) == {2: 1}, timeout=15)

    async def two_letters() -> list[Any]:
        letters = await node.service.store.list_dead_letters(flow="consume")
        return letters if len(letters) >= 2 else []

    letters = await until(two_letters, timeout=15)
    runs = {r.id: r for r in await node.service.store.list_runs(RunFilter(flow="consume"))}
    by_id = {runs[d.run_id].meta["source"]["key"]: (d.reason, d.error["message"] if d.error else "") for d in letters}
    assert sorted(by_id) == ["m-bad", "m-poison"], by_id  # once each
    assert by_id["m-poison"] == ("poison", "delivered 4 times (max_redeliveries 1)")
    assert by_id["m-bad"][0] == "unparseable"
    return node, by_id


class DeadLetteringAmqp(Amqp):
    """A quorum queue (it counts deliveries) whose dead-letter exchange routes to a queue of its own."""

    def __init__(self) -> None:
        super().__init__(quorum=True)
        self.exchange = f"syncline_dlx_{self.tag}"
        self.dead = f"syncline_dlq_{self.tag}"

    async def setup(self) -> None:
        import aio_pika

        self.conn = await aio_pika.connect(self.URL)
        self.channel = await self.conn.channel()
        exchange = await self.channel.declare_exchange(self.exchange, aio_pika.ExchangeType.FANOUT, durable=True)
        self.dead_queue = await self.channel.declare_queue(self.dead, durable=True)
        await self.dead_queue.bind(exchange)
        arguments = {"x-queue-type": "quorum", "x-dead-letter-exchange": self.exchange}
        self.queue = await self.channel.declare_queue(self.subject, durable=True, arguments=arguments)

    async def cleanup(self) -> None:
        await self.channel.queue_delete(self.dead)
        await self.channel.exchange_delete(self.exchange)
        await super().cleanup()

    async def dead_count(self) -> int:
        declared = await self.channel.declare_queue(self.dead, passive=True)
        return int(declared.declaration_result.message_count or 0)


async def test_rabbitmq_poison_goes_to_the_queues_dead_letter_exchange(
    tmp_path: Path, sink: Sink, nodes: StartNode
) -> None:
    kit = DeadLetteringAmqp()
    need(kit.name, kit.port)
    await kit.setup()
    try:
        node, _letters = await _poison_then_bad_then_next(tmp_path, sink, nodes, kit)
        await until(lambda: _equals(kit.dead_count(), 2), timeout=10)
        await node.stop()  # nothing held back by the node: whatever loops would show now
        assert await kit.waiting() == 0
        assert await kit.dead_count() == 2
        dead = {}
        for _ in range(2):
            message = await kit.dead_queue.get(fail=True)
            dead[message.message_id] = message
            await message.ack()
        assert sorted(dead) == ["m-bad", "m-poison"]
        assert dead["m-bad"].body == b"{not json" and dead["m-poison"].body == body(1)
        for message in dead.values():
            assert message.headers["x-source"] == "test"  # the message as it was published
            (death,) = message.headers["x-death"]  # dead-lettered once, from the consumed queue
            assert (death["reason"], death["queue"], death["count"]) == ("rejected", kit.subject, 1)
    finally:
        await kit.cleanup()


async def test_nats_poison_is_terminated_with_an_advisory(tmp_path: Path, sink: Sink, nodes: StartNode) -> None:
    kit = Nats()
    need(kit.name, kit.port)
    await kit.setup()
    durable = f"syncline-test-{kit.tag}"
    advisories: list[dict[str, Any]] = []

    async def advisory(message: Any) -> None:
        advisories.append(json.loads(message.data))

    subject = f"$JS.EVENT.ADVISORY.CONSUMER.MSG_TERMINATED.{kit.stream}.{durable}"
    subscription = await kit.client.subscribe(subject, cb=advisory)
    try:
        node, letters = await _poison_then_bad_then_next(tmp_path, sink, nodes, kit)
        await until(lambda: len(advisories) >= 2, timeout=10)
        info = await kit.js.consumer_info(kit.stream, durable)
        assert (info.num_pending, info.num_ack_pending) == (0, 0)  # terminated, never delivered again
        await node.stop()
        info = await kit.js.consumer_info(kit.stream, durable)
        assert (info.num_pending, info.num_ack_pending) == (0, 0)
        by_seq = {a["stream_seq"]: a for a in advisories}
        assert sorted(by_seq) == [1, 2] and len(advisories) == 2  # m-poison and m-bad, once each
        assert (by_seq[1]["deliveries"], by_seq[2]["deliveries"]) == (4, 1)
        assert all((a["stream"], a["consumer"]) == (kit.stream, durable) for a in advisories)
        stored = await kit.js.get_msg(kit.stream, 2)
        assert stored.data == b"{not json"  # the stream keeps it: republish from the advisory's stream_seq
        if "reason" in by_seq[1]:  # servers from 2.10.4 take Syncline's reason with the termination
            assert by_seq[1]["reason"] == "poison: " + letters["m-poison"][1]
            assert by_seq[2]["reason"].startswith("unparseable: the body is not json")
    finally:
        await subscription.unsubscribe()
        await kit.cleanup()


class DeadLetteringRedis(Redis):
    """A redis_streams connection with `dead_letter_stream: "{stream}:dead"`."""

    def __init__(self) -> None:
        super().__init__()
        self.dead = f"{self.subject}:dead"

    def connection(self, port: int) -> str:
        return (
            f'type: redis_streams\nconfig: {{url: "redis://127.0.0.1:{port}/0", claim_idle: 1s, '
            'dead_letter_stream: "{stream}:dead"}\n'
        )

    async def cleanup(self) -> None:
        await self.client.delete(self.dead)
        await super().cleanup()


async def test_redis_poison_is_added_to_the_dead_letter_stream(tmp_path: Path, sink: Sink, nodes: StartNode) -> None:
    kit = DeadLetteringRedis()
    need(kit.name, kit.port)
    await kit.setup()
    group = f"syncline-test-{kit.tag}"
    try:
        node, letters = await _poison_then_bad_then_next(tmp_path, sink, nodes, kit)
        await until(lambda: _equals(kit.client.xlen(kit.dead), 2), timeout=10)
        await until(lambda: _equals(_pending(kit, group), 0), timeout=10)
        await node.stop()
        assert await kit.client.xlen(kit.dead) == 2
        originals = {entry_id.decode(): fields for entry_id, fields in await kit.client.xrange(kit.subject)}
        dead = {}
        for _dead_id, fields in await kit.client.xrange(kit.dead):
            entry = {key.decode(): value.decode() for key, value in fields.items()}
            dead[entry["message_id"]] = entry
        assert sorted(dead) == ["m-bad", "m-poison"]
        for message_id, entry in dead.items():
            original = {key.decode(): value.decode() for key, value in originals[entry["entry_id"]].items()}
            assert entry == {
                **original,  # body, content_type, headers and message_id as they were
                "stream": kit.subject,
                "entry_id": entry["entry_id"],
                "group": group,
                "delivery_count": "4" if message_id == "m-poison" else "1",
                "reason": letters[message_id][0],
                "error": letters[message_id][1],  # the dead letter's own message
            }
        assert dead["m-bad"]["body"] == "{not json"
    finally:
        await kit.cleanup()


async def _pending(kit: Redis, group: str) -> int:
    return int((await kit.client.xpending(kit.subject, group))["pending"])


async def _equals(value: Any, expected: Any) -> bool:
    return bool(await value == expected)
