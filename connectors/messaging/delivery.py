"""`Delivery`: one message taken from a broker by a consumer, settled with `ack()` or `nack()`.

The consumers (`connectors.<broker>.consumer`) are plain library classes for now: no trigger
starts them yet. A message is acknowledged only when its holder calls `ack()`; `nack()` hands it
back for redelivery (or, with `requeue=False`, drops it / dead-letters it where the broker can).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

MESSAGE_ID_HEADERS = ("message_id", "Nats-Msg-Id")


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
    settled: bool = False

    async def ack(self) -> None:
        """Tell the broker the message is done with; it is not delivered again."""
        if not self.settled:
            await self._ack()
            self.settled = True

    async def nack(self, requeue: bool = True) -> None:
        """Give the message back: redelivered later (`requeue`), or dropped / dead-lettered."""
        if not self.settled:
            await self._nack(requeue)
            self.settled = True
