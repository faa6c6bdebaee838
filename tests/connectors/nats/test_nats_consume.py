"""`NatsConsumer` (a library class, no trigger yet) against the real NATS JetStream: what the
connector publishes comes back with its id; nack redelivers with a count; term and ack settle; a
rejected message is terminated, so the server publishes its MSG_TERMINATED advisory (with the reason
on servers that read one) and never delivers it again."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from connectors.nats import CONNECTOR, NatsConnector
from connectors.nats.consumer import TERM_REASON_SINCE, NatsConsumer, term_ack
from runtime.connector_api import ConnectorError
from tests.connectors.brokers import build, need, request, unique, wait_until

nats = pytest.importorskip("nats")

pytestmark = pytest.mark.service


@pytest.fixture
async def stream() -> AsyncIterator[tuple[str, str]]:
    need("nats", 4222)
    client = await nats.connect("nats://127.0.0.1:4222")
    js = client.jetstream()
    name = unique("SYNCLINE_CONSUME").upper()
    prefix = name.lower()
    await js.add_stream(name=name, subjects=[f"{prefix}.>"])
    try:
        yield name, prefix
    finally:
        await js.delete_stream(name)
        await client.close()


def _connector() -> NatsConnector:
    connector = build(CONNECTOR, {"servers": "nats://127.0.0.1:4222"}, {"publish": {"subject": "{{ params.s }}"}})
    assert isinstance(connector, NatsConnector)
    return connector


async def test_consume_ack_nack_and_term(stream: tuple[str, str]) -> None:
    name, prefix = stream
    connector = _connector()
    try:
        for n in range(3):
            await connector.call(request(key=f"m-{n}", subject=f"{prefix}.orders", body={"n": n}))
        consumer = NatsConsumer(connector, name, "syncline-test", batch=3, poll=0.2)
        async with asyncio.timeout(10), contextlib.aclosing(consumer.messages()) as deliveries:
            first = [await anext(deliveries) for _ in range(3)]
            assert [d.message_id for d in first] == ["m-0", "m-1", "m-2"]
            assert [d.delivery_count for d in first] == [1, 1, 1]
            assert first[0].body == b'{"n":0}' and first[0].content_type == "application/json"
            assert first[0].source == f"{prefix}.orders"
            await first[0].ack()
            await first[1].nack()  # back for redelivery
            await first[2].nack(requeue=False)  # terminated: never again
            again = await anext(deliveries)
            assert (again.message_id, again.delivery_count) == ("m-1", 2)
            await again.ack()
        client = await nats.connect("nats://127.0.0.1:4222")
        try:
            info = await client.jetstream().consumer_info(name, "syncline-test")
            assert (info.num_pending, info.num_ack_pending) == (0, 0)
        finally:
            await client.close()
    finally:
        await connector.aclose()


async def test_the_durable_consumer_resumes_after_the_last_ack(stream: tuple[str, str]) -> None:
    name, prefix = stream
    connector = _connector()
    try:
        for n in range(2):
            await connector.call(request(key=f"m-{n}", subject=f"{prefix}.orders", body="x"))
        consumer = NatsConsumer(connector, name, "syncline-resume", batch=1, poll=0.2)
        async with asyncio.timeout(10), contextlib.aclosing(consumer.messages()) as deliveries:
            await (await anext(deliveries)).ack()
        async with asyncio.timeout(10), contextlib.aclosing(consumer.messages()) as deliveries:
            nxt: Any = await anext(deliveries)
            assert nxt.message_id == "m-1"
            await nxt.ack()
    finally:
        await connector.aclose()


async def test_a_missing_stream_is_a_fatal_config_error() -> None:
    need("nats", 4222)
    connector = _connector()
    try:
        missing = unique("NO_SUCH_STREAM").upper()
        with pytest.raises(ConnectorError) as info:
            async with asyncio.timeout(10), contextlib.aclosing(NatsConsumer(connector, missing, "d").messages()) as d:
                await anext(d)
        assert (info.value.reason, info.value.error_class) == ("config", "fatal")
        assert missing in str(info.value)
    finally:
        await connector.aclose()


def test_the_term_carries_a_reason_only_for_servers_that_read_one() -> None:
    """A server before 2.10.4 would not take `+TERM <reason>` as a termination (it delivers the message
    again): it gets a plain `+TERM`. The reason is one line, cut at 500 characters."""
    assert term_ack((2, 9, 10), "poison", "delivered 7 times") == b"+TERM"
    assert term_ack(None, "poison", "delivered 7 times") == b"+TERM"
    assert term_ack((2, 10, 3), "schema", "x") == b"+TERM"
    assert term_ack(TERM_REASON_SINCE, "poison", "delivered 7 times") == b"+TERM poison: delivered 7 times"
    assert term_ack((2, 11, 0), "unparseable", "the body\nis not json") == b"+TERM unparseable: the body is not json"
    assert len(term_ack((2, 12, 1), "schema", "y" * 2000)) == len(b"+TERM ") + 500


async def test_a_rejected_message_is_terminated_with_an_advisory(stream: tuple[str, str]) -> None:
    """JetStream's dead-letter mechanism: the termination advisory names the stream sequence of the
    message (which the stream keeps), and the consumer holds nothing of it any more."""
    name, prefix = stream
    connector = _connector()
    client = await nats.connect("nats://127.0.0.1:4222")
    advisories: list[Any] = []

    async def advisory(message: Any) -> None:
        advisories.append(json.loads(message.data))

    subscription = await client.subscribe(
        f"$JS.EVENT.ADVISORY.CONSUMER.MSG_TERMINATED.{name}.syncline-reject", cb=advisory
    )
    try:
        for n in range(2):
            await connector.call(request(key=f"m-{n}", subject=f"{prefix}.orders", body={"n": n}))
        consumer = NatsConsumer(connector, name, "syncline-reject", batch=2, ack_wait=1.0, poll=0.2)
        async with asyncio.timeout(10), contextlib.aclosing(consumer.messages()) as deliveries:
            bad, good = await anext(deliveries), await anext(deliveries)
            await bad.reject("unparseable", "the body is not json: Expecting value")
            await good.ack()
            await wait_until(lambda: _true(advisories), timeout=10)
        info = await client.jetstream().consumer_info(name, "syncline-reject")
        assert (info.num_pending, info.num_ack_pending, info.num_redelivered) == (0, 0, 0)
        (terminated,) = advisories
        assert (terminated["stream"], terminated["consumer"]) == (name, "syncline-reject")
        assert terminated["stream_seq"] == 1 and terminated["deliveries"] == 1
        stored = await client.jetstream().get_msg(name, terminated["stream_seq"])
        assert stored.data == b'{"n":0}'  # the stream keeps it: an operator can republish it from here
        version = client.connected_server_version
        if (version.major, version.minor, version.patch) >= TERM_REASON_SINCE:
            assert terminated["reason"] == "unparseable: the body is not json: Expecting value"
    finally:
        await subscription.unsubscribe()
        await client.close()
        await connector.aclose()


async def _true(values: list[Any]) -> bool:
    return bool(values)
