"""`Delivery`: one message taken from a broker by a consumer, settled with `ack()` or `nack()`.

The consumers (`connectors.<broker>.consumer`) are what a connector's `consumer()` returns (the
`queue` trigger takes their messages). A message is acknowledged only when its holder calls `ack()`;
`nack()` hands it back for redelivery (or, with `requeue=False`, drops it / dead-letters it where
the broker can); `reject(reason, detail)` settles a poison message, handing Syncline's reason to the
broker's dead-letter place where the consumer can (else it is `nack(requeue=False)`). Every
delivery has a `message_id` that is the same on each redelivery: the publisher's id where it gave
one, else a broker id (a stream sequence, an entry id) or `content_id()` of the message.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

MESSAGE_ID_HEADERS = ("message_id", "Nats-Msg-Id")


def content_id(*parts: bytes) -> str:
    """The id of a message that carries none and has no broker id: `sha256:<hex>` of its parts, so a
    redelivery has the same id (and two messages with the same content are one)."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return "sha256:" + digest.hexdigest()


@dataclass
class Delivery:
    body: bytes
    headers: dict[str, str]
    message_id: str | None
    content_type: str | None
    source: str  # the queue, subject, stream or topic it came from
    delivery_count: int | None  # 1 on first delivery, when the broker tells
    _ack: Callable[[], Awaitable[None]] = field(repr=False)
    _nack: Callable[[bool], Awaitable[None]] = field(repr=False)
    _ack_through: Callable[[], Awaitable[None]] | None = field(default=None, repr=False)
    _reject: Callable[[str, str], Awaitable[None]] | None = field(default=None, repr=False)
    settled: bool = False

    async def ack(self) -> None:
        """Tell the broker the message is done with; it is not delivered again."""
        if not self.settled:
            await self._ack()
            self.settled = True

    async def ack_through(self) -> None:
        """Acknowledge this message and every earlier unsettled one of its consumer at once, where the
        broker can (AMQP `multiple`); else this one only."""
        if not self.settled:
            await (self._ack_through or self._ack)()
            self.settled = True

    async def nack(self, requeue: bool = True) -> None:
        """Give the message back: redelivered later (`requeue`), or dropped / dead-lettered."""
        if not self.settled:
            await self._nack(requeue)
            self.settled = True

    async def reject(self, reason: str, detail: str) -> None:
        """Settle a poison message for good: to the broker's own dead-letter place where there is one,
        with `reason` (a word: `poison`, `unparseable`, `schema`) and `detail` (one line, no secrets)
        where the broker keeps them; else the same as `nack(requeue=False)`."""
        if not self.settled:
            if self._reject is not None:
                await self._reject(reason, detail)
            else:
                await self._nack(False)
            self.settled = True
