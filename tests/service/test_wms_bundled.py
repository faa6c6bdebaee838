"""The bundled project's broker-driven flow, served as `syncline demo` serves it: shipment events the
WMS publishes to RabbitMQ (`wms.shipments`) are recorded in the simulated ERP against their webshop
order; the dispatch published twice with one message id is recorded once, the `packed` event is
filtered. Without a broker the demo does not start that flow's source and says so."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import pytest

from runtime.demo import wms
from runtime.demo.simulators import DEMO_CREDENTIALS, start_simulators
from tests.connectors.brokers import need
from tests.service.harness import ROOT, sign, start_node, until

pytestmark = pytest.mark.service


async def _purge() -> None:
    import aio_pika

    async with await aio_pika.connect("amqp://guest:guest@127.0.0.1:5672/") as connection:
        queue = await (await connection.channel()).declare_queue(wms.QUEUE, durable=True)
        await queue.purge()  # what an earlier demo may have left


async def test_wms_shipment_events_are_recorded_in_the_erp_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    need("rabbitmq", 5672)
    pytest.importorskip("aio_pika")
    assert wms.unreachable() is None
    assert await asyncio.to_thread(wms.declare_queue) is None  # as the demo does before it serves
    await _purge()
    sims = start_simulators()
    for name, value in sims.env().items():
        monkeypatch.setenv(name, value)
    node = await start_node(ROOT, f"sqlite:///{tmp_path / 'state.db'}")
    try:
        order = json.loads((ROOT / "tests/flows/data/order_a1.json").read_text())
        order["id"] = f"WMS-{tmp_path.name[-6:]}"
        body = json.dumps(order).encode()
        answer = await node.client.post(
            "/hooks/webshop/orders", content=body, headers=sign(body, DEMO_CREDENTIALS["WEBSHOP_HOOK_SECRET"])
        )
        assert (await node.wait_run(answer.json()["run_id"]))["status"] == "succeeded"
        assert "published" in await asyncio.to_thread(wms.publish_samples, order["id"])

        async def both_final() -> list[dict[str, object]] | None:
            runs = await node.runs(flow=wms.FLOW)
            return runs if len(runs) == 2 and all(r["status"] in ("succeeded", "filtered") for r in runs) else None

        runs = await until(both_final, timeout=20)
        assert sorted(str(r["status"]) for r in runs) == ["filtered", "succeeded"]
        async with httpx.AsyncClient() as client:
            erp = (await client.get(f"{sims.servers['erp'].url}/_state")).json()
        shipments = [r for r in erp["records"].values() if r.get("shipment_id") == f"SHP-{order['id']}"]
        assert len(shipments) == 1 and shipments[0]["carrier"] == "DHL"
        orders = [r for r in erp["records"].values() if r.get("order_ref") == order["id"] and "sales_order" not in r]
        assert orders[0]["status"] == "shipped"
    finally:
        await node.stop()
        sims.stop()


def test_without_a_broker_the_demo_says_why_the_flow_waits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WMS_AMQP_URL", "amqp://127.0.0.1:1/")
    why = wms.unreachable()
    assert why is not None and "not reachable at 127.0.0.1:1" in why
