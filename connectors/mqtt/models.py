"""The `mqtt` connector's models: a Connection's `config:` and one `publish` entry under `operations:`."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from connectors.messaging.models import Duration, PublishFields, ReconnectOptions, TlsOptions


class MqttConfig(BaseModel):
    """`config:` of a Connection of type `mqtt` (MQTT 5 brokers such as Mosquitto, EMQX, HiveMQ)."""

    model_config = ConfigDict(extra="forbid")

    host: str = Field(
        "127.0.0.1", min_length=1, description="Broker host name or address.", examples=["mqtt.plant.local"]
    )
    port: int = Field(1883, ge=1, le=65535, description="Broker port (8883 is usual with TLS).", examples=[1883])
    username: str | None = Field(None, description="User name.", examples=["{{ secret('MQTT_USER') }}"])
    password: str | None = Field(
        None, description="Password. Use a secret.", examples=["{{ secret('MQTT_PASSWORD') }}"]
    )
    client_id: str | None = Field(
        None,
        description="MQTT client identifier; by default `syncline-<connection>-<random>`. Two live clients with one "
        "id push each other off the broker.",
        examples=["syncline-wms"],
    )
    tls: TlsOptions | None = Field(None, description="TLS settings.")
    session_expiry: Duration | None = Field(
        None,
        description="Keep the broker session (subscriptions, unacknowledged QoS 1/2 messages) this long after a "
        "disconnect, and resume it on reconnect, so a message received but not acknowledged is delivered again. "
        "Needs a fixed `client_id`. Unset: a fresh session on every connect.",
        examples=["1h"],
    )
    receive_maximum: int = Field(
        100,
        ge=1,
        le=65535,
        description="Most QoS 1/2 messages the broker sends this client before it acknowledges them (the consuming "
        "side's prefetch).",
        examples=[100],
    )
    keepalive: Duration = Field(60.0, description="Keep-alive interval the broker enforces.", examples=["60s"])
    connect_timeout: Duration = Field(10.0, description="Longest wait to open the connection.", examples=["10s"])
    timeout: Duration = Field(
        30.0, description="Longest wait for the broker's PUBACK (QoS 1) or PUBCOMP (QoS 2).", examples=["30s"]
    )
    reconnect: ReconnectOptions = Field(
        default_factory=ReconnectOptions,
        description="Backoff between connection attempts after the broker or the network went away.",
    )


class MqttOperation(PublishFields):
    """A `publish` operation of an `mqtt` Connection: one MQTT 5 message to a topic.

    The call's idempotency key is sent as the user property `message_id` (MQTT brokers cannot drop
    a duplicate themselves; a consumer dedupes by it). The call returns once the broker acknowledged
    the message (PUBACK for QoS 1) with a success reason code.
    """

    topic: str = Field(
        ...,
        min_length=1,
        description="Topic (may be templated); no wildcards (`+`, `#`).",
        examples=["plant/{{ params.line }}/shipments"],
    )
    qos: Literal[1, 2] = Field(
        1, description="Quality of service: 1 (at least once) or 2 (exactly once to the broker).", examples=[1]
    )
    retain: bool = Field(False, description="The broker keeps the message as the topic's last value.", examples=[False])
