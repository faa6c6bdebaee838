"""Ownership checks (`kind: Ownership`): which system may write which entity fields, and update cycles.

For every write (`CallSite` with a write effect) the flow's `source.system` is the writer and the
connection's system the target. Per field (or for the whole entity when the fields are unknown) the
owner is the field-level owner, else the entity owner:

- the writer is the owner: allowed (the owner's own data, into the owner or propagated elsewhere);
- target is the owner: allowed for a declared requester, but only for fields no declaration assigns
  (`fields:`): a field declared as the owner's own (`credit_status: erp`) is written only from the
  owner's data. Unknown fields count as the whole entity, so a requester's write of unknown fields
  is refused when the entity declares fields the requester does not own;
- target is another system: propagation, allowed only with the owner's data (writer == owner).

Anything else is SL100, one diagnostic per step listing the fields. Per entity, the writes form a
system graph (writer → target); a cycle along which some field (or an unknown set of fields) travels
the whole way is an update loop that field ownership does not break (SL101). Also: a flow writing an
owned entity without `source` (SL102), an entity owned in two documents (SL103), and systems the
Ownership names that no connection or flow knows but that are close to one that does (SL104, a typo).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from runtime.compiler.callsites import CallSite, all_call_sites
from runtime.compiler.context import CheckContext
from runtime.compiler.references import did_you_mean
from runtime.spec.documents import ParsedDocument
from runtime.spec.governance import EntityOwnership, Ownership


@dataclass(frozen=True)
class OwnedEntity:
    name: str
    spec: EntityOwnership
    doc: ParsedDocument

    def owner_of(self, field_name: str) -> str:
        return self.spec.fields.get(field_name, self.spec.owner)


@dataclass(frozen=True)
class Decision:
    """The verdict for a group of fields with one owner (fields None: the entity as a whole)."""

    fields: tuple[str, ...] | None
    owner: str
    allowed: bool
    reason: str
    declared: bool = False  # the fields are declared as the owner's own (`fields:`), not by default

    def as_dict(self) -> dict[str, object]:
        return {
            "fields": list(self.fields) if self.fields is not None else None,
            "owner": self.owner,
            "allowed": self.allowed,
            "reason": self.reason,
        }


def ownership_index(ctx: CheckContext, *, report: bool = False) -> dict[str, OwnedEntity]:
    """Entity → ownership across every Ownership document (the first declaration wins)."""
    index: dict[str, OwnedEntity] = {}
    for doc in ctx.named("Ownership").values():
        model: Ownership = doc.model
        for entity, spec in model.entities.items():
            first = index.get(entity)
            if first is not None:
                if report:
                    ctx.report(
                        doc,
                        "SL103",
                        f"entity {entity!r} already has an owner ({first.spec.owner}) in Ownership "
                        f"{first.doc.name!r} at {first.doc.path}:{first.doc.pos(('entities', entity))[0]}",
                        ("entities", entity),
                        key=True,
                    )
                continue
            index[entity] = OwnedEntity(entity, spec, doc)
    return index


def decide(owned: OwnedEntity, target: str, writer: str, fields: frozenset[str] | None) -> list[Decision]:
    """Why each field of a write to `target` with `writer`'s data is allowed or not."""
    if fields is None:
        allowed, reason = _verdict(owned, owned.spec.owner, target, writer, declared=False)
        others = sorted(name for name, owner in owned.spec.fields.items() if owner != writer)
        if allowed and writer != owned.spec.owner and others:
            reason = (
                f"the fields are unknown, so the write counts for the whole entity, which would overwrite "
                f"{', '.join(others)}, declared as owned by {', '.join(sorted({owned.owner_of(n) for n in others}))}"
            )
            return [Decision(None, owned.spec.owner, False, reason, declared=True)]
        return [Decision(None, owned.spec.owner, allowed, reason)]
    groups: dict[tuple[str, bool], list[str]] = defaultdict(list)
    for name in sorted(fields):
        groups[(owned.owner_of(name), name in owned.spec.fields)].append(name)
    decisions: list[Decision] = []
    for (owner, declared), names in groups.items():
        allowed, reason = _verdict(owned, owner, target, writer, declared=declared)
        decisions.append(Decision(tuple(names), owner, allowed, reason, declared=declared))
    return decisions


def _verdict(owned: OwnedEntity, owner: str, target: str, writer: str, *, declared: bool) -> tuple[bool, str]:
    if target == owner:
        if writer == owner:
            return True, f"{owner} is the owner and the data is its own"
        if writer in owned.spec.requesters:
            if declared:
                return False, (
                    f"{writer} is a requester of {owned.name}, but these fields are declared as the owner "
                    f"{owner}'s own: a requester writes the fields it owns and undeclared ones, never the owner's"
                )
            return True, f"{writer} is a declared requester of {owned.name} and writes into the owner {owner}"
        return False, f"writing into the owner {owner} needs {writer} among {owned.name}'s requesters"
    if writer == owner:
        return True, f"propagation of the owner's ({owner}) data to {target}"
    return False, f"only the owner's ({owner}) data may be propagated to {target}, this data comes from {writer}"


def check_ownership(ctx: CheckContext) -> None:
    index = ownership_index(ctx, report=True)
    if not index:
        return
    _check_systems(ctx, index)
    edges: dict[str, list[tuple[str, CallSite]]] = defaultdict(list)
    for site in all_call_sites(ctx):
        if not site.writes or site.entity is None or site.entity not in index:
            continue
        source = site.flow.model.source
        if source is None:
            ctx.report(
                site.flow,
                "SL102",
                f"flow {site.flow_name!r} step {site.step_id!r} writes {site.entity} (owned by "
                f"{index[site.entity].spec.owner}) to {site.system} but declares no `source`",
                site.loc,
                hint="add `source: {system: ..., entity: ...}` naming where the flow's data comes from",
            )
            continue
        writer = source.system
        decisions = decide(index[site.entity], site.system, writer, site.fields)
        denied = [d for d in decisions if not d.allowed]
        if denied:
            parts = [_describe(site.entity, d) for d in denied]
            ctx.report(
                site.flow,
                "SL100",
                f"flow {site.flow_name!r} step {site.step_id!r} (writer {writer}) writes to {site.system}: "
                + "; ".join(parts),
                site.loc,
                hint=_hint(index[site.entity], denied, writer, site.system),
            )
        if writer != site.system:
            edges[site.entity].append((writer, site))
    for entity, entity_edges in sorted(edges.items()):
        _check_cycles(ctx, entity, entity_edges)


def _describe(entity: str, decision: Decision) -> str:
    if decision.fields is None:
        what = f"entity {entity} (fields unknown)"
    else:
        noun = "field" if len(decision.fields) == 1 else "fields"
        what = f"{entity} {noun} " + ", ".join(decision.fields)
    return f"{what} owned by {decision.owner}: {decision.reason}"


def _hint(owned: OwnedEntity, denied: list[Decision], writer: str, target: str) -> str:
    if writer in owned.spec.requesters and any(d.declared and d.owner == target for d in denied):
        if any(d.fields is None for d in denied):
            return f"write only the fields {writer} owns or no declaration assigns, and name them in the body"
        owners_fields = ", ".join(name for d in denied if d.declared and d.fields for name in d.fields)
        return f"leave {owners_fields} out of this write: only {target}'s own data may change them"
    if any(d.owner == target for d in denied):
        return f"add {writer} to requesters of {owned.name}, or leave the owner's fields out of this write"
    return "write only fields the source system owns, or change the field owners in the Ownership"


def _check_systems(ctx: CheckContext, index: dict[str, OwnedEntity]) -> None:
    if not ctx.named("Connection"):
        return
    known = {doc.model.system_name() for doc in ctx.named("Connection").values()}
    for flow in ctx.named("Flow").values():
        if flow.model.source is not None:
            known.add(flow.model.source.system)
    for owned in index.values():
        spec = owned.spec
        places: list[tuple[str, tuple[str | int, ...]]] = [(spec.owner, ("entities", owned.name, "owner"))]
        places += [(system, ("entities", owned.name, "fields", name)) for name, system in spec.fields.items()]
        places += [(system, ("entities", owned.name, "requesters", i)) for i, system in enumerate(spec.requesters)]
        for system, loc in places:
            if system in known:
                continue
            suggestion = did_you_mean(system, known)
            if suggestion is None:
                continue  # a system not integrated (yet) is fine; a near miss is a typo
            ctx.report(
                owned.doc,
                "SL104",
                f"no connection or flow source is the system {system!r} (entity {owned.name!r})",
                loc,
                hint=suggestion,
            )


# ------------------------------------------------------------------------------------ cycles


@dataclass
class _Edge:
    fields: set[str] | None = field(default_factory=set)  # None: unknown, may be any field
    sites: list[CallSite] = field(default_factory=list)

    def add(self, site: CallSite) -> None:
        self.sites.append(site)
        if site.fields is None or self.fields is None:
            self.fields = None
        else:
            self.fields |= site.fields


def _check_cycles(ctx: CheckContext, entity: str, entity_edges: list[tuple[str, CallSite]]) -> None:
    graph: dict[str, dict[str, _Edge]] = defaultdict(dict)
    for writer, site in entity_edges:
        graph[writer].setdefault(site.system, _Edge()).add(site)
    for cycle in _simple_cycles({a: set(b) for a, b in graph.items()}):
        hops = [graph[a][b] for a, b in zip(cycle, (*cycle[1:], cycle[0]), strict=True)]
        shared: set[str] | None = None
        unknown = True
        for hop in hops:
            if hop.fields is None:
                continue
            unknown = False
            shared = set(hop.fields) if shared is None else shared & hop.fields
        if not unknown and not shared:
            continue  # field ownership breaks the cycle: no field travels all the way round
        sites = sorted((s for hop in hops for s in hop.sites), key=lambda s: (s.flow.path, s.flow.pos(s.loc)[0]))
        first = sites[0]
        path = " → ".join((*cycle, cycle[0]))
        flows = ", ".join(sorted({s.flow_name for s in sites}))
        what = "fields unknown on every hop" if unknown else "field(s) " + ", ".join(sorted(shared or ())) + " travel"
        ctx.report(
            first.flow,
            "SL101",
            f"update cycle on {entity}: {path} (flows {flows}); {what} the whole way round",
            first.loc,
            hint="give each field one owner and write it in one direction only; at run time echo suppression "
            "and the hop limit stop what is left",
        )


def _simple_cycles(graph: dict[str, set[str]]) -> list[tuple[str, ...]]:
    """Elementary cycles, each once, starting at its smallest node (graphs here are tiny)."""
    found: list[tuple[str, ...]] = []
    for start in sorted(graph):
        stack: list[tuple[str, tuple[str, ...]]] = [(start, (start,))]
        while stack:
            node, path = stack.pop()
            for nxt in sorted(graph.get(node, ()), reverse=True):
                if nxt == start and len(path) > 1:
                    found.append(path)
                elif nxt > start and nxt not in path:
                    stack.append((nxt, (*path, nxt)))
    return sorted(found)
