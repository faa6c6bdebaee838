"""`syncline plan`: a semantic diff of two project versions, exit 1 on breaking changes."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
import tarfile
from collections.abc import Sequence
from pathlib import Path

import pytest

from runtime.commands.plan import export_git, resolve_against
from runtime.compiler import check_project
from runtime.compiler.diff import Change, changed_paths, diff_projects
from runtime.errors import UsageError
from tests.governance.conftest import ROOT

PARTS = ("syncline.yaml", "systems", "flows", "governance", "mappings", "schemas", "tests/flows")


def copy_bundled(target: Path) -> Path:
    for part in PARTS:
        source = ROOT / part
        if source.is_dir():
            shutil.copytree(source, target / part)
        else:
            target.mkdir(parents=True, exist_ok=True)
            shutil.copy(source, target / part)
    return target


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new))


def plan(before: Path, after: Path) -> list[Change]:
    old, new = check_project(before), check_project(after)
    assert old.context is not None and new.context is not None
    return diff_projects(old.context, new.context)


def syncline(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "runtime.cli", *args], cwd=cwd, capture_output=True, text=True, timeout=120
    )


@pytest.fixture
def before(tmp_path: Path) -> Path:
    return copy_bundled(tmp_path / "before")


@pytest.fixture
def after(tmp_path: Path) -> Path:
    return copy_bundled(tmp_path / "after")


def test_same_project_has_no_changes_and_exits_0(before: Path, after: Path) -> None:
    assert plan(before, after) == []
    done = syncline("plan", str(after), "--against", str(before))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "no changes" in done.stdout and "0 changes, 0 breaking" in done.stdout


def test_removed_flow_and_changed_webhook_path_are_breaking(before: Path, after: Path) -> None:
    (after / "flows" / "customer-erp-to-crm.yaml").unlink()
    (after / "tests" / "flows" / "customer-sync-webhooks.yaml").unlink()
    edit(after / "flows" / "webshop-order-to-erp.yaml", "/hooks/webshop/orders", "/hooks/shop/orders")
    changes = plan(before, after)
    breaking = {(c.kind, c.name, c.change) for c in changes if c.breaking}
    assert breaking == {("flow", "customer-erp-to-crm", "removed"), ("trigger", "webshop-order-to-erp", "changed")}
    path_change = next(c for c in changes if c.kind == "trigger")
    assert "/hooks/webshop/orders → /hooks/shop/orders" in path_change.detail
    done = syncline("plan", str(after), "--against", str(before), "--format", "json")
    assert done.returncode == 1, done.stderr
    report = json.loads(done.stdout)
    assert report["breaking"] == 2 and report["total"] == len(report["changes"])


def test_added_flow_and_step_changes_are_not_breaking(before: Path, after: Path) -> None:
    (before / "flows" / "customer-erp-to-crm.yaml").unlink()
    edit(after / "flows" / "webshop-order-to-erp.yaml", "timeout: 15s", "timeout: 20s")
    edit(after / "flows" / "webshop-order-to-erp.yaml", "    mode: async", "    mode: sync")
    changes = plan(before, after)
    assert not any(c.breaking for c in changes)
    details = [f"{c.kind} {c.name} {c.change}: {c.detail}" for c in changes]
    assert any(d.startswith("flow customer-erp-to-crm added") for d in details), details
    assert any("step 'post': timeout: 15s → 20s" in d for d in details), details
    assert any("webhook.mode: async → sync" in d for d in details), details
    done = syncline("plan", str(after), "--against", str(before))
    assert done.returncode == 0 and "+ flow customer-erp-to-crm" in done.stdout


def test_steps_added_and_removed(before: Path, after: Path) -> None:
    edit(
        after / "flows" / "webshop-order-to-erp.yaml",
        "  - id: announce\n",
        "  - id: audit\n    set: {seen: true}\n  - id: announce2\n",
    )
    changes = {(c.kind, c.name, c.change) for c in plan(before, after)}
    assert ("step", "webshop-order-to-erp.audit", "added") in changes
    assert ("step", "webshop-order-to-erp.announce2", "added") in changes
    assert ("step", "webshop-order-to-erp.announce", "removed") in changes


def test_state_machine_changes_that_strand_entities(before: Path, after: Path) -> None:
    edit(after / "governance" / "order-lifecycle.yaml", "  shipped: [invoiced]\n", "")
    edit(after / "governance" / "order-lifecycle.yaml", "[accepted, rejected]", "[accepted]")
    edit(
        after / "governance" / "order-lifecycle.yaml",
        "  received: [validated, rejected]",
        "  received: [validated, rejected, on_hold]",
    )
    changes = [c for c in plan(before, after) if c.kind == "state_machine"]
    text = {c.detail: c.breaking for c in changes}
    assert text["state 'invoiced' removed: entities in it are stranded"] is True
    assert text["transition submitted → rejected removed"] is True
    assert text["state 'shipped' has no way out anymore: entities stop there"] is True
    assert text["state 'on_hold' added"] is False
    assert text["transition received → on_hold added"] is False
    # `rejected` is still reachable from `received`: not removed
    assert not any("'rejected' removed" in d for d in text)


def test_ownership_owner_changes_are_breaking_requesters_are_not(before: Path, after: Path) -> None:
    ownership = after / "governance" / "ownership.yaml"
    edit(ownership, "email: crm", "email: erp")
    edit(ownership, "requesters: [webshop, crm]", "requesters: [webshop]")
    edit(ownership, "invoice: {owner: billing}", "invoice: {owner: erp}")
    changes = {c.detail: c.breaking for c in plan(before, after) if c.kind == "ownership"}
    assert changes == {
        "owner of customer.email: crm → erp": True,
        "requesters of order: -crm": False,
        "owner of invoice: billing → erp": True,
    }


def test_policy_rules_added_removed_changed(before: Path, after: Path) -> None:
    policies = after / "governance" / "policies.yaml"
    edit(policies, '"$.email", "$.phone", "$.tax_id"', '"$.email"')
    edit(policies, "  - id: big-orders-need-approval", "  - id: huge-orders-need-approval")
    changes = {(c.name, c.change): c.detail for c in plan(before, after) if c.kind == "policy"}
    assert set(changes) == {
        ("mask-pii", "changed"),
        ("big-orders-need-approval", "removed"),
        ("huge-orders-need-approval", "added"),
    }
    assert "mask:" in changes[("mask-pii", "changed")]
    assert "action" in changes[("huge-orders-need-approval", "added")]


def test_changed_paths_reads_well() -> None:
    assert changed_paths({"a": 1, "b": {"c": 2}}, {"a": 1, "b": {"c": 3}, "d": 4}) == ["b.c: 2 → 3", "d added (4)"]


def _tar(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def test_against_git_ref_exports_the_commit(tmp_path: Path, after: Path) -> None:
    archive = _tar({"proj/syncline.yaml": "kind: Project\nname: old\n", "proj/flows/x.yaml": "not read"})
    calls: list[tuple[str, ...]] = []

    def runner(command: Sequence[str], cwd: Path) -> bytes:
        calls.append(tuple(command))
        assert cwd == after.resolve()
        return b"proj/\n" if "rev-parse" in command else archive

    (tmp_path / "tmp").mkdir()
    folder = export_git("v1.2", after, tmp_path / "tmp", runner)
    assert (folder / "syncline.yaml").read_text().startswith("kind: Project") and folder.name == "proj"
    assert calls == [("git", "rev-parse", "--show-prefix"), ("git", "archive", "--format=tar", "v1.2")]


def test_against_must_exist_and_urls_are_refused(tmp_path: Path) -> None:
    with pytest.raises(UsageError):
        resolve_against(str(tmp_path / "missing"), tmp_path, tmp_path)
    with pytest.raises(UsageError):
        resolve_against("https://syncline.example.com", tmp_path, tmp_path)
    done = syncline("plan", ".", "--against", str(tmp_path / "missing"))
    assert done.returncode == 2 and "no such file" in done.stderr
