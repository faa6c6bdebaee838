"""`RedisStreamsConsumer` (a library class, no trigger yet) against the real Redis: what the connector
appends comes back with its id; an entry left unacknowledged is reclaimed (XAUTOCLAIM) with its count."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest

from connectors.redis_streams import CONNECTOR, RedisStreamsConnector
from connectors.redis_streams.consumer import RedisStreamsConsumer
from runtime.connector_api import ConnectorError
from tests.connectors.brokers import build, need, request, unique

redis_asyncio = pytest.importorskip("redis.asyncio")

pytestmark = pytest.mark.service
PREFIX = "syncline:test:dedupe"


@pytest.fixture
async def stream() -> AsyncIterator[tuple[str, Any]]:
    need("redis", 6379)
    client = redis_asyncio.Redis(host="127.0.0.1", port=6379)
    name = unique("syncline:test:consume")
    try:
        yield name, client
    finally:
        keys = [key async for key in client.scan_iter(match=f"{PREFIX}:{{{name}}}:*")]
        await client.delete(name, *keys)
        await client.aclose()


def _connector() -> RedisStreamsConnector:
    config = {"url": "redis://127.0.0.1:6379/0", "dedupe_prefix": PREFIX}
    connector = build(CONNECTOR, config, {"publish": {"stream": "{{ params.s }}"}})
    assert isinstance(connector, RedisStreamsConnector)
    return connector


async def test_consume_acks_and_a_stale_entry_is_reclaimed_with_its_count(stream: tuple[str, Any]) -> None:
    name, server = stream
    connector = _connector()
    try:
        for n in range(2):
            await connector.call(request(key=f"m-{n}", stream=name, body={"n": n}, headers={"X-Kind": "order"}))
        crashed = RedisStreamsConsumer(connector, name, "billing", consumer="a", block=0.05, claim_idle=None)
        async with asyncio.timeout(10), contextlib.aclosing(crashed.messages()) as deliveries:
            first = [await anext(deliveries), await anext(deliveries)]
            assert [d.message_id for d in first] == ["m-0", "m-1"]
            assert first[0].body == b'{"n":0}' and first[0].content_type == "application/json"
            assert first[0].headers["X-Kind"] == "order" and first[0].delivery_count == 1
            await first[0].ack()  # m-1 is left pending, as if consumer "a" crashed before acknowledging
        assert (await server.xpending(name, "billing"))["pending"] == 1

        takeover = RedisStreamsConsumer(connector, name, "billing", consumer="b", block=0.05, claim_idle=0)
        async with asyncio.timeout(10), contextlib.aclosing(takeover.messages()) as deliveries:
            again = await anext(deliveries)
            assert (again.message_id, again.delivery_count) == ("m-1", 2)
            await again.ack()
        assert (await server.xpending(name, "billing"))["pending"] == 0
    finally:
        await connector.aclose()


async def test_nack_without_requeue_settles_the_entry(stream: tuple[str, Any]) -> None:
    name, server = stream
    connector = _connector()
    try:
        await connector.call(request(key="poison", stream=name, body="not json"))
        consumer = RedisStreamsConsumer(connector, name, "g", block=0.05, claim_idle=0)
        async with asyncio.timeout(10), contextlib.aclosing(consumer.messages()) as deliveries:
            await (await anext(deliveries)).nack(requeue=False)
        assert (await server.xpending(name, "g"))["pending"] == 0
    finally:
        await connector.aclose()


async def test_a_key_that_is_not_a_stream_is_a_fatal_config_error(stream: tuple[str, Any]) -> None:
    name, server = stream
    await server.set(name, "plain")
    connector = _connector()
    try:
        with pytest.raises(ConnectorError) as info:
            async with (
                asyncio.timeout(10),
                contextlib.aclosing(RedisStreamsConsumer(connector, name, "g").messages()) as d,
            ):
                await anext(d)
        assert (info.value.reason, info.value.error_class) == ("config", "fatal")
    finally:
        await connector.aclose()


async def test_a_restarted_consumer_takes_its_own_pending_entries_at_once(stream: tuple[str, Any]) -> None:
    """The default consumer name is the same after a restart on this host, so what the stopped process
    took and never acknowledged comes back first, counted as a redelivery, without waiting for
    `claim_idle` (an hour here)."""
    name, server = stream
    connector = _connector()
    try:
        for n in range(3):
            await connector.call(request(key=f"m-{n}", stream=name, body={"n": n}))
        before = RedisStreamsConsumer(connector, name, "wms", block=0.05, claim_idle=3600)
        async with asyncio.timeout(10), contextlib.aclosing(before.messages()) as deliveries:
            taken = [await anext(deliveries) for _ in range(3)]
            await taken[0].ack()  # m-1 and m-2 are taken, never acknowledged: the process stops
        after = RedisStreamsConsumer(connector, name, "wms", block=0.05, claim_idle=3600)
        assert after.consumer == before.consumer
        async with asyncio.timeout(10), contextlib.aclosing(after.messages()) as deliveries:
            again = [await anext(deliveries) for _ in range(2)]
            assert [(d.message_id, d.delivery_count) for d in again] == [("m-1", 2), ("m-2", 2)]
            for delivery in again:
                await delivery.ack()
        assert (await server.xpending(name, "wms"))["pending"] == 0
    finally:
        await connector.aclose()
