"""`RedisStreamsConnector`: appends messages to Redis Streams with XADD, through redis-py asyncio.

Dedupe. A stream entry id cannot carry an arbitrary message id: explicit ids must be `<ms>-<seq>`
and grow, so a re-sent message with an older id is refused and ids from two producers collide. So
the message id is an entry field, and `dedupe` (the default) runs one Lua script, atomic on the
server:

    GET <prefix>:{<stream tag>}:<message id>     -- seen within the dedupe window?
      yes → return its entry id, duplicate         (nothing is added)
      no  → XADD <stream> [MAXLEN ~ n] * fields;  SET <dedupe key> <entry id> PX <window>

A failing XADD (the key is not a stream) writes nothing, so no id is remembered for a message that
was not added. MULTI/EXEC cannot do this (it cannot make the XADD depend on the SET NX result).
The dedupe key shares the stream's hash tag, so both live in one slot on a Redis Cluster.

The client is opened on the first call (PING checks address and credentials) and re-opened after a
connection error (`connectors.messaging.Link`, with backoff); redis-py's own retries are off.

Errors (`ConnectorError`):

    cannot reach the server, connection lost        connect  retriable
    no reply within the timeout                     timeout  retriable
    out of memory, loading, busy script             status   retriable
    key holds another type, auth refused            config   fatal
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import simplejson
from pydantic import BaseModel

from connectors.messaging import Backoff, Errors, Link, outgoing, resolve_operation
from connectors.redis_streams.models import RedisStreamsConfig, RedisStreamsOperation
from runtime.connector_api import CallRequest, CallResult, ConnectorContext, ConnectorError, OperationSpec

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from connectors.redis_streams.consumer import RedisStreamsConsumer

# KEYS[1] stream, KEYS[2] dedupe key; ARGV[1] window in ms, ARGV[2] maxlen or "", ARGV[3..] field, value...
DEDUPE_XADD = """
local seen = redis.call('GET', KEYS[2])
if seen then return {seen, 1} end
local args = {'XADD', KEYS[1]}
if ARGV[2] ~= '' then
  args[#args + 1] = 'MAXLEN'; args[#args + 1] = '~'; args[#args + 1] = ARGV[2]
end
args[#args + 1] = '*'
for i = 3, #ARGV do args[#args + 1] = ARGV[i] end
local id = redis.call(unpack(args))
redis.call('SET', KEYS[2], id, 'PX', ARGV[1])
return {id, 0}
"""

_HASH_TAG = re.compile(r"\{([^}]+)\}")
_RETRIABLE_REPLIES = ("OOM", "LOADING", "BUSY", "TRYAGAIN", "CLUSTERDOWN", "MASTERDOWN", "READONLY")


def dedupe_key(prefix: str, stream: str, message_id: str) -> str:
    """`<prefix>:{<tag>}:<message id>`: the stream's own hash tag when it has one, else its name."""
    match = _HASH_TAG.search(stream)
    tag = match.group(1) if match else stream
    return f"{prefix}:{{{tag}}}:{message_id}"


class RedisStreamsConnector:
    """A live link to one Redis server."""

    def __init__(
        self, config: RedisStreamsConfig, operations: Mapping[str, RedisStreamsOperation], context: ConnectorContext
    ) -> None:
        self._config = config
        self._operations = dict(operations)
        self._context = context
        self.errors = Errors(context.connection, context.redact, [config.password, _url_password(config.url)])
        self.link: Link[Redis] = Link(
            self._open,
            self._close,
            lambda client: True,  # a broken connection shows as an error on the call (then `broken()`)
            Backoff(config.reconnect.min_delay, config.reconnect.max_delay),
            context.clock,
        )
        self._script: Any = None

    # --- connection -------------------------------------------------------------------------------

    async def _open(self) -> Redis:
        try:
            import redis.asyncio
            import redis.exceptions
            from redis.asyncio.retry import Retry
            from redis.backoff import NoBackoff
        except ImportError:
            raise self.errors.make(
                None,
                "the redis_streams connector needs redis-py: pip install 'syncline[redis]'",
                reason="config",
                error_class="fatal",
            ) from None
        config = self._config
        options: dict[str, Any] = {}
        tls = config.tls if config.tls is not None and config.tls.enabled else None
        if tls is not None:
            project = self._context.project_dir
            options.update(ssl_cert_reqs="required" if tls.verify else "none", ssl_check_hostname=tls.verify)
            for option, name in (
                ("ssl_ca_certs", tls.ca_file),
                ("ssl_certfile", tls.cert_file),
                ("ssl_keyfile", tls.key_file),
            ):
                if name is not None:
                    options[option] = name if name.startswith("/") else f"{project}/{name}"
        url = config.url
        if tls is not None and url.startswith("redis://"):
            url = "rediss://" + url.removeprefix("redis://")
        if config.username is not None:
            options["username"] = config.username
        if config.password is not None:
            options["password"] = config.password
        client = redis.asyncio.Redis.from_url(
            url,
            socket_connect_timeout=config.connect_timeout,
            socket_timeout=config.timeout,
            retry=Retry(NoBackoff(), 0),
            client_name=f"syncline:{self._context.connection}",
            **options,
        )
        try:
            async with asyncio.timeout(config.connect_timeout + 1):
                await client.ping()
        except redis.exceptions.AuthenticationError as exc:
            await _quietly_close(client)
            raise self.errors.make(
                None, "the server refused the credentials", reason="config", error_class="fatal", detail=exc
            ) from None
        except redis.exceptions.ResponseError as exc:
            await _quietly_close(client)
            raise self.errors.make(
                None, "the server refused the connection", reason="config", error_class="fatal", detail=exc
            ) from None
        except Exception as exc:
            await _quietly_close(client)
            raise self.errors.make(
                None, "cannot connect to the server", reason="connect", error_class="retriable", detail=exc
            ) from None
        self._script = client.register_script(DEDUPE_XADD)
        return client

    async def _close(self, client: Redis) -> None:
        await client.aclose()

    async def aclose(self) -> None:
        await self.link.aclose()

    def consumer(self, subject: str, *, group: str | None, prefetch: int) -> RedisStreamsConsumer:
        """Entries of the stream `subject` through the consumer group `group` (`Consumable`), `prefetch`
        at a time; entries left unacknowledged for `claim_idle` are taken over, poison entries are
        added to `dead_letter_stream` (`{stream}`: `subject`) when one is set."""
        from connectors.redis_streams.consumer import RedisStreamsConsumer

        dead_letters = self._config.dead_letter_stream
        return RedisStreamsConsumer(
            self,
            subject,
            group or "syncline",
            batch=prefetch,
            claim_idle=self._config.claim_idle,
            dead_letter_stream=dead_letters.replace("{stream}", subject) if dead_letters else None,
        )

    # --- calls ------------------------------------------------------------------------------------

    def _fatal(self, operation: str) -> Any:
        return lambda text: self.errors.make(operation, text, reason="config", error_class="fatal")

    async def call(self, request: CallRequest) -> CallResult:
        name = request.operation
        op = resolve_operation(RedisStreamsOperation, self._operations, name, request.spec, self._fatal(name))
        message = outgoing(request, op, self._config.timeout, self._fatal(name))
        output: dict[str, Any] = {"message_id": message.message_id, "stream": op.stream}
        if request.dry_run:
            return CallResult(output={**output, "dry_run": True}, meta={"dry_run": True})
        import redis.exceptions

        fields: dict[str, bytes | str] = {
            "message_id": message.message_id,
            "content_type": message.content_type,
            "body": message.body,
            "headers": simplejson.dumps(message.headers, ensure_ascii=False, separators=(",", ":")),
        }
        client = await self.link.get()
        errors = self.errors
        try:
            async with asyncio.timeout(message.timeout):
                if op.dedupe:
                    argv: list[Any] = [round(self._config.dedupe_window * 1000), op.maxlen or ""]
                    for field_name, value in fields.items():
                        argv += [field_name, value]
                    key = dedupe_key(self._config.dedupe_prefix, op.stream, message.message_id)
                    entry_id, duplicate = await self._script(keys=[op.stream, key], args=argv, client=client)
                else:
                    kwargs: dict[str, Any] = {"maxlen": op.maxlen, "approximate": True} if op.maxlen else {}
                    entry_id, duplicate = await client.xadd(op.stream, fields, **kwargs), 0  # type: ignore[arg-type]
        except redis.exceptions.TimeoutError:
            await self.link.broken(client)
            raise errors.make(
                name, f"no reply from the server within {message.timeout:g}s", reason="timeout", error_class="retriable"
            ) from None
        except TimeoutError:
            await self.link.broken(client)
            raise errors.make(
                name, f"no reply from the server within {message.timeout:g}s", reason="timeout", error_class="retriable"
            ) from None
        except redis.exceptions.AuthenticationError as exc:
            raise errors.make(
                name, "the server refused the credentials", reason="config", error_class="fatal", detail=exc
            ) from None
        except (redis.exceptions.ConnectionError, OSError) as exc:
            await self.link.broken(client)
            raise errors.make(
                name, "the connection to the server was lost", reason="connect", error_class="retriable", detail=exc
            ) from None
        except redis.exceptions.ResponseError as exc:
            text = str(exc)
            if "WRONGTYPE" in text:
                raise errors.make(
                    name,
                    f"key {op.stream!r} holds a value that is not a stream",
                    reason="config",
                    error_class="fatal",
                    detail=exc,
                ) from None
            if text.startswith(("NOAUTH", "NOPERM", "WRONGPASS")):
                raise errors.make(
                    name, "the server refused the command", reason="config", error_class="fatal", detail=exc
                ) from None
            retriable = text.startswith(_RETRIABLE_REPLIES) or " OOM " in text
            raise errors.make(
                name,
                "the server refused the message",
                reason="status",
                error_class="retriable" if retriable else "fatal",
                detail=exc,
            ) from None
        except ConnectorError:
            raise
        except Exception as exc:
            await self.link.broken(client)
            raise errors.make(
                name, "the call to the server failed", reason="connect", error_class="retriable", detail=exc
            ) from None
        output.update(id=_text(entry_id), duplicate=bool(duplicate))
        return CallResult(output=output)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _url_password(url: str) -> str | None:
    from urllib.parse import unquote, urlsplit

    try:
        password = urlsplit(url).password
    except ValueError:
        return None
    return unquote(password) if password else None


async def _quietly_close(client: Any) -> None:
    try:
        async with asyncio.timeout(5):
            await client.aclose()
    except Exception:
        return


def create(
    config: BaseModel, operations: Mapping[str, OperationSpec], context: ConnectorContext
) -> RedisStreamsConnector:
    """The `ConnectorType.create` factory of the `redis_streams` connector."""
    redis_config = (
        config if isinstance(config, RedisStreamsConfig) else RedisStreamsConfig.model_validate(config.model_dump())
    )
    redis_operations = {
        name: op if isinstance(op, RedisStreamsOperation) else RedisStreamsOperation.model_validate(op.model_dump())
        for name, op in operations.items()
    }
    return RedisStreamsConnector(redis_config, redis_operations, context)
