"""The WMS side of `syncline demo`: shipment events on RabbitMQ for the bundled flow wms-shipment-to-erp.

The demo cannot assume a broker. `unreachable()` says why RabbitMQ cannot be used (the demo then
does not start that flow's source and says so in one line); otherwise `publish_samples()` declares
the durable queue `wms.shipments` (as the WMS's broker setup would) and publishes shipment events
for the first sample order, one of them twice with the same message id (a redelivery: it runs once).
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import time
from typing import Any
from urllib.parse import urlsplit

FLOW = "wms-shipment-to-erp"
QUEUE = "wms.shipments"
DEFAULT_URL = "amqp://127.0.0.1:5672/"


def broker_address() -> tuple[str, int]:
    parts = urlsplit(os.environ.get("WMS_AMQP_URL") or DEFAULT_URL)
    return parts.hostname or "127.0.0.1", parts.port or 5672


def unreachable() -> str | None:
    """None when RabbitMQ answers at the WMS connection's address and aio-pika is installed; else why not."""
    try:
        import aio_pika  # noqa: F401
    except ImportError:
        return "aio-pika is not installed (pip install 'syncline[amqp]')"
    host, port = broker_address()
    try:
        with socket.create_connection((host, port), timeout=1):
            return None
    except OSError as exc:
        return f"RabbitMQ is not reachable at {host}:{port} ({exc.strerror or exc})"


def sample_events(order_ref: str) -> list[tuple[str, dict[str, object]]]:
    """(message id, event) pairs the WMS would send for one order: packed, then dispatched."""
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    base = {"order_ref": order_ref, "shipment_id": f"SHP-{order_ref}", "carrier": "dhl", "at": now}
    lines = [{"sku": "X-1", "qty": 3}, {"sku": "Y-2", "qty": 1}]
    return [
        (f"wms-{order_ref}-packed", {**base, "event": "shipment.packed", "tracking": "", "lines": lines}),
        (
            f"wms-{order_ref}-dispatched",
            {**base, "event": "shipment.dispatched", "tracking": "00340434161094042557", "lines": lines},
        ),
    ]


async def _connect() -> Any:
    import aio_pika

    host, port = broker_address()
    user = os.environ.get("WMS_AMQP_USER", "guest")
    password = os.environ.get("WMS_AMQP_PASSWORD", "guest")
    return await aio_pika.connect(host=host, port=port, login=user, password=password, timeout=5)


async def _declare() -> None:
    async with await _connect() as connection:
        await (await connection.channel()).declare_queue(QUEUE, durable=True)


def declare_queue() -> str | None:
    """Declare the durable queue `wms.shipments` (as the WMS's broker setup would); None, or why not."""
    try:
        asyncio.run(_declare())
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


async def _publish(order_ref: str) -> int:
    import aio_pika

    async with await _connect() as connection:
        channel = await connection.channel(publisher_confirms=True)
        events = sample_events(order_ref)
        sent = 0
        for message_id, event in [*events, events[-1]]:  # the dispatch twice: the same id runs once
            body = json.dumps(event).encode()
            message = aio_pika.Message(
                body,
                message_id=message_id,
                content_type="application/json",
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            )
            await channel.default_exchange.publish(message, routing_key=QUEUE)
            sent += 1
        return sent


def publish_samples(order_ref: str) -> str:
    """Publish the sample shipment events; a line saying what was sent (or why not)."""
    try:
        sent = asyncio.run(_publish(order_ref))
    except Exception as exc:  # the demo goes on without them
        return f"WMS shipment events not sent: {type(exc).__name__}: {exc}"
    return f"{sent} WMS shipment events for {order_ref} published to RabbitMQ queue {QUEUE} (one of them twice)"
