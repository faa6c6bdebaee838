"""`NatsConsumer`: takes messages from a JetStream stream through a durable pull consumer.

`NatsConnector.consumer()` makes one for the `queue` trigger (stream None: the stream that captures
the subject). It shares its connector's client, so
credentials, TLS and reconnect backoff are the connection's. The durable consumer (created on first
use, kept by the server) remembers what was acknowledged: a message is acknowledged only by
`Delivery.ack()`; one not acknowledged within `ack_wait` (or `nack()`ed) is delivered again, with
`delivery_count` from JetStream. `max_ack_pending` bounds the unacknowledged messages held.
`nack(requeue=False)` terminates the message (never delivered again): the server then publishes the
advisory `$JS.EVENT.ADVISORY.CONSUMER.MSG_TERMINATED.<stream>.<consumer>` (its `stream_seq` names
the message, which the stream keeps under its own retention), JetStream's dead-letter mechanism.
`reject(reason, detail)` terminates it with `+TERM <reason>: <detail>`, so the advisory's `reason`
says why, on servers from 2.10.4 (older ones do not read a reason: a plain `+TERM`). A lost
connection ends the iteration with a retriable `connect` `ConnectorError`; iterate again to go on.

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
                    yield _delivery(message, stream, session.client)
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


TERM_REASON_SINCE = (2, 10, 4)  # the first nats-server that reads a reason after +TERM
TERM_REASON_MAX = 500  # characters of the reason sent


def term_ack(server_version: tuple[int, int, int] | None, reason: str, detail: str) -> bytes:
    """The acknowledgement that terminates a message: `+TERM <reason>: <detail>` (one line) for a
    server that puts the reason in its termination advisory, a plain `+TERM` for one that would not
    understand it (it would take the message as not acknowledged and deliver it again)."""
    if server_version is None or server_version < TERM_REASON_SINCE:
        return b"+TERM"
    text = " ".join(f"{reason}: {detail}".split())[:TERM_REASON_MAX]
    return b"+TERM " + text.encode()


def _server_version(client: Any) -> tuple[int, int, int] | None:
    """(major, minor, patch) of the server the client is connected to; None when unknown."""
    try:
        version = client.connected_server_version
        return int(version.major), int(version.minor), int(version.patch)
    except Exception:
        return None


def _delivery(message: Any, stream: str, client: Any) -> Delivery:
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

    async def reject(reason: str, detail: str) -> None:
        await client.publish(message.reply, term_ack(_server_version(client), reason, detail))

    return Delivery(
        body=bytes(message.data),
        headers=headers,
        message_id=message_id,
        content_type=headers.get("Content-Type"),
        source=message.subject or stream,
        delivery_count=count,
        _ack=ack,
        _nack=nack,
        _reject=reject,
    )
