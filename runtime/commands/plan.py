"""`syncline plan [PATH] [--against DIR|git:REF] [--format text|json]`: what deploying the project at
PATH over the one at `--against` would change, semantically; exit 1 when a change is breaking.

`--against` is another project folder, or `git:REF` (default `git:HEAD`): that commit of the git
repository PATH belongs to, exported with `git archive` into a temporary folder.
"""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

from runtime.compiler import CheckResult, check_project
from runtime.compiler.diff import Change, diff_projects
from runtime.compiler.loader import find_root
from runtime.errors import UsageError

EXIT_OK, EXIT_BREAKING = 0, 1
GIT_PREFIX = "git:"

Runner = Callable[[Sequence[str], Path], bytes]


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("plan", help="what a deploy would change: flows, triggers, ownership, policies, state machines")
    p.add_argument("path", nargs="?", default=".", metavar="PATH", help="the project to deploy (default: .)")
    p.add_argument(
        "--against",
        default="git:HEAD",
        metavar="DIR|git:REF",
        help="what is deployed now: a project folder, or git:REF of PATH's repository (default: git:HEAD)",
    )
    p.add_argument("--format", choices=["text", "json"], default="text", help="output format")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    path = Path(args.path)
    if not path.exists():
        raise UsageError(f"{args.path}: no such file or folder")
    after = _load(path)
    with tempfile.TemporaryDirectory(prefix="syncline-plan-") as tmp:
        against = resolve_against(args.against, path, Path(tmp))
        before = _load(against)
        assert before.context is not None and after.context is not None
        changes = diff_projects(before.context, after.context)
    if after.errors:
        print(f"note: {args.path} has {len(after.errors)} validation errors; run `syncline validate`", file=sys.stderr)
    breaking = [c for c in changes if c.breaking]
    if args.format == "json":
        print(
            json.dumps(
                {
                    "path": args.path,
                    "against": args.against,
                    "changes": [c.as_dict() for c in changes],
                    "total": len(changes),
                    "breaking": len(breaking),
                },
                indent=2,
            )
        )
    else:
        sys.stdout.write(render_text(changes, args.path, args.against))
    return EXIT_BREAKING if breaking else EXIT_OK


def _load(path: Path) -> CheckResult:
    if path.is_dir() and find_root(path) is None:
        raise UsageError(f"{path}: no project (syncline.yaml) found")
    return check_project(path)


_MARKS = {"added": "+", "removed": "-", "changed": "~"}


def render_text(changes: list[Change], path: str, against: str) -> str:
    lines = [f"plan: {path} against {against}"]
    if not changes:
        lines.append("no changes")
    for change in changes:
        flag = "  [BREAKING]" if change.breaking else ""
        lines.append(f"{_MARKS.get(change.change, '?')} {change.kind} {change.name}: {change.detail}{flag}")
    breaking = sum(1 for c in changes if c.breaking)
    lines.append(f"{len(changes)} changes, {breaking} breaking")
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------ against


def resolve_against(against: str, path: Path, tmp: Path, runner: Runner | None = None) -> Path:
    """The folder of the project to compare with: `against` itself, or a git export of it."""
    if against.startswith(("http://", "https://")):
        raise UsageError("--against URL is not supported yet: give a folder or git:REF")
    if not against.startswith(GIT_PREFIX):
        folder = Path(against)
        if not folder.exists():
            raise UsageError(f"--against {against}: no such file or folder")
        return folder
    ref = against[len(GIT_PREFIX) :] or "HEAD"
    return export_git(ref, path, tmp, runner or _git)


def export_git(ref: str, path: Path, tmp: Path, runner: Runner) -> Path:
    """Extract commit `ref` of the repository holding `path` under `tmp`; the project's folder in it."""
    root = find_root(path)
    folder = (root or path).resolve()
    if folder.is_file():
        folder = folder.parent
    try:
        prefix = runner(["git", "rev-parse", "--show-prefix"], folder).decode().strip()
    except UsageError as exc:
        if "not a git repository" not in str(exc) and "cannot run git" not in str(exc):
            raise
        where = "is not in a git repository" if "not a git repository" in str(exc) else "cannot be read with git"
        raise UsageError(
            f"{folder} {where}, so there is no git:{ref} to compare with; give the deployed project's folder "
            f"instead: syncline plan {path} --against DIR"
        ) from None
    archive = runner(["git", "archive", "--format=tar", ref], folder)
    target = tmp / "against"
    target.mkdir()
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(target, filter="data")
    project = target / prefix if prefix else target
    if not project.is_dir():
        raise UsageError(f"git:{ref} has no folder {prefix!r}")
    return project


def _git(command: Sequence[str], cwd: Path) -> bytes:
    try:
        done = subprocess.run(list(command), cwd=cwd, capture_output=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise UsageError(f"cannot run {' '.join(command)}: {exc}") from exc
    if done.returncode != 0:
        message = done.stderr.decode(errors="replace").strip() or f"exit {done.returncode}"
        raise UsageError(f"{' '.join(command)}: {message}")
    return done.stdout
