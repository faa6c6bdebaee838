"""`syncline replay` refuses a run that has not ended (it may still act: a retry, a timer, an approval)
with the same stable reason the admin API answers, and a run that ended is replayed."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from runtime.cli import main
from runtime.store.base import NewRun, RunStatus
from runtime.store.factory import open_store
from tests.service.harness import write_project

FLOW = """
trigger:
  webhook: {path: /hooks/noop}
steps:
  - id: done
    set: {ok: true}
"""


def _seed(root: Path, status: RunStatus) -> tuple[str, str]:
    url = f"sqlite:///{root / 'ops.db'}"

    async def create() -> str:
        store = open_store(url, root)
        await store.open()
        try:
            created = await store.create_run(NewRun(flow="noop", input={}, status=status, due_at=None), now=1.0)
            return created.run.id
        finally:
            await store.close()

    return url, asyncio.run(create())


@pytest.mark.parametrize("status", ["queued", "running", "retrying", "waiting", "held"])
def test_replay_refuses_a_run_that_has_not_ended(
    tmp_path: Path, status: RunStatus, capsys: pytest.CaptureFixture[str]
) -> None:
    root = write_project(tmp_path / "p", "http://127.0.0.1:9", {"noop": FLOW})
    url, run_id = _seed(root, status)
    code = main(["replay", run_id, "--project", str(root), "--store", url])
    err = capsys.readouterr().err
    assert code == 1, err
    assert "run_not_ended" in err and f"is {status}" in err, err


def test_replay_of_an_ended_run_goes_ahead(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = write_project(tmp_path / "p", "http://127.0.0.1:9", {"noop": FLOW})
    url, run_id = _seed(root, "failed")
    code = main(["replay", run_id, "--project", str(root), "--store", url, "--format", "json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert '"succeeded"' in captured.out
