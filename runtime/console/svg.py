"""Server-side SVG for the console: sparklines of run counts and a flow's graph laid out top-down.

Both return markup with every text escaped, small enough to inline in a page (no script, no external
reference), with a `<title>` and an `aria-label` so a screen reader says what the picture shows.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from markupsafe import Markup

from runtime.render.graph import graph_of
from runtime.spec.flow import Flow

BOX_WIDTH = 300
ROW = 58
BOX_HEIGHT = 34
LEFT = 12
LABEL_CHARS = 46


def sparkline(values: Sequence[int], label: str, *, width: int = 120, height: int = 24) -> Markup:
    """A polyline of `values` (oldest first) scaled to the largest one, with the last value dotted."""
    top = max(max(values, default=0), 1)
    count = max(len(values) - 1, 1)
    points = [
        (round(i * (width - 4) / count + 2, 1), round(height - 2 - v * (height - 4) / top, 1))
        for i, v in enumerate(values)
    ]
    text = escape(f"{label}: {', '.join(str(v) for v in values)}")
    path = " ".join(f"{x},{y}" for x, y in points)
    last = points[-1] if points else (0.0, 0.0)
    return Markup(
        f'<svg class="spark" role="img" aria-label="{text}" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}"><title>{text}</title>'
        f'<polyline fill="none" stroke="currentColor" stroke-width="1.5" points="{path}"/>'
        f'<circle cx="{last[0]}" cy="{last[1]}" r="2" fill="currentColor"/></svg>'
    )


def _short(text: str) -> str:
    return text if len(text) <= LABEL_CHARS else text[: LABEL_CHARS - 1] + "…"


def flow_graph(flow: Flow) -> Markup:
    """The flow's diagram: trigger, steps in order, end; edges between neighbours straight down, the
    others (branches, loops, on_error jumps) as arcs on the right with their label."""
    nodes, edges = graph_of(flow)
    ordered = [n for n in nodes if n[0] != "done"] + [n for n in nodes if n[0] == "done"]
    row = {node: i for i, (node, _label, _shape) in enumerate(ordered)}
    height = len(ordered) * ROW + 10
    arcs = [e for e in edges if e[0] in row and e[1] in row and row[e[1]] != row[e[0]] + 1]
    width = LEFT + BOX_WIDTH + 40 + 22 * min(len(arcs), 12) + 90
    parts = [
        f'<svg class="graph" role="img" aria-labelledby="graph-title" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}">',
        f'<title id="graph-title">{escape(f"graph of flow {flow.name}")}</title>',
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" '
        'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="currentColor"/></marker></defs>',
    ]
    for src, dst, label in edges:
        if src not in row or dst not in row:
            continue
        a, b = row[src], row[dst]
        if b == a + 1:
            x = LEFT + BOX_WIDTH // 2
            y1, y2 = a * ROW + 10 + BOX_HEIGHT, b * ROW + 10
            parts.append(f'<line class="edge" x1="{x}" y1="{y1}" x2="{x}" y2="{y2 - 2}" marker-end="url(#arrow)"/>')
            if label:
                parts.append(f'<text class="edge-label" x="{x + 6}" y="{(y1 + y2) // 2 + 4}">{escape(label)}</text>')
            continue
        lane = arcs.index((src, dst, label)) % 12 if (src, dst, label) in arcs else 0
        x = LEFT + BOX_WIDTH
        out = x + 24 + 22 * lane
        y1, y2 = a * ROW + 10 + BOX_HEIGHT // 2, b * ROW + 10 + BOX_HEIGHT // 2
        dashed = ' stroke-dasharray="4 3"' if label in ("on error", "next item") else ""
        parts.append(
            f'<path class="edge" fill="none"{dashed} d="M{x},{y1} C{out},{y1} {out},{y2} {x + 2},{y2}" '
            'marker-end="url(#arrow)"/>'
        )
        if label:
            parts.append(f'<text class="edge-label" x="{out + 4}" y="{(y1 + y2) // 2 + 4}">{escape(label)}</text>')
    for i, (_node, label, shape) in enumerate(ordered):
        y = i * ROW + 10
        radius = 17 if shape == "round" else (2 if shape == "box" else 8)
        css = {"round": "node end", "diamond": "node branch"}.get(shape, "node")
        parts.append(
            f'<g class="{css}"><title>{escape(label)}</title>'
            f'<rect x="{LEFT}" y="{y}" rx="{radius}" width="{BOX_WIDTH}" height="{BOX_HEIGHT}"/>'
            f'<text x="{LEFT + 12}" y="{y + 22}">{escape(_short(label))}</text></g>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))
