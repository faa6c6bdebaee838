"""`RedisStreamsConsumer`: takes entries from a Redis stream through a consumer group.

`RedisStreamsConnector.consumer()` makes one for the `queue` trigger. It shares its connector's client, so
credentials, TLS and reconnect backoff are the connection's. The group is created on first use
(`XGROUP CREATE ... MKSTREAM`, from the stream's start). Each round first reclaims entries another
consumer (or an earlier run of this one) took but did not acknowledge for `claim_idle` seconds
(`XAUTOCLAIM`; `claim_idle=None` turns it off), then reads new ones (`XREADGROUP ... >`, blocking
at most `block` seconds).
An entry is acknowledged only by `Delivery.ack()` (`XACK`); `nack()` leaves it pending, so it is
reclaimed once idle for `claim_idle`; `nack(requeue=False)` acknowledges it without processing.
Redis has no dead-letter place of its own: with `dead_letter_stream`, `reject(reason, detail)` adds
the poison entry there (its own fields, plus where it came from and why: `dead_letter_fields`) and
acknowledges it in one MULTI/EXEC, so it is in the dead-letter stream once and never delivered
again; without one it is `nack(requeue=False)`.
`delivery_count` is the group's count for reclaimed entries and 1 for new ones. A lost connection
ends the iteration with a retriable `connect` `ConnectorError`; iterate again to go on.

A message's id is its `message_id` field (Syncline's publishers set it to the call's idempotency
key), or the entry id without one: both are the same on every redelivery.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from typing import Any

import simplejson

from connectors.messaging import Delivery
from connectors.redis_streams.connector import RedisStreamsConnector
from runtime.connector_api import ConnectorError


class RedisStreamsConsumer:
    def __init__(
        self,
        connector: RedisStreamsConnector,
        stream: str,
        group: str,
        *,
        consumer: str | None = None,
        batch: int = 10,
        block: float = 1.0,
        claim_idle: float | None = 60.0,
        dead_letter_stream: str | None = None,
    ) -> None:
        if batch < 1:
            raise ValueError("batch must be at least 1")
        self.connector = connector
        self.stream = stream
        self.group = group
        # the same name after a restart on this host: its own pending entries come back at once (below)
        self.consumer = consumer or f"syncline-{socket.gethostname()}"
        self.batch = batch
        self.block = block
        self.claim_idle = claim_idle
        self.dead_letter_stream = dead_letter_stream

    async def messages(self) -> AsyncIterator[Delivery]:
        """Reclaimed stale entries first, then new ones, until the caller stops iterating."""
        import redis.exceptions

        errors = self.connector.errors
        where = f"consume {self.stream}"
        client = await self.connector.link.get()
        try:
            await self._check_dead_letter_stream(client)
            try:
                await client.xgroup_create(self.stream, self.group, id="0", mkstream=True)
            except redis.exceptions.ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    if "WRONGTYPE" in str(exc):
                        raise errors.make(
                            where,
                            f"key {self.stream!r} holds a value that is not a stream",
                            reason="config",
                            error_class="fatal",
                        ) from None
                    raise
            async for delivery in self._own_pending(client):  # what this consumer took and never acked
                yield delivery
            while True:
                entries, counts = await self._reclaimed(client)
                if not entries:
                    read: Any = await client.xreadgroup(
                        self.group,
                        self.consumer,
                        {self.stream: ">"},
                        count=self.batch,
                        block=max(1, round(self.block * 1000)),
                    )
                    entries = _entries(read)
                for entry_id, fields in entries:
                    yield self._delivery(client, _text(entry_id), fields, counts.get(_text(entry_id), 1))
        except ConnectorError:
            raise
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError) as exc:
            await self.connector.link.broken(client)
            raise errors.make(
                where, "the connection to the server was lost", reason="connect", error_class="retriable", detail=exc
            ) from None
        except redis.exceptions.ResponseError as exc:
            raise errors.make(
                where, "the server refused the consumer", reason="status", error_class="fatal", detail=exc
            ) from None

    async def _check_dead_letter_stream(self, client: Any) -> None:
        """Refuse a `dead_letter_stream` that is the consumed stream (a poison entry would come back
        to it and loop) or a key holding another type (every poison entry would fail to be added)."""
        target = self.dead_letter_stream
        if target is None:
            return
        where = f"consume {self.stream}"
        if target == self.stream:
            raise self.connector.errors.make(
                where,
                f"dead_letter_stream {target!r} is the stream consumed: poison entries would loop",
                reason="config",
                error_class="fatal",
            )
        kind = _text(await client.type(target))
        if kind not in ("none", "stream"):
            raise self.connector.errors.make(
                where,
                f"dead_letter_stream {target!r} holds a value that is not a stream ({kind})",
                reason="config",
                error_class="fatal",
            )

    async def _own_pending(self, client: Any) -> AsyncIterator[Delivery]:
        """Entries delivered to this consumer name and never acknowledged (its process stopped before
        the commit): read again from its pending list (XREADGROUP from id 0), without waiting for
        `claim_idle`. Their runs were not committed, or were and are recognised by their ids. Reading
        them counts as a delivery (Redis increments their delivery count), so a message that stops its
        process every time still reaches `max_redeliveries`."""
        after = "0"
        while True:
            read: Any = await client.xreadgroup(self.group, self.consumer, {self.stream: after}, count=self.batch)
            entries = [(entry_id, fields) for entry_id, fields in _entries(read) if fields]
            if not entries:
                return
            counts = await self._delivery_counts(client, entries)
            for entry_id, fields in entries:
                yield self._delivery(client, _text(entry_id), fields, counts.get(_text(entry_id), 2))
            after = _text(entries[-1][0])

    async def _reclaimed(self, client: Any) -> tuple[list[Any], dict[str, int]]:
        """Entries pending longer than `claim_idle`, now ours, with their delivery counts."""
        if self.claim_idle is None:
            return [], {}
        idle = max(0, round(self.claim_idle * 1000))
        result = await client.xautoclaim(
            self.stream, self.group, self.consumer, min_idle_time=idle, start_id="0-0", count=self.batch
        )
        claimed = [(entry_id, fields) for entry_id, fields in result[1] if fields]
        if not claimed:
            return [], {}
        return claimed, await self._delivery_counts(client, claimed)

    async def _delivery_counts(self, client: Any, entries: list[Any]) -> dict[str, int]:
        """How often Redis delivered each of `entries` (consecutive, ours) to this consumer."""
        pending = await client.xpending_range(
            self.stream,
            self.group,
            min=entries[0][0],
            max=entries[-1][0],
            count=len(entries) * 2,
            consumername=self.consumer,
        )
        return {_text(item["message_id"]): int(item["times_delivered"]) for item in pending}

    def _delivery(self, client: Any, entry_id: str, fields: dict[Any, Any], count: int) -> Delivery:
        values = {_text(name): value for name, value in fields.items()}
        try:
            headers = simplejson.loads(_text(values.get("headers", b"{}")))
        except ValueError:
            headers = {}
        stream, group = self.stream, self.group

        async def ack() -> None:
            await client.xack(stream, group, entry_id)

        async def nack(requeue: bool) -> None:
            if not requeue:
                await client.xack(stream, group, entry_id)

        dead_letters = self.dead_letter_stream

        async def reject(reason: str, detail: str) -> None:
            if dead_letters is None:
                await client.xack(stream, group, entry_id)
                return
            entry = dead_letter_fields(values, stream, entry_id, group, count, reason, detail)
            # one MULTI/EXEC: a crash cannot leave a copy without the XACK or the reverse (an XADD the
            # server refuses while running it, the key turned into another type, is raised after the XACK)
            async with client.pipeline(transaction=True) as pipe:
                pipe.xadd(dead_letters, entry)
                pipe.xack(stream, group, entry_id)
                await pipe.execute()

        message_id = values.get("message_id")
        content_type = values.get("content_type")
        body = values.get("body", b"")
        return Delivery(
            body=body if isinstance(body, bytes) else str(body).encode(),
            headers={str(k): str(v) for k, v in headers.items()} if isinstance(headers, dict) else {},
            message_id=_text(message_id) if message_id else entry_id,
            content_type=_text(content_type) if content_type is not None else None,
            source=stream,
            delivery_count=count,
            _ack=ack,
            _nack=nack,
            _reject=reject,
        )


def dead_letter_fields(
    values: dict[str, Any], stream: str, entry_id: str, group: str, count: int, reason: str, detail: str
) -> dict[str, Any]:
    """The fields of a poison entry's copy in the dead-letter stream: the entry's own `body`,
    `content_type`, `headers` and `message_id` as they were (a queue trigger can consume the
    dead-letter stream, or an operator XADD them back), then where it came from and why. Nothing of
    the connection (URL, credentials) goes in."""
    kept = ("body", "content_type", "headers", "message_id")
    fields: dict[str, Any] = {name: values[name] for name in kept if name in values}
    fields.update(
        stream=stream,
        entry_id=entry_id,
        group=group,
        delivery_count=str(count),
        reason=reason,
        error=detail,
    )
    return fields


def _entries(read: Any) -> list[Any]:
    """The entries of one stream from an XREADGROUP reply (RESP2 list or RESP3 map)."""
    if not read:
        return []
    if isinstance(read, dict):
        value = next(iter(read.values()))
        return list(value[0] if value and isinstance(value[0], list) else value)
    return list(read[0][1])


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
