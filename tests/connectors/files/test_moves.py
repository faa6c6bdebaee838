"""list, move_done, move_failed and delete."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from runtime.connector_api import ConnectorError
from tests.connectors.files.conftest import Make, call

OPS = {
    "list": {"action": "list", "pattern": "*.csv"},
    "done": {"action": "move_done", "path": "{{ input.file }}"},
    "failed": {"action": "move_failed", "path": "{{ input.file }}"},
    "delete": {"action": "delete", "path": "{{ input.file }}"},
}


def test_list_matches_the_pattern_sorted(make: Make, base: Path) -> None:
    for name in ["b.csv", "a.csv", "c.json", ".partial.csv"]:
        (base / name).write_text("x")
    (base / "sub").mkdir()
    (base / "sub" / "d.csv").write_text("x")
    (base / "dir.csv").mkdir()
    connector = make(OPS)
    assert call(connector, "list") == ["a.csv", "b.csv"]
    assert call(connector, "list", {"pattern": "**/*.csv"}) == ["a.csv", "b.csv", "sub/d.csv"]
    assert call(connector, "list", {"pattern": "sub/*"}) == ["sub/d.csv"]
    assert call(connector, "list", {"pattern": "*.xml"}) == []


def test_list_leaves_out_done_and_failed_unless_named(make: Make, base: Path) -> None:
    (base / "a.csv").write_text("x")
    for folder in ("done", "failed"):
        (base / folder).mkdir()
        (base / folder / "old.csv").write_text("x")
    connector = make(OPS)
    assert call(connector, "list", {"pattern": "**/*.csv"}) == ["a.csv"]
    assert call(connector, "list", {"pattern": "done/*.csv"}) == ["done/old.csv"]


def test_list_of_a_missing_base_is_empty(make: Make) -> None:
    assert call(make(OPS, base_dir="not-yet"), "list") == []


def test_move_done_and_failed(make: Make, base: Path) -> None:
    (base / "inbox").mkdir()
    (base / "inbox" / "a.csv").write_text("A")
    (base / "b.csv").write_text("B")
    connector = make(OPS)
    assert call(connector, "done", {"path": "inbox/a.csv"}) == {"path": "done/a.csv", "from": "inbox/a.csv"}
    assert call(connector, "failed", {"path": "b.csv"}) == {"path": "failed/b.csv", "from": "b.csv"}
    assert (base / "done" / "a.csv").read_text() == "A"
    assert (base / "failed" / "b.csv").read_text() == "B"
    assert not (base / "inbox" / "a.csv").exists() and not (base / "b.csv").exists()


def test_move_never_overwrites(make: Make, base: Path) -> None:
    connector = make(OPS, done_dir="archive/ok")
    names = []
    for content in ("1", "2", "3"):
        (base / "a.csv").write_text(content)
        names.append(call(connector, "done", {"path": "a.csv"})["path"])
    assert names == ["archive/ok/a.csv", "archive/ok/a.1.csv", "archive/ok/a.2.csv"]
    assert [(base / name).read_text() for name in names] == ["1", "2", "3"]


def test_move_missing_file_or_folder_fails(make: Make, base: Path) -> None:
    connector = make(OPS)
    with pytest.raises(ConnectorError, match="no such file") as caught:
        call(connector, "done", {"path": "gone.csv"})
    assert (caught.value.reason, caught.value.error_class) == ("status", "fatal")
    (base / "folder").mkdir()
    with pytest.raises(ConnectorError, match="is a folder"):
        call(connector, "failed", {"path": "folder"})


def test_move_dry_run_moves_nothing(make: Make, base: Path) -> None:
    (base / "a.csv").write_text("A")
    assert call(make(OPS), "done", {"path": "a.csv"}, dry_run=True)["path"] == "done/a.csv"
    assert (base / "a.csv").exists() and not (base / "done").exists()


def test_move_of_an_inside_symlink_moves_the_link(make: Make, base: Path) -> None:
    (base / "real.csv").write_text("R")
    (base / "alias.csv").symlink_to(base / "real.csv")
    call(make(OPS), "done", {"path": "alias.csv"})
    assert (base / "done" / "alias.csv").is_symlink()
    assert (base / "real.csv").read_text() == "R"


def test_delete(make: Make, base: Path) -> None:
    (base / "a.csv").write_text("A")
    connector = make(OPS)
    assert call(connector, "delete", {"path": "a.csv"}) == {"path": "a.csv", "deleted": True}
    assert not (base / "a.csv").exists()
    assert call(connector, "delete", {"path": "a.csv"}) == {"path": "a.csv", "deleted": False}
    (base / "d").mkdir()
    with pytest.raises(ConnectorError, match="is a folder"):
        call(connector, "delete", {"path": "d"})
    assert os.path.isdir(base / "d")


def test_unknown_operation_and_invalid_spec(make: Make) -> None:
    with pytest.raises(ConnectorError, match="unknown operation"):
        call(make(OPS), "nope")
    with pytest.raises(ConnectorError, match="invalid operation") as caught:
        call(make(OPS), "list", {"action": "copy"})
    assert caught.value.reason == "config"


def test_messages_pass_through_redact(project: Path, base: Path) -> None:
    import asyncio

    from connectors.files import FileConfig, FileOperation, create
    from runtime.connector_api import CallRequest, ConnectorContext

    context = ConnectorContext(
        connection="drop", project_dir=str(project), redact=lambda text: text.replace("s3cret", "***")
    )
    connector = create(FileConfig(base_dir="data"), {"r": FileOperation(action="read", path="x")}, context)
    with pytest.raises(ConnectorError) as caught:
        asyncio.run(connector.call(CallRequest(operation="r", spec={"path": "s3cret.json"})))
    assert "s3cret" not in str(caught.value) and "'***.json'" in str(caught.value)
