"""`NatsConsumer`: takes messages from a JetStream stream through a durable pull consumer.

A plain library class, not wired to any trigger yet. It shares its connector's client, so
credentials, TLS and reconnect backoff are the connection's. The durable consumer (created on first
use, kept by the server) remembers what was acknowledged: a message is acknowledged only by
`Delivery.ack()`; one not acknowledged within `ack_wait` (or `nack()`ed) is delivered again, with
`delivery_count` from JetStream. `max_ack_pending` bounds the unacknowledged messages held.
`nack(requeue=False)` terminates the message (never delivered again). A lost connection ends the
iteration with a retriable `connect` `ConnectorError`; iterate again to go on.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from connectors.messaging import Delivery
from connectors.nats.connector import NatsConnector
from runtime.connector_api import ConnectorError


class NatsConsumer:
    def __init__(
        self,
        connector: NatsConnector,
        stream: str,
        durable: str,
        *,
        subject: str | None = None,
        batch: int = 10,
        ack_wait: float = 30.0,
        max_ack_pending: int = 100,
        poll: float = 1.0,
    ) -> None:
        if batch < 1 or max_ack_pending < batch:
            raise ValueError("batch must be at least 1 and at most max_ack_pending")
        self.connector = connector
        self.stream = stream
        self.durable = durable
        self.subject = subject
        self.batch = batch
        self.ack_wait = ack_wait
        self.max_ack_pending = max_ack_pending
        self.poll = poll

    async def messages(self) -> AsyncIterator[Delivery]:
        """Deliveries in stream order (redeliveries when they fall due), until the caller stops."""
        import nats.errors
        import nats.js.errors
        from nats.js.api import AckPolicy, ConsumerConfig

        errors = self.connector.errors
        where = f"consume {self.stream}"
        session = await self.connector.link.get()
        js = session.client.jetstream()
        config = ConsumerConfig(
            durable_name=self.durable,
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=self.ack_wait,
            max_ack_pending=self.max_ack_pending,
            filter_subject=self.subject,
        )
        try:
            subscription = await js.pull_subscribe(
                self.subject or "", durable=self.durable, stream=self.stream, config=config
            )
        except nats.js.errors.NotFoundError:
            raise errors.make(
                where, f"stream {self.stream!r} does not exist", reason="config", error_class="fatal"
            ) from None
        except nats.js.errors.APIError as exc:
            raise errors.make(
                where,
                "JetStream refused the consumer",
                reason="config",
                error_class="fatal",
                detail=exc.description or str(exc),
            ) from None
        try:
            while True:
                try:
                    messages = await subscription.fetch(self.batch, timeout=self.poll)
                except nats.errors.TimeoutError:
                    if session.lost.is_set() or not session.client.is_connected:
                        raise ConnectionError("connection closed") from None
                    continue
                for message in messages:
                    yield _delivery(message, self.stream)
        except ConnectorError:
            raise
        except (nats.errors.ConnectionClosedError, nats.errors.Error, ConnectionError, OSError) as exc:
            await self.connector.link.broken(session)
            raise errors.make(
                where, "the connection to the server was lost", reason="connect", error_class="retriable", detail=exc
            ) from None
        finally:
            if session.client.is_connected:
                with contextlib.suppress(Exception):
                    await subscription.unsubscribe()


def _delivery(message: Any, stream: str) -> Delivery:
    headers = dict(message.headers or {})
    try:
        count: int | None = int(message.metadata.num_delivered)
    except Exception:
        count = None

    async def ack() -> None:
        await message.ack()

    async def nack(requeue: bool) -> None:
        if requeue:
            await message.nak()
        else:
            await message.term()

    return Delivery(
        body=bytes(message.data),
        headers=headers,
        message_id=headers.get("Nats-Msg-Id"),
        content_type=headers.get("Content-Type"),
        source=message.subject or stream,
        delivery_count=count,
        _ack=ack,
        _nack=nack,
    )
