"""`AmqpConsumer` (a library class, no trigger yet) against the real RabbitMQ: what the connector
publishes comes back with its id, an unacked message is redelivered, prefetch bounds what is held."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest

from connectors.amqp import CONNECTOR, AmqpConnector
from connectors.amqp.consumer import AmqpConsumer
from connectors.messaging import Delivery
from runtime.connector_api import ConnectorError
from tests.connectors.brokers import build, need, request, unique

aio_pika = pytest.importorskip("aio_pika")

pytestmark = pytest.mark.service


@pytest.fixture
async def queue() -> AsyncIterator[str]:
    need("rabbitmq", 5672)
    connection = await aio_pika.connect("amqp://guest:guest@127.0.0.1:5672/", timeout=10)
    name = unique("syncline_consume")
    channel = await connection.channel()
    await channel.declare_queue(name)
    try:
        yield name
    finally:
        await channel.queue_delete(name)
        await connection.close()


def _connector() -> AmqpConnector:
    config = {"url": "amqp://127.0.0.1:5672/", "username": "guest", "password": "guest"}
    connector = build(CONNECTOR, config, {"publish": {"routing_key": "{{ params.queue }}"}})
    assert isinstance(connector, AmqpConnector)
    return connector


async def _first(consumer: AmqpConsumer) -> Delivery:
    async with asyncio.timeout(10), contextlib.aclosing(consumer.messages()) as deliveries:
        return await anext(deliveries)


async def test_consume_acks_and_an_unacked_message_comes_back(queue: str) -> None:
    connector = _connector()
    try:
        for n in range(3):
            await connector.call(request(key=f"m-{n}", routing_key=queue, body={"n": n}))
        consumer = AmqpConsumer(connector, queue, prefetch=3)
        async with asyncio.timeout(10), contextlib.aclosing(consumer.messages()) as deliveries:
            first = [await anext(deliveries) for _ in range(3)]
            assert [d.message_id for d in first] == ["m-0", "m-1", "m-2"]
            assert first[0].body == b'{"n":0}' and first[0].content_type == "application/json"
            assert first[0].headers["X-Correlation-ID"] == "corr-1" and first[0].delivery_count == 1
            await first[0].ack()
            await first[1].nack(requeue=False)
        # m-2 was neither acked nor nacked when the iteration ended: the broker delivers it again
        async with asyncio.timeout(10), contextlib.aclosing(consumer.messages()) as deliveries:
            again = await anext(deliveries)
            assert again.message_id == "m-2"
            assert again.delivery_count is None  # a classic queue only says "redelivered"
            await again.ack()
    finally:
        await connector.aclose()


async def test_prefetch_bounds_the_unacked_messages_held(queue: str) -> None:
    connector = _connector()
    try:
        for n in range(5):
            await connector.call(request(key=f"m-{n}", routing_key=queue, body="x"))
        consumer = AmqpConsumer(connector, queue, prefetch=2)
        async with asyncio.timeout(10), contextlib.aclosing(consumer.messages()) as deliveries:
            held = [await anext(deliveries), await anext(deliveries)]
            probe = await aio_pika.connect("amqp://guest:guest@127.0.0.1:5672/")
            async with probe:
                declared = await (await probe.channel()).declare_queue(queue, passive=True)
                assert declared.declaration_result.message_count == 3  # two held, none buffered beyond prefetch
            for delivery in held:
                await delivery.ack()
    finally:
        await connector.aclose()


async def test_a_missing_queue_is_a_fatal_config_error() -> None:
    need("rabbitmq", 5672)
    connector = _connector()
    try:
        missing = unique("no_such_queue")
        with pytest.raises(ConnectorError) as info:
            await _first(AmqpConsumer(connector, missing))
        assert (info.value.reason, info.value.error_class) == ("config", "fatal")
        assert f"queue {missing!r} does not exist" in str(info.value)
    finally:
        await connector.aclose()
