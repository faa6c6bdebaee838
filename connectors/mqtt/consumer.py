"""`MqttConsumer`: takes MQTT 5 messages from a topic filter, acknowledged only when the holder says so.

`MqttConnector.consumer()` makes one for the `queue` trigger. It shares its connector's client (one consumer
per connector), so credentials, TLS and reconnect backoff are the connection's. Messages are
acknowledged manually: the PUBACK goes out on `Delivery.ack()`, not on receipt. MQTT has no negative
acknowledgement: a message never acknowledged is delivered again only when the session resumes (so
`nack()` closes the connection: the next iteration reconnects and resumes it), so
for at-least-once consumption give the connection a fixed `client_id` and a `session_expiry`; the
connection's `receive_maximum` bounds the unacknowledged messages the broker sends. `group` makes it
a shared subscription (`$share/<group>/<filter>`): the broker spreads the messages over the group's
members. `nack(requeue=False)` (and `reject()`, how the queue trigger settles poison) acknowledges
without processing: MQTT has no dead-letter place, so poison is kept only in Syncline's dead letters.
A lost connection ends the iteration with a retriable `connect` `ConnectorError`; iterate again to
go on.

A message's id is its `message_id` user property (Syncline's publishers set it to the call's
idempotency key); MQTT has no broker id that survives a resend (the packet id is per connection), so
a message without one gets `content_id(topic, payload)`, the same on every redelivery.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from connectors.messaging import Delivery, content_id
from connectors.mqtt.connector import MESSAGE_ID, MqttConnector
from runtime.connector_api import ConnectorError


class MqttConsumer:
    def __init__(self, connector: MqttConnector, topic: str, *, group: str | None = None, qos: int = 1) -> None:
        if qos not in (1, 2):
            raise ValueError("qos must be 1 or 2 (QoS 0 cannot be acknowledged)")
        if group is not None and (not group or any(c in group for c in "/+#")):
            raise ValueError("group must be a name without '/', '+' or '#'")
        self.connector = connector
        self.topic = topic
        self.group = group
        self.qos = qos
        self.subscribed = asyncio.Event()  # set once the broker confirmed the subscription

    @property
    def subscription(self) -> str:
        return f"$share/{self.group}/{self.topic}" if self.group else self.topic

    async def messages(self) -> AsyncIterator[Delivery]:
        """Deliveries as the broker sends them, until the caller stops iterating."""
        import aiomqtt

        errors = self.connector.errors
        where = f"consume {self.topic}"
        session = await self.connector.link.get()
        client = session.client
        paho = client._client  # in manual-ack mode from the start (see MqttConnector._open)
        try:
            await client.subscribe(self.subscription, qos=self.qos)
            self.subscribed.set()
            async for message in client.messages:
                if not message.topic.matches(self.topic):
                    continue
                yield _delivery(paho, message, self._give_back(session))
        except ConnectorError:
            raise
        except (aiomqtt.MqttError, ConnectionError, OSError) as exc:
            await self.connector.link.broken(session)
            raise errors.make(
                where, "the connection to the broker was lost", reason="connect", error_class="retriable", detail=exc
            ) from None
        finally:
            self.subscribed.clear()
            # a kept session keeps the subscription, so the broker holds what comes until we are back
            if not session.lost.is_set() and not self.connector.keeps_session:
                with contextlib.suppress(Exception):
                    await client.unsubscribe(self.subscription)

    def _give_back(self, session: Any) -> Callable[[], Awaitable[None]]:
        async def give_back() -> None:
            # MQTT has no negative acknowledgement: the broker sends an unacknowledged message again
            # only when the session resumes, so close the connection (the next iteration reconnects)
            await self.connector.link.broken(session)

        return give_back


def _delivery(paho: Any, message: Any, give_back: Callable[[], Awaitable[None]]) -> Delivery:
    properties = getattr(message, "properties", None)
    pairs = getattr(properties, "UserProperty", None) or []
    headers = {str(name): str(value) for name, value in pairs if name != MESSAGE_ID}
    message_id = next((str(value) for name, value in pairs if name == MESSAGE_ID), None)
    content_type = getattr(properties, "ContentType", None)
    payload = message.payload
    body = payload if isinstance(payload, bytes) else str(payload if payload is not None else "").encode()

    async def ack() -> None:
        paho.ack(message.mid, message.qos)

    async def nack(requeue: bool) -> None:
        if requeue:
            await give_back()
        else:
            paho.ack(message.mid, message.qos)

    return Delivery(
        body=bytes(body),
        headers=headers,
        message_id=message_id or content_id(str(message.topic).encode(), bytes(body)),
        content_type=content_type if isinstance(content_type, str) else None,
        source=str(message.topic),
        delivery_count=None,  # MQTT only flags a resend (DUP), it does not count
        _ack=ack,
        _nack=nack,
    )
