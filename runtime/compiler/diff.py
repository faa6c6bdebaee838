"""A semantic diff of two checked projects: the data behind `syncline plan`.

`diff_projects(before, after)` compares what is deployed (`before`) with what would be deployed
(`after`) and returns `Change`s for flows (added, removed, trigger and steps changed), ownership
(owners of entities and fields, requesters), policy rules, state machines, connections and mappings.
Breaking changes are the ones that hurt what is already running or calling in:

- a flow removed (its trigger stops; parked and held runs have nowhere to go);
- a webhook's path or method changed, or a webhook trigger replaced (callers get 404/405);
- a state machine, a state or a transition removed (entities in that state are stranded, or a state
  loses its way out);
- the owner of an entity or of a field changed (flows written for the old owner become violations,
  and data may now flow the other way).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from runtime.compiler.context import CheckContext
from runtime.compiler.walk import iter_steps
from runtime.spec.documents import ParsedDocument
from runtime.spec.governance import EntityOwnership
from runtime.step_registry import step_type_of
from runtime.trigger_registry import default_trigger_registry

_MAX_SHOWN = 60


@dataclass(frozen=True)
class Change:
    kind: str  # flow | trigger | step | ownership | policy | state_machine | connection | mapping
    name: str
    change: str  # added | removed | changed
    detail: str
    breaking: bool = False

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def diff_projects(before: CheckContext, after: CheckContext) -> list[Change]:
    changes: list[Change] = []
    changes += _flows(before.named("Flow"), after.named("Flow"))
    changes += _ownership(_owned(before), _owned(after))
    changes += _policies(_rules(before), _rules(after))
    changes += _machines(before.named("StateMachine"), after.named("StateMachine"))
    changes += _connections(before.named("Connection"), after.named("Connection"))
    changes += _mappings(before.named("Mapping"), after.named("Mapping"))
    return changes


# ------------------------------------------------------------------------------------- helpers


def _dump(model: Any) -> Any:
    """Every field, defaults included: `mode: async` written out or not is the same flow."""
    return model.model_dump(mode="json", by_alias=True)


def _show(value: Any) -> str:
    text = value if isinstance(value, str) else repr(value) if not isinstance(value, dict | list) else str(value)
    return text if len(text) <= _MAX_SHOWN else text[: _MAX_SHOWN - 1] + "…"


def changed_paths(old: Any, new: Any, prefix: str = "") -> list[str]:
    """Readable differences between two JSON values: `a.b: x → y`, `a.c added`, `a.d removed`."""
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[str] = []
        for key in sorted(set(old) | set(new), key=str):
            where = f"{prefix}.{key}" if prefix else str(key)
            if key not in old:
                out.append(f"{where} added ({_show(new[key])})")
            elif key not in new:
                out.append(f"{where} removed (was {_show(old[key])})")
            else:
                out += changed_paths(old[key], new[key], where)
        return out
    if old != new:
        return [f"{prefix or 'value'}: {_show(old)} → {_show(new)}"]
    return []


# --------------------------------------------------------------------------------------- flows


def _trigger_kind(dump: dict[str, Any]) -> str:
    return next(iter(dump), "?")


def _takes_http(kind: str) -> bool:
    """Whether a trigger kind takes HTTP requests at a path (`webhook`, a plugin's kind with `http`):
    changing its path or method breaks its callers."""
    found = default_trigger_registry().get(kind)
    return found is not None and found.http is not None


def _trigger_summary(dump: dict[str, Any]) -> str:
    kind = _trigger_kind(dump)
    spec = dump.get(kind) or {}
    if _takes_http(kind) and "path" in spec:
        return f"{kind} {spec.get('method', 'POST')} {spec.get('path')}"
    if kind == "schedule":
        return f"schedule {spec.get('cron') or 'every ' + str(spec.get('every'))}"
    if kind == "poll":
        return f"poll {spec.get('call')} every {spec.get('every')}"
    if kind == "event":
        return f"event {spec.get('name')}"
    return kind


def _flows(before: dict[str, ParsedDocument], after: dict[str, ParsedDocument]) -> list[Change]:
    changes: list[Change] = []
    for name in sorted(set(before) | set(after)):
        if name not in after:
            trigger = _trigger_summary(_dump(before[name].model)["trigger"])
            changes.append(
                Change(
                    "flow",
                    name,
                    "removed",
                    f"flow removed ({trigger} stops; its held and parked runs are orphaned)",
                    True,
                )
            )
        elif name not in before:
            trigger = _trigger_summary(_dump(after[name].model)["trigger"])
            changes.append(Change("flow", name, "added", f"new flow ({trigger})"))
        else:
            changes += _flow_changes(name, before[name], after[name])
    return changes


def _flow_changes(name: str, old_doc: ParsedDocument, new_doc: ParsedDocument) -> list[Change]:
    old, new = _dump(old_doc.model), _dump(new_doc.model)
    changes = _trigger_changes(name, old.get("trigger", {}), new.get("trigger", {}))
    old_steps = {ref.id: ref for ref in iter_steps(old_doc.model)}
    new_steps = {ref.id: ref for ref in iter_steps(new_doc.model)}
    for sid in [s for s in old_steps if s not in new_steps]:
        changes.append(Change("step", f"{name}.{sid}", "removed", f"step {sid!r} ({old_steps[sid].kind}) removed"))
    for sid in [s for s in new_steps if s not in old_steps]:
        changes.append(Change("step", f"{name}.{sid}", "added", f"step {sid!r} ({new_steps[sid].kind}) added"))
    for sid in [s for s in new_steps if s in old_steps]:
        diffs = changed_paths(_step_body(old_steps[sid].step), _step_body(new_steps[sid].step))
        if diffs:
            changes.append(Change("step", f"{name}.{sid}", "changed", f"step {sid!r}: " + "; ".join(diffs)))
    order_old = [s for s in old_steps if s in new_steps]
    order_new = [s for s in new_steps if s in old_steps]
    if order_old != order_new:
        changes.append(Change("step", name, "changed", "steps reordered: " + ", ".join(order_new)))
    rest_old = {k: v for k, v in old.items() if k not in ("trigger", "steps")}
    rest_new = {k: v for k, v in new.items() if k not in ("trigger", "steps")}
    diffs = changed_paths(rest_old, rest_new)
    if diffs:
        changes.append(Change("flow", name, "changed", "; ".join(diffs)))
    return changes


def _step_body(step: Any) -> Any:
    body = _dump(step)
    nested = {"steps", "compensate"} | {child.at[0] for child in step_type_of(step).handler.children(step) if child.at}
    for key in nested:
        body.pop(key, None)  # nested steps are compared on their own
    return body


def _trigger_changes(name: str, old: dict[str, Any], new: dict[str, Any]) -> list[Change]:
    if old == new:
        return []
    old_kind, new_kind = _trigger_kind(old), _trigger_kind(new)
    if old_kind != new_kind:
        return [
            Change(
                "trigger",
                name,
                "changed",
                f"trigger {_trigger_summary(old)} → {_trigger_summary(new)}",
                _takes_http(old_kind),
            )
        ]
    changes: list[Change] = []
    old_spec, new_spec = old.get(old_kind) or {}, new.get(new_kind) or {}
    if _takes_http(old_kind):
        for key, default in (("path", None), ("method", "POST")):
            if old_spec.get(key, default) != new_spec.get(key, default):
                changes.append(
                    Change(
                        "trigger",
                        name,
                        "changed",
                        f"{old_kind} {key} {old_spec.get(key, default)} → {new_spec.get(key, default)} "
                        "(callers of the old one get an error)",
                        True,
                    )
                )
        old_spec = {k: v for k, v in old_spec.items() if k not in ("path", "method")}
        new_spec = {k: v for k, v in new_spec.items() if k not in ("path", "method")}
    diffs = changed_paths(old_spec, new_spec, old_kind)
    if diffs:
        changes.append(Change("trigger", name, "changed", "; ".join(diffs)))
    return changes


# ----------------------------------------------------------------------------------- ownership


def _owned(ctx: CheckContext) -> dict[str, EntityOwnership]:
    owned: dict[str, EntityOwnership] = {}
    for doc in ctx.named("Ownership").values():
        for entity, spec in doc.model.entities.items():
            owned.setdefault(entity, spec)
    return owned


def _ownership(before: dict[str, EntityOwnership], after: dict[str, EntityOwnership]) -> list[Change]:
    changes: list[Change] = []
    for entity in sorted(set(before) | set(after)):
        old, new = before.get(entity), after.get(entity)
        if new is None:
            assert old is not None
            changes.append(
                Change("ownership", entity, "removed", f"{entity} no longer has a declared owner ({old.owner})")
            )
            continue
        if old is None:
            changes.append(Change("ownership", entity, "added", f"{entity} owned by {new.owner}"))
            continue
        if old.owner != new.owner:
            changes.append(
                Change("ownership", entity, "changed", f"owner of {entity}: {old.owner} → {new.owner}", True)
            )
        for field_name in sorted(set(old.fields) | set(new.fields)):
            was, now = old.fields.get(field_name, old.owner), new.fields.get(field_name, new.owner)
            if was != now:
                changes.append(
                    Change(
                        "ownership",
                        f"{entity}.{field_name}",
                        "changed",
                        f"owner of {entity}.{field_name}: {was} → {now}",
                        True,
                    )
                )
        gone = [r for r in old.requesters if r not in new.requesters]
        came = [r for r in new.requesters if r not in old.requesters]
        if gone or came:
            parts = [f"+{r}" for r in came] + [f"-{r}" for r in gone]
            changes.append(Change("ownership", entity, "changed", f"requesters of {entity}: " + ", ".join(parts)))
    return changes


# ------------------------------------------------------------------------------------ policies


def _rules(ctx: CheckContext) -> dict[str, tuple[str, Any]]:
    rules: dict[str, tuple[str, Any]] = {}
    for doc in ctx.named("Policy").values():
        for rule in doc.model.rules:
            rules.setdefault(rule.id, (doc.name, _dump(rule)))
    return rules


def _policies(before: dict[str, tuple[str, Any]], after: dict[str, tuple[str, Any]]) -> list[Change]:
    changes: list[Change] = []
    for rule_id in sorted(set(before) | set(after)):
        if rule_id not in after:
            changes.append(Change("policy", rule_id, "removed", f"rule {rule_id!r} of {before[rule_id][0]!r} removed"))
        elif rule_id not in before:
            policy, body = after[rule_id]
            shown = [k for k, v in body.items() if k not in ("id", "description", "match", "severity") and v]
            what = ", ".join(shown) or "no effect"
            changes.append(Change("policy", rule_id, "added", f"rule {rule_id!r} of {policy!r} added ({what})"))
        else:
            diffs = changed_paths(before[rule_id][1], after[rule_id][1])
            if diffs:
                changes.append(Change("policy", rule_id, "changed", f"rule {rule_id!r}: " + "; ".join(diffs)))
    return changes


# ------------------------------------------------------------------------------ state machines


def _machines(before: dict[str, ParsedDocument], after: dict[str, ParsedDocument]) -> list[Change]:
    changes: list[Change] = []
    for name in sorted(set(before) | set(after)):
        if name not in after:
            states = ", ".join(sorted(before[name].model.states()))
            changes.append(
                Change(
                    "state_machine", name, "removed", f"state machine removed: entities in {states} are stranded", True
                )
            )
            continue
        if name not in before:
            changes.append(
                Change("state_machine", name, "added", f"state machine for {after[name].model.entity} added")
            )
            continue
        changes += _machine_changes(name, before[name].model, after[name].model)
    return changes


def _edges(transitions: dict[str, list[str]]) -> set[tuple[str, str]]:
    return {(a, b) for a, targets in transitions.items() for b in targets}


def _machine_changes(name: str, old: Any, new: Any) -> list[Change]:
    changes: list[Change] = []
    old_states, new_states = old.states(), new.states()
    for state in sorted(old_states - new_states):
        changes.append(
            Change("state_machine", name, "changed", f"state {state!r} removed: entities in it are stranded", True)
        )
    for state in sorted(new_states - old_states):
        changes.append(Change("state_machine", name, "changed", f"state {state!r} added"))
    old_edges, new_edges = _edges(old.transitions), _edges(new.transitions)
    for a, b in sorted(old_edges - new_edges):
        if a in new_states and b in new_states:  # else reported with the state
            changes.append(Change("state_machine", name, "changed", f"transition {a} → {b} removed", True))
    for state in sorted(old_states & new_states):
        if old.transitions.get(state) and not new.transitions.get(state):
            changes.append(
                Change(
                    "state_machine",
                    name,
                    "changed",
                    f"state {state!r} has no way out anymore: entities stop there",
                    True,
                )
            )
    for a, b in sorted(new_edges - old_edges):
        changes.append(Change("state_machine", name, "changed", f"transition {a} → {b} added"))
    if old.initial != new.initial:
        changes.append(Change("state_machine", name, "changed", f"initial state {old.initial} → {new.initial}"))
    if old.entity != new.entity:
        changes.append(Change("state_machine", name, "changed", f"entity {old.entity} → {new.entity}"))
    if old.park_timeout != new.park_timeout:
        changes.append(
            Change("state_machine", name, "changed", f"park_timeout {old.park_timeout} → {new.park_timeout}")
        )
    return changes


# ------------------------------------------------------------------------- connections, mappings


def _connections(before: dict[str, ParsedDocument], after: dict[str, ParsedDocument]) -> list[Change]:
    changes: list[Change] = []
    for name in sorted(set(before) | set(after)):
        if name not in after:
            changes.append(Change("connection", name, "removed", f"connection {name!r} removed"))
        elif name not in before:
            changes.append(Change("connection", name, "added", f"connection {name!r} ({after[name].model.type}) added"))
        else:
            diffs = changed_paths(_dump(before[name].model), _dump(after[name].model))
            if diffs:
                changes.append(Change("connection", name, "changed", "; ".join(diffs)))
    return changes


def _mappings(before: dict[str, ParsedDocument], after: dict[str, ParsedDocument]) -> list[Change]:
    changes: list[Change] = []
    for name in sorted(set(before) | set(after)):
        if name not in after:
            changes.append(Change("mapping", name, "removed", f"mapping {name!r} removed"))
        elif name not in before:
            changes.append(Change("mapping", name, "added", f"mapping {name!r} added"))
        else:
            old, new = _dump(before[name].model), _dump(after[name].model)
            old.pop("tests", None)
            new.pop("tests", None)
            diffs = changed_paths(old, new)
            if diffs:
                changes.append(Change("mapping", name, "changed", "; ".join(diffs)))
    return changes
