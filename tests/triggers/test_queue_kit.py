"""The queue source through the source conformance kit (runtime/testing/source_kit.py) against each
real broker: every message accepted once by its id, a message whose accept failed comes back, a
restart makes no second run, nothing taken while paused, stops when cancelled."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from typing import Any

import pytest

from runtime.plugins import default_registry
from runtime.testing.source_kit import check_source
from runtime.trigger_registry import default_trigger_registry
from runtime.triggers.queue import QueueSpec
from tests.connectors.brokers import build, need
from tests.service.test_queue_trigger import KITS, Kit

pytestmark = pytest.mark.service

CONFIGS = {
    "amqp": lambda port: {"url": f"amqp://guest:guest@127.0.0.1:{port}/"},
    "nats": lambda port: {"servers": f"nats://127.0.0.1:{port}", "ack_wait": "1s"},
    "redis_streams": lambda port: {"url": f"redis://127.0.0.1:{port}/0", "claim_idle": "300ms"},
    "mqtt": lambda port: {"port": port, "session_expiry": "5m"},
}


class Publisher:
    """The kit's origin: publishes numbered messages with the broker's own client."""

    def __init__(self, kit: Kit) -> None:
        self.kit = kit
        self.next = 0

    async def put(self, count: int) -> list[str]:
        keys = []
        for _ in range(count):
            key = f"kit-{self.next}"
            await self.kit.publish(b'{"n": %d}' % self.next, key)
            keys.append(key)
            self.next += 1
        return keys


@pytest.fixture(params=list(KITS))
async def broker(request: pytest.FixtureRequest) -> AsyncIterator[tuple[str, Kit]]:
    made = KITS[request.param]()
    need(made.name, made.port)
    await made.setup()
    yield request.param, made
    await made.cleanup()


async def test_the_queue_source_keeps_the_source_contract(broker: tuple[str, Kit]) -> None:
    connector_type, kit = broker
    config: dict[str, Any] = CONFIGS[connector_type](kit.port)
    if connector_type == "mqtt":
        config["client_id"] = f"syncline-kit-{secrets.token_hex(4)}"
    connector = build(default_registry().get(connector_type), config, {}, connection="bus")  # type: ignore[arg-type]
    group = f"kit-{kit.tag}"
    spec = QueueSpec(connection="bus", subject=kit.subject, group=group, prefetch=8, max_redeliveries=50)
    try:
        if connector_type == "mqtt":  # the kit publishes at once: let the kept session hold the subscription
            await _subscribe_session(config["client_id"], f"$share/{group}/{kit.subject}")
        ctx = await check_source(
            default_trigger_registry().get("queue"),  # type: ignore[arg-type]
            spec,
            Publisher(kit),
            connector=connector,
            timeout=20,
        )
    finally:
        await connector.aclose()
    assert all(event.meta["message_id"] == key for key, event in ctx.accepted.items())
    assert ctx.dead == []


async def _subscribe_session(client_id: str, subscription: str) -> None:
    """Open the broker session of `client_id` (kept 5 minutes) with the subscription, and leave."""
    import aiomqtt
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    properties = Properties(PacketTypes.CONNECT)
    properties.SessionExpiryInterval = 300
    client = aiomqtt.Client(
        "127.0.0.1",
        1883,
        identifier=client_id,
        protocol=aiomqtt.ProtocolVersion.V5,
        clean_start=True,
        properties=properties,
    )
    async with client:
        await client.subscribe(subscription, qos=1)
