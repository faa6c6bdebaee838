"""Flow diagrams: Mermaid flowcharts and Graphviz dot, from a Flow model."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from runtime.compiler.walk import step_id
from runtime.spec.flow import Flow, GotoAction, StepBase, trigger_kind
from runtime.spec.yamlload import Loc
from runtime.step_registry import step_type_of


@dataclass
class _Graph:
    nodes: list[tuple[str, str, str]] = field(default_factory=list)  # id, label, shape
    edges: list[tuple[str, str, str]] = field(default_factory=list)  # from, to, label


def _label(step: StepBase, sid: str) -> str:
    step_type = step_type_of(step)
    detail = step_type.handler.graph_label(step)
    return f"{sid}: {step_type.key}" + (f" {detail}" if detail else "")


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
        handler = step_type_of(step).handler
        children = handler.children(step)
        branches = [child for child in children if child.role == "branch"]
        shape = "diamond" if branches else "box"
        graph.nodes.append((node, _label(step, sid), shape))
        for entry in current:
            graph.edges.append((entry, node, "if" if step.if_ else ""))
        if isinstance(step.on_error, GotoAction):
            graph.edges.append((node, _node(step.on_error.goto), "on error"))
        if branches:
            ends: list[str] = []
            has_default = False
            for branch in branches:
                has_default = has_default or branch.default
                first_edge = len(graph.edges)
                branch_ends = _chain(graph, branch.steps, (*loc, *branch.at), [node])
                if len(graph.edges) > first_edge and branch.label:
                    src, dst, _ = graph.edges[first_edge]
                    graph.edges[first_edge] = (src, dst, branch.label)
                ends.extend(branch_ends)
            current = ends + ([] if has_default else [node])
        elif children:
            for loop in children:
                inner = _chain(graph, loop.steps, (*loc, *loop.at), [node])
                for end in inner:
                    graph.edges.append((end, node, "next item"))
            current = [node]
        elif handler.ends_run:
            current = []
        else:
            current = [node]
    return current


def graph_of(flow: Flow) -> tuple[list[tuple[str, str, str]], list[tuple[str, str, str]]]:
    """The nodes (id, label, shape) and edges (from, to, label) the diagrams draw (the console lays
    them out as SVG)."""
    graph = _build(flow)
    return list(graph.nodes), list(graph.edges)


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
