"""`trigger: {queue: ...}` on a served node against the real brokers (RabbitMQ, NATS JetStream, Redis
Streams, Mosquitto): every message runs once per message id and calls the sink once; a message
delivered again with the same id is no second run; unparseable and poison messages end in the dead
letters, acknowledged; a crash between the commit and the ack is a redelivery of the same run; with
the node over `max_backlog` the source stops taking and the broker keeps the rest; a connection cut
by a loopback proxy mid-stream loses nothing.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import secrets
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from runtime.store.base import RunFilter
from runtime.triggers.queue import QueueSource
from tests.connectors.brokers import TcpProxy, need
from tests.service.conftest import StartNode
from tests.service.harness import Node, Sink, until, write_project

pytestmark = pytest.mark.service


# ---------------------------------------------------------------------------------------- brokers


class Kit:
    """One broker: where the test's subject lives, its Connection, and publishing with its own client."""

    name = ""
    port = 0
    counts_deliveries = True  # the broker tells how often a message was delivered

    def __init__(self) -> None:
        self.tag = secrets.token_hex(5)
        self.subject = ""

    async def setup(self) -> None: ...

    async def cleanup(self) -> None: ...

    def connection(self, port: int) -> str:
        raise AssertionError("a kit gives its connection")

    async def publish(self, body: bytes, message_id: str | None) -> None: ...

    async def redeliver(self, group: str, times: int) -> None:
        """Deliver the one published message `times` times to `group` without acknowledging it."""

    async def waiting(self) -> int:
        """Messages the broker holds that no consumer took yet (-1: the broker cannot tell)."""
        return -1

    def listening(self, source: QueueSource) -> bool:
        """The node's consumer will get what is published now (MQTT keeps nothing for a topic no one
        subscribed to)."""
        return True


class Amqp(Kit):
    name, port = "rabbitmq", 5672
    URL = "amqp://guest:guest@127.0.0.1:5672/"

    def __init__(self, quorum: bool = False) -> None:
        super().__init__()
        self.subject = f"syncline_q_{self.tag}"
        self.quorum = quorum

    async def setup(self) -> None:
        import aio_pika

        self.conn = await aio_pika.connect(self.URL)
        self.channel = await self.conn.channel()
        arguments = {"x-queue-type": "quorum"} if self.quorum else None
        self.queue = await self.channel.declare_queue(self.subject, durable=True, arguments=arguments)

    async def cleanup(self) -> None:
        await self.channel.queue_delete(self.subject)
        await self.conn.close()

    def connection(self, port: int) -> str:
        return f'type: amqp\nconfig: {{url: "amqp://127.0.0.1:{port}/", username: guest, password: guest}}\n'

    async def publish(self, body: bytes, message_id: str | None) -> None:
        import aio_pika

        message = aio_pika.Message(body, message_id=message_id, headers={"x-source": "test"})
        await self.channel.default_exchange.publish(message, routing_key=self.subject)

    async def redeliver(self, group: str, times: int) -> None:
        for _ in range(times):
            message = await until(lambda: self.queue.get(fail=False), timeout=10)
            await message.nack(requeue=True)

    async def waiting(self) -> int:
        declared = await self.channel.declare_queue(self.subject, passive=True)
        return int(declared.declaration_result.message_count or 0)


class Nats(Kit):
    name, port = "nats", 4222

    def __init__(self) -> None:
        super().__init__()
        self.stream = f"SYNCLINE_Q_{self.tag.upper()}"
        self.subject = f"syncline.q{self.tag}.events"

    async def setup(self) -> None:
        import nats

        self.client = await nats.connect("nats://127.0.0.1:4222")
        self.js = self.client.jetstream()
        await self.js.add_stream(name=self.stream, subjects=[self.subject])

    async def cleanup(self) -> None:
        await self.js.delete_stream(self.stream)
        await self.client.close()

    def connection(self, port: int) -> str:
        # a message pulled by a connection that was then cut comes back after ack_wait: keep it short
        return f'type: nats\nconfig: {{servers: "nats://127.0.0.1:{port}", ack_wait: 2s}}\n'

    async def publish(self, body: bytes, message_id: str | None) -> None:
        headers = {"x-source": "test", **({"Nats-Msg-Id": message_id} if message_id else {})}
        await self.js.publish(self.subject, body, headers=headers)

    async def redeliver(self, group: str, times: int) -> None:
        from nats.js.api import AckPolicy, ConsumerConfig

        config = ConsumerConfig(durable_name=group, ack_policy=AckPolicy.EXPLICIT, ack_wait=30.0, max_ack_pending=8)
        config.filter_subject = self.subject
        subscription = await self.js.pull_subscribe(self.subject, durable=group, stream=self.stream, config=config)
        for _ in range(times):
            (message,) = await subscription.fetch(1, timeout=5)
            await message.nak()
        await subscription.unsubscribe()


class Redis(Kit):
    name, port = "redis", 6379

    def __init__(self) -> None:
        super().__init__()
        self.subject = f"syncline:q:{self.tag}"

    async def setup(self) -> None:
        import redis.asyncio

        self.client = redis.asyncio.Redis(host="127.0.0.1", port=6379)

    async def cleanup(self) -> None:
        await self.client.delete(self.subject)
        await self.client.aclose()

    def connection(self, port: int) -> str:
        return f'type: redis_streams\nconfig: {{url: "redis://127.0.0.1:{port}/0", claim_idle: 1s}}\n'

    async def publish(self, body: bytes, message_id: str | None) -> None:
        fields: dict[str, Any] = {"body": body, "content_type": "application/json", "headers": '{"x-source": "test"}'}
        if message_id:
            fields["message_id"] = message_id
        await self.client.xadd(self.subject, fields)

    async def redeliver(self, group: str, times: int) -> None:
        await self.client.xgroup_create(self.subject, group, id="0", mkstream=True)
        read = await self.client.xreadgroup(group, "earlier-node", {self.subject: ">"}, count=1)
        entry_id = read[0][1][0][0]
        for _ in range(times - 1):
            await self.client.xclaim(self.subject, group, "earlier-node", 0, [entry_id])


class Mqtt(Kit):
    name, port = "mosquitto", 1883
    counts_deliveries = False

    def __init__(self) -> None:
        super().__init__()
        self.subject = f"syncline/q{self.tag}/events"

    async def setup(self) -> None:
        import aiomqtt

        self.client = aiomqtt.Client("127.0.0.1", 1883, protocol=aiomqtt.ProtocolVersion.V5)
        await self.client.__aenter__()

    async def cleanup(self) -> None:
        await self.client.__aexit__(None, None, None)

    def connection(self, port: int) -> str:
        return (
            f"type: mqtt\nconfig: {{host: 127.0.0.1, port: {port}, client_id: syncline-test-{self.tag}, "
            "session_expiry: 5m, reconnect: {min_delay: 100ms, max_delay: 1s}}\n"
        )

    async def publish(self, body: bytes, message_id: str | None) -> None:
        from paho.mqtt.packettypes import PacketTypes
        from paho.mqtt.properties import Properties

        properties = Properties(PacketTypes.PUBLISH)
        properties.UserProperty = [("x-source", "test"), *([("message_id", message_id)] if message_id else [])]
        await self.client.publish(self.subject, body, qos=1, properties=properties)

    def listening(self, source: QueueSource) -> bool:
        consumer = source.consumer
        return consumer is not None and bool(getattr(consumer, "subscribed").is_set())  # noqa: B009


KITS: dict[str, Callable[[], Kit]] = {"amqp": Amqp, "nats": Nats, "redis_streams": Redis, "mqtt": Mqtt}
KITS_COUNTING = ["amqp-quorum", "nats", "redis_streams"]


@pytest.fixture(params=list(KITS))
async def kit(request: pytest.FixtureRequest) -> AsyncIterator[Kit]:
    made = KITS[request.param]()
    need(made.name, made.port)
    await made.setup()
    yield made
    await made.cleanup()


# ------------------------------------------------------------------------------------------ flows


def flow(kit: Kit, *, prefetch: int = 8, max_redeliveries: int = 5, extra: str = "") -> str:
    return f"""
trigger:
  queue:
    connection: bus
    subject: "{kit.subject}"
    group: syncline-test-{kit.tag}
    prefetch: {prefetch}
    max_redeliveries: {max_redeliveries}
{extra}steps:
  - id: push
    call: sink.post
    with: {{path: "got/{{{{ input.n }}}}", body: "{{{{ input }}}}"}}
"""


async def serve(
    tmp_path: Path,
    sink: Sink,
    nodes: StartNode,
    kit: Kit,
    text: str,
    *,
    port: int | None = None,
    extra: str = "",
    **options: Any,
) -> Node:
    root = write_project(tmp_path / "p", sink.url, {"consume": text}, project_extra=extra)
    (root / "systems" / "bus.yaml").write_text("kind: Connection\nname: bus\n" + kit.connection(port or kit.port))
    node = await nodes(root, **options)
    (host,) = node.service.sources
    source = host.source
    assert isinstance(source, QueueSource)
    await until(lambda: kit.listening(source), timeout=10)
    return node


async def runs(node: Node) -> list[Any]:
    return await node.service.store.list_runs(RunFilter(flow="consume"))


def got(sink: Sink) -> dict[int, int]:
    """Sink calls by message number."""
    counts: dict[int, int] = {}
    for hit in sink.hits:
        if hit.path.startswith("/got/"):
            n = int(hit.path.rsplit("/", 1)[1])
            counts[n] = counts.get(n, 0) + 1
    return counts


NUMBERED = {
    "type": "object",
    "required": ["n", "customer"],
    "properties": {
        "n": {"type": "integer"},
        "customer": {"type": "object", "required": ["id"], "properties": {"id": {"type": "string"}}},
    },
}


def body(n: int) -> bytes:
    return json.dumps({"n": n, "id": f"order-{n}"}).encode()


# ------------------------------------------------------------------------------------------ tests


async def test_each_message_runs_once_and_unparseable_ends_in_dead_letters(
    tmp_path: Path, sink: Sink, nodes: StartNode, kit: Kit
) -> None:
    node = await serve(tmp_path, sink, nodes, kit, flow(kit, prefetch=4))
    for n in range(6):
        await kit.publish(body(n), f"m-{n}")
    await kit.publish(body(2), "m-2")  # delivered again with the same id (or deduped by the broker)
    await kit.publish(b"{not json", "m-bad")
    await kit.publish(body(6), "m-6")  # the last one: once it ran, everything before it was taken
    await until(lambda: len(got(sink)) == 7, timeout=15)
    letters = await until(lambda: node.service.store.list_dead_letters(flow="consume"), timeout=10)
    assert got(sink) == {n: 1 for n in range(7)}
    done = await runs(node)
    assert len(done) == 7 + 1, [(r.status, r.meta.get("source")) for r in done]  # 7 runs and the dead letter
    by_key = {r.meta["source"]["key"]: r for r in done}
    assert by_key["m-3"].input == {"n": 3, "id": "order-3"}
    assert by_key["m-3"].meta["source"]["subject"]
    assert by_key["m-3"].headers.get("x-source") == "test"
    assert [(d.reason, by_key["m-bad"].id) for d in letters] == [("unparseable", d.run_id) for d in letters]

    async def settled() -> bool:
        return all(r.status in ("succeeded", "dead_lettered") for r in await runs(node))

    await until(settled, timeout=5)
    if await kit.waiting() != -1:
        assert await kit.waiting() == 0  # all acknowledged


@pytest.fixture
async def counting(request: pytest.FixtureRequest) -> AsyncIterator[Kit]:
    """A broker that counts deliveries (RabbitMQ with a quorum queue, NATS, Redis)."""
    made: Kit = request.param()
    need(made.name, made.port)
    await made.setup()
    yield made
    await made.cleanup()


@pytest.mark.parametrize("counting", [lambda: Amqp(quorum=True), Nats, Redis], ids=KITS_COUNTING, indirect=True)
async def test_a_message_over_its_redeliveries_is_poison(
    tmp_path: Path, sink: Sink, nodes: StartNode, counting: Kit
) -> None:
    """The broker's delivery count: a message delivered 3 times before (by an earlier consumer that
    never acknowledged it) is over `max_redeliveries: 1` and goes to the dead letters, acknowledged."""
    kit = counting
    await kit.publish(body(1), "m-poison")
    await kit.redeliver(f"syncline-test-{kit.tag}", 3)
    node = await serve(tmp_path, sink, nodes, kit, flow(kit, max_redeliveries=1))
    letters = await until(lambda: node.service.store.list_dead_letters(flow="consume"), timeout=15)
    assert [d.reason for d in letters] == ["poison"]
    assert letters[0].error is not None and "max_redeliveries 1" in letters[0].error["message"]
    await kit.publish(body(2), "m-next")  # the poison message does not block what follows
    await until(lambda: got(sink) == {2: 1}, timeout=15)
    if await kit.waiting() != -1:
        assert await kit.waiting() == 0


@pytest.mark.parametrize(
    "counting", [lambda: Amqp(quorum=True), Redis], ids=["amqp-quorum", "redis_streams"], indirect=True
)
async def test_a_message_failing_the_schema_is_dead_lettered_and_acknowledged(
    tmp_path: Path, sink: Sink, nodes: StartNode, counting: Kit
) -> None:
    """`schema: schemas/numbered.json`: a body that parses but does not satisfy the schema goes to the
    dead letters (reason `schema`, the failing pointer and message) and is acknowledged at once: it
    is never run, never delivered again (the broker counts deliveries), and the next one runs."""
    kit = counting
    text = flow(kit, max_redeliveries=0).replace(
        "    max_redeliveries: 0\n", "    max_redeliveries: 0\n    schema: schemas/numbered.json\n"
    )
    (tmp_path / "p" / "schemas").mkdir(parents=True)  # the project is written around it
    (tmp_path / "p" / "schemas" / "numbered.json").write_text(json.dumps(NUMBERED))
    node = await serve(tmp_path, sink, nodes, kit, text)

    def order(n: int, customer_id: Any) -> bytes:
        return json.dumps({"n": n, "id": f"order-{n}", "customer": {"id": customer_id}}).encode()

    await kit.publish(order(1, "c-1"), "m-1")
    await kit.publish(order(2, 7), "m-2")  # customer.id must be a string
    await kit.publish(order(3, "c-3"), "m-3")
    await until(lambda: got(sink) == {1: 1, 3: 1}, timeout=15)
    letters = await until(lambda: node.service.store.list_dead_letters(flow="consume"), timeout=10)
    assert [d.reason for d in letters] == ["schema"]
    error = letters[0].error
    assert error is not None
    expected = "the body does not satisfy schemas/numbered.json at /customer/id: 7 is not of type 'string'"
    assert error["message"] == expected
    assert "x-source" not in error["message"] and "test" not in error["message"]
    done = await runs(node)
    by_key = {r.meta["source"]["key"]: r for r in done}
    assert sorted(by_key) == ["m-1", "m-2", "m-3"]
    assert by_key["m-2"].status == "dead_lettered" and letters[0].run_id == by_key["m-2"].id

    async def settled() -> bool:
        return all(r.status in ("succeeded", "dead_lettered") for r in await runs(node))

    await until(settled, timeout=5)
    assert len(await node.service.store.list_dead_letters(flow="consume")) == 1
    if isinstance(kit, Redis):  # acknowledged (after the commit, so maybe after the run): nothing pending
        redis = kit

        async def none_pending() -> bool:
            pending = await redis.client.xpending(redis.subject, f"syncline-test-{redis.tag}")
            return int(pending["pending"]) == 0

        await until(none_pending, timeout=10)
    else:  # acknowledged: once the node is gone nothing comes back to the queue
        await node.stop()
        assert await kit.waiting() == 0


@pytest.mark.parametrize("counting", [Amqp, Redis], ids=["amqp", "redis_streams"], indirect=True)
async def test_a_crash_between_commit_and_ack_is_the_same_run(
    tmp_path: Path, sink: Sink, nodes: StartNode, counting: Kit
) -> None:
    """The source accepts a batch, then its connection dies before the ack: the broker delivers the
    messages again (RabbitMQ at once, Redis once idle for `claim_idle`), with the same ids, and they
    name the runs already committed."""
    kit = counting
    node = await serve(tmp_path, sink, nodes, kit, flow(kit, prefetch=16))
    (host,) = node.service.sources
    source = host.source
    assert isinstance(source, QueueSource)
    take = source.take
    crashed: list[int] = []

    async def take_then_crash(ctx: Any, batch: Any) -> None:
        if not crashed:
            events = []
            for message in batch:
                event = source.event(message)
                event.payload = source.decode(message)
                events.append(event)
            await ctx.accept(events)  # committed ...
            crashed.append(len(batch))
            raise ConnectionError("connection reset before the ack")  # ... never acknowledged
        await take(ctx, batch)

    source.take = take_then_crash  # type: ignore[method-assign]
    for n in range(5):
        await kit.publish(body(n), f"m-{n}")
    await until(lambda: crashed, timeout=10)
    await until(lambda: len(got(sink)) == 5, timeout=20)
    await until(lambda: source.batches >= 1, timeout=20)  # the redelivery was taken (and acked)
    assert got(sink) == {n: 1 for n in range(5)}
    done = await runs(node)
    assert sorted(r.meta["source"]["key"] for r in done) == [f"m-{n}" for n in range(5)]


async def test_over_max_backlog_the_source_stops_taking(tmp_path: Path, sink: Sink, nodes: StartNode) -> None:
    """One worker and a slow sink: the node's backlog grows past `max_backlog: 5`; the source stops
    taking (it reads the backlog every half second, so one burst may pass before it notices) and the
    broker holds the rest until the workers caught up. (While its one run slot is taken the source
    first waits a quarter second for it; a call slower than that lets the backlog grow.)"""
    kit = Amqp()
    need(kit.name, kit.port)
    await kit.setup()
    try:
        for n in range(1000):
            sink.rule(f"/got/{n}", delay=0.4)  # the one worker is slower than the intake
        node = await serve(
            tmp_path, sink, nodes, kit, flow(kit, prefetch=4), extra="service: {max_backlog: 5}\n", workers=1
        )
        (host,) = node.service.sources

        async def paused_with_messages_left() -> bool:
            return host.context.paused() and await kit.waiting() > 0

        published = 0
        while not await paused_with_messages_left():  # a steady stream, faster than the one worker
            assert published < 1000, "the source never paused"
            await kit.publish(body(published), f"m-{published}")
            published += 1
            await asyncio.sleep(0.005)
        taken = len(await runs(node))
        assert taken < published
        assert taken <= 5 + 200 * 0.5 + 2 * 4  # the limit, half a second's intake, two batches
        for n in range(1000):
            sink.rule(f"/got/{n}", delay=0.0)  # the worker catches up
        await until(lambda: len(got(sink)) == published, timeout=30)
        assert got(sink) == {n: 1 for n in range(published)}
        assert await kit.waiting() == 0
    finally:
        await kit.cleanup()


async def test_a_cut_connection_reconnects_and_loses_nothing(
    tmp_path: Path, sink: Sink, nodes: StartNode, kit: Kit
) -> None:
    proxy = await TcpProxy(kit.port).start()
    try:
        node = await serve(tmp_path, sink, nodes, kit, flow(kit, prefetch=4), port=proxy.port)
        (host,) = node.service.sources
        for n in range(10):
            await kit.publish(body(n), f"m-{n}")
        await until(lambda: len(got(sink)) == 10, timeout=15)
        await proxy.cut()
        for n in range(10, 20):
            await kit.publish(body(n), f"m-{n}")  # published while the node is cut off
        await proxy.restore()
        await until(lambda: len(got(sink)) == 20, timeout=30)
        for n in range(20, 25):
            await kit.publish(body(n), f"m-{n}")
        await until(lambda: len(got(sink)) == 25, timeout=15)
        assert got(sink) == {n: 1 for n in range(25)}
        assert len(await runs(node)) == 25
        assert host.context.log  # the source logged the lost connection through ctx.redact
    finally:
        await proxy.close()


async def test_runs_of_one_ordering_key_call_in_arrival_order(tmp_path: Path, sink: Sink, nodes: StartNode) -> None:
    """`ordering_key` holds from the broker to the last call: the runs of one key run one at a time,
    in the order the messages arrived, while other keys go on beside them."""
    kit = Amqp()
    need(kit.name, kit.port)
    await kit.setup()
    try:
        for n in range(30):
            sink.rule(f"/got/{n}", delay=0.03)
        text = flow(kit, prefetch=8, extra='    ordering_key: "{{ input.customer }}"\n')
        await serve(tmp_path, sink, nodes, kit, text)
        for n in range(30):
            await kit.publish(json.dumps({"n": n, "customer": f"C-{n % 3}"}).encode(), f"m-{n}")
        await until(lambda: len(got(sink)) == 30, timeout=20)
        hits = [h for h in sink.hits if h.path.startswith("/got/")]
        for customer in range(3):
            mine = [h for h in hits if int(h.path.rsplit("/", 1)[1]) % 3 == customer]
            numbers = [int(h.path.rsplit("/", 1)[1]) for h in mine]
            assert numbers == sorted(numbers), f"customer C-{customer} called out of order: {numbers}"
            for before, after in itertools.pairwise(mine):  # one at a time: no overlap
                assert after.start >= before.end, f"C-{customer}: {after.path} began before {before.path} ended"
    finally:
        await kit.cleanup()


async def test_messages_wait_in_the_broker_for_a_free_run_slot(tmp_path: Path, sink: Sink, nodes: StartNode) -> None:
    """Two run slots and calls of 0.1 s: the source takes what fits into the free slots (waiting a
    moment for one), so every message's run starts as soon as it is committed — none waits in the
    node's queue for a claim — and never more than two run at once."""
    from tests.service.test_handoff import count_claims

    kit = Amqp()
    need(kit.name, kit.port)
    await kit.setup()
    try:
        for n in range(12):
            sink.rule(f"/got/{n}", delay=0.1)
        node = await serve(tmp_path, sink, nodes, kit, flow(kit, prefetch=8), workers=2)
        claimed = count_claims(node.service)
        for n in range(12):
            await kit.publish(body(n), f"m-{n}")
        await until(lambda: len(got(sink)) == 12, timeout=20)
        assert got(sink) == {n: 1 for n in range(12)}
        hits = [h for h in sink.hits if h.path.startswith("/got/")]
        assert max(sum(1 for o in hits if o.start <= h.start < o.end) for h in hits) <= 2
        assert claimed == [], f"{len(claimed)} runs went through the queue"
    finally:
        await kit.cleanup()
