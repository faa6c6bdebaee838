"""Flows that publish through the broker connectors, run with `syncline run` against the real brokers.

Each project has a Connection of the broker's type (credentials from `secret()` where the broker has
them) and a flow whose step calls `<connection>.publish`; the message is read back with the broker's
own client library.
"""

from __future__ import annotations

import asyncio
import json
import textwrap
from pathlib import Path
from typing import Any

import pytest

from runtime.cli import main
from tests.connectors.brokers import need, unique

pytestmark = pytest.mark.service

FLOW = """
kind: Flow
name: ship
trigger: {manual: {}}
steps:
  - id: announce
    call: bus.publish
    with: {shipment: "{{ input.shipment }}", weight: "{{ input.weight }}"}
"""


def _project(tmp_path: Path, connection: str) -> Path:
    root = tmp_path / "project"
    for folder in ("systems", "flows"):
        (root / folder).mkdir(parents=True)
    (root / "syncline.yaml").write_text("kind: Project\nname: broker-flow\ndefaults:\n  retry: {attempts: 2}\n")
    (root / "systems" / "bus.yaml").write_text(textwrap.dedent(connection))
    (root / "flows" / "ship.yaml").write_text(FLOW)
    (root / "input.json").write_text(json.dumps({"shipment": "S-9", "weight": 12.5}))
    return root


def _run(capsys: pytest.CaptureFixture[str], root: Path, tmp_path: Path) -> dict[str, Any]:
    code = main(
        [
            "run",
            "ship",
            "--input",
            str(root / "input.json"),
            "--project",
            str(root),
            "--store",
            f"sqlite:///{tmp_path / 'ops.db'}",
            "--format",
            "json",
        ]
    )
    out, err = capsys.readouterr()
    assert code == 0, out + err
    report: dict[str, Any] = json.loads(out)
    assert report["run"]["status"] == "succeeded", report
    return report


def test_amqp_flow_publishes_with_a_secret_password(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    need("rabbitmq", 5672)
    aio_pika = pytest.importorskip("aio_pika")
    monkeypatch.setenv("RABBITMQ_PASSWORD", "guest")
    queue = unique("syncline_flow")
    root = _project(
        tmp_path,
        f"""
        kind: Connection
        name: bus
        type: amqp
        config: {{url: "amqp://127.0.0.1:5672/", username: guest, password: "{{{{ secret('RABBITMQ_PASSWORD') }}}}"}}
        operations:
          publish: {{routing_key: {queue}, entity: shipment, headers: {{X-Event-Type: shipment.created}}}}
        """,
    )

    async def declare() -> None:
        connection = await aio_pika.connect("amqp://guest:guest@127.0.0.1:5672/")
        async with connection:
            await (await connection.channel()).declare_queue(queue, durable=False)

    async def take() -> Any:
        connection = await aio_pika.connect("amqp://guest:guest@127.0.0.1:5672/")
        async with connection:
            channel = await connection.channel()
            found = await (await channel.get_queue(queue)).get(no_ack=True, fail=False)
            await channel.queue_delete(queue)
            return found

    asyncio.run(declare())
    _run(capsys, root, tmp_path)
    message = asyncio.run(take())
    assert message is not None, "the flow's message is not in the queue"
    assert json.loads(message.body) == {"shipment": "S-9", "weight": 12.5}
    assert message.headers["X-Event-Type"] == "shipment.created"
    assert message.message_id and message.headers["X-Syncline-Run"]


def test_nats_flow_publishes_to_jetstream(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    need("nats", 4222)
    nats = pytest.importorskip("nats")
    stream = unique("SYNCLINE_FLOW").upper()
    subject = f"{stream.lower()}.shipments"
    root = _project(
        tmp_path,
        f"""
        kind: Connection
        name: bus
        type: nats
        config: {{servers: "nats://127.0.0.1:4222"}}
        operations:
          publish: {{subject: {subject}, stream: {stream}, body: "{{{{ params }}}}"}}
        """,
    )

    async def create() -> None:
        client = await nats.connect("nats://127.0.0.1:4222")
        await client.jetstream().add_stream(name=stream, subjects=[subject])
        await client.close()

    async def take() -> Any:
        client = await nats.connect("nats://127.0.0.1:4222")
        js = client.jetstream()
        try:
            return (await js.stream_info(stream)).state.messages, await js.get_msg(stream, 1)
        finally:
            await js.delete_stream(stream)
            await client.close()

    asyncio.run(create())
    _run(capsys, root, tmp_path)
    count, stored = asyncio.run(take())
    assert count == 1
    assert json.loads(stored.data) == {"shipment": "S-9", "weight": 12.5}
    assert stored.headers["Nats-Msg-Id"]


def test_redis_streams_flow_appends_an_entry(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    need("redis", 6379)
    redis = pytest.importorskip("redis")
    stream = unique("syncline:flow")
    root = _project(
        tmp_path,
        f"""
        kind: Connection
        name: bus
        type: redis_streams
        config: {{url: "redis://127.0.0.1:6379/0", dedupe_prefix: "syncline:test:dedupe"}}
        operations:
          publish: {{stream: "{stream}"}}
        """,
    )
    _run(capsys, root, tmp_path)
    client = redis.Redis(host="127.0.0.1", port=6379)
    try:
        entries = client.xrange(stream)
        assert len(entries) == 1
        fields = entries[0][1]
        assert json.loads(fields[b"body"]) == {"shipment": "S-9", "weight": 12.5}
        assert fields[b"message_id"]
    finally:
        keys = list(client.scan_iter(match=f"syncline:test:dedupe:{{{stream}}}:*"))
        client.delete(stream, *keys)
        client.close()


def test_mqtt_flow_publishes_with_qos1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    need("mosquitto", 1883)
    aiomqtt = pytest.importorskip("aiomqtt")
    topic = f"syncline/flow/{unique('t')}"
    root = _project(
        tmp_path,
        f"""
        kind: Connection
        name: bus
        type: mqtt
        config: {{host: 127.0.0.1, port: 1883}}
        operations:
          publish: {{topic: "{topic}", qos: 1}}
        """,
    )

    async def run_and_receive() -> Any:
        async with aiomqtt.Client("127.0.0.1", 1883, protocol=aiomqtt.ProtocolVersion.V5) as client:
            await client.subscribe(topic, qos=1)
            await asyncio.to_thread(_run, capsys, root, tmp_path)
            async with asyncio.timeout(10):
                async for message in client.messages:
                    return message
        return None

    message = asyncio.run(run_and_receive())
    assert message is not None
    assert json.loads(message.payload) == {"shipment": "S-9", "weight": 12.5}
    assert dict(message.properties.UserProperty)["message_id"]
