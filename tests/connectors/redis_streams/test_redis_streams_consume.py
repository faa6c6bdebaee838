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


async def test_reject_adds_the_entry_to_the_dead_letter_stream_and_acks_it(stream: tuple[str, Any]) -> None:
    """`dead_letter_stream: "{stream}:dead"` on the connection: a rejected entry is in that stream once,
    with its own fields and where it came from and why, and nothing of it is pending any more."""
    name, server = stream
    config = {"url": "redis://127.0.0.1:6379/0", "dedupe_prefix": PREFIX, "dead_letter_stream": "{stream}:dead"}
    connector = build(CONNECTOR, config, {"publish": {"stream": "{{ params.s }}"}})
    assert isinstance(connector, RedisStreamsConnector)
    dead = f"{name}:dead"
    try:
        await connector.call(request(key="m-bad", stream=name, body="not json", headers={"X-Kind": "order"}))
        consumer = connector.consumer(name, group="g", prefetch=4)
        assert consumer.dead_letter_stream == dead
        async with asyncio.timeout(10), contextlib.aclosing(consumer.messages()) as deliveries:
            delivery = await anext(deliveries)
            await delivery.reject("unparseable", "the body is not json: Expecting value: line 1 column 1 (char 0)")
            await delivery.reject("unparseable", "again")  # settled already: nothing more
        (_dead_id, fields), *more = await server.xrange(dead)
        assert more == []
        original = (await server.xrange(name))[0]
        got = {key.decode(): value.decode() for key, value in fields.items()}
        kept = {key.decode(): value.decode() for key, value in original[1].items()}  # as the entry was
        assert sorted(kept) == ["body", "content_type", "headers", "message_id"]
        assert got == {
            **kept,
            "stream": name,
            "entry_id": original[0].decode(),
            "group": "g",
            "delivery_count": "1",
            "reason": "unparseable",
            "error": "the body is not json: Expecting value: line 1 column 1 (char 0)",
        }
        assert (got["body"], got["message_id"]) == ("not json", "m-bad") and "X-Kind" in got["headers"]
        assert (await server.xpending(name, "g"))["pending"] == 0
    finally:
        await server.delete(dead)
        await connector.aclose()


async def test_reject_without_a_dead_letter_stream_only_acks(stream: tuple[str, Any]) -> None:
    name, server = stream
    connector = _connector()
    try:
        await connector.call(request(key="m-bad", stream=name, body="not json"))
        consumer = connector.consumer(name, group="g", prefetch=4)
        assert consumer.dead_letter_stream is None
        async with asyncio.timeout(10), contextlib.aclosing(consumer.messages()) as deliveries:
            await (await anext(deliveries)).reject("poison", "delivered 7 times (max_redeliveries 5)")
        assert (await server.xpending(name, "g"))["pending"] == 0
        assert await server.xlen(name) == 1  # nothing added anywhere
    finally:
        await connector.aclose()


@pytest.mark.parametrize("target", ["same", "string"])
async def test_an_unusable_dead_letter_stream_is_a_fatal_config_error(stream: tuple[str, Any], target: str) -> None:
    """The consumed stream itself (poison would loop) or a key of another type (every XADD would fail)."""
    name, server = stream
    dead = name if target == "same" else f"{name}:dead"
    if target == "string":
        await server.set(dead, "plain")
    connector = _connector()
    try:
        consumer = RedisStreamsConsumer(connector, name, "g", dead_letter_stream=dead)
        with pytest.raises(ConnectorError) as info:
            async with asyncio.timeout(10), contextlib.aclosing(consumer.messages()) as d:
                await anext(d)
        assert (info.value.reason, info.value.error_class) == ("config", "fatal")
        assert "dead_letter_stream" in str(info.value)
        assert ("loop" if target == "same" else "not a stream") in str(info.value)
    finally:
        await server.delete(f"{name}:dead")
        await connector.aclose()
