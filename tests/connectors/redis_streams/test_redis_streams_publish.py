"""The `redis_streams` connector against the real Redis on 127.0.0.1:6379."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from connectors.redis_streams import CONNECTOR, RedisStreamsConnector
from connectors.redis_streams.connector import dedupe_key
from runtime.connector_api import ConnectorError
from tests.connectors.brokers import TcpProxy, build, need, request, unique, wait_until

redis_asyncio = pytest.importorskip("redis.asyncio")

pytestmark = pytest.mark.service

PREFIX = "syncline:test:dedupe"


@pytest.fixture
async def server() -> AsyncIterator[Any]:
    need("redis", 6379)
    client = redis_asyncio.Redis(host="127.0.0.1", port=6379)
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
async def stream(server: Any) -> AsyncIterator[str]:
    name = unique("syncline:test:stream")
    try:
        yield name
    finally:
        keys = [key async for key in server.scan_iter(match=f"{PREFIX}:{{{name}}}:*")]
        await server.delete(name, *keys)


def _connector(port: int = 6379, **config: Any) -> RedisStreamsConnector:
    base: dict[str, Any] = {
        "url": f"redis://127.0.0.1:{port}/0",
        "dedupe_prefix": PREFIX,
        "reconnect": {"min_delay": "20ms", "max_delay": "200ms"},
    }
    base.update(config)
    ops = {"publish": {"stream": "{{ params.stream }}", "body": "{{ params.body }}"}}
    connector = build(CONNECTOR, base, ops, connection="cache", redact=lambda text: text.replace("s3cret-pw", "***"))
    assert isinstance(connector, RedisStreamsConnector)
    return connector


async def test_publish_adds_an_entry_with_body_headers_and_message_id(server: Any, stream: str) -> None:
    connector = _connector()
    try:
        body = {"shipment": "S-1", "weight": "12.50"}
        result = await connector.call(request(key="ship-1", stream=stream, body=body, headers={"X-Event-Type": "x"}))
        entries = await server.xrange(stream)
        assert len(entries) == 1
        entry_id, fields = entries[0]
        assert result.output == {"message_id": "ship-1", "stream": stream, "id": entry_id.decode(), "duplicate": False}
        assert fields[b"message_id"] == b"ship-1"
        assert fields[b"content_type"] == b"application/json"
        assert json.loads(fields[b"body"]) == body
        headers = json.loads(fields[b"headers"])
        assert headers["X-Event-Type"] == "x" and headers["X-Correlation-ID"] == "corr-1"
        assert await server.pttl(dedupe_key(PREFIX, stream, "ship-1")) > 0
    finally:
        await connector.aclose()


async def test_same_idempotency_key_twice_is_one_entry(server: Any, stream: str) -> None:
    connector = _connector()
    try:
        first = await connector.call(request(key="same-key", stream=stream, body="one"))
        second = await connector.call(request(key="same-key", stream=stream, body="one"))
        await connector.call(request(key="other-key", stream=stream, body="two"))
        assert first.output["duplicate"] is False
        assert second.output["duplicate"] is True and second.output["id"] == first.output["id"]
        entries = await server.xrange(stream)
        assert [(fields[b"message_id"], fields[b"body"]) for _, fields in entries] == [
            (b"same-key", b"one"),
            (b"other-key", b"two"),
        ]
    finally:
        await connector.aclose()


async def test_without_dedupe_and_with_maxlen(server: Any, stream: str) -> None:
    connector = _connector()
    try:
        for _ in range(2):
            await connector.call(request(key="k", stream=stream, body="x", dedupe=False, maxlen=1000))
        assert await server.xlen(stream) == 2
    finally:
        await connector.aclose()


async def test_a_key_that_is_not_a_stream_fails_clearly_and_remembers_nothing(server: Any, stream: str) -> None:
    await server.set(stream, "a plain string")
    connector = _connector()
    try:
        with pytest.raises(ConnectorError) as info:
            await connector.call(request(key="k", stream=stream, body="x"))
        assert (info.value.reason, info.value.error_class) == ("config", "fatal")
        assert f"key {stream!r} holds a value that is not a stream" in str(info.value)
        assert await server.exists(dedupe_key(PREFIX, stream, "k")) == 0
    finally:
        await connector.aclose()


async def test_refused_credentials_are_fatal_without_the_password(server: Any) -> None:
    connector = _connector(username=unique("nobody"), password="s3cret-pw")
    try:
        with pytest.raises(ConnectorError) as info:
            await connector.call(request(key="k", stream="s", body="x"))
        assert (info.value.reason, info.value.error_class) == ("config", "fatal")
        assert "s3cret-pw" not in str(info.value)
    finally:
        await connector.aclose()


async def test_connection_cut_is_retriable_and_the_connector_recovers(server: Any, stream: str) -> None:
    proxy = await TcpProxy(6379).start()
    connector = _connector(port=proxy.port, connect_timeout="5s", timeout="5s")
    try:
        await connector.call(request(key="before", stream=stream, body="before"))
        await proxy.cut()

        async def fails_to_connect() -> bool:
            try:
                await connector.call(request(key="during", stream=stream, body="during"))
            except ConnectorError as exc:
                assert exc.error_class == "retriable", exc
                return exc.reason == "connect"
            raise AssertionError("a publish went through while the server was cut off")

        await wait_until(fails_to_connect)
        await proxy.restore()

        async def publishes() -> bool:
            try:
                await connector.call(request(key="after", stream=stream, body="after"))
            except ConnectorError as exc:
                assert exc.error_class == "retriable", exc
                return False
            return True

        await wait_until(publishes)
        assert [fields[b"body"] for _, fields in await server.xrange(stream)] == [b"before", b"after"]
        assert connector.link.opened == 2
    finally:
        await connector.aclose()
        await proxy.close()
