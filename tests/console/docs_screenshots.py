"""The README's console screenshots, taken from the demo project in Debian's chromium.

Serves the bundled project (the repo root) with the demo's simulated CRM, ERP and billing systems,
sends the demo's sample orders and a CRM change of customer C-9, then photographs the run page of
order DEMO-1001 and the lineage of customer C-9. `test_browser.py` runs it into a tmp folder so it
never rots; to refresh the committed images:

    .venv/bin/python -m tests.console.docs_screenshots      # writes docs/console-run.png, docs/console-lineage.png
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from runtime.commands.demo import DEMO_TOKEN, SAMPLE_ORDERS, signed_headers
from runtime.demo.simulators import DEMO_CREDENTIALS, start_simulators
from runtime.expr import dumps
from tests.console.browser import chromium, new_page, screenshot, sign_in
from tests.service.harness import ROOT, VIEWER, start_node

FINAL = {"succeeded", "failed", "dead_lettered", "exception", "filtered", "held", "rejected"}


@contextlib.contextmanager
def environment(values: dict[str, str]) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


async def take(out: Path, work: Path) -> list[Path]:
    """Photograph the demo's run page and lineage view into `out`; the demo's store lives in `work`."""
    sims = start_simulators()
    try:
        with environment(sims.env()):
            node = await start_node(
                ROOT, f"sqlite:///{work / 'demo.db'}", tokens={DEMO_TOKEN: "operator", VIEWER: "viewer"}
            )
            try:
                sims.connect_webhooks(node.url)
                run_ids = []
                for sample in SAMPLE_ORDERS:
                    body = dumps(sample).encode()
                    headers = signed_headers(body, DEMO_CREDENTIALS["WEBSHOP_HOOK_SECRET"])
                    answer = await node.client.post("/hooks/webshop/orders", content=body, headers=headers)
                    run_ids.append(answer.json()["run_id"])
                change = {"customer_no": "C-9", "name": "Acme GmbH", "email": "ap@acme.example", "modified_at": "1"}
                crm = await node.client.post(
                    "/hooks/crm/accounts", json=change, headers={"X-Api-Key": DEMO_CREDENTIALS["CRM_HOOK_KEY"]}
                )
                run_ids.append(crm.json()["run_id"])
                for run_id in run_ids:
                    await node.wait_run(run_id, FINAL, timeout=30)
                async with chromium() as browser:
                    page = await new_page(browser)
                    await sign_in(page, node.url, DEMO_TOKEN)
                    await page.goto(f"{node.url}/console/runs/{run_ids[0]}")
                    await page.locator("details.step").nth(4).locator("summary").click()  # the ERP call (post)
                    shots = [await screenshot(page, out, "console-run")]
                    await page.goto(f"{node.url}/console/lineage?key=customer%3AC-9")
                    shots.append(await screenshot(page, out, "console-lineage"))
                return shots
            finally:
                await node.stop()
    finally:
        sims.stop()


def main() -> int:
    with tempfile.TemporaryDirectory() as work:
        for shot in asyncio.run(take(ROOT / "docs", Path(work))):
            print(shot.relative_to(ROOT))
    return 0


if __name__ == "__main__":
    sys.exit(main())
