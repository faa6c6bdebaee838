"""`trigger: {queue: ...}`: consume a broker's messages; each message becomes one run.

The connection's live connector must be consumable (`runtime.connector_api.Consumable`; its connector
type provides `messages`: the `amqp`, `nats`, `redis_streams` and `mqtt` connectors). The source
takes messages in small batches (what the broker already delivered, up to `prefetch`) and for each:

- decodes the body (`format: json` or `text`); a body that does not parse goes to the dead letters
  with the reason `unparseable`;
- with `schema:` (a JSON Schema file under schemas/, or `canonical:<name>`, as a webhook's), a body
  that does not satisfy it goes to the dead letters with the reason `schema` and the first failing
  JSON pointer and message (`SourceContext.schema_error`): it never becomes a run;
- a message delivered more than `max_redeliveries` times after its first delivery (the broker's
  delivery count, or the times this source saw its batch fail) goes to the dead letters with the
  reason `poison`;
- those three are then settled for good (`Rejects.reject`, else `nack(requeue=False)`): to the
  broker's own dead-letter place where one is configured (a RabbitMQ queue's dead-letter exchange,
  a JetStream termination advisory, the redis_streams connection's `dead_letter_stream`), and never
  delivered again, so they never loop;
- the rest are accepted in arrival order (`SourceContext.accept`: one run per message id, committed
  in one transaction) and acknowledged only after that returned. A crash before the ack means the
  broker delivers the message again, with the same id, which names the run already committed: no
  second run. The flow's `idempotency_key`, when given, is the identity instead of the message id.

Before a batch it waits while the node's backlog is over `service.max_backlog` (`ready()`), so the
broker, not the node's memory, holds what is not taken yet (at most `prefetch` sit unacknowledged).
A lost connection ends the consumer's iteration with a retriable `ConnectorError`: the source logs
it, waits (0.5 s doubling to 30 s) and consumes again; unacknowledged messages come back.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections import OrderedDict
from collections.abc import AsyncIterator, Sequence
from typing import Any, Literal

from pydantic import Field

from runtime.connector_api import (
    AcksThrough,
    ConnectorError,
    Consumable,
    InboundMessage,
    MessageConsumer,
    Rejects,
)
from runtime.expr import loads
from runtime.source_api import SourceContext, SourceError, SourceEvent, TriggerType
from runtime.spec.common import Model, Template

RECONNECT_FIRST, RECONNECT_MAX = 0.5, 30.0
FAILED_KEYS_KEPT = 10_000  # message ids whose batch failed, for the redelivery count of brokers without one


class QueueSpec(Model):
    """Consume messages from a broker connection; each message becomes one run."""

    connection: str = Field(description="The broker connection.", examples=["events"])
    subject: str = Field(
        description="Queue (amqp), subject (nats), stream (redis_streams) or topic filter (mqtt).",
        examples=["crm.opportunity.closed"],
    )
    group: str | None = Field(
        None,
        description="Consumer group (redis_streams), durable consumer name (nats) or shared-subscription "
        "group (mqtt); default `syncline-<flow>`. Not used by amqp (a queue's consumers share it).",
        examples=["syncline-shipments"],
    )
    idempotency_key: Template | None = Field(
        None,
        description="Identity of a message (default: its message id); a message whose identity was seen is "
        "not run again.",
        examples=["{{ input.shipment_id }}"],
    )
    ordering_key: Template | None = Field(
        None,
        description="Runs with the same key execute one at a time, in arrival order.",
        examples=["{{ input.order_id }}"],
    )
    prefetch: int = Field(
        32, ge=1, le=10_000, description="Most messages taken but not yet acknowledged (the batch size)."
    )
    max_redeliveries: int = Field(
        5,
        ge=0,
        description="A message delivered more often than this after its first delivery goes to the dead "
        "letters (reason `poison`) and is acknowledged.",
    )
    format: Literal["json", "text"] = Field(
        "json",
        description="How the body becomes the run's input: `json` (unparseable: dead letter `unparseable`) "
        "or `text` (UTF-8).",
    )

    schema_: str | None = Field(
        None,
        alias="schema",
        description="JSON Schema file (under schemas/, or `canonical:<name>`) the decoded body must satisfy; "
        "a message that does not goes to the dead letters (reason `schema`) and is acknowledged.",
        examples=["schemas/shipment.json"],
    )


class QueueTrigger(Model):
    queue: QueueSpec


def _explain(spec: QueueSpec) -> dict[str, Any]:
    return {
        "connection": spec.connection,
        "subject": spec.subject,
        "group": spec.group or "syncline-<flow>",
        "identity": spec.idempotency_key or "the message id",
        "ordering": spec.ordering_key or "none",
        "prefetch": spec.prefetch,
        "poison": f"more than {spec.max_redeliveries} redeliveries, or a body that is not {spec.format}"
        + (f" or fails {spec.schema_}" if spec.schema_ else ""),
        "schema": spec.schema_ or "none: any body that decodes is run",
        "acknowledged": "after the run is committed",
    }


def default_group(flow: str) -> str:
    """The consumer group of a flow that names none: `syncline-<flow>` (letters, digits, - and _)."""
    return "syncline-" + re.sub(r"[^A-Za-z0-9_-]", "_", flow)


class _End:
    """What the reader hands over when the consumer's iteration ended (`error` None: it just ended)."""

    def __init__(self, error: BaseException | None) -> None:
        self.error = error


class QueueSource:
    """The source of one flow's queue trigger."""

    def __init__(self, spec: QueueSpec) -> None:
        self.spec = spec
        self.failed: OrderedDict[str, int] = OrderedDict()  # message id -> batches of it that failed
        self.batches = 0  # batches accepted (tests)
        self.consumer: MessageConsumer | None = None

    async def run(self, ctx: SourceContext) -> None:
        spec = self.spec
        connector = await ctx.connector()
        if not isinstance(connector, Consumable):
            raise SourceError(f"connection {spec.connection!r} cannot be consumed from (its connector has no consumer)")
        consumer = connector.consumer(spec.subject, group=spec.group or default_group(ctx.flow), prefetch=spec.prefetch)
        self.consumer = consumer
        failures = 0
        while True:
            took = self.batches
            try:
                await self.consume(ctx, consumer)
                error: ConnectorError | None = None
            except ConnectorError as exc:
                if not exc.retriable:
                    raise
                error = exc
            failures = 1 if self.batches > took else failures + 1
            delay = min(RECONNECT_FIRST * 2 ** (failures - 1), RECONNECT_MAX)
            what = ctx.redact(str(error)) if error is not None else "the consumer stopped"
            ctx.count("reconnects")
            ctx.log.warning("queue %s: %s; consuming again in %.1fs", ctx.flow, what, delay)
            await ctx.clock.sleep(delay)

    async def consume(self, ctx: SourceContext, consumer: MessageConsumer) -> None:
        """Take messages until the consumer's iteration ends (its error is raised)."""
        buffer: asyncio.Queue[InboundMessage | _End] = asyncio.Queue()  # never blocks the reader's last word
        slots = asyncio.Semaphore(self.spec.prefetch)  # at most `prefetch` messages wait in the buffer
        reader = asyncio.create_task(
            self._read(ctx, consumer.messages(), buffer, slots), name=f"queue reader {ctx.flow}"
        )
        try:
            while True:
                _still_running()
                first = await buffer.get()
                await ctx.ready()  # backpressure: while the node is too busy, the broker keeps the messages
                room = ctx.room()  # free run slots: a batch that fits starts at once, without the queue
                size = min(self.spec.prefetch, room) if room > 0 else self.spec.prefetch
                batch: list[InboundMessage] = []
                end: _End | None = None
                item: InboundMessage | _End = first
                while True:
                    if isinstance(item, _End):
                        end = item
                        break
                    batch.append(item)
                    slots.release()
                    if len(batch) >= size or buffer.empty():
                        break
                    item = buffer.get_nowait()
                if batch:
                    ctx.progressed()
                    await self.take(ctx, batch)
                if end is not None:
                    if end.error is not None:
                        raise end.error
                    return
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await reader

    @staticmethod
    async def _read(
        ctx: SourceContext,
        messages: AsyncIterator[InboundMessage],
        buffer: asyncio.Queue[InboundMessage | _End],
        slots: asyncio.Semaphore,
    ) -> None:
        """Pull messages into `buffer` while it has a free slot; while the node is over its backlog
        pull nothing, so the broker keeps them (and a consumer that reclaims stale messages does not
        take its own back). The end of the iteration (or its error) is put last, without waiting."""
        end = _End(None)
        try:
            iterator = aiter(messages)
            while True:
                _still_running()
                await slots.acquire()
                if ctx.paused():
                    await ctx.ready()
                try:
                    message = await anext(iterator)
                except StopAsyncIteration:
                    break
                buffer.put_nowait(message)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a client library may turn a cancellation into an error: never block here
            end = _End(exc)
        finally:
            close = getattr(messages, "aclose", None)
            if close is not None:
                with contextlib.suppress(Exception):
                    await close()
        buffer.put_nowait(end)

    async def take(self, ctx: SourceContext, batch: Sequence[InboundMessage]) -> None:
        """One batch: poison, unparseable and schema-invalid messages to the dead letters, the rest accepted in
        arrival order; every message acknowledged only after what became of it is committed."""
        spec = self.spec
        runnable: list[tuple[InboundMessage, SourceEvent]] = []
        for message in batch:
            event = self.event(message)
            redeliveries = self.redeliveries(message)
            if redeliveries > spec.max_redeliveries:
                why = f"delivered {redeliveries + 1} times (max_redeliveries {spec.max_redeliveries})"
                await self._poison(ctx, message, event, "poison", why)
                self.failed.pop(str(event.key), None)
                continue
            try:
                event.payload = self.decode(message)
            except ValueError as exc:
                event.payload = message.body.decode("utf-8", "replace")
                await self._poison(ctx, message, event, "unparseable", f"the body is not {spec.format}: {exc}")
                continue
            if spec.schema_ is not None and (problem := ctx.schema_error(event.payload)) is not None:
                why = f"the body does not satisfy {spec.schema_} {problem}"
                await self._poison(ctx, message, event, "schema", why)
                self.failed.pop(str(event.key), None)
                continue
            runnable.append((message, event))
        if not runnable:
            return
        try:
            await ctx.accept([event for _message, event in runnable])
        except asyncio.CancelledError:
            raise
        except Exception:
            for message, event in runnable:  # counted as a delivery that failed: the broker may not count
                key = str(event.key)
                self.failed[key] = self.failed.get(key, 0) + 1
                self.failed.move_to_end(key)
                with contextlib.suppress(Exception):  # give it back now (else: when the broker's timeout ends)
                    await message.nack(requeue=True)
            while len(self.failed) > FAILED_KEYS_KEPT:
                self.failed.popitem(last=False)
            raise
        self.batches += 1
        await self._settle_all([message for message, _event in runnable])
        for _message, event in runnable:
            self.failed.pop(str(event.key), None)
        ctx.count("messages", len(runnable))

    def event(self, message: InboundMessage) -> SourceEvent:
        """The event of a message (payload filled in by `decode`), keyed by its message id."""
        return SourceEvent(
            payload=None,
            key=message.message_id,
            headers=dict(message.headers),
            meta={
                "message_id": message.message_id,
                "subject": message.source,
                "delivery_count": message.delivery_count,
            },
        )

    def redeliveries(self, message: InboundMessage) -> int:
        """Deliveries after the first: the broker's count, or the batches of it this source saw fail."""
        counted = (message.delivery_count - 1) if message.delivery_count else 0
        return max(counted, self.failed.get(str(message.message_id), 0))

    def decode(self, message: InboundMessage) -> Any:
        if self.spec.format == "text":
            return message.body.decode("utf-8")  # UnicodeDecodeError is a ValueError
        return loads(message.body)

    async def _settle_all(self, messages: list[InboundMessage]) -> None:
        """Acknowledge a committed batch: with one acknowledgement of the last message where the broker
        settles every earlier one with it (`AcksThrough`; the batch is the oldest unsettled messages),
        else one by one."""
        last = messages[-1]
        if isinstance(last, AcksThrough) and all(isinstance(m, AcksThrough) for m in messages):
            try:
                await last.ack_through()
            except Exception as exc:
                raise self._lost("acknowledging messages", exc) from None
            for message in messages:
                with contextlib.suppress(AttributeError):
                    message.settled = True  # type: ignore[attr-defined]
            return
        for message in messages:
            await self._settle(message)

    async def _poison(
        self, ctx: SourceContext, message: InboundMessage, event: SourceEvent, reason: str, why: str
    ) -> None:
        """A message that must never run: to Syncline's dead letters first, then settled for good with
        the same reason (`Rejects.reject`: to the broker's own dead-letter place where one is
        configured, the reason with it where the broker keeps one; else `nack(requeue=False)`). A crash
        between the two is a redelivery under the same message id: no second dead letter (the store
        knows the key), and it is settled then."""
        await ctx.dead_letter(event, reason, why)
        try:
            if isinstance(message, Rejects):
                await message.reject(reason, ctx.redact(why))
            else:
                await message.nack(requeue=False)
        except Exception as exc:
            raise self._lost(f"settling a {reason} message", exc) from None

    def _lost(self, what: str, exc: Exception) -> ConnectorError:
        """A failed acknowledgement is a lost connection (retriable): the broker delivers again."""
        return ConnectorError(
            f"{self.spec.connection}: {what} failed: {exc}", reason="connect", error_class="retriable"
        )

    async def _settle(self, message: InboundMessage) -> None:
        """Acknowledge a message whose run is committed. A failure is a lost connection: the
        redelivery names the same run."""
        try:
            await message.ack()
        except Exception as exc:
            raise self._lost("acknowledging a message", exc) from None


def _still_running() -> None:
    """Raise CancelledError if this task was cancelled and a client library swallowed it (a broker
    client that turns a cancelled read into a normal return would otherwise keep the task alive)."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


TRIGGER = TriggerType(
    key="queue",
    model=QueueSpec,
    wrapper=QueueTrigger,
    description="Messages consumed from a broker connection (RabbitMQ, NATS JetStream, Redis Streams, MQTT); "
    "each message becomes one run, acknowledged once the run is committed.",
    source=QueueSource,
    connection_field="connection",
    needs="messages",
    idempotency_field="idempotency_key",
    ordering_field="ordering_key",
    schema_field="schema_",
    explain=_explain,
    order=40,
)
