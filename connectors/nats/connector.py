"""`NatsConnector`: publishes to NATS JetStream through nats-py and waits for the stream's ack.

One client per Connection, opened on the first call and re-opened after the server or the network
went away (`connectors.messaging.Link`, with backoff; nats-py's own reconnect is off so a lost
connection is noticed at once). The call's idempotency key is the `Nats-Msg-Id` header: JetStream
stores a re-sent message once within the stream's duplicate window and answers `duplicate: true`.

Errors (`ConnectorError`):

    cannot reach the server, connection lost            connect  retriable
    no acknowledgement within the timeout               timeout  retriable
    JetStream unavailable (503)                         status   retriable
    no stream captures the subject, wrong stream,
    invalid subject, message too large, auth refused    config   fatal
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel

from connectors.messaging import Backoff, Errors, Link, outgoing, resolve_operation
from connectors.nats.models import NatsConfig, NatsOperation
from runtime.connector_api import CallRequest, CallResult, ConnectorContext, ConnectorError, OperationSpec

if TYPE_CHECKING:
    from nats.aio.client import Client

    from connectors.nats.consumer import NatsConsumer

MSG_ID = "Nats-Msg-Id"
T = TypeVar("T")


@dataclass
class _Session:
    client: Client
    lost: asyncio.Event = field(default_factory=asyncio.Event)  # set when the connection drops


class _ConnectionLost(Exception):
    pass


class NatsConnector:
    """A live link to one NATS server (or cluster)."""

    def __init__(self, config: NatsConfig, operations: Mapping[str, NatsOperation], context: ConnectorContext) -> None:
        self._config = config
        self._operations = dict(operations)
        self._context = context
        self.errors = Errors(context.connection, context.redact, [config.password, config.token])
        self.link: Link[_Session] = Link(
            self._open,
            self._close,
            lambda session: bool(session.client.is_connected) and not session.lost.is_set(),
            Backoff(config.reconnect.min_delay, config.reconnect.max_delay),
            context.clock,
        )

    # --- connection -------------------------------------------------------------------------------

    async def _open(self) -> _Session:
        try:
            import nats.errors
            from nats.aio.client import Client
        except ImportError:
            raise self.errors.make(
                None,
                "the nats connector needs nats-py: pip install 'syncline[nats]'",
                reason="config",
                error_class="fatal",
            ) from None
        config = self._config
        seen: list[BaseException] = []

        async def on_error(exc: Exception) -> None:
            seen.append(exc)

        options: dict[str, Any] = {}
        tls = config.tls if config.tls is not None and config.tls.enabled else None
        if tls is not None:
            options["tls"] = tls.context(self._context.project_dir)
        for name in ("user", "password", "token"):
            value = getattr(config, name)
            if value is not None:
                options[name] = value
        client = Client()
        session = _Session(client)

        async def on_lost() -> None:
            session.lost.set()

        try:
            async with asyncio.timeout(config.connect_timeout + 1):
                await client.connect(
                    servers=list(config.servers),
                    name=f"syncline:{self._context.connection}",
                    connect_timeout=max(1, round(config.connect_timeout)),
                    allow_reconnect=False,  # a lost connection closes the client; the Link re-opens it
                    max_reconnect_attempts=1,  # each server is tried twice at most, then NoServersError
                    reconnect_time_wait=0,
                    error_cb=on_error,
                    disconnected_cb=on_lost,
                    closed_cb=on_lost,
                    **options,
                )
        except nats.errors.AuthorizationError as exc:
            await _quietly_close(client)
            raise self.errors.make(
                None, "the server refused the credentials", reason="config", error_class="fatal", detail=exc
            ) from None
        except (nats.errors.NoServersError, TimeoutError, OSError, nats.errors.Error) as exc:
            await _quietly_close(client)
            cause = seen[-1] if seen else exc
            if isinstance(cause, nats.errors.AuthorizationError):
                raise self.errors.make(
                    None, "the server refused the credentials", reason="config", error_class="fatal", detail=cause
                ) from None
            raise self.errors.make(
                None,
                f"cannot connect to {', '.join(config.servers)}",
                reason="connect",
                error_class="retriable",
                detail=cause,
            ) from None
        return session

    async def _close(self, session: _Session) -> None:
        await session.client.close()

    async def aclose(self) -> None:
        await self.link.aclose()

    def consumer(self, subject: str, *, group: str | None, prefetch: int) -> NatsConsumer:
        """Messages of `subject` through the durable pull consumer `group` on the stream that captures
        the subject, at most `prefetch` unacknowledged (`Consumable`)."""
        from connectors.nats.consumer import NatsConsumer

        durable = group or "syncline_" + "".join(c if c.isalnum() or c in "-_" else "_" for c in subject)
        return NatsConsumer(
            self,
            None,
            durable,
            subject=subject,
            batch=prefetch,
            max_ack_pending=prefetch,
            ack_wait=self._config.ack_wait,
        )

    # --- calls ------------------------------------------------------------------------------------

    def _fatal(self, operation: str) -> Any:
        return lambda text: self.errors.make(operation, text, reason="config", error_class="fatal")

    async def call(self, request: CallRequest) -> CallResult:
        name = request.operation
        op = resolve_operation(NatsOperation, self._operations, name, request.spec, self._fatal(name))
        message = outgoing(request, op, self._config.timeout, self._fatal(name))
        output: dict[str, Any] = {"message_id": message.message_id, "subject": op.subject}
        if request.dry_run:
            return CallResult(output={**output, "dry_run": True}, meta={"dry_run": True})
        import nats.errors
        import nats.js.errors

        session = await self.link.get()
        client = session.client
        headers = {**message.headers, "Content-Type": message.content_type, MSG_ID: message.message_id}
        errors = self.errors
        try:
            ack = await _unless_lost(
                session,
                client.jetstream().publish(
                    op.subject, message.body, timeout=message.timeout, stream=op.stream, headers=headers
                ),
            )
        except nats.js.errors.NoStreamResponseError:
            raise errors.make(
                name, f"no JetStream stream captures subject {op.subject!r}", reason="config", error_class="fatal"
            ) from None
        except nats.js.errors.ServiceUnavailableError as exc:
            raise errors.make(
                name,
                "JetStream is unavailable",
                reason="status",
                error_class="retriable",
                status=exc.code,
                detail=_api_detail(exc),
            ) from None
        except nats.js.errors.APIError as exc:
            what = "JetStream refused the message"
            if op.stream is not None:
                what += f" (is subject {op.subject!r} in stream {op.stream!r}?)"
            retriable = exc.code is not None and exc.code >= 500
            raise errors.make(
                name,
                what,
                reason="status" if retriable else "config",
                error_class="retriable" if retriable else "fatal",
                status=exc.code,
                detail=_api_detail(exc),
            ) from None
        except nats.errors.BadSubjectError:
            raise errors.make(name, f"invalid subject {op.subject!r}", reason="config", error_class="fatal") from None
        except nats.errors.MaxPayloadError as exc:
            raise errors.make(
                name, f"message too large ({len(message.body)} bytes)", reason="config", error_class="fatal", detail=exc
            ) from None
        except (nats.errors.NoRespondersError, nats.errors.TimeoutError, TimeoutError, _ConnectionLost):
            if not client.is_connected or session.lost.is_set():
                await self.link.broken(session)
                raise errors.make(
                    name, "the connection to the server was lost", reason="connect", error_class="retriable"
                ) from None
            raise errors.make(
                name,
                f"no JetStream acknowledgement within {message.timeout:g}s",
                reason="timeout",
                error_class="retriable",
            ) from None
        except ConnectorError:
            raise
        except Exception as exc:  # connection closed, reset, broken pipe
            await self.link.broken(session)
            raise errors.make(
                name, "the connection to the server was lost", reason="connect", error_class="retriable", detail=exc
            ) from None
        output.update(stream=ack.stream, seq=ack.seq, duplicate=bool(ack.duplicate))
        return CallResult(output=output)


async def _unless_lost(session: _Session, publish: Awaitable[T]) -> T:
    """The result of `publish`, or `_ConnectionLost` as soon as the connection drops (nats-py would
    otherwise wait for the whole timeout for an acknowledgement that cannot come)."""
    task = asyncio.ensure_future(publish)
    lost = asyncio.ensure_future(session.lost.wait())
    try:
        await asyncio.wait({task, lost}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        lost.cancel()
    if task.done():
        return task.result()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    raise _ConnectionLost()


def _api_detail(exc: Any) -> str:
    description = getattr(exc, "description", None)
    code = getattr(exc, "err_code", None)
    text = description or type(exc).__name__
    return f"{text} (error {code})" if code else text


async def _quietly_close(client: Any) -> None:
    try:
        async with asyncio.timeout(5):
            await client.close()
    except Exception:
        return


def create(config: BaseModel, operations: Mapping[str, OperationSpec], context: ConnectorContext) -> NatsConnector:
    """The `ConnectorType.create` factory of the `nats` connector."""
    nats_config = config if isinstance(config, NatsConfig) else NatsConfig.model_validate(config.model_dump())
    nats_operations = {
        name: op if isinstance(op, NatsOperation) else NatsOperation.model_validate(op.model_dump())
        for name, op in operations.items()
    }
    return NatsConnector(nats_config, nats_operations, context)
