"""Error responses of the service as RFC 9457 problem details (`application/problem+json`).

Every refusal of the admin API and of the webhook intake has the members `type`
(`urn:syncline:problem:<code>`), `title` (the same for every occurrence of that type), `status`,
`detail` (what was wrong this time) and `instance` (the request's path), plus the extension member
`code`: the stable, machine-readable reason (`too_large`, `bad_query`, `run_not_ended`, ...).
Other extension members carry specifics (`path` of a schema error, `run_id`, `param`, `allowed`).

The request's path reaches `problem` through a context variable set by the ASGI entry, so a helper
deep in a handler need not be handed the request.
"""

from __future__ import annotations

import contextvars
from typing import Any

from starlette.responses import Response

from runtime.expr import dumps

PROBLEM_JSON = "application/problem+json"
TYPE_PREFIX = "urn:syncline:problem:"

request_path: contextvars.ContextVar[str | None] = contextvars.ContextVar("syncline_request_path", default=None)


def problem_title(code: str) -> str:
    """The title of a problem type: its code in words (`idempotency_conflict` → "Idempotency conflict")."""
    return code.replace("_", " ").capitalize()


def problem_body(status: int, code: str, detail: str, *, instance: str | None = None, **extra: Any) -> dict[str, Any]:
    """The problem details object; `instance` defaults to the path of the request being answered."""
    body: dict[str, Any] = {
        "type": TYPE_PREFIX + code,
        "title": problem_title(code),
        "status": status,
        "detail": detail,
        "code": code,
    }
    where = instance if instance is not None else request_path.get()
    if where is not None:
        body["instance"] = where
    body.update(extra)
    return body


def problem(
    status: int,
    code: str,
    detail: str,
    *,
    retry_after: int | None = None,
    headers: dict[str, str] | None = None,
    instance: str | None = None,
    **extra: Any,
) -> Response:
    """An `application/problem+json` response (with `Retry-After` when given)."""
    sent = dict(headers or {})
    if retry_after is not None:
        sent["Retry-After"] = str(retry_after)
    body = problem_body(status, code, detail, instance=instance, **extra)
    return Response(dumps(body), status_code=status, media_type=PROBLEM_JSON, headers=sent or None)
