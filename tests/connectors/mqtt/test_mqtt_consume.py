"""`MqttConsumer` (a library class, no trigger yet) against the real Mosquitto: what the connector
publishes comes back with its id; a message not acknowledged comes again when the kept session
resumes; a shared subscription spreads messages over its group."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import pytest

from connectors.messaging import Delivery
from connectors.mqtt import CONNECTOR, MqttConnector
from connectors.mqtt.consumer import MqttConsumer
from tests.connectors.brokers import build, need, request, unique, wait_until

pytest.importorskip("aiomqtt")

pytestmark = pytest.mark.service


def _connector(**config: Any) -> MqttConnector:
    need("mosquitto", 1883)
    connector = build(
        CONNECTOR, {"host": "127.0.0.1", "port": 1883, **config}, {"publish": {"topic": "{{ params.t }}"}}
    )
    assert isinstance(connector, MqttConnector)
    return connector


async def test_an_unacknowledged_message_comes_again_when_the_session_resumes() -> None:
    topic = f"syncline/test/{unique('c')}"
    client_id = unique("syncline-consumer")
    publisher = _connector()
    consumer_side = _connector(client_id=client_id, session_expiry="30s")
    try:
        consumer = MqttConsumer(consumer_side, topic)
        async with asyncio.timeout(10), contextlib.aclosing(consumer.messages()) as deliveries:
            first_task = asyncio.ensure_future(anext(deliveries))
            await wait_until(_is_set(consumer.subscribed))
            for n in range(2):
                await publisher.call(request(key=f"m-{n}", topic=topic, body={"n": n}, headers={"X-Kind": "count"}))
            first: Delivery = await first_task
            second: Delivery = await anext(deliveries)
            assert [first.message_id, second.message_id] == ["m-0", "m-1"]
            assert first.body == b'{"n":0}' and first.content_type == "application/json"
            assert first.headers["X-Kind"] == "count" and first.source == topic
            await first.ack()  # m-1 is left unacknowledged, as if the process died
        await consumer_side.aclose()

        resumed = _connector(client_id=client_id, session_expiry="30s")
        try:
            consumer = MqttConsumer(resumed, topic)
            async with asyncio.timeout(10), contextlib.aclosing(consumer.messages()) as deliveries:
                again = await anext(deliveries)
                assert again.message_id == "m-1"
                await again.ack()
        finally:
            await resumed.aclose()
    finally:
        await publisher.aclose()
        await consumer_side.aclose()


async def test_a_shared_subscription_spreads_messages_over_its_group() -> None:
    topic = f"syncline/test/{unique('s')}"
    publisher, one, two = _connector(), _connector(), _connector()
    got: list[tuple[str, str | None]] = []

    async def take(name: str, consumer: MqttConsumer) -> None:
        async with contextlib.aclosing(consumer.messages()) as deliveries:
            async for delivery in deliveries:
                got.append((name, delivery.message_id))
                await delivery.ack()

    consumers = {"one": MqttConsumer(one, topic, group="billing"), "two": MqttConsumer(two, topic, group="billing")}
    tasks = [asyncio.ensure_future(take(name, c)) for name, c in consumers.items()]
    try:
        for consumer in consumers.values():
            await wait_until(_is_set(consumer.subscribed))
        for n in range(6):
            await publisher.call(request(key=f"m-{n}", topic=topic, body="x"))
        await wait_until(_has(got, 6))
        assert sorted(message_id for _, message_id in got) == [f"m-{n}" for n in range(6)]  # each once
        assert {name for name, _ in got} == {"one", "two"}  # spread over the group
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for connector in (publisher, one, two):
            await connector.aclose()


def _is_set(event: asyncio.Event) -> Any:
    async def check() -> bool:
        return event.is_set()

    return check


def _has(items: list[Any], count: int) -> Any:
    async def check() -> bool:
        return len(items) >= count

    return check
