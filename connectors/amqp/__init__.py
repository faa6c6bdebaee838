"""The `amqp` connector: publish to RabbitMQ (AMQP 0-9-1) with publisher confirms, through aio-pika.

A Connection of type `amqp` names a broker `url`; its `publish` operations name an exchange and a
routing key. The call's idempotency key becomes the message's `message_id`. Needs the `amqp` extra
(`pip install 'syncline[amqp]'`); the models load without it.
"""

from __future__ import annotations

from connectors.amqp.connector import AmqpConnector, create
from connectors.amqp.models import AmqpConfig, AmqpOperation
from runtime.connector_api import ConnectorType

CONNECTOR = ConnectorType(
    name="amqp",
    description="Publishes messages to RabbitMQ (AMQP 0-9-1) exchanges through aio-pika (extra `amqp`). A call "
    "returns once the broker confirmed the message (publisher confirms); a message no queue takes is returned and "
    "fails the call. The call's idempotency key is the AMQP `message_id`: RabbitMQ does not drop duplicates, so a "
    "re-sent message carries the same id and the consumer dedupes by it. Messages are persistent by default. The "
    "connection opens on first use and again after the broker or the network went away, with backoff "
    "(`reconnect`). A `queue` trigger consumes from an existing queue with a bounded prefetch (basic.qos); a "
    "message's id is its `message_id` property, or the SHA-256 of its body and headers when it has none. Poison "
    "(unparseable, failing the trigger's `schema`, over `max_redeliveries`) is rejected without requeue, so a "
    "queue with a dead-letter exchange (the `x-dead-letter-exchange` argument or a policy) routes it there, with "
    "RabbitMQ's `x-death` header.",
    config_model=AmqpConfig,
    operation_model=AmqpOperation,
    create=create,
    provides=frozenset({"messages"}),
)

__all__ = ["CONNECTOR", "AmqpConfig", "AmqpConnector", "AmqpOperation", "create"]
