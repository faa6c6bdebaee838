"""`syncline graph FLOW [--format mermaid|dot]`: draw a flow's trigger and steps."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from runtime.compiler import check_project
from runtime.errors import UsageError
from runtime.render.graph import render_dot, render_mermaid


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("graph", help="draw a flow as a Mermaid or Graphviz diagram")
    p.add_argument("flow", metavar="FLOW", help="flow name or file")
    p.add_argument("--format", choices=["mermaid", "dot"], default="mermaid")
    p.add_argument("--project", default=".", help="project folder (default: .)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    target = Path(args.flow)
    result = check_project(target if target.is_file() else Path(args.project))
    flows = result.context.named("Flow") if result.context else {}
    doc = flows.get(args.flow)
    if doc is None and target.is_file():
        shown = result.docs.display(target)
        doc = next((d for d in flows.values() if d.path == shown), None)
    if doc is None:
        known = ", ".join(sorted(flows)) or "none"
        raise UsageError(f"no flow {args.flow!r} (flows: {known})")
    render = render_mermaid if args.format == "mermaid" else render_dot
    sys.stdout.write(render(doc.model))
    return 0
