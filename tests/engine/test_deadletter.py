"""A dead letter's reason is one line naming the failure, the operation that failed and a bounded
excerpt of the body (issue 9, item 3) — never just the failure class (`status`)."""

from __future__ import annotations

from runtime.engine.context import CallLog
from runtime.engine.deadletter import BODY_EXCERPT, dead_letter_reason


def _call(step: str, operation: str, status: str, error: str | None = None) -> CallLog:
    return CallLog(
        step=step, operation=operation, params={}, idempotency_key=None, effect="create", status=status, error=error
    )


MESSAGE = "POST http://erp/invoices returned HTTP 500 Internal Server Error"


def test_an_http_status_names_the_operation_and_the_body() -> None:
    error = {"message": MESSAGE, "class": "retriable", "reason": "status", "status": 500, "body": {"error": "locked"}}
    calls = [_call("customer", "crm.find", "ok"), _call("invoice", "erp.create_sales_invoice", "error", MESSAGE)]
    assert dead_letter_reason(error, calls) == 'HTTP 500 from erp.create_sales_invoice: {"error":"locked"}'


def test_a_long_body_is_an_excerpt_and_no_body_gives_the_message() -> None:
    calls = [_call("invoice", "erp.create", "error", MESSAGE)]
    long = {"message": MESSAGE, "reason": "status", "status": 502, "body": "x" * 5000}
    reason = dead_letter_reason(long, calls)
    assert reason.startswith("HTTP 502 from erp.create: xxx") and reason.endswith("…")
    assert len(reason) == len("HTTP 502 from erp.create: ") + BODY_EXCERPT
    bare = {"message": MESSAGE, "reason": "status", "status": 502}
    assert dead_letter_reason(bare, calls) == f"HTTP 502 from erp.create: {MESSAGE}"


def test_other_failures_say_their_class_and_message() -> None:
    timeout = {"message": "GET http://crm/x timed out after 10s", "reason": "timeout", "class": "retriable"}
    calls = [_call("find", "crm.find", "error", timeout["message"])]
    assert dead_letter_reason(timeout, calls) == "timeout from crm.find: GET http://crm/x timed out after 10s"
    expression = {"message": "env('X') is not defined", "reason": "expression", "class": "fatal"}
    assert dead_letter_reason(expression, calls) == "expression: env('X') is not defined"
    assert dead_letter_reason(None) == "failed"


def test_a_failed_compensation_is_not_taken_for_the_failure() -> None:
    error = {"message": MESSAGE, "reason": "status", "status": 500}
    calls = [
        _call("invoice", "erp.create", "error", MESSAGE),
        _call("reserve~compensate", "stock.release", "error", MESSAGE),
    ]
    assert dead_letter_reason(error, calls).startswith("HTTP 500 from erp.create:")
