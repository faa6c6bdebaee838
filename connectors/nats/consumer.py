"""`NatsConsumer`: takes messages from a JetStream stream through a durable pull consumer.

`NatsConnector.consumer()` makes one for the `queue` trigger (stream None: the stream that captures
the subject). It shares its connector's client, so
credentials, TLS and reconnect backoff are the connection's. The durable consumer (created on first
use, kept by the server) remembers what was acknowledged: a message is acknowledged only by
`Delivery.ack()`; one not acknowledged within `ack_wait` (or `nack()`ed) is delivered again, with
`delivery_count` from JetStream. `max_ack_pending` bounds the unacknowledged messages held.
`nack(requeue=False)` terminates the message (never delivered again). A lost connection ends the
iteration with a retriable `connect` `ConnectorError`; iterate again to go on.

A message's id is its `Nats-Msg-Id` header (Syncline's publishers set it to the call's idempotency
key), or `<stream>:<stream sequence>` without one: both are the same on every redelivery.
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
        stream: str | None,
        durable: str,
        *,
        subject: str | None = None,
        batch: int = 10,
        ack_wait: float = 30.0,
        max_ack_pending: int = 100,
        poll: float = 1.0,
    ) -> None:
        if stream is None and not subject:
            raise ValueError("give the stream, the subject, or both")
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
        where = f"consume {self.stream or self.subject}"
        session = await self.connector.link.get()
        js = session.client.jetstream()
        stream = self.stream
        if stream is None:
            try:
                stream = await js.find_stream_name_by_subject(self.subject or "")
            except nats.js.errors.NotFoundError:
                raise errors.make(
                    where,
                    f"no JetStream stream captures subject {self.subject!r}",
                    reason="config",
                    error_class="fatal",
                ) from None
            except (nats.errors.Error, ConnectionError, OSError) as exc:
                await self.connector.link.broken(session)
                raise errors.make(
                    where,
                    "the connection to the server was lost",
                    reason="connect",
                    error_class="retriable",
                    detail=exc,
                ) from None
        config = ConsumerConfig(
            durable_name=self.durable,
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=self.ack_wait,
            max_ack_pending=self.max_ack_pending,
            filter_subject=self.subject,
        )
        try:
            subscription = await js.pull_subscribe(
                self.subject or "", durable=self.durable, stream=stream, config=config
            )
        except nats.js.errors.NotFoundError:
            raise errors.make(
                where, f"stream {stream!r} does not exist", reason="config", error_class="fatal"
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
                    yield _delivery(message, stream)
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
    message_id = headers.get("Nats-Msg-Id")
    if not message_id:
        try:
            message_id = f"{message.metadata.stream or stream}:{int(message.metadata.sequence.stream)}"
        except Exception:
            message_id = None

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
        message_id=message_id,
        content_type=headers.get("Content-Type"),
        source=message.subject or stream,
        delivery_count=count,
        _ack=ack,
        _nack=nack,
    )
