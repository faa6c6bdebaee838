"""The queue source against a fake broker and a fake context: batches in arrival order, ack only after
the accept returned, poison and unparseable messages to the dead letters (then settled for good, to
the broker's dead-letter place, with the reason where the message takes one), the redelivery count
of brokers that keep none, backpressure before taking, reconnect with backoff."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

from runtime.clock import FakeClock
from runtime.connector_api import ConnectorError
from runtime.source_api import NO_CURSOR, Accepted, SourceError, SourceEvent
from runtime.triggers.queue import QueueSource, QueueSpec, default_group


@dataclass
class Message:
    body: bytes
    message_id: str | None
    delivery_count: int | None = 1
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str | None = "application/json"
    source: str = "orders"
    acked: bool = False
    nacked: bool | None = None  # the requeue flag of a nack

    async def ack(self) -> None:
        self.acked = True

    async def nack(self, requeue: bool = True) -> None:
        self.nacked = requeue


class Consumer:
    """Hands out the queued rounds: each round is a list of messages, then an error or the end."""

    def __init__(self, rounds: list[tuple[list[Message], BaseException | None]]) -> None:
        self.rounds = rounds
        self.iterations = 0

    async def messages(self) -> AsyncIterator[Message]:
        self.iterations += 1
        if not self.rounds:
            await asyncio.Event().wait()  # nothing more: block until cancelled
        messages, error = self.rounds.pop(0)
        for message in messages:
            yield message
        if error is not None:
            raise error
        await asyncio.Event().wait()


class Broker:
    def __init__(self, consumer: Consumer) -> None:
        self.made: list[tuple[str, str | None, int]] = []
        self._consumer = consumer

    def consumer(self, subject: str, *, group: str | None, prefetch: int) -> Consumer:
        self.made.append((subject, group, prefetch))
        return self._consumer


class Context:
    """A SourceContext that records what the source did."""

    def __init__(self, connector: Any, *, fail_accepts: int = 0) -> None:
        self.flow = "ship"
        self.trigger_id = "queue:ship"
        self.clock = FakeClock()
        self.log = logging.getLogger("test.queue")
        self._connector = connector
        self.accepted: list[list[SourceEvent]] = []
        self.letters: list[tuple[SourceEvent, str, str]] = []
        self.fail_accepts = fail_accepts
        self.paused_for = 0  # ready() calls that wait before returning
        self.ready_calls = 0
        self.free_slots = 64
        self.acked_at_accept: list[list[bool]] = []
        self.messages: list[Message] = []
        self.schema_problem: Any = lambda payload: None  # what schema_error answers

    async def accept(self, events: Sequence[SourceEvent], *, cursor: Any = NO_CURSOR) -> list[Accepted]:
        self.acked_at_accept.append([m.acked for m in self.messages])
        if self.fail_accepts:
            self.fail_accepts -= 1
            raise RuntimeError("store unavailable")
        self.accepted.append(list(events))
        return [Accepted(e, f"run-{e.key}", True) for e in events]

    async def dead_letter(self, event: SourceEvent, reason: str, message: str) -> None:
        self.letters.append((event, reason, message))

    async def cursor(self) -> Any:
        return None

    def room(self) -> int:
        return self.free_slots

    async def ready(self) -> None:
        self.ready_calls += 1
        while self.paused_for > 0:
            self.paused_for -= 1
            await self.clock.sleep(0.5)

    def paused(self) -> bool:
        return False

    def progressed(self) -> None:
        pass

    async def connector(self) -> Any:
        return self._connector

    def redact(self, text: str) -> str:
        return text.replace("s3cret", "***")

    def schema_error(self, payload: Any) -> str | None:
        problem: str | None = self.schema_problem(payload)
        return problem

    def count(self, name: str, value: float = 1.0) -> None:
        pass


def spec(**extra: Any) -> QueueSpec:
    return QueueSpec.model_validate({"connection": "bus", "subject": "orders", **extra})


async def run_until(source: QueueSource, ctx: Context, done: Any) -> None:
    task = asyncio.create_task(source.run(ctx))
    try:
        for _ in range(2000):
            if done():
                return
            if task.done():
                task.result()
            await asyncio.sleep(0)
        raise AssertionError("the source did not get there")
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_messages_are_accepted_in_order_and_acked_only_after_the_accept() -> None:
    messages = [Message(f'{{"n": {n}}}'.encode(), f"m-{n}", headers={"x-n": str(n)}) for n in range(5)]
    ctx = Context(Broker(Consumer([(messages, None)])))
    ctx.messages = messages
    source = QueueSource(spec(prefetch=3))
    await run_until(source, ctx, lambda: all(m.acked for m in messages))
    events = [e for batch in ctx.accepted for e in batch]
    assert [e.payload for e in events] == [{"n": n} for n in range(5)]
    assert [e.key for e in events] == [f"m-{n}" for n in range(5)]
    assert events[2].headers == {"x-n": "2"}
    assert events[2].meta == {"message_id": "m-2", "subject": "orders", "delivery_count": 1}
    assert all(len(batch) <= 3 for batch in ctx.accepted)
    for seen, batch in zip(ctx.acked_at_accept, ctx.accepted, strict=True):  # none of a batch acked before it
        ids = {e.key for e in batch}
        assert not any(acked for acked, m in zip(seen, messages, strict=True) if m.message_id in ids)
    assert ctx.letters == []


async def test_a_batch_takes_no_more_than_the_free_run_slots() -> None:
    """With 2 run slots free, batches of at most 2 (each run starts at once instead of queueing); with
    none free (the wait for one ran out), batches up to the prefetch again."""
    messages = [Message(f'{{"n": {n}}}'.encode(), f"m-{n}") for n in range(9)]
    ctx = Context(Broker(Consumer([(messages, None)])))
    ctx.messages = messages
    ctx.free_slots = 2
    await run_until(QueueSource(spec(prefetch=8)), ctx, lambda: all(m.acked for m in messages))
    assert [e.key for batch in ctx.accepted for e in batch] == [f"m-{n}" for n in range(9)]
    assert max(len(batch) for batch in ctx.accepted) == 2
    full = [Message(f'{{"n": {n}}}'.encode(), f"f-{n}") for n in range(9)]
    busy = Context(Broker(Consumer([(full, None)])))
    busy.messages = full
    busy.free_slots = 0
    await run_until(QueueSource(spec(prefetch=8)), busy, lambda: all(m.acked for m in full))
    assert max(len(batch) for batch in busy.accepted) > 2


async def test_the_consumer_gets_the_subject_group_and_prefetch() -> None:
    broker = Broker(Consumer([]))
    ctx = Context(broker)
    await run_until(QueueSource(spec(prefetch=7)), ctx, lambda: broker.made)
    assert broker.made == [("orders", "syncline-ship", 7)]
    assert default_group("a.b c") == "syncline-a_b_c"


async def test_unparseable_and_poison_messages_go_to_dead_letters_and_are_settled() -> None:
    bad = Message(b"{not json", "m-bad")
    poison = Message(b'{"n": 1}', "m-poison", delivery_count=7)  # 6 redeliveries > 5
    last_chance = Message(b'{"n": 2}', "m-ok", delivery_count=6)  # 5 redeliveries: still runs
    ctx = Context(Broker(Consumer([([bad, poison, last_chance], None)])))
    await run_until(QueueSource(spec()), ctx, lambda: last_chance.acked and bad.nacked is not None)
    reasons = {e.key: (reason, text) for e, reason, text in ctx.letters}
    assert reasons["m-bad"][0] == "unparseable"
    assert "not json" in reasons["m-bad"][1]
    assert reasons["m-poison"] == ("poison", "delivered 7 times (max_redeliveries 5)")
    # both settled without requeue (to the broker's own dead-letter place where there is one), not acked
    assert (bad.nacked, bad.acked, poison.nacked, poison.acked) == (False, False, False, False)
    assert [e.key for batch in ctx.accepted for e in batch] == ["m-ok"]


@dataclass
class RejectingMessage(Message):
    """A message that takes Syncline's reason when settled as poison (`Rejects`)."""

    rejected: tuple[str, str] | None = None

    async def reject(self, reason: str, detail: str) -> None:
        self.rejected = (reason, detail)


async def test_poison_is_rejected_with_its_reason_where_the_message_takes_one() -> None:
    """Each kind of poison reaches the broker with the dead letter's reason and text (masked), after
    the dead letter was written; a message that runs is acknowledged as before."""
    bad = RejectingMessage(b"{not json", "m-bad")
    poison = RejectingMessage(b'{"n": 1}', "m-poison", delivery_count=3)
    off_schema = RejectingMessage(b'{"n": "s3cret"}', "m-schema")
    fine = RejectingMessage(b'{"n": 2}', "m-ok")
    ctx = Context(Broker(Consumer([([bad, poison, off_schema, fine], None)])))
    ctx.schema_problem = lambda payload: None if isinstance(payload["n"], int) else f"at /n: {payload['n']!r} is no int"
    source = QueueSource(spec(max_redeliveries=1, schema="s.json"))
    await run_until(source, ctx, lambda: fine.acked and off_schema.rejected)
    letters = {e.key: (reason, text) for e, reason, text in ctx.letters}
    assert bad.rejected == letters["m-bad"] and bad.rejected[0] == "unparseable"
    assert poison.rejected == letters["m-poison"] == ("poison", "delivered 3 times (max_redeliveries 1)")
    assert letters["m-schema"] == ("schema", "the body does not satisfy s.json at /n: 's3cret' is no int")
    assert off_schema.rejected == ("schema", "the body does not satisfy s.json at /n: '***' is no int")  # masked
    assert not any(m.acked or m.nacked is not None for m in (bad, poison, off_schema))
    assert fine.rejected is None and [e.key for batch in ctx.accepted for e in batch] == ["m-ok"]


async def test_text_format_takes_the_body_as_text() -> None:
    message = Message("größe".encode(), "m-1")
    broken = Message(b"\xff\xfe", "m-2")
    ctx = Context(Broker(Consumer([([message, broken], None)])))
    await run_until(QueueSource(spec(format="text")), ctx, lambda: message.acked and broken.nacked is False)
    assert ctx.accepted[0][0].payload == "größe"
    assert [r for _e, r, _t in ctx.letters] == ["unparseable"]


async def test_a_failed_accept_acks_nothing_and_counts_as_a_redelivery() -> None:
    """A broker that counts no deliveries (MQTT): the source counts the batches of a message that
    failed; after max_redeliveries failures the next delivery is poison."""
    first = Message(b'{"n": 1}', "m-1", delivery_count=None)
    again = [Message(b'{"n": 1}', "m-1", delivery_count=None) for _ in range(2)]
    error = ConnectorError("bus: the connection to the broker was lost", reason="connect", error_class="retriable")
    rounds: list[tuple[list[Message], BaseException | None]] = [([first], error), ([again[0]], error)]
    rounds.append(([again[1]], None))
    ctx = Context(Broker(Consumer(rounds)), fail_accepts=1)
    source = QueueSource(spec(max_redeliveries=0))
    with pytest.raises(RuntimeError, match="store unavailable"):  # the host restarts the source
        await source.run(ctx)
    assert not first.acked and first.nacked is True  # given back at once, never acknowledged
    assert source.failed == {"m-1": 1}
    await run_until(source, ctx, lambda: again[0].nacked is not None)
    assert [r for _e, r, _t in ctx.letters] == ["poison"]
    assert ctx.accepted == []


async def test_a_lost_connection_is_retried_with_backoff() -> None:
    error = ConnectorError("bus: lost (password s3cret)", reason="connect", error_class="retriable")
    messages = [Message(b"{}", f"m-{n}") for n in range(2)]
    consumer = Consumer([([], error), ([], error), ([messages[0]], error), ([messages[1]], None)])
    ctx = Context(Broker(consumer))
    await run_until(QueueSource(spec()), ctx, lambda: messages[1].acked)
    assert ctx.clock.slept == [0.5, 1.0, 0.5]  # doubling, and back to the first delay after a message
    assert consumer.iterations == 4


async def test_a_fatal_connector_error_stops_the_source() -> None:
    error = ConnectorError("bus: queue 'orders' does not exist", reason="config", error_class="fatal")
    ctx = Context(Broker(Consumer([([], error)])))
    with pytest.raises(ConnectorError, match="does not exist"):
        await QueueSource(spec()).run(ctx)


async def test_backpressure_waits_before_taking() -> None:
    messages = [Message(b"{}", f"m-{n}") for n in range(3)]
    ctx = Context(Broker(Consumer([(messages, None)])))
    ctx.paused_for = 4
    await run_until(QueueSource(spec()), ctx, lambda: all(m.acked for m in messages))
    assert ctx.clock.slept[:4] == [0.5] * 4  # nothing accepted while the node was over its backlog
    assert ctx.ready_calls >= 1


async def test_a_connection_that_cannot_be_consumed_from_is_refused() -> None:
    ctx = Context(object())
    with pytest.raises(SourceError, match="cannot be consumed from"):
        await QueueSource(spec()).run(ctx)


@dataclass
class BatchMessage(Message):
    """A message whose broker settles every earlier unsettled one with it (AMQP `multiple`)."""

    through: list[str] = field(default_factory=list)  # shared by one consumer's messages: who acked through

    async def ack_through(self) -> None:
        self.through.append(str(self.message_id))


async def test_a_committed_batch_is_settled_with_one_ack_through_its_last_message() -> None:
    through: list[str] = []
    messages = [BatchMessage(f'{{"n": {n}}}'.encode(), f"m-{n}", through=through) for n in range(6)]
    messages.insert(2, BatchMessage(b"not json", "bad", through=through))
    ctx = Context(Broker(Consumer([(messages, None)])))
    ctx.messages = messages
    await run_until(QueueSource(spec(prefetch=7)), ctx, lambda: "m-5" in through and messages[2].nacked is False)
    assert through == [batch[-1].key for batch in ctx.accepted]  # one acknowledgement per batch, its last
    assert [m.message_id for m in messages if m.nacked is False] == ["bad"]  # the unparseable one on its own
    assert [e.key for batch in ctx.accepted for e in batch] == [f"m-{n}" for n in range(6)]
