"""Every built-in connector keeps the connector contract (runtime/testing/connector_kit.py) against its
real system: the http connector against a loopback server, sql on SQLite, file on a temporary folder,
and the four brokers on their local servers (service tests). The kit itself is shown to catch a
connector that leaks a secret in its error and one that raises something other than ConnectorError."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from runtime.connector_api import CallRequest, CallResult, ConnectorError, ConnectorType, OperationSpec
from runtime.testing.connector_kit import CANARY, KitCall, check_connector
from tests.connectors.brokers import need, unique
from tests.connectors.http.http_target import Reply, Seen, TargetServer, json_reply


def _app(seen: Seen) -> Reply:
    if seen.path == "/orders/1":
        return json_reply({"id": 1, "total": "12.50"})
    # a careless server that echoes the request's headers (one holds a secret) in its error body
    return json_reply({"error": "boom", "echo": seen.headers}, status=500)


async def test_http_keeps_the_contract() -> None:
    from connectors.http import CONNECTOR

    server = TargetServer(_app)
    try:
        result = await check_connector(
            CONNECTOR,
            {"base_url": server.url},
            {"get": {"path": "/orders/1"}, "fail": {"path": "/broken"}},
            good=KitCall("get"),
            bad=KitCall("fail"),
            check_output=lambda out: out == {"id": 1, "total": "12.50"} or pytest.fail(f"output {out!r}"),
            allow_hosts=("127.0.0.1",),
        )
        assert result.status == 200
    finally:
        server.close()


async def test_sql_keeps_the_contract(tmp_path: Path) -> None:
    from connectors.sql import CONNECTOR

    await check_connector(
        CONNECTOR,
        {"url": f"sqlite:///{tmp_path / 'kit.db'}"},
        {"one": {"sql": "SELECT 1 AS one"}, "missing": {"sql": "SELECT * FROM no_such_table"}},
        good=KitCall("one"),
        bad=KitCall("missing"),
        check_output=lambda out: out == [{"one": 1}] or pytest.fail(f"output {out!r}"),
        project_dir=str(tmp_path),
    )


async def test_file_keeps_the_contract(tmp_path: Path) -> None:
    from connectors.files import CONNECTOR

    (tmp_path / "drop").mkdir()
    (tmp_path / "drop" / "prices.json").write_text(json.dumps({"sku": "A-1", "price": "9.90"}))
    await check_connector(
        CONNECTOR,
        {"base_dir": "drop"},
        {"read": {"action": "read", "path": "prices.json"}, "missing": {"action": "read", "path": "nope.json"}},
        good=KitCall("read", spec={"path": "prices.json"}),
        bad=KitCall("missing", spec={"path": "nope.json"}),
        project_dir=str(tmp_path),
    )


@pytest.mark.service
async def test_amqp_keeps_the_contract() -> None:
    from connectors.amqp import CONNECTOR

    need("rabbitmq", 5672)
    await check_connector(
        CONNECTOR,
        {"url": "amqp://127.0.0.1:5672/", "username": "guest", "password": "guest"},
        {"publish": {"routing_key": "{{ params.key }}", "body": "{{ params.body }}"}},
        good=KitCall("publish", spec={"routing_key": unique("kit_nobody"), "body": {"n": 1}, "mandatory": False}),
        bad=KitCall("publish", spec={"exchange": unique("kit_no_such_exchange"), "routing_key": "x", "body": {}}),
    )


@pytest.mark.service
async def test_nats_keeps_the_contract() -> None:
    nats = pytest.importorskip("nats")
    from connectors.nats import CONNECTOR

    need("nats", 4222)
    client = await nats.connect("nats://127.0.0.1:4222")
    js = client.jetstream()
    stream, prefix = unique("KIT"), unique("kit")
    await js.add_stream(name=stream, subjects=[f"{prefix}.>"])
    try:
        await check_connector(
            CONNECTOR,
            {"servers": "nats://127.0.0.1:4222"},
            {"publish": {"subject": "{{ params.subject }}", "body": "{{ params.body }}"}},
            good=KitCall("publish", spec={"subject": f"{prefix}.ok", "body": {"n": 1}}, idempotency_key="kit-1"),
            bad=KitCall("publish", spec={"subject": f"{unique('nostream')}.x", "body": {}}),
        )
    finally:
        await js.delete_stream(stream)
        await client.close()


@pytest.mark.service
async def test_redis_streams_keeps_the_contract() -> None:
    redis = pytest.importorskip("redis.asyncio")
    from connectors.redis_streams import CONNECTOR

    need("redis", 6379)
    client = redis.Redis.from_url("redis://127.0.0.1:6379/0")
    stream, plain = unique("kit:stream"), unique("kit:plain")
    await client.set(plain, "not a stream")
    try:
        await check_connector(
            CONNECTOR,
            {"url": "redis://127.0.0.1:6379/0", "dedupe_prefix": unique("kit:dedupe")},
            {"publish": {"stream": "{{ params.stream }}", "body": "{{ params.body }}"}},
            good=KitCall("publish", spec={"stream": stream, "body": {"n": 1}}, idempotency_key="kit-1"),
            bad=KitCall("publish", spec={"stream": plain, "body": {}}, idempotency_key="kit-2"),
        )
    finally:
        await client.delete(stream, plain)
        await client.aclose()


@pytest.mark.service
async def test_mqtt_keeps_the_contract() -> None:
    from connectors.mqtt import CONNECTOR

    need("mosquitto", 1883)
    await check_connector(
        CONNECTOR,
        {"host": "127.0.0.1", "port": 1883},
        {"publish": {"topic": "{{ params.topic }}", "body": "{{ params.body }}"}},
        good=KitCall("publish", spec={"topic": f"kit/{unique('t')}", "body": {"n": 1}}, idempotency_key="kit-1"),
        bad=KitCall("publish", spec={"topic": "kit/#", "body": {}}),
    )


# ------------------------------------------------------------------ the kit catches broken connectors


class _Config(BaseModel):
    mode: str = "leak"


class _Op(OperationSpec):
    pass


class _Broken:
    def __init__(self, mode: str) -> None:
        self.mode = mode

    async def call(self, request: CallRequest) -> CallResult:
        if request.operation == "ok":
            return CallResult({"ok": True})
        if self.mode == "leak":
            secret = request.headers.get("X-Kit-Secret", "")
            raise ConnectorError(f"refused with header {secret}", reason="status", error_class="fatal")
        raise KeyError("a bare exception")

    async def aclose(self) -> None:
        pass


def _broken_type() -> ConnectorType:
    def create(config: Any, operations: Any, context: Any) -> _Broken:
        return _Broken(config.mode)

    return ConnectorType("broken", "test", _Config, _Op, create)


@pytest.mark.parametrize(("mode", "caught"), [("leak", "planted secret"), ("bare", "must raise ConnectorError")])
async def test_the_kit_catches_a_broken_connector(mode: str, caught: str) -> None:
    with pytest.raises(AssertionError, match=caught):
        await check_connector(
            _broken_type(), {"mode": mode}, {"ok": {}, "no": {}}, good=KitCall("ok"), bad=KitCall("no")
        )
    assert CANARY not in caught
