"""The `amqp` connector's models: a Connection's `config:` and one `publish` entry under `operations:`."""

from __future__ import annotations

from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

from connectors.messaging.models import Duration, PublishFields, ReconnectOptions, TlsOptions


class AmqpConfig(BaseModel):
    """`config:` of a Connection of type `amqp` (RabbitMQ and other AMQP 0-9-1 brokers)."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(
        "amqp://127.0.0.1:5672/",
        description="Broker URL: `amqp://host:5672/vhost`, or `amqps://` for TLS. Put credentials in "
        "`username`/`password` (from secrets), not in the URL.",
        examples=["amqp://rabbitmq.internal:5672/", "amqps://mq.example.com:5671/wms"],
    )
    username: str | None = Field(
        None, description="Login; overrides one in the URL.", examples=["syncline", "{{ secret('RABBITMQ_USER') }}"]
    )
    password: str | None = Field(
        None,
        description="Password; overrides one in the URL. Use a secret.",
        examples=["{{ secret('RABBITMQ_PASSWORD') }}"],
    )
    tls: TlsOptions | None = Field(None, description="TLS settings (also turned on by an `amqps://` URL).")
    connect_timeout: Duration = Field(10.0, description="Longest wait to open the connection.", examples=["10s"])
    timeout: Duration = Field(
        30.0, description="Longest wait for the broker's publisher confirm of one message.", examples=["30s"]
    )
    reconnect: ReconnectOptions = Field(
        default_factory=ReconnectOptions,
        description="Backoff between connection attempts after the broker or the network went away.",
    )

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        if "{{" in value or "{%" in value:
            return value  # rendered with env()/secret() before the connector starts
        parts = urlsplit(value)
        if parts.scheme not in ("amqp", "amqps") or not parts.hostname:
            raise ValueError("url must be amqp://host[:port]/[vhost] or amqps://...")
        return value


class AmqpOperation(PublishFields):
    """A `publish` operation of an `amqp` Connection: one message to an exchange with a routing key.

    The call's idempotency key is the message's `message_id`; the message is persistent and
    mandatory by default, and the call returns once the broker confirmed it (publisher confirms).
    """

    exchange: str = Field(
        "",
        description='Exchange to publish to; `""` is the default exchange, which routes to the queue named by '
        "`routing_key`. It must exist (the connector declares nothing).",
        examples=["wms.events", ""],
    )
    routing_key: str = Field(
        ..., description="Routing key (may be templated).", examples=["shipment.{{ params.warehouse }}.created"]
    )
    persistent: bool = Field(
        True, description="Delivery mode 2: a durable queue keeps the message across broker restarts.", examples=[True]
    )
    mandatory: bool = Field(
        True,
        description="A message that no queue takes is returned by the broker and the call fails (fatal, "
        "status 312), instead of being dropped silently.",
        examples=[True],
    )
