"""P9: RabbitMQ → flow → HTTP sink, messages per second end to end, against a hand-written aio-pika
consumer doing the same work.

Each round publishes --messages persistent JSON orders (with a message id) to a fresh durable queue
on the local RabbitMQ (127.0.0.1:5672, guest/guest), then drains it with:

  A  `syncline serve` (SQLite store in the project, journal on, default runs in flight): a flow with
     `trigger: {queue: ...}` (prefetch 64) whose one step posts the order to the sink with an
     idempotency key. Messages are acknowledged after their runs are committed; a run is finished
     when its call returned and its journal is written. Rate: messages / (last run finished - first
     run created), from the store;
  B  a hand-written aio-pika consumer in this process (prefetch 64, up to 64 messages in flight, each
     parsed as JSON and posted with aiohttp (the client under Syncline's http connector) to the same sink with an Idempotency-Key header, then
     acknowledged; nothing journaled). Rate: messages / (last ack - first delivery).

The sink is nginx (`return 201`, one worker) when installed, else bench/_sink.py (said so). The bar
(issue 10 §4): A >= 0.5 x B.

    python bench/p9_amqp_flow.py [--messages 20000] [--rounds 3] [--smoke] [--profile]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import shutil
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import free_port, median, rounds_text, start_syncline
from _profile import record, summary
from p8_async_drain import nginx_sink

AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"
PREFETCH = 64

FLOW = """kind: Flow
name: p9
trigger:
  queue: {{connection: bus, subject: {queue}, prefetch: {prefetch}}}
steps:
  - id: post
    call: erp.create_sales_order
    with: {{body: "{{{{ input }}}}"}}
    idempotency_key: "order-{{{{ input.id }}}}"
"""
CONNECTIONS = """kind: Connection
name: erp
type: http
config: {{base_url: "http://127.0.0.1:{port}", timeout: 10s}}
operations:
  create_sales_order: {{method: POST, path: /sales-orders, body: "{{{{ params.body }}}}", entity: order, effect: create}}
---
kind: Connection
name: bus
type: amqp
config: {{url: "amqp://127.0.0.1:5672/", username: guest, password: guest}}
"""


def order(n: int) -> bytes:
    return json.dumps(
        {"id": f"P9-{n}", "customer": {"id": "C-9"}, "currency": "eur", "lines": [{"sku": "X-1", "qty": 2}]}
    ).encode()


async def publish(queue: str, count: int) -> None:
    import aio_pika

    async with await aio_pika.connect(AMQP_URL) as connection:
        channel = await connection.channel(publisher_confirms=True)
        await channel.declare_queue(queue, durable=True)
        exchange = channel.default_exchange
        batch = []
        for n in range(count):
            message = aio_pika.Message(order(n), message_id=f"P9-{n}", delivery_mode=aio_pika.DeliveryMode.PERSISTENT)
            batch.append(exchange.publish(message, routing_key=queue))
            if len(batch) >= 500:
                await asyncio.gather(*batch)
                batch = []
        await asyncio.gather(*batch)


async def delete(queue: str) -> None:
    import aio_pika

    async with await aio_pika.connect(AMQP_URL) as connection:
        await (await connection.channel()).queue_delete(queue)


def syncline_round(scratch: Path, sink_port: int, count: int, profile: list[str] | None = None) -> tuple[float, float]:
    """(messages/s through `syncline serve` end to end, messages/s taken by its queue source: runs
    committed from the first to the last `created_at`) (A)."""
    queue = f"p9_{secrets.token_hex(4)}"
    root = scratch / queue
    (root / "flows").mkdir(parents=True)
    (root / "systems").mkdir()
    (root / "syncline.yaml").write_text("kind: Project\nname: p9\n")
    (root / "systems" / "connections.yaml").write_text(CONNECTIONS.format(port=sink_port))
    (root / "flows" / "p9.yaml").write_text(FLOW.format(queue=queue, prefetch=PREFETCH))
    asyncio.run(publish(queue, count))
    db = root / "state.db"
    proc = start_syncline(root, free_port(), extra=["--store", f"sqlite:///{db}"])
    spy = record(proc.pid, 8, root / "p9.raw") if profile is not None else None
    try:
        deadline = time.monotonic() + 30 + count / 50
        while True:
            with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
                done, first, last, taken = conn.execute(
                    "SELECT count(*), min(created_at), max(finished_at), max(created_at) FROM syncline_runs "
                    "WHERE status = 'succeeded'"
                ).fetchone()
            if done >= count:
                if spy is not None and profile is not None:
                    spy.wait(30)
                    raw = root / "p9.raw"
                    profile.extend(summary(raw, top=25) if raw.exists() else ["  (py-spy recorded nothing)"])
                    if raw.exists() and os.environ.get("BENCH_PROFILE_KEEP"):  # a path to keep the raw stacks
                        shutil.copy(raw, os.environ["BENCH_PROFILE_KEEP"])
                return count / (last - first), count / max(taken - first, 1e-9)
            if time.monotonic() > deadline or not proc.alive():
                raise RuntimeError(f"syncline finished {done} of {count} runs:\n{proc.tail()}")
            time.sleep(0.2)
    finally:
        proc.stop()
        asyncio.run(delete(queue))


async def _consume(queue: str, sink_port: int, count: int) -> float:
    import aio_pika
    import aiohttp

    done = 0
    first: float | None = None
    finished = asyncio.Event()
    in_flight = asyncio.Semaphore(PREFETCH)
    async with (
        await aio_pika.connect(AMQP_URL) as connection,
        aiohttp.ClientSession(  # the HTTP client Syncline's http connector uses underneath
            f"http://127.0.0.1:{sink_port}",
            connector=aiohttp.TCPConnector(limit=PREFETCH),
            timeout=aiohttp.ClientTimeout(total=10),
        ) as client,
    ):
        channel = await connection.channel()
        await channel.set_qos(prefetch_count=PREFETCH)
        source = await channel.get_queue(queue)

        async def handle(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            nonlocal done
            try:
                body = json.loads(message.body)
                headers = {"Idempotency-Key": f"order-{body['id']}"}
                async with client.post("/sales-orders", json=body, headers=headers) as answer:
                    answer.raise_for_status()
                    await answer.read()
                await message.ack()
                done += 1
                if done >= count:
                    finished.set()
            finally:
                in_flight.release()

        dispatched = 0
        tasks: set[asyncio.Task[None]] = set()
        async with source.iterator() as messages:
            async for message in messages:
                if first is None:
                    first = time.perf_counter()
                await in_flight.acquire()
                task = asyncio.create_task(handle(message))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                dispatched += 1
                if dispatched >= count:
                    break
            await finished.wait()
    assert first is not None
    return count / (time.perf_counter() - first)


def aio_pika_round(sink_port: int, count: int) -> float:
    """Messages/s through the hand-written consumer (B)."""
    queue = f"p9_{secrets.token_hex(4)}"
    asyncio.run(publish(queue, count))
    try:
        return asyncio.run(_consume(queue, sink_port, count))
    finally:
        asyncio.run(delete(queue))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--smoke", action="store_true", help="one small round (CI: the script still runs)")
    parser.add_argument("--profile", action="store_true", help="py-spy the serve process for 8 s in round 1")
    args = parser.parse_args()
    count, rounds = (300, 1) if args.smoke else (args.messages, args.rounds)
    try:
        import aio_pika  # noqa: F401
    except ImportError:
        print("P9 skipped: aio-pika is not installed (pip install 'syncline[amqp]')")
        return 0
    import socket

    try:
        socket.create_connection(("127.0.0.1", 5672), timeout=2).close()
    except OSError as exc:
        print(f"P9 skipped: RabbitMQ is not reachable on 127.0.0.1:5672 ({exc})")
        return 0
    syncline: list[float] = []
    intake: list[float] = []
    direct: list[float] = []
    profiled: list[str] = []
    with nginx_sink() as (sink_port, sink_label), tempfile.TemporaryDirectory(prefix="syncline-p9-") as tmp:
        for _ in range(rounds):
            wanted = profiled if args.profile and not syncline else None
            end_to_end, taken = syncline_round(Path(tmp), sink_port, count, wanted)
            syncline.append(end_to_end)
            intake.append(taken)
            direct.append(aio_pika_round(sink_port, count))
    a, b = median(syncline), median(direct)
    print(f"P9 RabbitMQ -> flow -> HTTP sink, {count:,} messages x {rounds} rounds, sink: {sink_label}")
    print(f"  A syncline serve (queue trigger, SQLite journal): {a:,.0f} msg/s (rounds {rounds_text(syncline)})")
    print(
        f"    of which the queue source took (runs committed): {median(intake):,.0f} msg/s (rounds {rounds_text(intake)})"
    )
    print(f"  B hand-written aio-pika consumer (no journal):     {b:,.0f} msg/s (rounds {rounds_text(direct)})")
    print(f"  A / B = {a / b:.2f} (bar >= 0.5)")
    if profiled:
        print("  where syncline serve spends its time (py-spy, round 1):")
        print("\n".join(profiled))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
