"""A run as people read it: status, steps with timing and outputs, calls made (or planned).

Outputs and parameters are shortened to one line; error text never is: an error is shown whole
(message, its class and status, the body the system answered), wrapped at `WIDTH` columns.
"""

from __future__ import annotations

import textwrap
from typing import Any

from runtime.engine.executor import RunResult
from runtime.expr import dumps
from runtime.store.base import OutboxRecord

MAX_VALUE = 160
WIDTH = 100


def _short(value: Any) -> str:
    try:
        text = dumps(value)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= MAX_VALUE else text[: MAX_VALUE - 3] + "..."


def wrap(text: str, first: str, rest: str | None = None) -> list[str]:
    """`text` wrapped at WIDTH columns after the prefix `first` (continuation lines indented by
    `rest`, default: as wide as `first`); nothing is cut."""
    rest = " " * len(first) if rest is None else rest
    out: list[str] = []
    for index, paragraph in enumerate(text.splitlines() or [""]):
        out.extend(
            textwrap.wrap(
                paragraph,
                width=max(WIDTH, len(first) + 20),
                initial_indent=first if index == 0 else rest,
                subsequent_indent=rest,
                break_long_words=True,
                break_on_hyphens=False,
            )
            or [first if index == 0 else rest]
        )
    return out


def error_lines(error: Any, first: str, rest: str | None = None) -> list[str]:
    """An error (a run's or a step's) as wrapped lines: its message, then what kind of failure it
    was, then the body the system answered and any other fields — all of it."""
    if not isinstance(error, dict):
        return wrap(_text(error), first, rest)
    rest = " " * len(first) if rest is None else rest
    lines = wrap(str(error.get("message") or error.get("reason") or "error"), first, rest)
    kind = [str(error[k]) for k in ("reason", "class") if error.get(k) and error.get(k) != error.get("message")]
    if isinstance(error.get("status"), int):
        kind.append(f"HTTP {error['status']}")
    if kind:
        lines.extend(wrap("(" + ", ".join(kind) + ")", rest))
    if error.get("body") not in (None, ""):
        lines.extend(wrap("body: " + _text(error["body"]), rest, rest + "  "))
    others = {k: v for k, v in error.items() if k not in ("message", "reason", "class", "status", "body")}
    for key, value in others.items():
        if value is not None:
            lines.extend(wrap(f"{key}: {_text(value)}", rest, rest + "  "))
    return lines


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    try:
        return dumps(value)
    except (TypeError, ValueError):
        return repr(value)


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
            lines.extend(error_lines(r.error, "               error: "))
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
        lines.extend(error_lines(result.error, "error: "))
    elif result.output is not None:
        lines.append("")
        lines.append(f"output: {_short(result.output)}")
    return "\n".join(lines) + "\n"


def outbox_view(record: OutboxRecord) -> dict[str, Any]:
    """One outbox message as the API shows it (without its request: the run's journal has that)."""
    return {
        "seq": record.seq,
        "message_id": record.message_id,
        "run_id": record.run_id,
        "step": record.step_key,
        "operation": record.operation,
        "status": record.status,
        "attempts": record.attempts,
        "created_at": record.created_at,
        "next_attempt_at": record.next_attempt_at,
        "sent_at": record.sent_at,
        "last_error": record.last_error,
    }
