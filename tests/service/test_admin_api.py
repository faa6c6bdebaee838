"""The admin API: bearer tokens and roles, run filters and paging, run detail with steps, the OpenAPI
description, health and readiness, and the Prometheus metrics after some traffic."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest
from starlette.routing import Route

from tests.service.conftest import StartNode
from tests.service.harness import OPERATOR, VIEWER, Node, Sink, bearer, write_project

ORDERS = """
trigger:
  webhook: {path: /hooks/orders, idempotency_key: "{{ input.id }}"}
business_keys: {order: "{{ input.id }}", customer: "{{ input.customer }}"}
steps:
  - id: enrich
    set: {total: "{{ input.qty * 2 }}"}
  - id: optional
    call: sink.post
    with: {path: optional, body: "{{ input }}"}
    on_error: continue
  - id: post
    call: sink.post
    with: {path: orders, body: {id: "{{ input.id }}", total: "{{ vars.total }}"}}
"""

BROKEN = """
trigger:
  webhook: {path: /hooks/broken}
steps:
  - id: post
    call: sink.post
    with: {path: broken, body: {}}
    retry: {attempts: 2, initial: 10ms, max: 10ms}
"""


@pytest.fixture
async def node(tmp_path: Path, sink: Sink, nodes: StartNode) -> Node:
    return await nodes(write_project(tmp_path / "p", sink.url, {"orders": ORDERS, "broken": BROKEN}))


async def send(node: Node, order_id: str, customer: str = "C-1", **headers: str) -> str:
    answer = await node.client.post(
        "/hooks/orders", json={"id": order_id, "customer": customer, "qty": 3}, headers=headers
    )
    assert answer.status_code == 202, answer.text
    run_id: str = answer.json()["run_id"]
    return run_id


# ----------------------------------------------------------------------------------------- tokens


@pytest.mark.parametrize(
    "path", ["/api/v1/flows", "/api/v1/runs", "/api/v1/runs/X", "/api/v1/dead-letters", "/api/v1/flows/orders"]
)
async def test_reading_needs_a_token(node: Node, path: str) -> None:
    assert (await node.client.get(path)).status_code == 401
    assert (await node.client.get(path, headers=bearer("wrong"))).status_code == 401
    assert (await node.client.get(path, headers={"Authorization": VIEWER})).status_code == 401
    assert (await node.client.get(path, headers=bearer(VIEWER))).status_code in (200, 404)


async def test_viewer_cannot_replay_or_reload(node: Node, sink: Sink) -> None:
    run_id = await send(node, "T-1")
    await node.wait_run(run_id)
    replay = await node.admin("POST", f"/api/v1/runs/{run_id}/replay", VIEWER, json={})
    assert replay.status_code == 403
    assert (await node.admin("POST", "/api/v1/reload", VIEWER)).status_code == 403
    assert (await node.client.post("/api/v1/reload")).status_code == 401
    assert (await node.admin("POST", "/api/v1/reload", OPERATOR)).status_code == 200


async def test_no_tokens_configured_refuses_everything(tmp_path: Path, sink: Sink, nodes: StartNode) -> None:
    node = await nodes(write_project(tmp_path / "p", sink.url, {"orders": ORDERS}), tokens={})
    assert (await node.client.get("/api/v1/runs")).status_code == 401
    assert (await node.client.get("/api/v1/runs", headers=bearer(VIEWER))).status_code == 401


# ------------------------------------------------------------------------------------------- runs


async def test_run_filters_and_paging(node: Node, sink: Sink) -> None:
    t0 = time.time()
    ids = [await send(node, f"F-{n}", customer="C-2" if n % 2 else "C-1") for n in range(5)]
    sink.rule("/broken", status=500)
    broken = (await node.client.post("/hooks/broken", json={})).json()["run_id"]
    for run_id in [*ids, broken]:
        await node.wait_run(run_id)
    t1 = time.time()
    corr = await send(node, "F-9", **{"X-Correlation-ID": "find-me"})
    await node.wait_run(corr)

    assert [r["id"] for r in await node.runs(flow="orders")] == [corr, *reversed(ids)]
    assert [r["id"] for r in await node.runs(status="dead_lettered")] == [broken]
    assert {r["id"] for r in await node.runs(status="dead_lettered,succeeded")} == {*ids, broken, corr}
    assert [r["id"] for r in await node.runs(correlation_id="find-me")] == [corr]
    assert [r["id"] for r in await node.runs(business_key="order:F-3")] == [ids[3]]
    assert {r["id"] for r in await node.runs(business_key="customer:C-2")} == {ids[1], ids[3]}
    assert {r["id"] for r in await node.runs(since=t0, until=t1)} == {*ids, broken}
    assert [r["id"] for r in await node.runs(since=t1)] == [corr]

    page = (await node.admin("GET", "/api/v1/runs", VIEWER, params={"flow": "orders", "limit": 2})).json()
    seen = [r["id"] for r in page["runs"]]
    while page["next_before"] is not None:
        page = (
            await node.admin(
                "GET", "/api/v1/runs", VIEWER, params={"flow": "orders", "limit": 2, "before": page["next_before"]}
            )
        ).json()
        seen += [r["id"] for r in page["runs"]]
    assert seen == [corr, *reversed(ids)]

    bad_queries = ({"limit": "x"}, {"limit": 0}, {"limit": -1}, {"since": "yesterday"}, {"business_key": "no-colon"})
    for bad in bad_queries:
        assert (await node.admin("GET", "/api/v1/runs", VIEWER, params=bad)).status_code == 400
    for bad in ({"limit": "x"}, {"limit": 0}):
        assert (await node.admin("GET", "/api/v1/dead-letters", VIEWER, params=bad)).status_code == 400


async def test_run_detail_has_every_step_with_input_output_timing_and_error(node: Node, sink: Sink) -> None:
    sink.rule("/optional", status=400, body={"error": "no"})
    run = await node.wait_run(await send(node, "D-1"))
    assert run["status"] == "succeeded"
    steps = {s["step"]: s for s in run["steps"]}
    assert list(steps) == ["enrich", "optional", "post"]
    assert steps["enrich"]["output"] == {"total": 6}
    assert steps["optional"]["status"] == "failed" and steps["optional"]["error"]["status"] == 400
    assert steps["post"]["input"] == {"path": "orders", "body": {"id": "D-1", "total": 6}}
    assert steps["post"]["output"]["ok"] is True
    for step in steps.values():
        assert step["started_at"] <= step["finished_at"] and step["duration_ms"] >= 0
    assert (await node.admin("GET", "/api/v1/runs/NOPE", VIEWER)).status_code == 404


async def test_flows_listing_and_detail(node: Node) -> None:
    flows = (await node.admin("GET", "/api/v1/flows", VIEWER)).json()
    assert {f["name"]: f["trigger"] for f in flows["flows"]} == {"orders": "webhook", "broken": "webhook"}
    detail = (await node.admin("GET", "/api/v1/flows/orders", VIEWER)).json()
    assert detail["definition"]["name"] == "orders" and "graph" in detail
    assert (await node.admin("GET", "/api/v1/flows/nope", VIEWER)).status_code == 404


# ---------------------------------------------------------------------------------------- openapi


def _resolve(document: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    target: Any = document
    for part in ref[2:].split("/"):
        target = target[part]
    return target


async def test_openapi_is_a_valid_3_1_description_of_every_route(node: Node) -> None:
    answer = await node.client.get("/api/v1/openapi.json")
    assert answer.status_code == 200
    doc = answer.json()
    assert doc["openapi"].startswith("3.1.")
    assert doc["info"]["title"] and doc["info"]["version"]
    schemes = doc["components"]["securitySchemes"]
    methods = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}
    operation_ids: set[str] = set()
    for path, item in doc["paths"].items():
        assert path.startswith("/")
        templated = set(re.findall(r"{([^}]+)}", path))
        for method, op in item.items():
            assert method in methods, (path, method)
            assert op["responses"], (path, method)
            for code, response in op["responses"].items():
                assert re.fullmatch(r"[1-5]\d\d|[1-5]XX|default", code) and response["description"]
            for requirement in op.get("security", []):
                assert set(requirement) <= set(schemes)
            in_path = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
            assert in_path == templated, (path, method)
            for param in op.get("parameters", []):
                assert param["in"] in ("query", "header", "path", "cookie") and "schema" in param
                if param["in"] == "path":
                    assert param["required"] is True
            if "operationId" in op:
                assert op["operationId"] not in operation_ids
                operation_ids.add(op["operationId"])
            for ref in re.findall(r'"\$ref":\s*"([^"]+)"', answer.text):
                _resolve(doc, ref)
    documented = {(p, m.upper()) for p, item in doc["paths"].items() for m in item}
    routes = {
        (route.path, method)
        for route in node.app.routes
        if isinstance(route, Route) and route.path.startswith("/api/v1/") and route.path != "/api/v1/openapi.json"
        for method in (route.methods or set()) - {"HEAD"}
    }
    assert routes <= documented, routes - documented


# --------------------------------------------------------------------------------- health, metrics


async def test_healthz_and_readyz(node: Node) -> None:
    assert (await node.client.get("/healthz")).json() == {"status": "ok"}
    ready = await node.client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["ready"] is True and ready.json()["flows"] == 2
    await node.service.store.close()  # the store goes away
    down = await node.client.get("/readyz")
    assert down.status_code == 503 and down.json()["store"] is False
    refused = await node.client.post("/hooks/orders", json={"id": "X", "customer": "C", "qty": 1})
    assert refused.status_code == 503 and refused.headers["retry-after"]
    assert (await node.admin("GET", "/api/v1/runs", VIEWER)).status_code == 503
    assert (await node.client.get("/healthz")).status_code == 200
    assert (await node.client.get("/metrics")).status_code == 200


def metric(text: str, name: str, **labels: str) -> float:
    total = 0.0
    found = False
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        found_labels = dict(re.findall(r'(\w+)="([^"]*)"', line.split("}")[0])) if "{" in line else {}
        if all(found_labels.get(k) == v for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
            found = True
    assert found, f"no {name} {labels} in metrics"
    return total


async def test_metrics_after_traffic(node: Node, sink: Sink) -> None:
    for n in range(3):
        await node.wait_run(await send(node, f"M-{n}"))
    sink.rule("/broken", status=503)
    await node.wait_run((await node.client.post("/hooks/broken", json={})).json()["run_id"])
    await node.client.post("/hooks/orders", content=b"{", headers={"Content-Type": "application/json"})
    await node.client.post("/hooks/orders", content=b"{}", headers={"Content-Type": "text/plain"})
    text = (await node.client.get("/metrics")).text
    assert metric(text, "syncline_runs_total", flow="orders", status="succeeded") == 3
    assert metric(text, "syncline_runs_total", flow="broken", status="dead_lettered") == 1
    assert metric(text, "syncline_runs_accepted_total", flow="orders", trigger="webhook") == 3
    assert metric(text, "syncline_step_duration_seconds_count", flow="orders", kind="call") == 6
    assert metric(text, "syncline_step_duration_seconds_bucket", flow="orders", kind="call", le="+Inf") == 6
    assert metric(text, "syncline_step_retries_total", flow="broken") == 1
    assert metric(text, "syncline_dead_letters_total", flow="broken") == 1
    assert metric(text, "syncline_webhook_rejections_total", flow="orders", reason="invalid_json") == 1
    assert metric(text, "syncline_webhook_rejections_total", flow="orders", reason="unsupported_media_type") == 1
    assert metric(text, "syncline_connector_calls_total", system="sinkhole", outcome="ok") == 6
    assert metric(text, "syncline_connector_calls_total", system="sinkhole", outcome="error") == 2
    assert metric(text, "syncline_queue_depth") == 0
    assert metric(text, "syncline_queue_oldest_age_seconds") == 0


async def test_queue_metrics_show_waiting_runs(tmp_path: Path, sink: Sink, nodes: StartNode) -> None:
    sink.rule("/orders", delay=1.0)
    node = await nodes(write_project(tmp_path / "p", sink.url, {"orders": ORDERS}), workers=1)
    for n in range(4):
        await send(node, f"Q-{n}")
    await node.wait_run((await node.runs())[-1]["id"], {"running"})
    text = (await node.client.get("/metrics")).text
    assert metric(text, "syncline_queue_depth") == 3
    assert metric(text, "syncline_queue_oldest_age_seconds") > 0


async def test_app_lifespan_starts_and_stops_the_service(tmp_path: Path, sink: Sink, nodes: StartNode) -> None:
    node = await nodes(write_project(tmp_path / "p", sink.url, {"orders": ORDERS}), lifespan=True)
    assert (await node.client.get("/readyz")).json()["accepting"] is True
    await node.wait_run(await send(node, "LS-1"))
    await node.stop()
    assert node.service.ready is False and node.service.accepting is False
    assert await node.service.store.ping() is False


# ------------------------------------------------------------------------------ HTTP conventions


def assert_problem(answer: Any, status: int, code: str) -> dict[str, Any]:
    """An RFC 9457 problem with the stable reason in `code` and the request's path as `instance`."""
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/problem+json", answer.headers
    body: dict[str, Any] = answer.json()
    assert body["type"] == f"urn:syncline:problem:{code}" and body["code"] == code, body
    assert body["status"] == status and body["title"] and body["detail"], body
    assert body["instance"] == answer.request.url.path, body
    return body


async def test_a_wrong_method_on_a_known_path_is_405_with_allow(node: Node) -> None:
    for method, path, allow in (
        ("POST", "/api/v1/flows", "GET, HEAD"),
        ("DELETE", "/api/v1/runs/X", "GET, HEAD"),
        ("GET", "/api/v1/runs/X/replay", "POST"),
        ("PUT", "/api/v1/reload", "POST"),
        ("POST", "/metrics", "GET, HEAD"),
    ):
        answer = await node.admin(method, path, VIEWER)
        body = assert_problem(answer, 405, "method_not_allowed")
        assert answer.headers["allow"] == allow and body["allowed"] == allow.split(", ")
    unknown = await node.admin("GET", "/api/v1/nothing-here", VIEWER)
    assert "webhook" not in assert_problem(unknown, 404, "not_found")["detail"]


async def test_refusals_are_problem_details_with_todays_codes(node: Node, sink: Sink) -> None:
    unauthorized = await node.client.get("/api/v1/runs")
    assert_problem(unauthorized, 401, "unauthorized")
    assert unauthorized.headers["www-authenticate"].startswith("Bearer")
    assert_problem(await node.admin("POST", "/api/v1/reload", VIEWER), 403, "forbidden")
    assert_problem(await node.admin("GET", "/api/v1/runs/NOPE", VIEWER), 404, "not_found")
    bad = assert_problem(await node.admin("GET", "/api/v1/runs", VIEWER, params={"limit": 501}), 400, "bad_query")
    assert bad["param"] == "limit" and "1 to 500" in bad["detail"]
    hook = await node.client.post("/hooks/orders", content=b"{", headers={"Content-Type": "application/json"})
    assert_problem(hook, 400, "invalid_json")
    assert_problem(await node.client.get("/hooks/orders"), 405, "method_not_allowed")
    assert_problem(await node.client.post("/hooks/nowhere", json={}), 404, "not_found")


async def test_query_parameters_outside_their_bounds_are_400(node: Node) -> None:
    for param, bad in (
        ("status", {"status": "done"}),
        ("status", {"status": "succeeded,bogus"}),
        ("limit", {"limit": "500.5"}),
        ("before", {"before": "-1"}),
        ("before", {"before": str(2**64)}),
        ("since", {"since": "nan"}),
        ("until", {"until": "inf"}),
    ):
        answer = await node.admin("GET", "/api/v1/runs", VIEWER, params=bad)
        assert assert_problem(answer, 400, "bad_query")["param"] == param, bad
    unknown = await node.admin("GET", "/api/v1/dead-letters", VIEWER, params={"include_replayed": "yes"})
    assert assert_problem(unknown, 400, "bad_query")["param"] == "include_replayed"
    assert (await node.admin("GET", "/api/v1/runs", VIEWER, params={"status": "held,retrying"})).status_code == 200


async def test_openapi_states_every_refusal_and_the_bounds_it_enforces(node: Node) -> None:
    doc = (await node.client.get("/api/v1/openapi.json")).json()
    problem_schema = doc["components"]["schemas"]["Problem"]
    assert {"type", "title", "status", "detail", "code"} <= set(problem_schema["required"])
    for path, item in doc["paths"].items():
        for method, op in item.items():
            answers = op["responses"]
            assert {"401", "503"} <= set(answers), (path, method)
            for code, answer in answers.items():
                kinds = set(answer["content"])
                assert kinds == ({"application/json"} if code.startswith("2") else {"application/problem+json"})
            if method == "post" and "requestBody" in op:
                assert "400" in answers, (path, method)
    runs = {p["name"]: p["schema"] for p in doc["paths"]["/api/v1/runs"]["get"]["parameters"]}
    assert (runs["limit"]["minimum"], runs["limit"]["maximum"]) == (1, 500)
    assert runs["since"]["type"] == runs["until"]["type"] == "number"
    assert "held" in runs["status"]["items"]["enum"] and "400" in doc["paths"]["/api/v1/runs"]["get"]["responses"]
    params = doc["paths"]["/api/v1/runs"]["get"]["parameters"]
    assert "Unix time in seconds" in next(p for p in params if p["name"] == "since")["description"]
    letters = {p["name"]: p["schema"] for p in doc["paths"]["/api/v1/dead-letters"]["get"]["parameters"]}
    assert (letters["limit"]["minimum"], letters["limit"]["maximum"]) == (1, 1000)
    replay = doc["paths"]["/api/v1/runs/{run_id}/replay"]["post"]["responses"]
    assert {"202", "400", "403", "404", "409"} <= set(replay)
