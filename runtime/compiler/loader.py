"""Finding a project's files and parsing them into typed documents (no checking across documents).

A project is the folder holding `syncline.yaml`. Given a single YAML file outside any project, that
file alone is the project (handy for fixtures and quick checks); relative paths in it resolve against
its folder.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from runtime.errors import Diagnostic
from runtime.spec.documents import DocumentKinds, ParsedDocument, parse_document
from runtime.spec.project import Project
from runtime.spec.yamlload import YamlLoadError, load_file

PROJECT_FILE = "syncline.yaml"
YAML_SUFFIXES = (".yaml", ".yml")


@dataclass
class ProjectDocuments:
    """Everything parsed from one project, before cross-document checks."""

    root: Path
    project: Project
    project_doc: ParsedDocument | None
    documents: list[ParsedDocument] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)
    # (kind, name) of documents that were reported and could not be parsed ("" when unknown): checks
    # do not report references to them as unknown — one root cause, one error
    broken: set[tuple[str, str]] = field(default_factory=set)

    def of_kind(self, kind: str) -> list[ParsedDocument]:
        return [d for d in self.documents if d.kind == kind]

    def display(self, path: Path) -> str:
        return display_path(path, self.root)


def display_path(path: Path, root: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        try:
            return str(path.resolve().relative_to(root.resolve()))
        except ValueError:
            return str(path)


def find_root(path: Path) -> Path | None:
    """The folder with syncline.yaml at or above `path`."""
    probe = path.resolve()
    if probe.is_file():
        probe = probe.parent
    for candidate in (probe, *probe.parents):
        if (candidate / PROJECT_FILE).is_file():
            return candidate
    return None


def project_files(root: Path, project: Project) -> list[Path]:
    """The YAML files that make up the project, in a stable order."""
    files: list[Path] = []
    folders = [
        project.paths.systems,
        project.paths.governance,
        project.paths.flows,
        project.paths.mappings,
        project.paths.tests,
    ]
    for folder in folders:
        base = root / folder
        if base.is_dir():
            files.extend(sorted(p for p in base.rglob("*") if p.suffix in YAML_SUFFIXES and p.is_file()))
    return files


def load_documents(path: Path, kinds: DocumentKinds) -> ProjectDocuments:
    """Load the project at or above `path`, or the single file `path` when it belongs to none."""
    root = find_root(path)
    if root is not None and path.is_file() and not _belongs(path, root, kinds):
        root = None
    if root is None:
        if path.is_file():
            return _load_files(path.parent.resolve(), [path], kinds, standalone=True)
        result = ProjectDocuments(path.resolve(), Project(name="unnamed"), None)
        result.diagnostics.append(
            Diagnostic.make(
                "SL050",
                f"no {PROJECT_FILE} found in {path} or above",
                str(path),
                0,
                0,
                "run `syncline init DIR` to create a project",
            )
        )
        return result
    return _load_files(root, [root / PROJECT_FILE], kinds, standalone=False)


def _belongs(path: Path, root: Path, kinds: DocumentKinds) -> bool:
    """Whether the file `path` is one of the project's own files (else it is checked on its own)."""
    target = path.resolve()
    if target == (root / PROJECT_FILE).resolve():
        return True
    project = Project(name="probe")
    try:
        docs = load_file(root / PROJECT_FILE)
        if docs and isinstance(docs[0].data, dict):
            parsed, _ = parse_document(docs[0], kinds)
            if parsed is not None and parsed.kind == "Project":
                project = parsed.model
    except YamlLoadError:
        pass
    return any(f.resolve() == target for f in project_files(root, project))


def _load_files(root: Path, first: list[Path], kinds: DocumentKinds, *, standalone: bool) -> ProjectDocuments:
    result = ProjectDocuments(root, Project(name=root.name or "project"), None)
    parsed = _parse_files(first, kinds, root, result)
    projects = [d for d in parsed if d.kind == "Project"]
    for extra in projects[1:]:
        result.diagnostics.append(extra.diag("SL013", "a project has one Project document", ("kind",)))
    if projects:
        result.project_doc = projects[0]
        result.project = projects[0].model
    result.documents.extend(d for d in parsed if d.kind != "Project")
    if not standalone:
        rest = [p for p in project_files(root, result.project) if p.resolve() not in {f.resolve() for f in first}]
        result.documents.extend(d for d in _parse_files(rest, kinds, root, result) if _not_project(d, result))
    return result


def _not_project(doc: ParsedDocument, result: ProjectDocuments) -> bool:
    if doc.kind == "Project":
        result.diagnostics.append(doc.diag("SL013", f"the Project document belongs in {PROJECT_FILE}", ("kind",)))
        return False
    return True


def _parse_files(
    files: Iterable[Path], kinds: DocumentKinds, root: Path, result: ProjectDocuments
) -> list[ParsedDocument]:
    parsed: list[ParsedDocument] = []
    for file in files:
        result.files.append(file)
        shown = display_path(file, root)
        try:
            docs = load_file(file, display_path=shown)
        except YamlLoadError as exc:
            result.diagnostics.extend(exc.diagnostics)
            result.broken.update(_declared_in_text(file))
            continue
        for doc in docs:
            model, diags = parse_document(doc, kinds)
            result.diagnostics.extend(diags)
            if model is not None:
                parsed.append(model)
            elif isinstance(doc.data, dict):
                kind, name = doc.data.get("kind"), doc.data.get("name")
                result.broken.add((str(kind or ""), str(name or "")))
            else:
                result.broken.add(("", ""))
    return parsed


_TOP_KEY_RE = re.compile(r"^(kind|name):[ \t]*['\"]?([^'\"#\n]*?)['\"]?[ \t]*(?:#.*)?$", re.MULTILINE)


def _declared_in_text(file: Path) -> set[tuple[str, str]]:
    """The (kind, name) pairs a file that is not valid YAML seems to declare, read from its top-level
    `kind:` and `name:` lines (per `---` document); ("", "") when nothing can be read."""
    try:
        text = file.read_text(encoding="utf-8", errors="replace")[:1_000_000]
    except OSError:
        return {("", "")}
    found: set[tuple[str, str]] = set()
    for part in re.split(r"(?m)^---[ \t]*$", text):
        keys = {m.group(1): m.group(2).strip() for m in _TOP_KEY_RE.finditer(part)}
        if keys:
            found.add((keys.get("kind", ""), keys.get("name", "")))
    return found or {("", "")}
