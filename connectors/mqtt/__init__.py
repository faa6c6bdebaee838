"""The `mqtt` connector: publish MQTT 5 messages with QoS 1 (or 2), through aiomqtt.

A Connection of type `mqtt` names a broker `host` and `port`; its `publish` operations name a topic.
The call's idempotency key is the `message_id` user property. Needs the `mqtt` extra
(`pip install 'syncline[mqtt]'`); the models load without it.
"""

from __future__ import annotations

from connectors.mqtt.connector import MqttConnector, create
from connectors.mqtt.models import MqttConfig, MqttOperation
from runtime.connector_api import ConnectorType

CONNECTOR = ConnectorType(
    name="mqtt",
    description="Publishes MQTT 5 messages through aiomqtt (extra `mqtt`) with QoS 1 (or 2). A call returns once "
    "the broker acknowledged the message with a success reason code (a refusal, e.g. not authorized, fails the "
    "call). The call's idempotency key is the user property `message_id`: MQTT brokers do not drop duplicates, so "
    "a re-sent message carries the same id and the consumer dedupes by it. The connection opens on first use and "
    "again after the broker or the network went away, with backoff (`reconnect`). A `queue` trigger subscribes "
    "with QoS 1 and manual acknowledgement, as a shared subscription (`$share/<group>/<topic>`) when it names a "
    "`group`; a message's id is its `message_id` user property, or the SHA-256 of its topic and payload without "
    "one. MQTT counts no redeliveries; give the connection a fixed `client_id` and a `session_expiry` so a "
    "message received but not acknowledged comes again after a reconnect. MQTT has no dead-letter place: poison "
    "is acknowledged and kept only in Syncline's dead letters.",
    config_model=MqttConfig,
    operation_model=MqttOperation,
    create=create,
    provides=frozenset({"messages"}),
)

__all__ = ["CONNECTOR", "MqttConfig", "MqttConnector", "MqttOperation", "create"]
