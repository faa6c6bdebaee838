"""A FlowTest's `webhook` input with `sign: true` is signed as the flow's auth requires, for the vendor
schemes too (Stripe-Signature, Shopify's base64 HMAC, GitHub's sha256= prefix); unsigned it is refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from runtime.cli import main
from tests.service.harness import write_project

FLOW = """
trigger:
  webhook:
    path: /hooks/{kind}
    auth: {{type: {kind}, secret: "{{{{ secret('HOOK_SECRET') }}}}"}}
steps:
  - id: post
    call: sink.post
    with: {{path: events, body: "{{{{ input }}}}"}}
"""

TESTS = """kind: FlowTest
name: signed {kind}
flow: hook
input: {{webhook: {{body: {{id: evt_1}}}}}}
secrets: {{HOOK_SECRET: whsec_flowtest_0001}}
mocks:
  sink.post: {{output: {{ok: true}}}}
expect:
  status: succeeded
  calls: [{{operation: sink.post, params: {{path: events, body: {{id: evt_1}}}}}}]
---
kind: FlowTest
name: unsigned {kind}
flow: hook
input: {{webhook: {{body: {{id: evt_2}}, sign: false}}}}
secrets: {{HOOK_SECRET: whsec_flowtest_0001}}
expect:
  response: {{status: 401}}
"""


@pytest.mark.parametrize("kind", ["stripe", "shopify", "github"])
def test_flowtests_sign_vendor_webhooks(tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str) -> None:
    root = write_project(tmp_path / "p", "http://127.0.0.1:9", {"hook": FLOW.format(kind=kind)})
    (root / "tests" / "flows").mkdir(parents=True)
    (root / "tests" / "flows" / "hook.yaml").write_text(TESTS.format(kind=kind))
    code = main(["test", str(root)])
    out, err = capsys.readouterr()
    assert code == 0, out + err
    assert "flow tests: 2 passed" in out
