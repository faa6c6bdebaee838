"""The settings and secrets a project needs before it can serve, as far as its files tell.

Statically knowable are `secret('NAME')` and `env('NAME')` calls with a literal name in a Connection
(its `config` and `operations`) and in the trigger of a kind taking HTTP requests (a webhook's `auth`:
its signature secret; any kind declaring `http`), where no fallback is given: an
`env('NAME', x)` or an `env('NAME') | default(x)` has one; `secret()` never does. Names computed at
run time, references in steps and references under a fallback are not reported.

`required_settings(docs)` lists them with the position of the string that names them;
`missing_settings(required, secret, env)` keeps the ones the resolvers do not know and reports each
as SL052, once per Connection (a preset's account setting, substituted into its config, is reported
under `account`). The resolvers are handed in: nothing here reads the environment or a secret store itself.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

from jinja2 import nodes

from runtime.compiler.expressions import templated_strings
from runtime.compiler.loader import ProjectDocuments
from runtime.errors import Diagnostic
from runtime.expr.errors import CompileError
from runtime.expr.parsing import JinjaParser
from runtime.spec.documents import ParsedDocument, format_loc
from runtime.spec.yamlload import Loc
from runtime.trigger_registry import default_trigger_registry

CODE = "SL052"
Resolver = Callable[[str], Any]


@dataclass(frozen=True)
class Requirement:
    """One secret or setting a connection or webhook cannot work without."""

    kind: Literal["secret", "setting"]
    name: str
    needed_by: str
    """`connection crm (config.auth.token)`, `the webhook of flow orders (trigger.webhook.auth.secret)`."""
    path: str
    line: int
    col: int

    def describe(self) -> str:
        return f"{self.kind} {self.name} (needed by {self.needed_by})"

    def diagnostic(self) -> Diagnostic:
        if self.kind == "secret":
            hint = f"set the environment variable {self.name} or write the file $SYNCLINE_SECRETS_DIR/{self.name}"
        else:
            hint = f"set the environment variable {self.name}, or give a fallback: env('{self.name}', '...')"
        message = f"{self.kind} '{self.name}' is not set: needed by {self.needed_by}"
        return Diagnostic.make(CODE, message, self.path, self.line, self.col, hint)


def required_settings(docs: ProjectDocuments) -> list[Requirement]:
    """Every statically known secret and setting of the project's connections and webhooks."""
    parser = JinjaParser()
    found: list[Requirement] = []
    for doc in docs.documents:
        if doc.kind == "Connection":
            named: list[tuple[Loc, Requirement]] = []
            for loc, text in _strings(doc.source.data, ()):
                named += [(loc, r) for r in _requirements(parser, doc, loc, text, f"connection {doc.name}")]
            found += _once(named)
        elif doc.kind == "Flow":
            http = _http_trigger(doc.source.data.get("trigger") if isinstance(doc.source.data, dict) else None)
            if http is not None:  # what its intake checks requests with (a webhook's signature secret)
                key, spec = http
                for loc, text in _strings(spec, ("trigger", key)):
                    found += _requirements(parser, doc, loc, text, f"the {key} of flow {doc.name}")
    return found


def _http_trigger(trigger: Any) -> tuple[str, dict[str, Any]] | None:
    """(kind, spec) of a flow's trigger mapping when its kind takes HTTP requests (declares `http`)."""
    if not isinstance(trigger, dict) or len(trigger) != 1:
        return None
    key, spec = next(iter(trigger.items()))
    kind = default_trigger_registry().get(key) if isinstance(key, str) else None
    return (key, spec) if kind is not None and kind.http is not None and isinstance(spec, dict) else None


def missing_settings(required: list[Requirement], secret: Resolver, env: Resolver) -> list[Diagnostic]:
    """SL052 for each requirement its resolver does not answer (one per reference)."""
    return [r.diagnostic() for r in unresolved(required, secret, env)]


def unresolved(required: list[Requirement], secret: Resolver, env: Resolver) -> list[Requirement]:
    """The requirements whose secret or setting is not set."""
    return [r for r in required if (secret if r.kind == "secret" else env)(r.name) is None]


def _once(named: list[tuple[Loc, Requirement]]) -> list[Requirement]:
    """One requirement per secret or setting of a Connection. A preset substitutes its `account` settings into
    its `config`, so the same name is met under both: the one under `account` (what the project sets) is kept."""
    chosen: dict[tuple[str, str], tuple[Loc, Requirement]] = {}
    for loc, requirement in named:
        key = (requirement.kind, requirement.name)
        if key not in chosen or (loc[:1] == ("account",) and chosen[key][0][:1] != ("account",)):
            chosen[key] = (loc, requirement)
    return [requirement for _loc, requirement in chosen.values()]


def _strings(data: Any, loc: Loc) -> Iterator[tuple[Loc, str]]:
    for here, text, _condition in templated_strings(data, loc):
        yield here, text


def _requirements(parser: JinjaParser, doc: ParsedDocument, loc: Loc, text: str, owner: str) -> list[Requirement]:
    try:
        tree = parser.template(text)
    except CompileError:
        return []  # validate reports the syntax error itself
    with_fallback = {
        id(f.node) for f in tree.find_all(nodes.Filter) if f.name in ("default", "d") and type(f.node) is nodes.Call
    }
    line, col = doc.pos(loc)
    found: list[Requirement] = []
    for call in tree.find_all(nodes.Call):
        if type(call.node) is not nodes.Name or call.node.name not in ("secret", "env") or call.dyn_args is not None:
            continue
        if not call.args or type(call.args[0]) is not nodes.Const or not isinstance(call.args[0].value, str):
            continue  # a computed name: not known before the run
        is_env = call.node.name == "env"
        if is_env and (len(call.args) > 1 or call.kwargs or id(call) in with_fallback):
            continue
        name = call.args[0].value
        if any(r.name == name for r in found):
            continue
        found.append(
            Requirement("setting" if is_env else "secret", name, f"{owner} ({format_loc(loc)})", doc.path, line, col)
        )
    return found
