"""`AmqpConnector`: publishes to RabbitMQ (AMQP 0-9-1) with publisher confirms, through aio-pika.

One connection and one confirm channel per Connection, opened on the first call and re-opened after
the broker or the network went away (`connectors.messaging.Link`, with backoff). A call returns once
the broker confirmed the message (`Basic.Ack`); a message no queue takes comes back (`mandatory`)
and fails the call. The call's idempotency key is the AMQP `message_id`: RabbitMQ cannot drop a
duplicate itself, so a re-sent message carries the same id and a consumer dedupes by it.

Errors (`ConnectorError`):

    cannot reach the broker, connection lost            connect  retriable
    no confirm within the timeout                       timeout  retriable
    broker refused the message (Basic.Nack)             status   retriable
    message returned: no queue bound (312 NO_ROUTE)     status   fatal
    exchange missing, access refused, login refused,
    vhost not allowed, bad operation                    config   fatal
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from connectors.amqp.models import AmqpConfig, AmqpOperation
from connectors.messaging import Backoff, Errors, Link, outgoing, resolve_operation
from runtime.connector_api import CallRequest, CallResult, ConnectorContext, ConnectorError, OperationSpec

if TYPE_CHECKING:
    import aio_pika.abc

    from connectors.amqp.consumer import AmqpConsumer


@dataclass
class _Session:
    connection: aio_pika.abc.AbstractConnection
    channel: aio_pika.abc.AbstractChannel
    exchanges: dict[str, aio_pika.abc.AbstractExchange] = field(default_factory=dict)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class AmqpConnector:
    """A live link to one AMQP broker."""

    def __init__(self, config: AmqpConfig, operations: Mapping[str, AmqpOperation], context: ConnectorContext) -> None:
        self._config = config
        self._operations = dict(operations)
        self._context = context
        self.errors = Errors(context.connection, context.redact, [config.password, _url_password(config.url)])
        self.link: Link[_Session] = Link(
            self._open,
            self._close,
            lambda session: not session.connection.is_closed,
            Backoff(config.reconnect.min_delay, config.reconnect.max_delay),
            context.clock,
        )

    # --- connection -------------------------------------------------------------------------------

    async def _open(self) -> _Session:
        try:
            import aio_pika
            import aiormq.exceptions as amqp_errors
            from yarl import URL
        except ImportError:
            raise self.errors.make(
                None,
                "the amqp connector needs aio-pika: pip install 'syncline[amqp]'",
                reason="config",
                error_class="fatal",
            ) from None
        config = self._config
        url = URL(config.url)
        if config.username is not None:
            url = url.with_user(config.username)
        if config.password is not None:
            url = url.with_password(config.password)
        tls = config.tls if config.tls is not None and config.tls.enabled else None
        options: dict[str, Any] = {}
        if tls is not None or url.scheme == "amqps":
            if url.scheme != "amqps":
                url = url.with_scheme("amqps")
            if tls is not None:
                options["ssl_context"] = tls.context(self._context.project_dir)
        connection: aio_pika.abc.AbstractConnection | None = None
        try:
            async with asyncio.timeout(config.connect_timeout):
                connection = await aio_pika.connect(
                    url,
                    timeout=config.connect_timeout,
                    client_properties={"connection_name": f"syncline:{self._context.connection}"},
                    **options,
                )
                channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        except (amqp_errors.ProbableAuthenticationError, amqp_errors.AuthenticationError) as exc:
            await _quietly_close(connection)
            raise self.errors.make(
                None, "the broker refused the login", reason="config", error_class="fatal", detail=exc
            ) from None
        except (amqp_errors.InvalidFrameError, amqp_errors.ChannelAccessRefused) as exc:
            await _quietly_close(connection)
            raise self.errors.make(
                None,
                "the broker refused the connection (virtual host missing or not allowed?)",
                reason="config",
                error_class="fatal",
                detail=exc,
            ) from None
        except TimeoutError as exc:
            await _quietly_close(connection)
            raise self.errors.make(
                None,
                f"cannot connect to the broker within {config.connect_timeout:g}s",
                reason="connect",
                error_class="retriable",
                detail=exc,
            ) from None
        except Exception as exc:  # refused, reset, DNS, TLS: the broker or the network is not there
            await _quietly_close(connection)
            raise self.errors.make(
                None, "cannot connect to the broker", reason="connect", error_class="retriable", detail=exc
            ) from None
        return _Session(connection=connection, channel=channel)

    async def _close(self, session: _Session) -> None:
        await session.connection.close()

    async def aclose(self) -> None:
        await self.link.aclose()

    def consumer(self, subject: str, *, group: str | None, prefetch: int) -> AmqpConsumer:
        """Messages of the existing queue `subject`, at most `prefetch` unacknowledged (`Consumable`).
        `group` is not used: the consumers of one queue share its messages."""
        from connectors.amqp.consumer import AmqpConsumer

        return AmqpConsumer(self, subject, prefetch=prefetch)

    # --- calls ------------------------------------------------------------------------------------

    def _fatal(self, operation: str) -> Any:
        return lambda text: self.errors.make(operation, text, reason="config", error_class="fatal")

    async def call(self, request: CallRequest) -> CallResult:
        op = resolve_operation(
            AmqpOperation, self._operations, request.operation, request.spec, self._fatal(request.operation)
        )
        message = outgoing(request, op, self._config.timeout, self._fatal(request.operation))
        result = {"message_id": message.message_id, "exchange": op.exchange, "routing_key": op.routing_key}
        if request.dry_run:
            return CallResult(output={**result, "dry_run": True}, meta={"dry_run": True})
        import aio_pika
        import aiormq.exceptions as amqp_errors

        session = await self.link.get()
        errors = self.errors
        name = request.operation
        try:
            exchange = await self._exchange(session, op.exchange)
            amqp_message = aio_pika.Message(
                message.body,
                headers=dict(message.headers),
                content_type=message.content_type,
                message_id=message.message_id,
                correlation_id=_header(message.headers, "x-correlation-id"),
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT
                if op.persistent
                else aio_pika.DeliveryMode.NOT_PERSISTENT,
                app_id="syncline",
            )
            async with asyncio.timeout(message.timeout):
                await exchange.publish(amqp_message, routing_key=op.routing_key, mandatory=op.mandatory)
        except amqp_errors.PublishError as exc:
            code, text = _returned(exc)
            raise errors.make(
                name,
                f"the broker returned the message: no queue is bound for routing key {op.routing_key!r} on exchange "
                f"{op.exchange or '(default)'!r} ({code} {text})",
                reason="status",
                error_class="fatal",
                status=code if isinstance(code, int) else None,
            ) from None
        except amqp_errors.DeliveryError as exc:
            raise errors.make(
                name, "the broker refused the message (nack)", reason="status", error_class="retriable", detail=exc
            ) from None
        except amqp_errors.ChannelNotFoundEntity as exc:
            session.exchanges.clear()
            raise errors.make(
                name, f"exchange {op.exchange!r} does not exist", reason="config", error_class="fatal", detail=exc
            ) from None
        except (amqp_errors.ChannelAccessRefused, amqp_errors.ChannelPreconditionFailed) as exc:
            session.exchanges.clear()
            raise errors.make(
                name, "the broker refused the publish", reason="config", error_class="fatal", detail=exc
            ) from None
        except TimeoutError:
            await self.link.broken(session)  # the confirm may still come: start clean
            raise errors.make(
                name, f"no publisher confirm within {message.timeout:g}s", reason="timeout", error_class="retriable"
            ) from None
        except (amqp_errors.ChannelClosed, amqp_errors.ChannelInvalidStateError) as exc:
            session.exchanges.clear()
            raise errors.make(
                name, "the channel closed during the publish", reason="connect", error_class="retriable", detail=exc
            ) from None
        except ConnectorError:
            raise
        except Exception as exc:  # connection lost, reset, broken pipe
            await self.link.broken(session)
            raise errors.make(
                name, "the connection to the broker was lost", reason="connect", error_class="retriable", detail=exc
            ) from None
        return CallResult(output=result)

    async def _exchange(self, session: _Session, name: str) -> aio_pika.abc.AbstractExchange:
        async with session.lock:
            if session.channel.is_closed:  # a refused publish (missing exchange) closes the channel
                session.channel = await session.connection.channel(publisher_confirms=True, on_return_raises=True)
                session.exchanges.clear()
            exchange = session.exchanges.get(name)
            if exchange is None:
                channel = session.channel
                exchange = channel.default_exchange if name == "" else await channel.get_exchange(name, ensure=False)
                session.exchanges[name] = exchange
            return exchange


def _header(headers: Mapping[str, str], wanted: str) -> str | None:
    return next((value for name, value in headers.items() if name.lower() == wanted), None)


def _returned(exc: BaseException) -> tuple[int | str, str]:
    """(reply code, reply text) of a returned message."""
    frame = getattr(exc, "frame", None)
    if getattr(frame, "reply_code", None) is None:
        frame = getattr(getattr(exc, "message", None), "delivery", None)
    code = getattr(frame, "reply_code", None)
    text = getattr(frame, "reply_text", None)
    return (code if isinstance(code, int) else "?"), (text if isinstance(text, str) else "returned")


def _url_password(url: str) -> str | None:
    from urllib.parse import unquote, urlsplit

    try:
        password = urlsplit(url).password
    except ValueError:
        return None
    return unquote(password) if password else None


async def _quietly_close(connection: Any) -> None:
    if connection is not None:
        try:
            async with asyncio.timeout(5):
                await connection.close()
        except Exception:
            return


def create(config: BaseModel, operations: Mapping[str, OperationSpec], context: ConnectorContext) -> AmqpConnector:
    """The `ConnectorType.create` factory of the `amqp` connector."""
    amqp_config = config if isinstance(config, AmqpConfig) else AmqpConfig.model_validate(config.model_dump())
    amqp_operations = {
        name: op if isinstance(op, AmqpOperation) else AmqpOperation.model_validate(op.model_dump())
        for name, op in operations.items()
    }
    return AmqpConnector(amqp_config, amqp_operations, context)
