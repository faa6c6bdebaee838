"""Import layering, checked on the source with `ast` (every `import`, also inside functions; not those
under `if TYPE_CHECKING:`, which only type checkers read and which never run):

- `runtime/spec/` and `runtime/compiler/` do no network or store access: nothing they import, directly
  or through other Syncline modules, is a network client/server, a database driver, the store, the
  service or a connector;
- `runtime/engine/` imports no service or HTTP code (it reaches systems through the connector
  interface and the store through its base types);
- `connectors/` import only `runtime.connector_api` from the runtime.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from functools import cache
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OURS = ("runtime", "connectors")

NETWORK = (
    "httpx",
    "aiohttp",
    "socket",
    "ssl",
    "http",
    "urllib.request",
    "requests",
    "websockets",
    "uvicorn",
    "starlette",
    "uvloop",
    "httptools",
    "smtplib",
    "ftplib",
)
STORE = ("sqlalchemy", "psycopg", "sqlite3", "runtime.store")
SERVICE = ("runtime.service", "runtime.commands", "runtime.demo", "runtime.cli")
HTTP_CODE = ("httpx", "aiohttp", "http", "urllib.request", "requests", "uvicorn", "starlette", "connectors.http")


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _file_of(module: str, root: Path = REPO) -> Path | None:
    base = root.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


@cache
def direct_imports(module: str, root: Path = REPO) -> frozenset[tuple[str, int]]:
    """(imported module, line) for every import statement in `module`; `from a import b` gives `a.b`
    when b is a module, else `a`."""
    path = _file_of(module, root)
    assert path is not None, module
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[tuple[str, int]] = set()
    for node in _run_nodes(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update((alias.name, node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(anchor + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            if base == "__future__":
                continue
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.add((sub if base.startswith(OURS) and _file_of(sub, root) else base, node.lineno))
    return frozenset(found)


def _run_nodes(tree: ast.AST) -> Iterable[ast.AST]:
    """Every node of a module except the body of `if TYPE_CHECKING:` (its `else` is kept)."""
    todo = [tree]
    while todo:
        node = todo.pop()
        yield node
        if isinstance(node, ast.If) and ast.unparse(node.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING"):
            todo.extend(node.orelse)
            continue
        todo.extend(ast.iter_child_nodes(node))


def _with_parents(module: str) -> Iterable[str]:
    """Importing a.b.c runs a/__init__, a/b/__init__ and a/b/c."""
    parts = module.split(".")
    return (".".join(parts[: i + 1]) for i in range(len(parts)))


def reachable(start: str, root: Path = REPO) -> dict[str, list[str]]:
    """Every module imported from `start`, directly or through Syncline modules, with one import chain."""
    chains: dict[str, list[str]] = {start: [start]}
    todo = [start]
    while todo:
        current = todo.pop()
        for target, line in sorted(direct_imports(current, root)):
            for name in _with_parents(target):
                if name in chains:
                    continue
                chains[name] = [*chains[current][:-1], f"{current}:{line}", name]
                if name.startswith(OURS) and _file_of(name, root):
                    todo.append(name)
    return chains


def _matches(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def _modules(folder: str, root: Path = REPO) -> list[str]:
    return sorted(_module_name(p, root) for p in (root / folder).rglob("*.py"))


def _violations(folders: tuple[str, ...], forbidden: tuple[str, ...], root: Path = REPO) -> list[str]:
    problems = []
    for folder in folders:
        for module in _modules(folder, root):
            for name, chain in reachable(module, root).items():
                if _matches(name, forbidden):
                    problems.append(" -> ".join(chain))
    return sorted(set(problems))


def test_spec_and_compiler_do_no_network_or_store_access() -> None:
    problems = _violations(("runtime/spec", "runtime/compiler"), NETWORK + STORE + SERVICE + ("connectors",))
    assert not problems, "spec/compiler reach network or store code:\n" + "\n".join(problems)


def test_engine_imports_no_service_or_http_code() -> None:
    problems = _violations(("runtime/engine",), SERVICE + HTTP_CODE)
    assert not problems, "engine reaches service/HTTP code:\n" + "\n".join(problems)


def test_connectors_import_only_the_connector_api_from_the_runtime() -> None:
    problems = [
        f"{module}:{line} imports {target}"
        for module in _modules("connectors")
        for target, line in sorted(direct_imports(module))
        if _matches(target, ("runtime",)) and not _matches(target, ("runtime.connector_api",))
    ]
    assert not problems, "connectors may import only runtime.connector_api:\n" + "\n".join(problems)


def test_the_check_follows_imports_through_other_modules(tmp_path: Path) -> None:
    """The checker itself, on a made-up tree: spec -> (relative import) helper -> httpx is reported
    with its chain; a clean module is not."""
    for name, text in {
        "runtime/__init__.py": "",
        "runtime/spec/__init__.py": "",
        "runtime/spec/clean.py": "import json\nfrom . import models\n",
        "runtime/spec/models.py": "from typing import Any\n",
        "runtime/spec/bad.py": "def later():\n    from ..util import helper\n",
        "runtime/spec/typed.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import httpx\n",
        "runtime/spec/typed_else.py": "if TYPE_CHECKING:\n    pass\nelse:\n    import httpx\n",
        "runtime/util/__init__.py": "",
        "runtime/util/helper.py": "import os\nimport httpx\n",
    }.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    problems = _violations(("runtime/spec",), NETWORK, tmp_path)
    assert problems == ["runtime.spec.bad:2 -> runtime.util.helper:2 -> httpx", "runtime.spec.typed_else:4 -> httpx"]
