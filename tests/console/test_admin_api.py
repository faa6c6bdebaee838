"""The admin API operations the console relies on, over HTTP against a real node: business
exceptions acknowledged and resolved through `/api/v1/exceptions/{run_id}/...` (operator role, the
owning team's token, audited), and runs listed by their parent run (`parent=`)."""

from __future__ import annotations

from typing import Any

import httpx

from tests.console.conftest import MASTER_DATA, OPERATOR, SALES, VIEWER, ConsoleNode, order


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def post(client: httpx.AsyncClient, path: str, token: str, body: Any = None) -> httpx.Response:
    return await client.post(path, json=body if body is not None else {}, headers=bearer(token))


async def test_exceptions_are_triaged_through_the_api_by_the_owning_team(console: ConsoleNode) -> None:
    failed = await console.finished(order("E-9", customer="BAD"))
    done = await console.finished(order("E-10"))
    client = console.node.client
    base = f"/api/v1/exceptions/{failed['id']}"

    assert (await post(client, f"{base}/acknowledge", VIEWER)).status_code == 403
    wrong = await post(client, f"{base}/acknowledge", SALES, {"comment": "mine?"})
    assert wrong.status_code == 403 and wrong.json()["code"] == "wrong_team" and "master-data" in wrong.text
    bad = await post(client, f"{base}/acknowledge", MASTER_DATA, {"comment": 5})
    assert bad.status_code == 400 and bad.json()["code"] == "bad_request"
    assert (await post(client, "/api/v1/exceptions/no-such-run/resolve", OPERATOR)).json()["code"] == "not_found"
    other = await post(client, f"/api/v1/exceptions/{done['id']}/acknowledge", OPERATOR)
    assert other.status_code == 409 and other.json()["code"] == "not_exception"

    listed = (await client.get("/api/v1/exceptions", headers=bearer(VIEWER))).json()["exceptions"]
    assert [e["triage"] for e in listed if e["run_id"] == failed["id"]] == [None]

    ack = await post(client, f"{base}/acknowledge", MASTER_DATA, {"comment": "checking the customer"})
    assert ack.status_code == 200, ack.text
    assert ack.json()["decision"] == "acknowledged" and ack.json()["audit"]["team"] == "master-data"
    assert MASTER_DATA not in ack.text  # the token is only fingerprinted
    listed = (await client.get("/api/v1/exceptions?team=master-data", headers=bearer(VIEWER))).json()["exceptions"]
    state = next(e["triage"] for e in listed if e["run_id"] == failed["id"])
    assert state["state"] == "acknowledged" and state["comment"] == "checking the customer"

    resolved = await post(client, f"{base}/resolve", OPERATOR)  # an operator without a team: any exception
    assert resolved.status_code == 200 and resolved.json()["audit"]["team"] is None
    again = await post(client, f"{base}/resolve", MASTER_DATA)
    assert again.status_code == 409 and again.json()["code"] == "already_resolved"
    audit = (await console.node.run(failed["id"]))["audit"]
    assert [(a["decision"], a["team"]) for a in audit] == [("acknowledged", "master-data"), ("resolved", None)]


async def test_runs_are_listed_by_their_parent_run(console: ConsoleNode) -> None:
    parent, children = await console.announced("A-1")
    other, _ = await console.announced("A-2")
    assert {r["flow"] for r in children} == {"on-announced", "also-on-announced"}
    assert {r["parent_run_id"] for r in children} == {parent["id"]} and parent["parent_run_id"] is None
    assert all(r["trigger"] == "event" for r in children)
    client = console.node.client
    page = await client.get(
        "/api/v1/runs", params={"parent": parent["id"], "limit": 1}, headers=bearer(VIEWER)
    )  # newest first, paged like every list
    assert [r["id"] for r in page.json()["runs"]] == [children[0]["id"]]
    rest = await client.get(
        "/api/v1/runs",
        params={"parent": parent["id"], "before": page.json()["next_before"]},
        headers=bearer(VIEWER),
    )
    assert [r["id"] for r in rest.json()["runs"]] == [children[1]["id"]]
    mine = await client.get("/api/v1/runs", params={"parent": other["id"]}, headers=bearer(VIEWER))
    assert parent["id"] not in {r["parent_run_id"] for r in mine.json()["runs"]}
    none = await client.get("/api/v1/runs", params={"parent": "no-such-run"}, headers=bearer(VIEWER))
    assert none.status_code == 200 and none.json()["runs"] == []
