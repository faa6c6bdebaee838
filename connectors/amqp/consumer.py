"""`AmqpConsumer`: takes messages from an existing RabbitMQ queue with a bounded prefetch.

`AmqpConnector.consumer()` makes one for the `queue` trigger. It shares its connector's connection (its own
channel), so credentials, TLS and reconnect backoff are the connection's. The broker holds at most
`prefetch` unacknowledged messages for it; a message is acknowledged only by `Delivery.ack()`, and a
message never acked comes back after the channel closes (`redelivered`). `nack(requeue=False)` (and
`reject()`, how the queue trigger settles poison) rejects it for good: RabbitMQ routes it to the
queue's dead-letter exchange when the queue has one (its `x-dead-letter-exchange` argument, or a
policy's `dead-letter-exchange`; set by whoever declares the queue: Syncline declares none) and adds
the `x-death` header (reason `rejected`, the queue, a count), else drops it. AMQP 0-9-1 cannot carry
Syncline's reason with a reject; it is in Syncline's dead letter. A lost connection ends the
iteration with a retriable `connect` `ConnectorError`; iterate again to go on.

A message's id is its `message_id` property (Syncline's publishers set it to the call's idempotency
key); a message without one gets `content_id(body, headers)`, the same on every redelivery.
`delivery_count` comes from quorum queues (`x-delivery-count`); a classic queue only flags a
redelivery, so its count is None then.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from connectors.amqp.connector import AmqpConnector
from connectors.messaging import Delivery, content_id
from runtime.connector_api import ConnectorError


class AmqpConsumer:
    def __init__(self, connector: AmqpConnector, queue: str, *, prefetch: int = 10) -> None:
        if prefetch < 1:
            raise ValueError("prefetch must be at least 1")
        self.connector = connector
        self.queue = queue
        self.prefetch = prefetch

    async def messages(self) -> AsyncIterator[Delivery]:
        """Deliveries from the queue, in order, until the caller stops iterating."""
        import aiormq.exceptions as amqp_errors

        errors = self.connector.errors
        session = await self.connector.link.get()
        try:
            channel = await session.connection.channel()
        except Exception as exc:  # the connection went away since the link last looked
            await self.connector.link.broken(session)
            raise errors.make(
                f"consume {self.queue}",
                "the connection to the broker was lost",
                reason="connect",
                error_class="retriable",
                detail=exc,
            ) from None
        try:
            await channel.set_qos(prefetch_count=self.prefetch)
            try:
                queue = await channel.get_queue(self.queue, ensure=True)
            except amqp_errors.ChannelNotFoundEntity:
                raise errors.make(
                    f"consume {self.queue}",
                    f"queue {self.queue!r} does not exist",
                    reason="config",
                    error_class="fatal",
                ) from None
            try:
                async with queue.iterator() as incoming:
                    async for message in incoming:
                        yield _delivery(message, self.queue)
            except ConnectorError:
                raise
            except (
                amqp_errors.AMQPError,
                amqp_errors.ChannelInvalidStateError,
                ConnectionError,
                OSError,
                RuntimeError,
            ) as exc:
                await self.connector.link.broken(session)
                raise errors.make(
                    f"consume {self.queue}",
                    "the connection to the broker was lost",
                    reason="connect",
                    error_class="retriable",
                    detail=exc,
                ) from None
        finally:
            if not channel.is_closed and not session.connection.is_closed:
                with contextlib.suppress(Exception):
                    await channel.close()


def _delivery(message: Any, queue: str) -> Delivery:
    headers = {str(name): _text(value) for name, value in (message.headers or {}).items()}
    count = headers.get("x-delivery-count")  # quorum queues count redeliveries
    if count is not None and count.isdigit():
        delivery_count: int | None = int(count) + 1
    else:
        delivery_count = None if message.redelivered else 1

    async def ack() -> None:
        await message.ack()

    async def nack(requeue: bool) -> None:
        await message.nack(requeue=requeue)

    async def ack_through() -> None:  # one frame for a whole batch (this delivery tag and every earlier one)
        await message.ack(multiple=True)

    return Delivery(
        body=bytes(message.body),
        headers=headers,
        message_id=message.message_id or _content_id(message.body, headers),
        content_type=message.content_type,
        source=queue,
        delivery_count=delivery_count,
        _ack=ack,
        _nack=nack,
        _ack_through=ack_through,
    )


def _content_id(body: bytes, headers: dict[str, str]) -> str:
    stable = {k: v for k, v in headers.items() if k != "x-delivery-count"}
    return content_id(bytes(body), repr(sorted(stable.items())).encode())


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
