"""The `redis_streams` connector's models: a Connection's `config:` and one `publish` entry."""

from __future__ import annotations

from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

from connectors.messaging.models import Duration, PublishFields, ReconnectOptions, TlsOptions


class RedisStreamsConfig(BaseModel):
    """`config:` of a Connection of type `redis_streams`."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(
        "redis://127.0.0.1:6379/0",
        description="Server URL: `redis://host:6379/db`, or `rediss://` for TLS. Put credentials in "
        "`username`/`password` (from secrets), not in the URL.",
        examples=["redis://cache.internal:6379/0"],
    )
    username: str | None = Field(None, description="ACL user name (Redis 6+).", examples=["syncline"])
    password: str | None = Field(
        None, description="Password. Use a secret.", examples=["{{ secret('REDIS_PASSWORD') }}"]
    )
    tls: TlsOptions | None = Field(None, description="TLS settings (also turned on by a `rediss://` URL).")
    connect_timeout: Duration = Field(10.0, description="Longest wait to open a connection.", examples=["10s"])
    timeout: Duration = Field(30.0, description="Longest wait for the server's reply to one XADD.", examples=["30s"])
    reconnect: ReconnectOptions = Field(
        default_factory=ReconnectOptions,
        description="Backoff between connection attempts after the server or the network went away.",
    )
    claim_idle: Duration = Field(
        60.0,
        description="Consuming (a `queue` trigger): an entry another consumer of the group took but did not "
        "acknowledge for this long is taken over (XAUTOCLAIM), e.g. after that consumer's node died.",
        examples=["1m"],
    )
    dead_letter_stream: str | None = Field(
        None,
        min_length=1,
        description="Consuming (a `queue` trigger): a stream that poison entries (unparseable, failing the "
        "trigger's `schema`, or over `max_redeliveries`) are added to before they are acknowledged, in the "
        "same MULTI/EXEC as the XACK. The entry keeps `body`, `content_type`, `headers` and `message_id` as "
        "they were and adds `stream`, `entry_id`, `group`, `delivery_count`, `reason` and `error`. "
        "`{stream}` stands for the consumed stream. Unset: poison is only in Syncline's dead letters.",
        examples=["{stream}:dead", "wms:dead-letters"],
    )
    dedupe_window: Duration = Field(
        7 * 86400.0,
        gt=0,
        description="How long a message id is remembered: a message re-sent with the same id within it is not "
        "added again (the first entry's id is returned).",
        examples=["24h", "7d"],
    )
    dedupe_prefix: str = Field(
        "syncline:dedupe",
        min_length=1,
        description="Prefix of the keys that remember message ids: `<prefix>:{<stream>}:<message id>` (the "
        "stream's hash tag keeps them in the stream's cluster slot).",
        examples=["syncline:dedupe"],
    )

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        if "{{" in value or "{%" in value:
            return value
        parts = urlsplit(value)
        if parts.scheme not in ("redis", "rediss") or not parts.hostname:
            raise ValueError("url must be redis://host[:port][/db] or rediss://...")
        return value


class RedisStreamsOperation(PublishFields):
    """A `publish` operation of a `redis_streams` Connection: one entry appended to a stream (XADD).

    The entry's fields are `message_id` (the call's idempotency key), `content_type`, `body` and
    `headers` (a JSON object). With `dedupe` (the default) the XADD runs in a Lua script together with
    a `SET NX` of a key holding the message id, so a re-sent message is added once.
    """

    stream: str = Field(..., min_length=1, description="Stream key (may be templated).", examples=["wms:shipments"])
    maxlen: int | None = Field(
        None, ge=1, description="Trim the stream to about this many entries (`XADD MAXLEN ~`).", examples=[100000]
    )
    dedupe: bool = Field(
        True,
        description="Add a message only once per message id within the connection's `dedupe_window`.",
        examples=[True],
    )
