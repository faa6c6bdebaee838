"""Flow diagrams: Mermaid flowcharts and Graphviz dot, from a Flow model."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from runtime.compiler.walk import step_id
from runtime.spec.flow import (
    CallStep,
    FailStep,
    Flow,
    ForeachStep,
    GotoAction,
    StepBase,
    SwitchStep,
    kind_of_step,
    trigger_kind,
)
from runtime.spec.yamlload import Loc


@dataclass
class _Graph:
    nodes: list[tuple[str, str, str]] = field(default_factory=list)  # id, label, shape
    edges: list[tuple[str, str, str]] = field(default_factory=list)  # from, to, label


def _label(step: StepBase, sid: str) -> str:
    kind = kind_of_step(step)
    detail = ""
    if isinstance(step, CallStep):
        detail = step.call
    elif isinstance(step, FailStep):
        detail = step.fail.code
    elif kind in ("map", "flow"):
        detail = str(getattr(step, kind))
    return f"{sid}: {kind}" + (f" {detail}" if detail else "")


def _build(flow: Flow) -> _Graph:
    graph = _Graph()
    tkind = (trigger_kind(flow.trigger) or "trigger.?").split(".", 1)[1]
    graph.nodes.append(("trigger", f"{tkind} trigger", "round"))
    graph.nodes.append(("done", "end", "round"))
    last = _chain(graph, flow.steps, ("steps",), ["trigger"])
    for node in last:
        graph.edges.append((node, "done", ""))
    return graph


def _node(sid: str) -> str:
    return "n_" + "".join(ch if ch.isalnum() else "_" for ch in sid)


def _chain(graph: _Graph, steps: Sequence[StepBase], base: Loc, entries: list[str]) -> list[str]:
    current = entries
    for index, step in enumerate(steps):
        loc = (*base, index)
        sid = step_id(step, loc)
        node = _node(sid)
        shape = "diamond" if isinstance(step, SwitchStep) else "box"
        graph.nodes.append((node, _label(step, sid), shape))
        for entry in current:
            graph.edges.append((entry, node, "if" if step.if_ else ""))
        if isinstance(step.on_error, GotoAction):
            graph.edges.append((node, _node(step.on_error.goto), "on error"))
        if isinstance(step, SwitchStep):
            ends: list[str] = []
            has_default = False
            for case_index, case in enumerate(step.switch):
                has_default = has_default or case.when is None
                first_edge = len(graph.edges)
                case_ends = _chain(graph, case.steps, (*loc, "switch", case_index, "steps"), [node])
                if len(graph.edges) > first_edge:
                    src, dst, _ = graph.edges[first_edge]
                    graph.edges[first_edge] = (
                        src,
                        dst,
                        "else" if case.when is None else f"case {case_index + 1}",
                    )
                ends.extend(case_ends)
            current = ends + ([] if has_default else [node])
        elif isinstance(step, ForeachStep):
            inner = _chain(graph, step.steps, (*loc, "steps"), [node])
            for end in inner:
                graph.edges.append((end, node, "next item"))
            current = [node]
        elif isinstance(step, FailStep):
            current = []
        else:
            current = [node]
    return current


def render_mermaid(flow: Flow) -> str:
    graph = _build(flow)
    lines = ["flowchart TD"]
    for node, label, shape in graph.nodes:
        text = label.replace('"', "'")
        if shape == "round":
            lines.append(f'  {node}(["{text}"])')
        elif shape == "diamond":
            lines.append(f'  {node}{{"{text}"}}')
        else:
            lines.append(f'  {node}["{text}"]')
    for src, dst, label in graph.edges:
        lines.append(f"  {src} -->|{label}| {dst}" if label else f"  {src} --> {dst}")
    return "\n".join(lines) + "\n"


def render_dot(flow: Flow) -> str:
    graph = _build(flow)
    shapes = {"round": "ellipse", "diamond": "diamond", "box": "box"}
    lines = [f'digraph "{flow.name}" {{', "  rankdir=TB;"]
    for node, label, shape in graph.nodes:
        text = label.replace('"', '\\"')
        lines.append(f'  {node} [label="{text}", shape={shapes[shape]}];')
    for src, dst, label in graph.edges:
        lines.append(f"  {src} -> {dst}" + (f' [label="{label}"]' if label else "") + ";")
    lines.append("}")
    return "\n".join(lines) + "\n"
