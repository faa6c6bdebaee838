"""`syncline validate` on file triggers: the kind is installed, its options are checked with
positions, and a connection whose connector offers no folder is refused (SL047)."""

from __future__ import annotations

from pathlib import Path

from runtime.compiler import check_project
from tests.triggers.trigger_project import trigger_project

FILES = """\
kind: Connection
name: drop
type: file
system: bank
config: {base_dir: data/drop}
"""


def _project(root: Path, trigger: str) -> Path:
    return trigger_project(root, "file", trigger, ("drop", FILES))


def test_file_trigger_on_a_file_connection_validates(tmp_path: Path) -> None:
    result = check_project(_project(tmp_path, "{connection: drop, pattern: '*.csv', per: record, batch: 100}"))
    assert not result.errors, result.errors


def test_a_connection_without_a_folder_is_refused_with_its_position(tmp_path: Path) -> None:
    result = check_project(_project(tmp_path, "{connection: api, pattern: '*.csv'}"))
    (error,) = result.errors
    assert error.code == "SL047"
    assert "connection 'api' is of type 'http', which provides no folder" in error.message
    assert error.line == 4 and error.path.endswith("f.yaml")
    assert "'file'" in (error.hint or "")


def test_bad_options_are_reported_at_the_trigger(tmp_path: Path) -> None:
    result = check_project(_project(tmp_path, "{connection: drop, format: fixed_width, per: line}"))
    messages = " ".join(e.message for e in result.errors)
    assert "per" in messages and all(e.line == 4 for e in result.errors), result.errors
