"""`syncline run`, `replay --dry-run`, `runs show` and `dlq show` say what happened (issue 9, item 3):
a repeated idempotency key is reported (with the run, its status and how to replay it), `--new` forces
a fresh run, a dry run that cannot complete fails with the reason, and error text is never cut."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from runtime.cli import main
from tests.service.harness import Sink, write_project

FLOW = """
trigger:
  webhook: {path: /hooks/orders, idempotency_key: "{{ input.id }}"}
steps:
  - id: customer
    call: sink.items
    with: {since: "{{ input.id }}"}
  - id: invoice
    call: sink.post
    with: {path: invoices, body: {order: "{{ input.id }}", ledger: "{{ env('LEDGER_ID') }}"}}
"""


@pytest.fixture(scope="module")
def sink_server() -> Iterator[Sink]:
    server = Sink().start()
    yield server
    server.stop()


@pytest.fixture
def sink(sink_server: Sink) -> Sink:
    sink_server.reset()
    return sink_server


@pytest.fixture
def project(tmp_path: Path, sink: Sink, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, str]:
    monkeypatch.setenv("LEDGER_ID", "L-7")
    root = write_project(tmp_path / "p", sink.url, {"orders": FLOW})
    (root / "order.json").write_text(json.dumps({"id": "A-1", "total": "19.00"}))
    return root, f"sqlite:///{tmp_path / 'ops.db'}"


def syncline(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def _run(capsys: pytest.CaptureFixture[str], root: Path, store: str, *extra: str) -> tuple[int, str, str]:
    return syncline(
        capsys, "run", "orders", "--input", str(root / "order.json"), "--project", str(root), "--store", store, *extra
    )


def _dead_letter(capsys: pytest.CaptureFixture[str], sink: Sink, root: Path, store: str) -> str:
    sink.rule("/invoices", status=500, body={"error": "ledger locked for period 2026-12", "code": "LOCKED"})
    code, out, err = _run(capsys, root, store, "--format", "json")
    assert code == 1, out + err
    report = json.loads(out)
    assert report["run"]["status"] == "dead_lettered"
    return str(report["run"]["id"])


def test_a_key_that_already_has_a_run_is_reported_not_silently_shown(
    capsys: pytest.CaptureFixture[str], sink: Sink, project: tuple[Path, str]
) -> None:
    root, store = project
    first = _dead_letter(capsys, sink, root, store)
    posts = len(sink.on("/invoices"))

    code, out, err = _run(capsys, root, store)
    assert code == 1
    assert "nothing was run" in err and "idempotency key 'A-1' already has run " + first in err
    assert "(status dead_lettered)" in err
    assert f"syncline replay {first} --project {root} --store {store}" in err
    assert "--new" in err
    assert out.startswith(f"run {first} ")
    assert len(sink.on("/invoices")) == posts  # nothing was sent again

    sink.rule("/invoices", status=201, body={"id": "INV-9"})
    code, out, err = _run(capsys, root, store, "--new", "--format", "json")
    assert code == 0, out + err
    fresh = json.loads(out)
    assert fresh["run"]["id"] != first and fresh["run"]["status"] == "succeeded"
    assert fresh["existing_run"] is False
    assert fresh["run"]["idempotency_key"] is None  # the key stays with the first run
    assert len(sink.on("/invoices")) == posts + 1

    # the key still leads to the first run, not to the forced one
    code, out, err = _run(capsys, root, store)
    assert code == 1 and f"already has run {first}" in err


def test_replay_dry_run_lists_what_is_skipped_and_what_runs_again(
    capsys: pytest.CaptureFixture[str], sink: Sink, project: tuple[Path, str]
) -> None:
    root, store = project
    run_id = _dead_letter(capsys, sink, root, store)
    where = ("--project", str(root), "--store", store)

    code, out, err = syncline(capsys, "replay", run_id, "--dry-run", *where, "--format", "json")
    assert code == 0, out + err
    whole = json.loads(out)
    assert (whole["skipped"], whole["rerun"]) == (["customer"], ["invoice"])
    assert [c["operation"] for c in whole["reads"]] == []
    assert [c["operation"] for c in whole["side_effects"]] == ["sink.post"]
    assert whole["completes"] is True and whole["problem"] is None

    code, out, err = syncline(capsys, "replay", run_id, "--dry-run", "--from-step", "customer", *where)
    assert code == 0, out + err
    assert "skipped (done in the original run): none\n" in out
    assert "run again: customer, invoice\n" in out
    assert "reads it made:\n  sink.items " in out
    assert "side effects it would cause:\n  sink.post " in out


def test_a_replay_dry_run_that_cannot_complete_exits_1_with_the_reason(
    capsys: pytest.CaptureFixture[str], sink: Sink, project: tuple[Path, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    root, store = project
    run_id = _dead_letter(capsys, sink, root, store)
    monkeypatch.delenv("LEDGER_ID")
    posts = len(sink.on("/invoices"))

    code, out, err = syncline(capsys, "replay", run_id, "--dry-run", "--project", str(root), "--store", store)
    assert code == 1, out + err
    assert "side effects it would cause: none" in out
    assert "it would not complete: the replay would end dead_lettered: step 'invoice' fails:" in out
    assert "LEDGER_ID" in out and "LEDGER_ID" in err
    assert len(sink.on("/invoices")) == posts


LONG = (
    "the posting period 2026-12 is locked by the month-end close; ask the finance team to reopen it "
    "or post into 2027-01, then replay this invoice — reference LEDGER-LOCK-4471 in the ticket"
)


def _flat(text: str) -> str:
    return " ".join(text.split())


def test_error_text_is_wrapped_never_cut_and_the_dead_letter_names_the_failure(
    capsys: pytest.CaptureFixture[str], sink: Sink, project: tuple[Path, str]
) -> None:
    root, store = project
    sink.rule("/invoices", status=500, body={"error": LONG, "code": "LOCKED"})
    code, out, err = _run(capsys, root, store)
    assert code == 1
    assert LONG in _flat(out) and "…" not in out and "..." not in out.split("calls:")[0]
    steps, _, rest = out.partition("\ncalls:\n")
    error = rest[rest.index("\nerror: ") :]
    assert all(len(line) <= 100 for line in (steps + error).splitlines()), out
    run_id = out.split()[1]

    where = ("--project", str(root), "--store", store)
    code, out, err = syncline(capsys, "dlq", "list", *where, "--format", "json")
    (letter,) = json.loads(out)
    assert letter["reason"].startswith('HTTP 500 from sink.post: {"error":"the posting period 2026-12')
    assert len(letter["reason"]) <= 400

    code, out, err = syncline(capsys, "dlq", "list", *where)
    assert f"{run_id}  " in out and "HTTP 500 from sink.post: " in out

    for command in ("dlq", "runs"):
        code, out, err = syncline(capsys, command, "show", run_id, *where)
        assert code == 0, err
        assert LONG in _flat(out) and '"code":"LOCKED"' in out
        assert "dead letter: HTTP 500 from sink.post:" in out
