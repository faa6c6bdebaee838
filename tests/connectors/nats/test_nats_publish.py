"""The `nats` connector against the real NATS server with JetStream on 127.0.0.1:4222."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from connectors.nats import CONNECTOR, NatsConnector
from runtime.connector_api import ConnectorError
from tests.connectors.brokers import TcpProxy, build, need, request, unique, wait_until

nats = pytest.importorskip("nats")

pytestmark = pytest.mark.service


@pytest.fixture
async def js() -> AsyncIterator[Any]:
    need("nats", 4222)
    client = await nats.connect("nats://127.0.0.1:4222", allow_reconnect=False)
    try:
        yield client.jetstream()
    finally:
        await client.close()


@pytest.fixture
async def stream(js: Any) -> AsyncIterator[tuple[str, str]]:
    """(stream name, subject prefix) of a fresh stream capturing `<prefix>.>`."""
    name = unique("SYNCLINE_TEST").upper()
    prefix = unique("syncline.test").replace("_", "-")
    await js.add_stream(name=name, subjects=[f"{prefix}.>"])
    try:
        yield name, prefix
    finally:
        await js.delete_stream(name)


def _connector(port: int = 4222, **config: Any) -> NatsConnector:
    base: dict[str, Any] = {
        "servers": f"nats://127.0.0.1:{port}",
        "reconnect": {"min_delay": "20ms", "max_delay": "200ms"},
    }
    base.update(config)
    ops = {"publish": {"subject": "{{ params.subject }}", "body": "{{ params.body }}"}}
    connector = build(CONNECTOR, base, ops, connection="events")
    assert isinstance(connector, NatsConnector)
    return connector


async def test_publish_is_acknowledged_with_body_headers_and_msg_id(js: Any, stream: tuple[str, str]) -> None:
    name, prefix = stream
    connector = _connector()
    try:
        body = {"shipment": "S-1", "weight": 12.5}
        result = await connector.call(
            request(key="ship-1", subject=f"{prefix}.shipped", body=body, headers={"X-Event-Type": "shipped"})
        )
        assert result.output == {
            "message_id": "ship-1",
            "subject": f"{prefix}.shipped",
            "stream": name,
            "seq": 1,
            "duplicate": False,
        }
        stored = await js.get_msg(name, 1)
        assert json.loads(stored.data) == body
        assert stored.subject == f"{prefix}.shipped"
        assert stored.headers["Nats-Msg-Id"] == "ship-1"
        assert stored.headers["Content-Type"] == "application/json"
        assert stored.headers["X-Event-Type"] == "shipped"
        assert stored.headers["X-Correlation-ID"] == "corr-1"
    finally:
        await connector.aclose()


async def test_same_idempotency_key_twice_is_stored_once(js: Any, stream: tuple[str, str]) -> None:
    name, prefix = stream
    connector = _connector()
    try:
        first = await connector.call(request(key="same-key", subject=f"{prefix}.a", body="one"))
        second = await connector.call(request(key="same-key", subject=f"{prefix}.a", body="one"))
        other = await connector.call(request(key="other-key", subject=f"{prefix}.a", body="two"))
        assert (first.output["seq"], first.output["duplicate"]) == (1, False)
        assert (second.output["seq"], second.output["duplicate"]) == (1, True)
        assert other.output["seq"] == 2

        consumer = await js.pull_subscribe(f"{prefix}.>", durable=None, stream=name)
        fetched = await consumer.fetch(1, timeout=5)
        seen = [(m.data, m.headers["Nats-Msg-Id"]) for m in fetched]
        fetched = await consumer.fetch(1, timeout=5)
        seen += [(m.data, m.headers["Nats-Msg-Id"]) for m in fetched]
        assert seen == [(b"one", "same-key"), (b"two", "other-key")]
        assert (await consumer.consumer_info()).num_pending == 0
        await consumer.unsubscribe()
    finally:
        await connector.aclose()


async def test_invalid_targets_fail_clearly(js: Any, stream: tuple[str, str]) -> None:
    name, prefix = stream
    connector = _connector()
    try:
        nowhere = f"{unique('nostream')}.x"
        with pytest.raises(ConnectorError) as no_stream:
            await connector.call(request(key="k", subject=nowhere, body="x"))
        assert (no_stream.value.reason, no_stream.value.error_class) == ("config", "fatal")
        assert f"no JetStream stream captures subject {nowhere!r}" in str(no_stream.value)

        with pytest.raises(ConnectorError) as wrong_stream:
            await connector.call(request(key="k", subject=f"{prefix}.a", body="x", stream="SOME_OTHER"))
        assert wrong_stream.value.error_class == "fatal"
        assert "in stream 'SOME_OTHER'" in str(wrong_stream.value)

        with pytest.raises(ConnectorError) as bad_subject:
            await connector.call(request(key="k", subject="has space", body="x"))
        assert (bad_subject.value.reason, bad_subject.value.error_class) == ("config", "fatal")

        ok = await connector.call(request(key="k2", subject=f"{prefix}.a", body="x", stream=name))
        assert ok.output["stream"] == name
    finally:
        await connector.aclose()


async def test_no_server_is_a_retriable_connect_error_then_fails_fast_during_backoff() -> None:
    need("nats", 4222)
    proxy = await TcpProxy(4222).start()
    port = proxy.port
    await proxy.cut()  # nothing listens on `port` now
    connector = _connector(port=port, reconnect={"min_delay": "30s", "max_delay": "60s"})
    try:
        with pytest.raises(ConnectorError) as first:
            await connector.call(request(key="k", subject="a.b", body="x"))
        assert (first.value.reason, first.value.error_class) == ("connect", "retriable")
        assert f"127.0.0.1:{port}" in str(first.value)
        with pytest.raises(ConnectorError) as again:
            await connector.call(request(key="k", subject="a.b", body="x"))
        assert again.value.reason == "connect" and again.value.retry_after is not None
        assert 0 < again.value.retry_after <= 30
        assert "next connection attempt in" in str(again.value)
        assert connector.link.opened == 0
    finally:
        await connector.aclose()


async def test_connection_cut_is_retriable_and_the_connector_recovers(js: Any, stream: tuple[str, str]) -> None:
    name, prefix = stream
    proxy = await TcpProxy(4222).start()
    connector = _connector(port=proxy.port, connect_timeout="5s", timeout="5s")
    try:
        await connector.call(request(key="before", subject=f"{prefix}.a", body="before"))
        await proxy.cut()

        async def fails_to_connect() -> bool:
            try:
                await connector.call(request(key="during", subject=f"{prefix}.a", body="during"))
            except ConnectorError as exc:
                assert exc.error_class == "retriable", exc
                return exc.reason == "connect"
            raise AssertionError("a publish went through while the server was cut off")

        await wait_until(fails_to_connect)
        await proxy.restore()

        async def publishes() -> bool:
            try:
                await connector.call(request(key="after", subject=f"{prefix}.a", body="after"))
            except ConnectorError as exc:
                assert exc.error_class == "retriable", exc
                return False
            return True

        await wait_until(publishes)
        info = await js.stream_info(name)
        assert info.state.messages == 2  # before and after; nothing from the cut-off attempts
        assert (await js.get_msg(name, 2)).data == b"after"
        assert connector.link.opened == 2
    finally:
        await connector.aclose()
        await proxy.close()
