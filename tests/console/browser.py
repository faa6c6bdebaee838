"""Driving the console in Debian's chromium with Playwright (never `playwright install`): launching,
signing in, and the accessibility checks the browser tests share (labels, contrast).

`browser_page()` skips the test with what to install when chromium or the playwright package is
missing, or fails it when `SYNCLINE_REQUIRE_SERVICES=1` (CI installs chromium in `.ci/run`).
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from tests.services import require_service

CHROMIUM = "/usr/bin/chromium"

# every form control and button must have an accessible name (a <label for>, aria-label or its text)
UNLABELLED_JS = """() => {
  const bad = [];
  for (const el of document.querySelectorAll('input, select, textarea, button, a[href]')) {
    if (el.type === 'hidden') continue;
    const byFor = el.id && document.querySelector(`label[for="${el.id}"]`);
    const name = (el.getAttribute('aria-label') || (byFor && byFor.textContent) || el.closest('label')?.textContent
      || (['BUTTON', 'A'].includes(el.tagName) ? el.textContent : '') || '').trim();
    if (!name) bad.push(el.outerHTML.slice(0, 120));
  }
  return bad;
}"""

# every visible text's contrast against the background it is drawn on (WCAG 2 formula), where the
# ratio is below AA: 4.5:1, or 3:1 for large text (24px, or 18.66px bold)
CONTRAST_JS = """() => {
  const parse = (c) => { const m = c.match(/rgba?\\(([^)]+)\\)/); if (!m) return null;
    const p = m[1].split(',').map(Number); return {r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1}; };
  const lum = (c) => { const ch = [c.r, c.g, c.b].map(v => { v /= 255;
    return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); });
    return 0.2126 * ch[0] + 0.7152 * ch[1] + 0.0722 * ch[2]; };
  const background = (el) => { for (let e = el; e; e = e.parentElement) {
      const c = parse(getComputedStyle(e).backgroundColor); if (c && c.a > 0.5) return c; }
    return {r: 255, g: 255, b: 255, a: 1}; };
  const low = []; let checked = 0;
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    if (!node.textContent.trim()) continue;
    const el = node.parentElement; const style = getComputedStyle(el);
    if (style.visibility === 'hidden' || style.display === 'none' || el.closest('svg')) continue;
    const rect = el.getBoundingClientRect(); if (rect.width === 0 || rect.height === 0 || rect.right < 0) continue;
    const fg = parse(style.color); const bg = background(el);
    const [l1, l2] = [lum(fg), lum(bg)].sort((a, b) => b - a);
    const ratio = (l1 + 0.05) / (l2 + 0.05);
    const size = parseFloat(style.fontSize); const bold = parseInt(style.fontWeight) >= 700;
    const needed = (size >= 24 || (bold && size >= 18.66)) ? 3 : 4.5; checked++;
    const text = node.textContent.trim().slice(0, 40);
    if (ratio < needed) low.push(`${ratio.toFixed(2)} ${style.color} on ${JSON.stringify(bg)}: ${text}`);
  }
  return {checked, low};
}"""


def chromium_present() -> bool:
    return os.access(CHROMIUM, os.X_OK) or shutil.which("chromium") is not None


@contextlib.asynccontextmanager
async def chromium() -> AsyncIterator[Any]:
    """A headless Debian chromium driven by Playwright (skipped or failed, see the module docstring)."""
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        require_service("playwright", False, "the playwright package is not installed (pip install -e '.[dev]')")
        raise AssertionError("unreachable") from None
    require_service(
        "chromium", chromium_present(), f"{CHROMIUM} not found; install it with `apt-get install -y chromium`"
    )
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=["--disable-gpu"])
        try:
            yield browser
        finally:
            await browser.close()


async def new_page(browser: Any) -> Any:
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    page.set_default_timeout(10_000)
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.console_errors = errors  # CSP violations and script errors end up here
    return page


async def sign_in(page: Any, base_url: str, token: str, target: str = "/console/") -> None:
    await page.goto(base_url + target)
    await page.get_by_label("API token").fill(token)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(f"**{target}*")


async def screenshot(page: Any, folder: Path, name: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    await page.screenshot(path=str(path), full_page=True)
    return path
