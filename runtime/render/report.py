"""A run as people read it: status, steps with timing and outputs, calls made (or planned)."""

from __future__ import annotations

from typing import Any

from runtime.engine.executor import RunResult
from runtime.expr import dumps

MAX_VALUE = 160


def _short(value: Any) -> str:
    try:
        text = dumps(value)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= MAX_VALUE else text[: MAX_VALUE - 3] + "..."


def run_as_dict(result: RunResult) -> dict[str, Any]:
    run = result.run
    return {
        "run": {
            "id": run.id,
            "flow": run.flow,
            "status": result.status,
            "correlation_id": run.correlation_id,
            "idempotency_key": run.idempotency_key,
            "created_at": run.created_at,
            "finished_at": run.finished_at,
        },
        "output": result.output,
        "error": result.error,
        "response": result.response,
        "steps": [
            {
                "step": r.step_key,
                "kind": r.kind,
                "status": r.status,
                "attempts": r.attempts,
                "duration_ms": round((r.finished_at - r.started_at) * 1000, 3),
                "input": r.input,
                "output": r.output,
                "error": r.error,
            }
            for r in result.journal
        ],
        "calls": [c.as_dict() for c in result.calls],
        "emitted": [{"event": e.name, "data": e.data} for e in result.emitted],
    }


def run_as_text(result: RunResult) -> str:
    run = result.run
    lines = [f"run {run.id}  flow {run.flow}  status {result.status}"]
    if run.correlation_id:
        lines.append(f"correlation id {run.correlation_id}")
    lines.append("")
    lines.append("steps:")
    for r in result.journal:
        took = (r.finished_at - r.started_at) * 1000
        attempts = f" after {r.attempts} attempts" if r.attempts > 1 else ""
        lines.append(f"  {r.status:<12} {r.step_key} ({r.kind}) {took:.1f} ms{attempts}")
        if r.error:
            lines.append(f"               error: {_short(r.error)}")
        elif r.output is not None:
            lines.append(f"               output: {_short(r.output)}")
    if result.calls:
        lines.append("")
        lines.append("calls:")
        for c in result.calls:
            marker = "would call" if c.status == "planned" else c.status
            lines.append(
                f"  {marker:<10} {c.operation} {_short(c.params)}"
                + (f"  key={c.idempotency_key}" if c.idempotency_key else "")
            )
    if result.emitted:
        lines.append("")
        lines.append("events:")
        lines.extend(f"  {e.name} {_short(e.data)}" for e in result.emitted)
    if result.error:
        lines.append("")
        lines.append(f"error: {_short(result.error)}")
    elif result.output is not None:
        lines.append("")
        lines.append(f"output: {_short(result.output)}")
    return "\n".join(lines) + "\n"
