"""The `mqtt` connector against the real Mosquitto on 127.0.0.1:1883 (MQTT 5)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import subprocess
from collections.abc import AsyncIterator
from typing import Any

import pytest

from connectors.mqtt import CONNECTOR, MqttConnector
from runtime.connector_api import ConnectorError
from tests.connectors.brokers import TcpProxy, build, need, reachable, request, unique, wait_until
from tests.services import require_service

aiomqtt = pytest.importorskip("aiomqtt")

pytestmark = pytest.mark.service


@pytest.fixture
async def topic() -> AsyncIterator[tuple[str, Any]]:
    """(topic, a subscribed MQTT 5 client) for a fresh random topic."""
    need("mosquitto", 1883)
    name = f"syncline/test/{unique('t')}"
    async with aiomqtt.Client("127.0.0.1", 1883, protocol=aiomqtt.ProtocolVersion.V5, timeout=10) as client:
        await client.subscribe(name, qos=1)
        yield name, client


async def _receive(client: Any, count: int) -> list[Any]:
    got: list[Any] = []
    async with asyncio.timeout(10):
        async for message in client.messages:
            got.append(message)
            if len(got) == count:
                return got
    raise AssertionError("the subscription ended")


def _props(message: Any) -> dict[str, str]:
    return dict(message.properties.UserProperty)


def _connector(port: int = 1883, **config: Any) -> MqttConnector:
    base: dict[str, Any] = {"host": "127.0.0.1", "port": port, "reconnect": {"min_delay": "20ms", "max_delay": "200ms"}}
    base.update(config)
    ops = {"publish": {"topic": "{{ params.topic }}", "body": "{{ params.body }}"}}
    connector = build(CONNECTOR, base, ops, connection="plant")
    assert isinstance(connector, MqttConnector)
    return connector


async def test_publish_is_acknowledged_with_body_properties_and_message_id(topic: tuple[str, Any]) -> None:
    name, subscriber = topic
    connector = _connector()
    try:
        body = {"line": 4, "count": "12.50"}
        result = await connector.call(request(key="m-1", topic=name, body=body, headers={"X-Event-Type": "count"}))
        assert result.output == {"message_id": "m-1", "topic": name, "qos": 1}
        (message,) = await _receive(subscriber, 1)
        assert json.loads(message.payload) == body
        assert message.properties.ContentType == "application/json"
        assert _props(message)["message_id"] == "m-1"
        assert _props(message)["X-Event-Type"] == "count"
        assert _props(message)["X-Correlation-ID"] == "corr-1"
    finally:
        await connector.aclose()


async def test_same_idempotency_key_twice_carries_the_same_message_id(topic: tuple[str, Any]) -> None:
    """MQTT brokers cannot drop a duplicate: both copies carry one message_id so a consumer can."""
    name, subscriber = topic
    connector = _connector()
    try:
        for _ in range(2):
            await connector.call(request(key="same-key", topic=name, body="text body", qos=2))
        first, second = await _receive(subscriber, 2)
        assert _props(first)["message_id"] == _props(second)["message_id"] == "same-key"
        assert first.payload == second.payload == b"text body"
        assert first.properties.ContentType == "text/plain; charset=utf-8"
    finally:
        await connector.aclose()


async def test_a_wildcard_topic_is_a_fatal_config_error() -> None:
    connector = _connector()
    try:
        for bad in ("plant/+/count", "plant/#"):
            with pytest.raises(ConnectorError) as info:
                await connector.call(request(key="k", topic=bad, body="x"))
            assert (info.value.reason, info.value.error_class) == ("config", "fatal")
            assert "no wildcards" in str(info.value)
    finally:
        await connector.aclose()


async def test_connection_cut_is_retriable_and_the_connector_recovers(topic: tuple[str, Any]) -> None:
    name, subscriber = topic
    proxy = await TcpProxy(1883).start()
    connector = _connector(port=proxy.port, connect_timeout="5s", timeout="5s")
    try:
        await connector.call(request(key="before", topic=name, body="before"))
        await proxy.cut()

        async def fails_to_connect() -> bool:
            try:
                await connector.call(request(key="during", topic=name, body="during"))
            except ConnectorError as exc:
                assert exc.error_class == "retriable", exc
                return exc.reason == "connect"
            raise AssertionError("a publish was acknowledged while the broker was cut off")

        await wait_until(fails_to_connect)
        await proxy.restore()

        async def publishes() -> bool:
            try:
                await connector.call(request(key="after", topic=name, body="after"))
            except ConnectorError as exc:
                assert exc.error_class == "retriable", exc
                return False
            return True

        await wait_until(publishes)
        received = await _receive(subscriber, 2)
        assert [m.payload for m in received] == [b"before", b"after"]
        assert connector.link.opened == 2
    finally:
        await connector.aclose()
        await proxy.close()


@pytest.fixture
async def acl_broker(tmp_path: Any) -> AsyncIterator[int]:
    """A Mosquitto of our own on a free loopback port whose ACL lets anonymous clients write `allowed/#` only."""
    binary = shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if os.path.exists("/usr/sbin/mosquitto") else None)
    require_service("mosquitto binary", binary is not None, "mosquitto is not installed")
    assert binary is not None
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    (tmp_path / "acl").write_text("topic readwrite allowed/#\n")
    (tmp_path / "mosquitto.conf").write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous true\nacl_file {tmp_path / 'acl'}\npersistence false\n"
        + ("user root\n" if os.geteuid() == 0 else "")  # else it drops to `mosquitto`, who cannot read tmp_path
    )
    process = subprocess.Popen(
        [binary, "-c", str(tmp_path / "mosquitto.conf")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        await wait_until(lambda: _listening(port), timeout=10)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=10)


async def _listening(port: int) -> bool:
    return reachable(port)[0]


async def test_a_refused_publish_reason_code_fails_the_call(acl_broker: int) -> None:
    connector = _connector(port=acl_broker)
    try:
        await connector.call(request(key="k", topic="allowed/x", body="x"))
        with pytest.raises(ConnectorError) as info:
            await connector.call(request(key="k", topic="denied/x", body="x"))
        assert (info.value.error_class, info.value.status) == ("fatal", 135)
        assert "the broker refused the message on topic 'denied/x'" in str(info.value)
        assert "Not authorized" in str(info.value)
    finally:
        await connector.aclose()
