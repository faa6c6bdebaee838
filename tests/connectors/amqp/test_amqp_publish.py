"""The `amqp` connector against the real RabbitMQ on 127.0.0.1:5672 (guest/guest), over real sockets."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from connectors.amqp import CONNECTOR, AmqpConnector
from runtime.connector_api import ConnectorError
from tests.connectors.brokers import TcpProxy, build, need, request, unique, wait_until

aio_pika = pytest.importorskip("aio_pika")

pytestmark = pytest.mark.service

URL = "amqp://127.0.0.1:5672/"
PASSWORD = "guest"


@pytest.fixture
async def broker() -> AsyncIterator[Any]:
    need("rabbitmq", 5672)
    connection = await aio_pika.connect(f"amqp://guest:{PASSWORD}@127.0.0.1:5672/", timeout=10)
    try:
        yield connection
    finally:
        await connection.close()


async def _queue(broker: Any) -> Any:
    channel = await broker.channel()
    return await channel.declare_queue(unique("syncline_test"), auto_delete=True)


async def _get(queue: Any) -> Any:
    return await wait_until(lambda: queue.get(no_ack=True, fail=False))


def _connector(port: int = 5672, **config: Any) -> AmqpConnector:
    base = {"url": f"amqp://127.0.0.1:{port}/", "username": "guest", "password": PASSWORD}
    base["reconnect"] = {"min_delay": "20ms", "max_delay": "200ms"}
    base.update(config)
    ops = {"publish": {"routing_key": "{{ params.key }}", "body": "{{ params.body }}", "entity": "shipment"}}
    connector = build(CONNECTOR, base, ops, connection="wms_bus", redact=lambda text: text.replace("s3cret-pw", "***"))
    assert isinstance(connector, AmqpConnector)
    return connector


async def test_publish_is_confirmed_and_carries_body_headers_and_message_id(broker: Any) -> None:
    queue = await _queue(broker)
    connector = _connector()
    try:
        body = {"shipment": "S-1", "weight": "12.50"}
        result = await connector.call(
            request(
                key="order-17-shipped", routing_key=queue.name, body=body, headers={"X-Event-Type": "shipped", "n": 3}
            )
        )
        assert result.output == {"message_id": "order-17-shipped", "exchange": "", "routing_key": queue.name}
        message = await _get(queue)
        assert json.loads(message.body) == body
        assert message.message_id == "order-17-shipped"
        assert message.content_type == "application/json"
        assert message.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
        assert message.correlation_id == "corr-1"
        assert message.headers["X-Event-Type"] == "shipped"
        assert message.headers["n"] == "3"
        assert message.headers["X-Syncline-Run"] == "run-1"
    finally:
        await connector.aclose()


async def test_topic_exchange_and_text_body(broker: Any) -> None:
    channel = await broker.channel()
    exchange = await channel.declare_exchange(unique("syncline_ex"), aio_pika.ExchangeType.TOPIC, auto_delete=True)
    queue = await channel.declare_queue(unique("syncline_test"), auto_delete=True)
    await queue.bind(exchange, routing_key="shipment.#")
    connector = _connector()
    try:
        await connector.call(
            request(key="k-1", exchange=exchange.name, routing_key="shipment.dc1.created", body="plain text ✓")
        )
        message = await _get(queue)
        assert message.body == "plain text ✓".encode()
        assert message.content_type == "text/plain; charset=utf-8"
        assert message.routing_key == "shipment.dc1.created"
    finally:
        await connector.aclose()
        await exchange.delete()


async def test_same_idempotency_key_twice_carries_the_same_message_id(broker: Any) -> None:
    """RabbitMQ cannot drop a duplicate: both copies carry one message_id so a consumer can."""
    queue = await _queue(broker)
    connector = _connector()
    try:
        for _ in range(2):
            await connector.call(request(key="same-key", routing_key=queue.name, body={"n": 1}))
        first, second = await _get(queue), await _get(queue)
        assert first.message_id == second.message_id == "same-key"
    finally:
        await connector.aclose()


async def test_unroutable_message_and_missing_exchange_fail_clearly_and_the_connector_goes_on(broker: Any) -> None:
    queue = await _queue(broker)
    connector = _connector()
    try:
        with pytest.raises(ConnectorError) as unroutable:
            await connector.call(request(key="k", routing_key=unique("nobody_listens"), body="x"))
        assert unroutable.value.error_class == "fatal"
        assert unroutable.value.reason == "status" and unroutable.value.status == 312
        assert "wms_bus.publish: the broker returned the message" in str(unroutable.value)

        missing = unique("no_such_exchange")
        with pytest.raises(ConnectorError) as no_exchange:
            await connector.call(request(key="k", exchange=missing, routing_key="a", body="x"))
        assert (no_exchange.value.reason, no_exchange.value.error_class) == ("config", "fatal")
        assert f"exchange {missing!r} does not exist" in str(no_exchange.value)

        await connector.call(request(key="after", routing_key=queue.name, body="still works"))
        assert (await _get(queue)).body == b"still works"
    finally:
        await connector.aclose()


async def test_refused_login_is_a_fatal_config_error_without_the_password(broker: Any) -> None:
    connector = _connector(password="s3cret-pw")
    try:
        with pytest.raises(ConnectorError) as info:
            await connector.call(request(key="k", routing_key="q", body="x"))
        assert (info.value.reason, info.value.error_class) == ("config", "fatal")
        assert "refused the login" in str(info.value)
        assert "s3cret-pw" not in str(info.value)
    finally:
        await connector.aclose()


async def test_invalid_operation_is_a_fatal_config_error() -> None:
    connector = _connector()
    try:
        with pytest.raises(ConnectorError) as info:
            await connector.call(request(key="k", routing_key="q", body=float("nan")))
        assert (info.value.reason, info.value.error_class) == ("config", "fatal")
        assert "NaN" in str(info.value)
    finally:
        await connector.aclose()


async def test_unreachable_broker_is_retriable_and_the_connector_recovers(broker: Any) -> None:
    queue = await _queue(broker)
    proxy = await TcpProxy(5672).start()
    connector = _connector(port=proxy.port, connect_timeout="5s")
    try:
        await connector.call(request(key="before", routing_key=queue.name, body="before"))
        assert (await _get(queue)).body == b"before"

        await proxy.cut()  # the broker goes away: the live connection drops, new ones are refused
        await _expect_connect_error(connector, queue.name)

        await proxy.restore()
        await wait_until(lambda: _publishes(connector, queue.name, "after"))
        assert (await _get(queue)).body == b"after"
        assert connector.link.opened == 2
    finally:
        await connector.aclose()
        await proxy.close()


async def _expect_connect_error(connector: AmqpConnector, queue: str) -> None:
    async def failed() -> bool:
        try:
            await connector.call(request(key="during", routing_key=queue, body="during"))
        except ConnectorError as exc:
            assert exc.error_class == "retriable", exc
            return exc.reason == "connect"
        raise AssertionError("a publish went through while the broker was cut off")

    await wait_until(failed)


async def _publishes(connector: AmqpConnector, queue: str, body: str) -> bool:
    try:
        await connector.call(request(key=body, routing_key=queue, body=body))
    except ConnectorError as exc:
        assert exc.error_class == "retriable", exc
        return False
    return True


async def test_aclose_closes_the_connection(broker: Any) -> None:
    queue = await _queue(broker)
    connector = _connector()
    await connector.call(request(key="k", routing_key=queue.name, body="x"))
    session = connector.link.current
    assert session is not None
    await connector.aclose()
    assert session.connection.is_closed
    assert connector.link.current is None
