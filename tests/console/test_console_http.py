"""The console over HTTP (a real node on a loopback port): sign-in and its cookie, CSRF, security
headers, every view with what it must show, viewers without actions (403 when they post anyway),
replay after a dry-run preview, holds decided only by their team, exception triage, the live stream
of a run, and a canary: no secret and no masked value in any page."""

from __future__ import annotations

import re
import time
from typing import Any

import httpx
import pytest

from tests.console.conftest import (
    CANARY,
    EMAIL,
    FINANCE,
    OPERATOR,
    SALES,
    VIEWER,
    ConsoleNode,
    csrf_of,
    order,
    sign_in,
)
from tests.service.harness import until

PAGES = [
    "/console/",
    "/console/flows",
    "/console/flows/orders",
    "/console/runs",
    "/console/lineage?key=order:4711",
    "/console/dead-letters",
    "/console/holds",
    "/console/exceptions",
    "/console/reconciliation",
]


async def post_form(client: httpx.AsyncClient, path: str, page: str, **fields: Any) -> httpx.Response:
    """Post a console form with the CSRF token of `page` (fetched first)."""
    token = csrf_of((await client.get(page)).text)
    return await client.post(path, data={"csrf": token, **fields})


# ---------------------------------------------------------------------------------------- sign in


@pytest.mark.parametrize("path", [*PAGES, "/console/runs/SOME-RUN"])
async def test_pages_send_strangers_to_sign_in(console: ConsoleNode, path: str) -> None:
    answer = await console.node.client.get(path)
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/console/login?next=")


async def test_sign_in_sets_a_strict_http_only_cookie(console: ConsoleNode) -> None:
    async with httpx.AsyncClient(base_url=console.url) as client:
        answer = await sign_in(client, VIEWER)
        assert answer.status_code == 303 and answer.headers["location"] == "/console/"
        cookie = answer.headers["set-cookie"]
        assert "syncline_console=" in cookie
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/console" in cookie
        page = await client.get("/console/")
        assert page.status_code == 200 and "viewer" in page.text
        assert VIEWER not in page.text  # the token is never shown


async def test_a_wrong_token_or_a_missing_csrf_signs_nobody_in(console: ConsoleNode) -> None:
    async with httpx.AsyncClient(base_url=console.url) as client:
        wrong = await sign_in(client, "not-a-token")
        assert wrong.status_code == 401 and "not accepted" in wrong.text
        assert "syncline_console=" not in wrong.headers.get("set-cookie", "")
        no_csrf = await client.post("/console/login", data={"token": OPERATOR})
        assert no_csrf.status_code == 403
        assert (await client.get("/console/")).status_code == 303


async def test_ten_failed_sign_ins_a_minute_from_one_address_are_answered_429(console: ConsoleNode) -> None:
    async with httpx.AsyncClient(base_url=console.url) as client:
        for _ in range(10):
            assert (await sign_in(client, "guessed-token")).status_code == 401
        refused = await sign_in(client, "guessed-token")
        assert refused.status_code == 429
        # the page and the header name the same wait (its exact value is tested on a fake clock below)
        assert f"try again in {refused.headers['retry-after']} s" in refused.text
        assert "content-security-policy" in refused.headers
        right = await sign_in(client, OPERATOR)  # the right token waits too: guesses must not go on
        assert right.status_code == 429 and "syncline_console=" not in right.headers.get("set-cookie", "")


async def test_the_sign_in_limit_is_per_address_and_ends_with_its_window(console: ConsoleNode) -> None:
    from starlette.applications import Starlette

    from runtime.clock import FakeClock
    from runtime.console import Console
    from runtime.console.limiter import SignInLimiter
    from runtime.service.admin import AdminApi
    from runtime.service.governance_api import GovernanceApi

    service = console.node.service
    admin = AdminApi(service, tokens={OPERATOR: "operator", VIEWER: "viewer"})
    app = Console(service, admin, GovernanceApi(service, admin, teams={}))
    clock = FakeClock()
    app.sign_ins = SignInLimiter(clock.time, attempts=3, window=60)
    asgi = Starlette(routes=app.routes())

    def client(address: str) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=asgi, client=(address, 40000))
        return httpx.AsyncClient(transport=transport, base_url="http://console.test")

    async with client("10.0.0.1") as first, client("10.0.0.2") as second:
        for _ in range(3):
            assert (await sign_in(first, "guessed-token")).status_code == 401
            clock.advance(10)
        refused = await sign_in(first, OPERATOR)
        assert refused.status_code == 429 and refused.headers["retry-after"] == "30"
        assert (await sign_in(second, VIEWER)).status_code == 303  # another address is not held back
        clock.advance(29)
        assert (await sign_in(first, OPERATOR)).headers["retry-after"] == "1"
        clock.advance(1)  # the first failure left the window: one more try
        assert (await sign_in(first, "guessed-token")).status_code == 401
        assert (await sign_in(first, OPERATOR)).status_code == 429
        clock.advance(60)
        assert (await sign_in(first, OPERATOR)).status_code == 303


async def test_sign_in_goes_back_only_to_console_pages(console: ConsoleNode) -> None:
    async with httpx.AsyncClient(base_url=console.url) as client:
        for target, expected in [
            ("/console/holds", "/console/holds"),
            ("https://evil.example/", "/console/"),
            ("//evil.example/console/", "/console/"),
        ]:
            form = await client.get("/console/login")
            answer = await client.post(
                "/console/login", data={"token": VIEWER, "csrf": csrf_of(form.text), "next": target}
            )
            assert answer.headers["location"] == expected


async def test_sign_out_forgets_the_session(console: ConsoleNode) -> None:
    async with console.signed_in(VIEWER) as client:
        answer = await post_form(client, "/console/logout", "/console/")
        assert answer.status_code == 303
        assert "syncline_console=" in answer.headers["set-cookie"] and "Max-Age=0" in answer.headers["set-cookie"]
        client.cookies.clear()
        assert (await client.get("/console/")).status_code == 303


async def test_security_headers_on_pages_and_static_files(console: ConsoleNode) -> None:
    async with console.signed_in(VIEWER) as client:
        for path in ["/console/", "/console/login", "/console/static/console.css", "/console/static/console.js"]:
            answer = await client.get(path)
            assert answer.status_code == 200, path
            csp = answer.headers["content-security-policy"]
            assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp
            assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
            assert answer.headers["x-frame-options"] == "DENY"
            assert answer.headers["x-content-type-options"] == "nosniff"
        page = (await client.get("/console/")).text
        assert "<script>" not in page and " style=" not in page and "<style" not in page


# ------------------------------------------------------------------------------------------ views


async def test_every_view_renders(console: ConsoleNode) -> None:
    done = await console.finished(order("4711"))
    await console.finished({"order": "4711"}, "/hooks/invoices")
    await console.finished({}, "/hooks/recon")
    async with console.signed_in(VIEWER) as client:
        pages = {path: await client.get(path) for path in [*PAGES, f"/console/runs/{done['id']}"]}
    for path, answer in pages.items():
        assert answer.status_code == 200, (path, answer.text[:500])
        assert answer.headers["content-type"].startswith("text/html")
    overview = pages["/console/"].text
    assert "orders" in overview and "invoices" in overview and 'class="spark"' in overview
    flow = pages["/console/flows/orders"].text
    assert '<svg class="graph"' in flow and "post: call" in flow and "retry:" in flow
    assert "big-orders" in flow  # the hold rule explain shows on the call
    assert done["id"] in pages["/console/runs"].text
    run = pages[f"/console/runs/{done['id']}"].text
    for step in ("enrich", "check", "post"):
        assert f">{step}</a>" in run
    assert "***" in run and "order:4711" in run
    recon = pages["/console/reconciliation"].text
    assert "1</strong> matched" in recon and "amount" in recon and "0.01" in recon
    assert 'Only left: <span class="mono">L</span>' in recon and 'Only right: <span class="mono">R</span>' in recon


async def test_runs_filters_and_keyset_pages(console: ConsoleNode) -> None:
    ids = [(await console.finished(order(f"P-{n}", customer=f"C-{n % 2}")))["id"] for n in range(5)]
    async with console.signed_in(VIEWER) as client:

        async def listed(**query: str) -> list[str]:
            answer = await client.get("/console/runs", params=query)
            assert answer.status_code == 200, answer.text
            return re.findall(r'href="/console/runs/([0-9A-Z]{26})"', answer.text)

        assert await listed(business_key="order:P-3") == [ids[3]]
        assert await listed(business_key="customer:C-1") == [ids[3], ids[1]]
        assert await listed(flow="orders", status="succeeded") == list(reversed(ids))
        assert await listed(status="dead_lettered") == []
        assert await listed(until="2000-01-01T00:00") == []
        assert await listed(since="2000-01-01T00:00") == list(reversed(ids))
        first = await client.get("/console/runs", params={"flow": "orders", "limit": "2"})
        seen = re.findall(r'href="/console/runs/([0-9A-Z]{26})"', first.text)
        older = re.search(r'rel="next" href="([^"]+)"', first.text)
        while older:
            page = await client.get(older.group(1).replace("&amp;", "&"))
            seen += re.findall(r'href="/console/runs/([0-9A-Z]{26})"', page.text)
            older = re.search(r'rel="next" href="([^"]+)"', page.text)
        assert seen == list(reversed(ids))
        bad = await client.get("/console/runs", params={"business_key": "no-colon"})
        assert bad.status_code == 400 and "name:value" in bad.text


async def test_lineage_lists_every_run_of_a_business_key_in_time_order(console: ConsoleNode) -> None:
    first = await console.finished(order("4711"))
    invoice = await console.finished({"order": "4711"}, "/hooks/invoices")
    await console.finished(order("4712"))
    async with console.signed_in(VIEWER) as client:
        page = (await client.get("/console/lineage", params={"key": "order:4711"})).text
    found = re.findall(r'<a class="mono" href="/console/runs/([0-9A-Z]{26})"', page)
    assert found == [first["id"], invoice["id"]]
    assert "2 runs" in page and "invoice" in page


async def test_a_run_links_its_parent_and_lists_the_runs_it_started(
    console: ConsoleNode, monkeypatch: pytest.MonkeyPatch
) -> None:
    parent, children = await console.announced("P-1")
    async with console.signed_in(VIEWER) as client:
        page = (await client.get(f"/console/runs/{parent['id']}")).text
        started = page.split('id="children-h"', 1)[1].split("</section>", 1)[0]
        assert [c["id"] for c in reversed(children)] == re.findall(r'href="/console/runs/([^"]+)"', started)
        assert "Parent run" not in page
        child = (await client.get(f"/console/runs/{children[0]['id']}")).text
        assert re.search(r"<dt>Parent run</dt><dd><a [^>]*>" + parent["id"] + "</a>", child)
        assert "No runs." in child.split('id="children-h"', 1)[1].split("</section>", 1)[0]
        listed = (await client.get("/console/runs", params={"parent": parent["id"]})).text
        assert sorted(re.findall(r'<td><a class="mono" href="/console/runs/([^"]+)"', listed)) == sorted(
            c["id"] for c in children
        )
        monkeypatch.setattr("runtime.console.pages.CHILDREN_SHOWN", 1)
        page = (await client.get(f"/console/runs/{parent['id']}")).text
        started = page.split('id="children-h"', 1)[1].split("</section>", 1)[0]
        assert re.findall(r'href="/console/runs/([^"?]+)"', started) == [children[0]["id"]]
        assert f'href="/console/runs?parent={parent["id"]}">Every run this run started' in started


async def test_a_missing_run_is_a_404_page(console: ConsoleNode) -> None:
    async with console.signed_in(VIEWER) as client:
        answer = await client.get("/console/runs/NO-SUCH-RUN")
    assert answer.status_code == 404 and "NO-SUCH-RUN" in answer.text


# ---------------------------------------------------------------------------------------- actions


async def test_a_viewer_sees_no_action_and_gets_403_when_posting(console: ConsoleNode) -> None:
    console.sink.rule("/broken", status=500)
    letter = await console.finished(order("DL-1", target="broken"))
    held = await console.finished(order("H-1", total=5000))
    failed = await console.finished(order("E-1", customer="BAD"))
    assert (letter["status"], held["status"], failed["status"]) == ("dead_lettered", "held", "exception")
    async with console.signed_in(VIEWER) as client:
        for path in ["/console/dead-letters", "/console/holds", "/console/exceptions", f"/console/runs/{letter['id']}"]:
            page = (await client.get(path)).text
            assert ">Approve</button>" not in page and ">Reject</button>" not in page
            assert "Preview the replay" not in page
            assert 'type="checkbox" name="run_id"' not in page and "Acknowledge" not in page
        posts = [
            ("/console/replay/preview", {"run_id": letter["id"]}),
            ("/console/replay", {"run_id": letter["id"]}),
            (f"/console/holds/{held['id']}/approve", {"comment": "no"}),
            (f"/console/exceptions/{failed['id']}/acknowledge", {"comment": "no"}),
        ]
        for path, fields in posts:
            answer = await post_form(client, path, "/console/", **fields)
            assert answer.status_code == 403, path
            assert "operator role" in answer.text
    assert (await console.node.run(held["id"]))["status"] == "held"
    assert (await console.node.run(letter["id"]))["status"] == "dead_lettered"


async def test_posts_without_the_csrf_token_are_refused(console: ConsoleNode) -> None:
    held = await console.finished(order("H-2", total=5000))
    async with console.signed_in(OPERATOR) as client:
        for fields in ({"comment": "x"}, {"comment": "x", "csrf": "forged"}):
            answer = await client.post(f"/console/holds/{held['id']}/approve", data=fields)
            assert answer.status_code == 403 and "did not come from this console" in answer.text
    assert (await console.node.run(held["id"]))["status"] == "held"


async def test_replay_a_dead_letter_after_its_dry_run_preview(console: ConsoleNode) -> None:
    console.sink.rule("/broken", status=500)
    letter = await console.finished(order("DL-2", target="broken"))
    assert letter["status"] == "dead_lettered"
    console.sink.reset()  # the target is fixed
    async with console.signed_in(OPERATOR) as client:
        listed = (await client.get("/console/dead-letters")).text
        assert f'name="run_id" value="{letter["id"]}"' in listed
        preview = await post_form(client, "/console/replay/preview", "/console/dead-letters", run_id=letter["id"])
        assert preview.status_code == 200, preview.text
        assert "Side effects the replay would cause" in preview.text and "sink.post" in preview.text
        assert "create" in preview.text and "Confirm: replay 1 run" in preview.text
        assert console.sink.on("/broken") == []  # a dry run sends nothing
        done = await client.post("/console/replay", data={"csrf": csrf_of(preview.text), "run_id": letter["id"]})
        assert done.status_code == 200, done.text
        new_id = re.search(r"replayed as <a class=\"mono\" href=\"/console/runs/([0-9A-Z]{26})\"", done.text)
        assert new_id, done.text
    replayed = await console.node.wait_run(new_id.group(1))
    assert replayed["status"] == "succeeded" and replayed["replay_of"] == letter["id"]
    assert len(console.sink.on("/broken")) == 1
    async with console.signed_in(VIEWER) as client:
        original = (await client.get(f"/console/runs/{letter['id']}")).text
        assert f'<dt>Replayed as</dt><dd><a class="mono" href="/console/runs/{new_id.group(1)}"' in original
        replay = (await client.get(f"/console/runs/{new_id.group(1)}")).text
        assert f'<dt>Replay of</dt><dd><a class="mono" href="/console/runs/{letter["id"]}"' in replay


async def test_replay_with_a_corrected_input(console: ConsoleNode) -> None:
    console.sink.rule("/broken", status=500)
    letter = await console.finished(order("DL-3", target="broken"))
    fixed = '{"id": "DL-3", "customer": {"id": "C-1"}, "total": 10, "target": "orders"}'
    async with console.signed_in(OPERATOR) as client:
        preview = await post_form(
            client, "/console/replay/preview", "/console/dead-letters", run_id=letter["id"], input=fixed
        )
        assert "&#34;path&#34;: &#34;orders&#34;" in preview.text, preview.text
        bad = await post_form(
            client, "/console/replay/preview", "/console/dead-letters", run_id=letter["id"], input="{nope"
        )
        assert bad.status_code == 400 and "not valid JSON" in bad.text
        done = await client.post(
            "/console/replay", data={"csrf": csrf_of(preview.text), "run_id": letter["id"], "input": fixed}
        )
        new_id = re.search(r'replayed as <a class="mono" href="/console/runs/([0-9A-Z]{26})"', done.text)
        assert new_id, done.text
    assert (await console.node.wait_run(new_id.group(1)))["status"] == "succeeded"
    assert [h.body["id"] for h in console.sink.on("/orders")] == ["DL-3"]


async def test_a_hold_is_decided_only_by_its_team(console: ConsoleNode) -> None:
    held = await console.finished(order("H-3", total=5000))
    async with console.signed_in(SALES) as sales:
        page = (await sales.get("/console/holds")).text
        assert held["id"] in page and "Only team finance-ops can decide" in page
        assert ">Approve</button>" not in page
        refused = await post_form(sales, f"/console/holds/{held['id']}/approve", "/console/holds", comment="mine")
        assert refused.status_code == 403 and "finance-ops" in refused.text
    assert (await console.node.run(held["id"]))["status"] == "held"
    async with console.signed_in(FINANCE) as finance:
        page = (await finance.get("/console/holds")).text
        assert ">Approve</button>" in page
        answer = await post_form(finance, f"/console/holds/{held['id']}/approve", "/console/holds", comment="ok by me")
        assert answer.status_code == 303
        assert "approved" in (await finance.get(answer.headers["location"])).text
    run = await console.node.wait_run(held["id"], {"succeeded", "failed", "dead_lettered"})
    assert run["status"] == "succeeded"
    assert run["audit"][-1]["team"] == "finance-ops" and run["audit"][-1]["comment"] == "ok by me"


async def test_reject_a_hold(console: ConsoleNode) -> None:
    held = await console.finished(order("H-4", total=5000))
    async with console.signed_in(OPERATOR) as client:
        answer = await post_form(client, f"/console/holds/{held['id']}/reject", "/console/holds", comment="too big")
        assert answer.status_code == 303
    assert (await console.node.run(held["id"]))["status"] == "rejected"


async def test_exceptions_are_acknowledged_and_resolved_by_their_team(console: ConsoleNode) -> None:
    failed = await console.finished(order("E-2", customer="BAD"))
    async with console.signed_in(SALES) as sales:
        page = (await sales.get("/console/exceptions")).text
        assert "CUSTOMER_UNKNOWN" in page and "master-data" in page and "Acknowledge" not in page
        refused = await post_form(sales, f"/console/exceptions/{failed['id']}/acknowledge", "/console/exceptions")
        assert refused.status_code == 403 and "master-data" in refused.text
    async with console.signed_in(OPERATOR) as client:
        answer = await post_form(
            client, f"/console/exceptions/{failed['id']}/acknowledge", "/console/exceptions", comment="on it"
        )
        assert answer.status_code == 303
        page = (await client.get("/console/exceptions?team=master-data")).text
        assert "acknowledged" in page and "on it" in page
        answer = await post_form(client, f"/console/exceptions/{failed['id']}/resolve", "/console/exceptions")
        assert "resolved" in (await client.get("/console/exceptions")).text
        again = await post_form(client, f"/console/exceptions/{failed['id']}/resolve", "/console/exceptions")
        assert again.status_code == 409 and "resolved already" in again.text
        other = await post_form(client, f"/console/exceptions/{failed['id']}/snooze", "/console/exceptions")
        assert other.status_code == 404
    audit = (await console.node.run(failed["id"]))["audit"]
    assert [a["decision"] for a in audit] == ["acknowledged", "resolved"]


# ------------------------------------------------------------------------------------------- live


async def read_events(client: httpx.AsyncClient, path: str) -> list[tuple[str, str]]:
    events: list[tuple[str, str]] = []
    async with client.stream("GET", path) as answer:
        assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/event-stream")
        name, data = "", []
        async for line in answer.aiter_lines():
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                data.append(line[6:])
            elif line == "" and name:
                events.append((name, "\n".join(data)))
                name, data = "", []
    return events


async def test_the_live_stream_follows_a_run_until_it_ends(console: ConsoleNode) -> None:
    console.sink.rule("/slow", delay=1.0)
    run_id = await console.send(order("S-1", target="slow"))
    await until(lambda: console.sink.on("/slow"))  # the run is in its call
    async with console.signed_in(VIEWER) as client:
        page = (await client.get(f"/console/runs/{run_id}")).text
        assert f'data-live="/console/runs/{run_id}/live"' in page and "console.js" in page
        events = await read_events(client, f"/console/runs/{run_id}/live")
    assert [name for name, _ in events][-1] == "end" and events[-1][1] == "succeeded"
    updates = [data for name, data in events if name == "update"]
    assert "running" in updates[0] and "succeeded" in updates[-1] and len(updates) >= 2
    assert CANARY not in "".join(updates) and EMAIL not in "".join(updates)


async def test_a_finished_run_streams_once_and_ends(console: ConsoleNode) -> None:
    done = await console.finished(order("S-2"))
    async with console.signed_in(VIEWER) as client:
        page = (await client.get(f"/console/runs/{done['id']}")).text
        assert "data-live" not in page and "console.js" not in page
        events = await read_events(client, f"/console/runs/{done['id']}/live")
    assert [name for name, _ in events] == ["update", "end"]


# ----------------------------------------------------------------------------------------- canary


async def test_no_page_shows_a_secret_or_a_masked_value(console: ConsoleNode) -> None:
    console.sink.rule("/broken", status=500)
    runs = [
        await console.finished(order("4711")),
        await console.finished(order("C-2", target="broken")),
        await console.finished(order("C-3", total=5000)),
        await console.finished(order("C-4", customer="BAD")),
    ]
    seen: list[str] = []
    for token in (VIEWER, OPERATOR):
        async with console.signed_in(token) as client:
            for path in [*PAGES, *(f"/console/runs/{r['id']}" for r in runs), "/console/lineage?key=customer:C-1"]:
                seen.append((await client.get(path)).text)
            if token == OPERATOR:
                preview = await post_form(client, "/console/replay/preview", "/console/", run_id=runs[1]["id"])
                seen.append(preview.text)
    text = "\n".join(seen)
    assert "***" in text  # masked values are there, as ***
    assert CANARY not in text and EMAIL not in text
    assert CANARY[::-1] not in text and CANARY.upper() not in text
    stored = console.node.service.store
    assert any(r.input["customer"]["email"] == EMAIL for r in [await stored.get_run(runs[0]["id"])] if r)


async def test_the_overview_counts_runs_per_flow(console: ConsoleNode) -> None:
    console.sink.rule("/broken", status=500)
    await console.finished(order("O-1"))
    await console.finished(order("O-2"))
    await console.finished(order("O-3", target="broken"))
    await console.finished(order("O-4", total=5000))
    async with console.signed_in(VIEWER) as client:
        page = (await client.get("/console/")).text
    row = re.search(r'<a href="/console/flows/orders">orders</a></th>(.*?)</tr>', page, re.S)
    assert row, page
    numbers = re.findall(r'<td class="num">(?:<a[^>]*>)?(\d+)', row.group(1))
    # last hour: succeeded 2, failed 0, dead-lettered 1, held 1, waiting 0; the same for the day; 1 dead letter
    assert numbers == ["2", "0", "1", "1", "0", "2", "0", "1", "1", "0", "1"]
    assert "runs of orders per hour, last 24 hours: " + ", ".join(["0"] * 23 + ["4"]) in page
    assert time.time() > 0


async def test_the_overview_shows_each_sources_kind_lag_and_backpressure(
    console: ConsoleNode, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = console.node.service
    host = next(h for h in service.sources if h.flow.name == "nightly")
    cell = r'<a href="/console/flows/{}">{}</a></th>.*?<td class="source">(.*?)</td>'
    async with console.signed_in(VIEWER) as client:
        page = (await client.get("/console/")).text
        nightly = re.search(cell.format("nightly", "nightly"), page, re.S)
        assert nightly and "schedule</span>: last reached its origin" in nightly.group(1), page
        assert "paused" not in nightly.group(1)
        orders = re.search(cell.format("orders", "orders"), page, re.S)
        assert orders and orders.group(1) == ""  # a webhook flow has no source
        host.context.last_progress = service.clock.time() - 600  # shown to a tenth of a minute
        service.metrics.child(service.metrics.source_delay, "nightly", "schedule").set(2.5)
        monkeypatch.setattr(host.context, "paused", lambda: True)
        page = (await client.get("/console/")).text
    nightly = re.search(cell.format("nightly", "nightly"), page, re.S)
    assert nightly, page
    assert "last reached its origin 10.0 min ago" in nightly.group(1)
    assert "taken 2.50 s late" in nightly.group(1) and '<strong class="bad">paused</strong>' in nightly.group(1)


async def test_forms_must_be_url_encoded_and_small(console: ConsoleNode) -> None:
    async with console.signed_in(OPERATOR) as client:
        token = csrf_of((await client.get("/console/")).text)
        as_json = await client.post("/console/logout", json={"csrf": token})
        assert as_json.status_code == 400 and "x-www-form-urlencoded" in as_json.text
        huge = await client.post("/console/logout", data={"csrf": token, "pad": "x" * 1_100_000})
        assert huge.status_code == 400 and "larger than" in huge.text


async def test_the_bare_prefix_and_unknown_pages(console: ConsoleNode) -> None:
    async with console.signed_in(VIEWER) as client:
        bare = await client.get("/console")
        assert bare.status_code == 307 and bare.headers["location"] == "/console/"
        assert (await client.get("/console/flows/no-such-flow")).status_code == 404
        bad_time = await client.get("/console/runs", params={"since": "yesterday"})
        assert bad_time.status_code == 400 and "2026-12-04T15:30" in bad_time.text
