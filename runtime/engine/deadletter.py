"""Why a run went to the dead-letter queue, in one line an operator reads in `dlq list`:

    HTTP 500 from erp.create_sales_invoice: {"error":"ledger locked"}
    timeout from crm.find_customer: GET http://crm/customers timed out after 10s
    expression: env('LEDGER_ID') is not defined at body.ledger in "{{ env('LEDGER_ID') }}"

The run's `error` keeps every field (class, reason, status, body); this line names the failure, the
operation that failed (when a call failed) and a bounded excerpt of the answer's body. Values come
from the error as the executor stores it, with secrets already masked.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from runtime.engine.context import CallLog
from runtime.expr import dumps

BODY_EXCERPT = 300


def _excerpt(body: Any) -> str:
    try:
        text = body if isinstance(body, str) else dumps(body)
    except (TypeError, ValueError):
        text = repr(body)
    text = " ".join(text.split())
    return text if len(text) <= BODY_EXCERPT else text[: BODY_EXCERPT - 1] + "…"


def failed_operation(error: dict[str, Any], calls: Sequence[CallLog]) -> str | None:
    """The operation whose failure the run's `error` is (not a compensation's), when a call failed."""
    message = error.get("message")
    for call in reversed(calls):
        if call.status == "error" and "~compensate" not in call.step and call.error == message:
            return call.operation
    return None


def dead_letter_reason(error: dict[str, Any] | None, calls: Sequence[CallLog] = ()) -> str:
    """The dead letter's one-line reason for a run that ended with `error` after making `calls`."""
    if not error:
        return "failed"
    reason = str(error.get("reason") or error.get("code") or "failed")
    message = str(error.get("message") or "").strip()
    operation = failed_operation(error, calls)
    status = error.get("status")
    if reason == "status" and isinstance(status, int) and operation is not None:
        body = error.get("body")
        detail = _excerpt(body) if body not in (None, "") else message
        return f"HTTP {status} from {operation}: {detail}" if detail else f"HTTP {status} from {operation}"
    head = f"{reason} from {operation}" if operation is not None else reason
    return f"{head}: {message}" if message else head
