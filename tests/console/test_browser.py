"""The console in a real browser (Debian's chromium through Playwright): sign in, find a run by its
business key and open it, replay a dead letter after its dry-run preview, approve a hold as the right
team and fail as the wrong one, watch a running run finish live; screenshots of every view under the
test's tmp folder; accessibility basics on every view (labelled controls, keyboard, AA contrast)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.console.browser import CONTRAST_JS, UNLABELLED_JS, chromium, new_page, screenshot, sign_in
from tests.console.conftest import EMAIL, FINANCE, OPERATOR, SALES, VIEWER, ConsoleNode, order

pytestmark = pytest.mark.service  # needs chromium: skipped without it, a failure in CI

VIEWS = {
    "overview": "/console/",
    "flows": "/console/flows",
    "flow": "/console/flows/orders",
    "runs": "/console/runs",
    "lineage": "/console/lineage?key=order%3A4711",
    "dead-letters": "/console/dead-letters",
    "holds": "/console/holds",
    "exceptions": "/console/exceptions",
    "reconciliation": "/console/reconciliation",
}


async def test_find_a_run_by_business_key_and_open_it(console: ConsoleNode, tmp_path: Path) -> None:
    first = await console.finished(order("4711"))
    await console.finished({"order": "4711"}, "/hooks/invoices")
    async with chromium() as browser:
        page = await new_page(browser)
        await sign_in(page, console.url, VIEWER)
        await page.get_by_role("link", name="Lineage").click()
        await page.get_by_label("Business key or correlation id").fill("order:4711")
        await page.keyboard.press("Enter")
        await page.get_by_text("Everything that happened to order:4711").wait_for()
        await screenshot(page, tmp_path / "screenshots", "lineage")
        await page.get_by_role("link", name=first["id"]).first.click()
        await page.get_by_role("heading", name=f"Run {first['id']}").wait_for()
        assert await page.get_by_role("row", name=re.compile(r"^post call succeeded")).count() == 1
        await page.locator("details.step summary").last.click()
        text = await page.inner_text("main")
        assert "***" in text and EMAIL not in await page.content()
        await screenshot(page, tmp_path / "screenshots", "run")
        assert page.console_errors == []


async def test_replay_a_dead_letter_after_its_preview(console: ConsoleNode, tmp_path: Path) -> None:
    console.sink.rule("/broken", status=500)
    letter = await console.finished(order("DL-9", target="broken"))
    console.sink.reset()
    async with chromium() as browser:
        page = await new_page(browser)
        await sign_in(page, console.url, OPERATOR, "/console/dead-letters")
        await page.get_by_label(f"Select run {letter['id']}").check()
        await page.get_by_role("button", name="Preview the replay (dry run)").click()
        effects = page.get_by_role("table", name="Side effects the replay would cause")
        await effects.wait_for()
        assert "sink.post" in await effects.inner_text()
        assert console.sink.on("/broken") == []
        await screenshot(page, tmp_path / "screenshots", "replay-preview")
        await page.get_by_role("button", name="Confirm: replay 1 run").click()
        await page.get_by_text("replayed as").wait_for()
        await page.locator("main li a").last.click()
        await page.locator(".runstate .s-succeeded").wait_for()  # live until it ends
        assert len(console.sink.on("/broken")) == 1
        assert page.console_errors == []


async def test_a_hold_is_approved_by_its_team_only(console: ConsoleNode, tmp_path: Path) -> None:
    held = await console.finished(order("H-9", total=5000))
    async with chromium() as browser:
        page = await new_page(browser)
        await sign_in(page, console.url, SALES, "/console/holds")
        await page.get_by_text("Only team finance-ops can decide this hold").wait_for()
        assert await page.get_by_role("button", name="Approve").count() == 0
        csrf = await page.locator('input[name="csrf"]').first.get_attribute("value")
        refused = await page.request.post(
            f"{console.url}/console/holds/{held['id']}/approve", form={"csrf": csrf, "comment": "mine"}
        )
        assert refused.status == 403 and "finance-ops" in await refused.text()
        await page.get_by_role("button", name="Sign out").click()
        await sign_in(page, console.url, FINANCE, "/console/holds")
        await page.get_by_label(f"Comment for run {held['id']}").fill("checked with the customer")
        await screenshot(page, tmp_path / "screenshots", "holds")
        await page.get_by_role("button", name="Approve").click()
        await page.get_by_text(f"Run {held['id']} approved.").wait_for()
    run = await console.node.wait_run(held["id"], {"succeeded", "failed", "dead_lettered"})
    assert run["status"] == "succeeded" and run["audit"][-1]["comment"] == "checked with the customer"


async def test_watch_a_running_run_finish_live(console: ConsoleNode, tmp_path: Path) -> None:
    gate = console.sink.rule("/slow", delay=2.5)
    async with chromium() as browser:
        page = await new_page(browser)
        await sign_in(page, console.url, VIEWER)
        run_id = await console.send(order("S-9", target="slow"))  # its call takes 2.5 s
        await page.goto(f"{console.url}/console/runs/{run_id}")
        await page.locator(".runstate .s-running, .runstate .s-queued").wait_for()
        await screenshot(page, tmp_path / "screenshots", "run-live")
        await page.locator("#live[data-ended=true]").wait_for()  # no reload: the event stream updated it
        assert await page.locator(".runstate .s-succeeded").count() == 1
        assert await page.get_by_role("row", name=re.compile(r"^post call succeeded")).count() == 1
        assert page.console_errors == []
    assert gate.delay == 2.5


async def test_every_view_is_labelled_keyboard_usable_and_readable(console: ConsoleNode, tmp_path: Path) -> None:
    console.sink.rule("/broken", status=500)
    done = await console.finished(order("4711"))
    await console.finished(order("A-2", target="broken"))
    await console.finished(order("A-3", total=5000))
    await console.finished(order("A-4", customer="BAD"))
    await console.finished({}, "/hooks/recon")
    async with chromium() as browser:
        page = await new_page(browser)
        await page.goto(console.url + "/console/login")
        assert await page.evaluate(UNLABELLED_JS) == []
        await sign_in(page, console.url, OPERATOR)
        checked = 0
        for name, path in {**VIEWS, "run": f"/console/runs/{done['id']}"}.items():
            await page.goto(console.url + path)
            assert await page.evaluate(UNLABELLED_JS) == [], name
            contrast = await page.evaluate(CONTRAST_JS)
            assert contrast["low"] == [], (name, contrast["low"])
            checked += contrast["checked"]
            await screenshot(page, tmp_path / "screenshots", name)
        assert checked > 200
        assert page.console_errors == []  # no CSP violation on any page

        # the keyboard alone: skip link first, then the menu, then a filter form
        await page.goto(console.url + "/console/")
        await page.keyboard.press("Tab")
        assert await page.evaluate("document.activeElement.textContent") == "Skip to content"
        await page.keyboard.press("Enter")
        assert await page.evaluate("document.activeElement.id") == "main"
        await page.keyboard.press("Shift+Tab")  # back into the header, where the menu is
        for _ in range(30):
            if await page.evaluate("document.activeElement.textContent") == "Runs":
                break
            await page.keyboard.press("Shift+Tab")
        await page.keyboard.press("Enter")
        await page.wait_for_url("**/console/runs")
        await page.get_by_label("Business key").focus()
        await page.keyboard.type("order:4711")
        await page.keyboard.press("Enter")
        await page.wait_for_url("**business_key=order%3A4711**")
        assert done["id"] in await page.inner_text("main")
        await page.get_by_label("Business key").focus()
        focused_outline = await page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
        assert focused_outline != "none"
        # reading works with JavaScript off: sign in, search the lineage, open the run
        quiet = await (await browser.new_context(java_script_enabled=False)).new_page()
        await sign_in(quiet, console.url, VIEWER, "/console/lineage")
        await quiet.get_by_label("Business key or correlation id").fill("order:4711")
        await quiet.get_by_role("button", name="Search").click()
        await quiet.get_by_role("link", name=done["id"]).first.click()
        await quiet.get_by_role("heading", name=f"Run {done['id']}").wait_for()
        assert "succeeded" in await quiet.inner_text("#live")
    shots = sorted(p.name for p in (tmp_path / "screenshots").iterdir())
    assert len(shots) == len(VIEWS) + 1


async def test_without_chromium_the_tests_skip_or_fail_in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.console import browser

    monkeypatch.setattr(browser, "chromium_present", lambda: False)
    monkeypatch.delenv("SYNCLINE_REQUIRE_SERVICES", raising=False)
    with pytest.raises(pytest.skip.Exception, match=r"chromium unreachable .*apt-get install -y chromium"):
        async with chromium():
            pass
    monkeypatch.setenv("SYNCLINE_REQUIRE_SERVICES", "1")
    with pytest.raises(pytest.fail.Exception, match="chromium is required"):
        async with chromium():
            pass


async def test_the_readme_screenshots_come_from_the_demo(tmp_path: Path) -> None:
    from tests.console.docs_screenshots import take

    shots = await take(tmp_path / "docs", tmp_path)
    assert [p.name for p in shots] == ["console-run.png", "console-lineage.png"]
    assert all(p.stat().st_size > 10_000 for p in shots)
