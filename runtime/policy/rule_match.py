"""The one matcher of Policy rules, used by validate (`compiler/policy_static.py`) and at run time
(`policy/match.py`: guards, masks, limits; `engine/connectors.py`: egress allow-lists), so both
decide alike which flows and calls a rule covers. It looks at plain facts of a flow and a call, so
it needs neither the compiled plan nor the checked documents.

Every key given in a rule's `match` must match. A value is one pattern or a list of them; a pattern
is `fnmatch` syntax, case-sensitive (`*`, `?`, `[abc]`): `erp` matches `erp` only, `er*` matches
`erp` and `erm`. Label values are patterns too. Keys:

- flow keys (`flow`, `trigger`, `label`) describe the flow: its name, its trigger kind (`manual`
  for a flow without a trigger) and its labels;
- call keys (`system`, `connector`, `operation`, `entity`, `effect`) describe one call: the target
  system, the connector type, `connection.operation`, the operation's entity and effect. Applied to
  a flow as a whole (masks), `system` and `entity` match when any system or entity the flow
  touches matches.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from runtime.spec.flow import Flow, trigger_kind
from runtime.spec.governance import PolicyMatch

CALL_KEYS = ("system", "connector", "operation", "entity", "effect")
FLOW_KEYS = ("flow", "trigger", "label")


def patterns(value: Any) -> list[str] | None:
    """A `match` value as a list of patterns (None when the key is not given)."""
    if value is None:
        return None
    items = value if isinstance(value, list | tuple) else [value]
    return [str(getattr(v, "value", v)) for v in items]


def pattern_matches(pattern: Any, value: str | None) -> bool:
    """Whether `value` matches the pattern or one of the list of patterns (True when none is given)."""
    wanted = patterns(pattern)
    if wanted is None:
        return True
    if value is None:
        return False
    return any(fnmatch.fnmatchcase(value, p) for p in wanted)


def any_matches(pattern: Any, values: Iterable[str]) -> bool:
    """Whether any of `values` matches (True when no pattern is given)."""
    if pattern is None:
        return True
    return any(pattern_matches(pattern, v) for v in values)


@dataclass(frozen=True)
class FlowFacts:
    """What the flow keys of a rule look at."""

    name: str
    trigger: str
    labels: Mapping[str, str]


@dataclass(frozen=True)
class CallFacts:
    """What the call keys of a rule look at."""

    system: str
    connector: str
    operation: str  # `connection.operation`
    entity: str | None
    effect: str | None


def trigger_name(model: Flow) -> str:
    """A flow's trigger kind as `match.trigger` names it (`manual` when it has none)."""
    return (trigger_kind(model.trigger) or "trigger.manual").partition(".")[2]


def flow_facts(model: Flow, name: str | None = None) -> FlowFacts:
    return FlowFacts(name or model.name, trigger_name(model), model.labels)


def match_flow_keys(match: PolicyMatch, flow: FlowFacts) -> list[str] | None:
    """Why the flow keys match (one phrase per key given), or None when one does not."""
    why: list[str] = []
    if match.flow is not None:
        if not pattern_matches(match.flow, flow.name):
            return None
        why.append(f"flow {flow.name}")
    if match.trigger is not None:
        if not pattern_matches(match.trigger, flow.trigger):
            return None
        why.append(f"trigger {flow.trigger}")
    if match.label is not None:
        if any(not pattern_matches(v, flow.labels.get(k)) for k, v in match.label.items()):
            return None
        why.append("labels " + ", ".join(f"{k}={flow.labels.get(k)}" for k in match.label))
    return why


def match_call(match: PolicyMatch, flow: FlowFacts, call: CallFacts) -> list[str] | None:
    """Why a rule covers one call of one flow (the keys that matched), or None when it does not."""
    why = match_flow_keys(match, flow)
    if why is None:
        return None
    for key in CALL_KEYS:
        wanted = getattr(match, key)
        if wanted is None:
            continue
        actual = getattr(call, key)
        if not pattern_matches(wanted, actual):
            return None
        why.append(f"{key} {actual}")
    return why


def is_call_rule(match: PolicyMatch) -> bool:
    """Whether the rule selects calls (it has a call key) rather than whole flows."""
    return any(getattr(match, key) is not None for key in CALL_KEYS)
