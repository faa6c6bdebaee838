"""The `redis_streams` connector: append messages to Redis Streams (XADD), through redis-py asyncio.

A Connection of type `redis_streams` names a server `url`; its `publish` operations name a stream.
The call's idempotency key is the entry's `message_id` field, and a dedupe key written in the same
Lua script as the XADD keeps a re-sent message from being added twice. Needs the `redis` extra
(`pip install 'syncline[redis]'`); the models load without it.
"""

from __future__ import annotations

from connectors.redis_streams.connector import RedisStreamsConnector, create
from connectors.redis_streams.models import RedisStreamsConfig, RedisStreamsOperation
from runtime.connector_api import ConnectorType

CONNECTOR = ConnectorType(
    name="redis_streams",
    description="Appends messages to Redis Streams (XADD) through redis-py asyncio (extra `redis`). An entry has "
    "the fields `message_id` (the call's idempotency key), `content_type`, `body` and `headers` (JSON). With "
    "`dedupe` (default) one Lua script checks a key `<dedupe_prefix>:{<stream>}:<message id>` and only when it is "
    "absent runs the XADD and sets that key for `dedupe_window`, so a re-sent message is added once and the call "
    "returns the first entry's id (explicit stream ids cannot carry arbitrary keys: they must grow). The client "
    "re-connects with backoff (`reconnect`) after the server or the network went away. A `queue` trigger reads "
    "a stream through a consumer group (the trigger's `group`, created from the stream's start), taking over "
    "entries another consumer left unacknowledged for `claim_idle` (XAUTOCLAIM); a message's id is its "
    "`message_id` field, or the entry id without one. Redis has no dead-letter place of its own: with "
    "`dead_letter_stream` a poison entry is added there (with its reason) in the same MULTI/EXEC as its XACK.",
    config_model=RedisStreamsConfig,
    operation_model=RedisStreamsOperation,
    create=create,
    provides=frozenset({"messages"}),
)

__all__ = ["CONNECTOR", "RedisStreamsConfig", "RedisStreamsConnector", "RedisStreamsOperation", "create"]
