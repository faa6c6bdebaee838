"""Path confinement: nothing outside the base folder is read, written, listed, moved or deleted."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from connectors.files.paths import is_inside
from runtime.connector_api import ConnectorError
from tests.connectors.files.conftest import Make, call

ACTIONS: list[dict[str, Any]] = [
    {"action": "read"},
    {"action": "write", "data": "pwned"},
    {"action": "append", "data": "pwned"},
    {"action": "move_done"},
    {"action": "move_failed"},
    {"action": "delete"},
]


@pytest.fixture
def outside(project: Path) -> Path:
    """A folder next to the base folder, with a file an attacker would like to reach."""
    path = project / "secret"
    path.mkdir()
    (path / "passwd.txt").write_text("root:x:0:0\n")
    return path


def assert_refused(make: Make, spec: dict[str, Any], shown: str | None, base: Path) -> ConnectorError:
    with pytest.raises(ConnectorError) as caught:
        call(make({"op": {"action": "list"}}), "op", spec)
    error = caught.value
    assert (error.reason, error.error_class) == ("config", "fatal")
    assert str(base.parent) not in str(error)  # no absolute host path in the message
    if shown is not None:
        assert shown in str(error)
    return error


@pytest.mark.parametrize("action", ACTIONS, ids=[a["action"] for a in ACTIONS])
@pytest.mark.parametrize(
    "path",
    ["../secret/passwd.txt", "in/../../secret/passwd.txt", "..", "..\\secret\\passwd.txt"],
)
def test_dot_dot_is_refused(make: Make, base: Path, outside: Path, action: dict[str, Any], path: str) -> None:
    error = assert_refused(make, {**action, "path": path}, None, base)
    assert "'..' is refused" in str(error)
    assert (outside / "passwd.txt").read_text() == "root:x:0:0\n"
    assert sorted(os.listdir(outside)) == ["passwd.txt"]


@pytest.mark.parametrize("action", ACTIONS, ids=[a["action"] for a in ACTIONS])
def test_absolute_paths_are_refused_without_echo(make: Make, base: Path, outside: Path, action: dict[str, Any]) -> None:
    target = str(outside / "passwd.txt")
    error = assert_refused(make, {**action, "path": target}, "absolute paths are refused", base)
    assert target not in str(error)
    assert (outside / "passwd.txt").read_text() == "root:x:0:0\n"


@pytest.mark.parametrize("action", ACTIONS, ids=[a["action"] for a in ACTIONS])
def test_symlink_pointing_out_is_refused(make: Make, base: Path, outside: Path, action: dict[str, Any]) -> None:
    (base / "link.txt").symlink_to(outside / "passwd.txt")
    assert_refused(make, {**action, "path": "link.txt"}, "'link.txt' resolves outside the base directory", base)
    assert (outside / "passwd.txt").read_text() == "root:x:0:0\n"
    assert (base / "link.txt").is_symlink()


@pytest.mark.parametrize("action", ACTIONS, ids=[a["action"] for a in ACTIONS])
def test_symlinked_folder_pointing_out_is_refused(
    make: Make, base: Path, outside: Path, action: dict[str, Any]
) -> None:
    (base / "inbox").symlink_to(outside, target_is_directory=True)
    assert_refused(make, {**action, "path": "inbox/passwd.txt"}, "resolves outside", base)
    assert_refused(make, {**action, "path": "inbox/new.txt"}, "resolves outside", base)
    assert sorted(os.listdir(outside)) == ["passwd.txt"]
    assert (outside / "passwd.txt").read_text() == "root:x:0:0\n"


@pytest.mark.parametrize("action", ACTIONS, ids=[a["action"] for a in ACTIONS])
def test_nul_bytes_are_refused(make: Make, base: Path, action: dict[str, Any]) -> None:
    (base / "a.txt").write_text("a")
    assert_refused(make, {**action, "path": "a.txt\x00.csv"}, "'a.txt\\\\0.csv' holds a NUL byte", base)
    assert (base / "a.txt").read_text() == "a"


@pytest.mark.parametrize("path", ["", "   "])
def test_empty_paths_are_refused(make: Make, base: Path, path: str) -> None:
    assert_refused(make, {"action": "read", "path": path}, "non-empty", base)


def test_symlink_inside_the_base_is_followed(make: Make, base: Path) -> None:
    (base / "real.txt").write_text("inside")
    (base / "alias.txt").symlink_to(base / "real.txt")
    assert call(make({"r": {"action": "read", "path": "alias.txt"}}), "r") == "inside"


def test_base_dir_may_itself_be_a_symlink(make: Make, project: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "a.txt").write_text("ok")
    (project / "linked").symlink_to(elsewhere, target_is_directory=True)
    connector = make({"r": {"action": "read", "path": "a.txt"}}, base_dir="linked")
    assert call(connector, "r") == "ok"


def test_done_folder_symlinked_out_is_refused(make: Make, base: Path, outside: Path) -> None:
    (base / "done").symlink_to(outside, target_is_directory=True)
    (base / "a.csv").write_text("x\n")
    assert_refused(make, {"action": "move_done", "path": "a.csv"}, "resolves outside", base)
    assert (base / "a.csv").exists()
    assert sorted(os.listdir(outside)) == ["passwd.txt"]


@pytest.mark.parametrize("pattern", ["../secret/*", "/etc/*", "*/../../*", "a\x00*"])
def test_list_patterns_are_confined(make: Make, base: Path, outside: Path, pattern: str) -> None:
    assert_refused(make, {"action": "list", "pattern": pattern}, None, base)


def test_list_skips_links_that_point_out(make: Make, base: Path, outside: Path) -> None:
    (base / "a.txt").write_text("a")
    (base / "out.txt").symlink_to(outside / "passwd.txt")
    (base / "outdir").symlink_to(outside, target_is_directory=True)
    assert call(make({"l": {"action": "list", "pattern": "**/*.txt"}}), "l") == ["a.txt"]


def test_is_inside() -> None:
    assert is_inside("/srv/base", "/srv/base")
    assert is_inside("/srv/base/a/b", "/srv/base")
    assert not is_inside("/srv/base2/a", "/srv/base")
    assert not is_inside("/srv", "/srv/base")


@pytest.mark.parametrize("action", [*ACTIONS, {"action": "list"}], ids=[*(a["action"] for a in ACTIONS), "list"])
@pytest.mark.parametrize("depth", [3000, 129])
def test_deeply_nested_paths_are_refused_clearly(make: Make, base: Path, action: dict[str, Any], depth: int) -> None:
    """Observed: a path 3,000 folders deep failed with "unexpected RecursionError" (os.makedirs recurses)."""
    path = "a/" * depth + "x.txt"
    key = "pattern" if action["action"] == "list" else "path"
    error = assert_refused(make, {**action, key: path}, f"is nested {depth + 1} levels deep", base)
    assert "the limit is 128" in str(error) and "Recursion" not in str(error)
    assert list(base.iterdir()) == []


def test_paths_up_to_the_depth_limit_work(make: Make, base: Path) -> None:
    path = "a/" * 127 + "x.txt"
    connector = make({"w": {"action": "write", "path": path, "data": "deep"}})
    assert call(connector, "w")["path"] == path
    assert call(connector, "w", {"action": "read"}) == "deep"
