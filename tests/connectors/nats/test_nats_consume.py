"""`NatsConsumer` (a library class, no trigger yet) against the real NATS JetStream: what the
connector publishes comes back with its id; nack redelivers with a count; term and ack settle."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest

from connectors.nats import CONNECTOR, NatsConnector
from connectors.nats.consumer import NatsConsumer
from runtime.connector_api import ConnectorError
from tests.connectors.brokers import build, need, request, unique

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
