"""`MqttConnector`: publishes MQTT 5 messages with QoS 1 or 2 through aiomqtt (paho-mqtt underneath).

One client per Connection, opened on the first call and re-opened after the broker or the network
went away (`connectors.messaging.Link`, with backoff). A call returns once the broker acknowledged
the message (PUBACK / PUBCOMP) with a success reason code: aiomqtt's own `publish` does not report
the reason code, so this module sends through the paho client aiomqtt wraps and reads the code in
paho's `on_publish` (chained to aiomqtt's). The call's idempotency key is the `message_id` user
property; MQTT brokers do not dedupe, so a re-sent message carries the same id for the consumer.

Errors (`ConnectorError`):

    cannot reach the broker, connection lost            connect  retriable
    no acknowledgement within the timeout               timeout  retriable
    broker refused the message (reason code >= 0x80)    status   fatal (quota exceeded: retriable)
    bad user name or password, not authorized,
    invalid topic                                       config   fatal
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from connectors.messaging import Backoff, Errors, Link, outgoing, resolve_operation
from connectors.mqtt.models import MqttConfig, MqttOperation
from runtime.connector_api import CallRequest, CallResult, ConnectorContext, OperationSpec

if TYPE_CHECKING:
    import aiomqtt

    from connectors.mqtt.consumer import MqttConsumer

MESSAGE_ID = "message_id"
_AUTH_CODES = {134, 135}  # bad user name or password, not authorized
_RETRIABLE_CODES = {0x97, 0x89, 0x88, 0x9F}  # quota exceeded, server busy, unavailable, connection rate exceeded


@dataclass
class _Session:
    client: aiomqtt.Client
    lost: asyncio.Event = field(default_factory=asyncio.Event)
    pending: dict[int, asyncio.Future[Any]] = field(default_factory=dict)
    early: dict[int, Any] = field(default_factory=dict)  # acks that came before their future was set up


class MqttConnector:
    """A live link to one MQTT broker."""

    def __init__(self, config: MqttConfig, operations: Mapping[str, MqttOperation], context: ConnectorContext) -> None:
        self._config = config
        self._operations = dict(operations)
        self._context = context
        self.errors = Errors(context.connection, context.redact, [config.password])
        self.client_id = config.client_id or f"syncline-{context.connection}-{secrets.token_hex(4)}"
        self.link: Link[_Session] = Link(
            self._open,
            self._close,
            lambda session: not session.lost.is_set(),
            Backoff(config.reconnect.min_delay, config.reconnect.max_delay),
            context.clock,
        )

    # --- connection -------------------------------------------------------------------------------

    async def _open(self) -> _Session:
        try:
            import aiomqtt
            from aiomqtt.exceptions import MqttConnectError
        except ImportError:
            raise self.errors.make(
                None,
                "the mqtt connector needs aiomqtt: pip install 'syncline[mqtt]'",
                reason="config",
                error_class="fatal",
            ) from None
        config = self._config
        tls = config.tls if config.tls is not None and config.tls.enabled else None
        client = aiomqtt.Client(
            config.host,
            config.port,
            username=config.username,
            password=config.password,
            identifier=self.client_id,
            protocol=aiomqtt.ProtocolVersion.V5,
            timeout=config.connect_timeout,
            keepalive=max(1, round(config.keepalive)),
            tls_context=tls.context(self._context.project_dir) if tls is not None else None,
            properties=_connect_properties(config),
            # with a kept session, resume it (unacknowledged messages come again); else start clean
            clean_start=config.session_expiry is None,
        )
        client._client.manual_ack_set(True)  # a received message is acknowledged by its consumer, never on receipt
        session = _Session(client)
        _hook(session)
        try:
            async with asyncio.timeout(config.connect_timeout + 1):
                await client.__aenter__()
        except MqttConnectError as exc:
            code = _code(exc.rc)
            if code in _AUTH_CODES:
                raise self.errors.make(
                    None, "the broker refused the credentials", reason="config", error_class="fatal", detail=exc
                ) from None
            retriable = code in _RETRIABLE_CODES or code is None
            raise self.errors.make(
                None,
                "the broker refused the connection",
                reason="connect" if retriable else "config",
                error_class="retriable" if retriable else "fatal",
                detail=exc,
            ) from None
        except (aiomqtt.MqttError, TimeoutError, OSError) as exc:
            raise self.errors.make(
                None,
                f"cannot connect to {config.host}:{config.port}",
                reason="connect",
                error_class="retriable",
                detail=exc,
            ) from None
        return session

    async def _close(self, session: _Session) -> None:
        if not session.lost.is_set():
            await session.client.__aexit__(None, None, None)
        # aiomqtt keeps an unexpected disconnection as the exception of a future only its own context
        # exit would read; read it here so asyncio does not report it as never retrieved
        gone = getattr(session.client, "_disconnected", None)
        if isinstance(gone, asyncio.Future) and gone.done() and not gone.cancelled():
            gone.exception()

    async def aclose(self) -> None:
        await self.link.aclose()

    @property
    def keeps_session(self) -> bool:
        """The broker keeps this client's session (subscriptions, unacknowledged messages) after a
        disconnect: `session_expiry` is set."""
        return self._config.session_expiry is not None

    def consumer(self, subject: str, *, group: str | None, prefetch: int) -> MqttConsumer:
        """Messages of the topic filter `subject` with QoS 1 (`Consumable`), as the shared subscription
        `$share/<group>/<subject>` when `group` is given. The connection's `receive_maximum` bounds the
        unacknowledged messages (not `prefetch`: MQTT sets it per connection)."""
        from connectors.mqtt.consumer import MqttConsumer

        return MqttConsumer(self, subject, group=group, qos=1)

    # --- calls ------------------------------------------------------------------------------------

    def _fatal(self, operation: str) -> Any:
        return lambda text: self.errors.make(operation, text, reason="config", error_class="fatal")

    async def call(self, request: CallRequest) -> CallResult:
        name = request.operation
        op = resolve_operation(MqttOperation, self._operations, name, request.spec, self._fatal(name))
        message = outgoing(request, op, self._config.timeout, self._fatal(name))
        if not op.topic or "+" in op.topic or "#" in op.topic or "\x00" in op.topic:
            raise self.errors.make(
                name,
                f"invalid topic {op.topic!r}: a publish topic names one topic, no wildcards",
                reason="config",
                error_class="fatal",
            )
        output: dict[str, Any] = {"message_id": message.message_id, "topic": op.topic, "qos": op.qos}
        if request.dry_run:
            return CallResult(output={**output, "dry_run": True}, meta={"dry_run": True})
        from paho.mqtt.client import MQTT_ERR_NO_CONN, MQTT_ERR_SUCCESS
        from paho.mqtt.packettypes import PacketTypes
        from paho.mqtt.properties import Properties

        properties = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
        properties.ContentType = message.content_type
        if message.content_type.startswith(("text/", "application/json")):
            properties.PayloadFormatIndicator = 1  # UTF-8 text
        properties.UserProperty = [*message.headers.items(), (MESSAGE_ID, message.message_id)]

        session = await self.link.get()
        errors = self.errors
        loop = asyncio.get_running_loop()
        try:
            info = session.client._client.publish(op.topic, message.body, op.qos, op.retain, properties)
        except ValueError as exc:
            raise errors.make(
                name, "the message cannot be published", reason="config", error_class="fatal", detail=exc
            ) from None
        if info.rc != MQTT_ERR_SUCCESS:
            if info.rc == MQTT_ERR_NO_CONN:
                await self.link.broken(session)
                raise errors.make(
                    name, "the connection to the broker was lost", reason="connect", error_class="retriable"
                ) from None
            raise errors.make(
                name, f"the message was not sent (paho error {info.rc})", reason="status", error_class="retriable"
            )
        future: asyncio.Future[Any] = loop.create_future()
        if info.mid in session.early:
            future.set_result(session.early.pop(info.mid))
        else:
            session.pending[info.mid] = future
        lost = asyncio.ensure_future(session.lost.wait())
        try:
            await asyncio.wait({future, lost}, timeout=message.timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            lost.cancel()
            session.pending.pop(info.mid, None)
        if not future.done():
            future.cancel()
            if session.lost.is_set():
                await self.link.broken(session)
                raise errors.make(
                    name,
                    "the connection to the broker was lost before its acknowledgement",
                    reason="connect",
                    error_class="retriable",
                )
            raise errors.make(
                name, f"no acknowledgement within {message.timeout:g}s", reason="timeout", error_class="retriable"
            )
        reason_code = future.result()
        code = _code(reason_code)
        if getattr(reason_code, "is_failure", False):
            retriable = code in _RETRIABLE_CODES
            reason: Any = "status" if retriable or code not in _AUTH_CODES else "config"
            raise errors.make(
                name,
                f"the broker refused the message on topic {op.topic!r}",
                reason=reason,
                error_class="retriable" if retriable else "fatal",
                status=code,
                detail=f"{reason_code} (reason code {code})",
            )
        return CallResult(output=output)


def _hook(session: _Session) -> None:
    """Chain our handlers to aiomqtt's on the paho client: acks with their reason code, and loss."""
    paho = session.client._client
    on_publish: Any = paho.on_publish
    on_disconnect: Any = paho.on_disconnect
    on_socket_close: Any = paho.on_socket_close

    def publish_acked(client: Any, userdata: Any, mid: int, reason_code: Any, properties: Any) -> None:
        future = session.pending.pop(mid, None)
        if future is None:
            session.early[mid] = reason_code
        elif not future.done():
            future.set_result(reason_code)
        if on_publish is not None:
            on_publish(client, userdata, mid, reason_code, properties)

    def disconnected(*args: Any) -> None:
        session.lost.set()
        if on_disconnect is not None:
            on_disconnect(*args)

    def socket_closed(*args: Any) -> None:
        session.lost.set()
        if on_socket_close is not None:
            on_socket_close(*args)

    paho.on_publish = publish_acked
    paho.on_disconnect = disconnected
    paho.on_socket_close = socket_closed


def _connect_properties(config: MqttConfig) -> Any:
    """CONNECT properties: receive maximum, and how long the broker keeps the session."""
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    properties.ReceiveMaximum = config.receive_maximum
    if config.session_expiry is not None:
        properties.SessionExpiryInterval = max(1, round(config.session_expiry))
    return properties


def _code(reason_code: Any) -> int | None:
    value = getattr(reason_code, "value", reason_code)
    return value if isinstance(value, int) else None


def create(config: BaseModel, operations: Mapping[str, OperationSpec], context: ConnectorContext) -> MqttConnector:
    """The `ConnectorType.create` factory of the `mqtt` connector."""
    mqtt_config = config if isinstance(config, MqttConfig) else MqttConfig.model_validate(config.model_dump())
    mqtt_operations = {
        name: op if isinstance(op, MqttOperation) else MqttOperation.model_validate(op.model_dump())
        for name, op in operations.items()
    }
    return MqttConnector(mqtt_config, mqtt_operations, context)
