"""The `nats` connector's models: a Connection's `config:` and one `publish` entry under `operations:`."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from connectors.messaging.models import Duration, PublishFields, ReconnectOptions, TlsOptions

_SCHEMES = ("nats", "tls")


def _as_list(value: object) -> object:
    return [value] if isinstance(value, str) else value


class NatsConfig(BaseModel):
    """`config:` of a Connection of type `nats` (NATS with JetStream)."""

    model_config = ConfigDict(extra="forbid")

    servers: Annotated[list[str], BeforeValidator(_as_list)] = Field(
        default_factory=lambda: ["nats://127.0.0.1:4222"],
        min_length=1,
        description="Server URL or URLs (`nats://host:4222`, `tls://host:4222` for TLS), tried in order.",
        examples=[["nats://nats-1.internal:4222", "nats://nats-2.internal:4222"], "nats://127.0.0.1:4222"],
    )
    user: str | None = Field(None, description="User name.", examples=["{{ secret('NATS_USER') }}"])
    password: str | None = Field(
        None, description="Password of `user`. Use a secret.", examples=["{{ secret('NATS_PASSWORD') }}"]
    )
    token: str | None = Field(
        None, description="Authentication token. Use a secret.", examples=["{{ secret('NATS_TOKEN') }}"]
    )
    tls: TlsOptions | None = Field(None, description="TLS settings (also turned on by a `tls://` URL).")
    connect_timeout: Duration = Field(10.0, description="Longest wait to open the connection.", examples=["10s"])
    timeout: Duration = Field(
        30.0, description="Longest wait for JetStream's acknowledgement of one message.", examples=["30s"]
    )
    ack_wait: Duration = Field(
        30.0,
        gt=0,
        description="Consuming (a `queue` trigger): a message taken but not acknowledged for this long (its "
        "node died, or held it while paused) is delivered again. Also the time a restarted node may wait for "
        "messages a dead one had taken.",
        examples=["30s"],
    )
    reconnect: ReconnectOptions = Field(
        default_factory=ReconnectOptions,
        description="Backoff between connection attempts after the server or the network went away.",
    )

    @field_validator("servers")
    @classmethod
    def _check_servers(cls, value: list[str]) -> list[str]:
        for server in value:
            if "{{" in server or "{%" in server:
                continue
            scheme, sep, rest = server.partition("://")
            if not sep or scheme not in _SCHEMES or not rest.strip("/"):
                raise ValueError(f"server {server!r} must be nats://host:port or tls://host:port")
        return value


class NatsOperation(PublishFields):
    """A `publish` operation of a `nats` Connection: one message to a JetStream subject.

    The call's idempotency key is sent as the `Nats-Msg-Id` header, so JetStream stores a re-sent
    message once (within the stream's duplicate window, 2 minutes by default). The call returns once
    the stream acknowledged the message.
    """

    subject: str = Field(
        ...,
        description="Subject (may be templated); a JetStream stream must capture it.",
        examples=["wms.shipment.{{ params.warehouse }}"],
    )
    stream: str | None = Field(
        None,
        description="The stream the subject must land in; another stream (or none) fails the call.",
        examples=["WMS"],
    )
