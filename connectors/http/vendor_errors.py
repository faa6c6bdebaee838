"""The system's own errors read from response bodies (`errors:` of a connection or an operation).

Many APIs name their errors in the body: a code (`INVALID_VALUE`, `0x80040217`, `53100020`) and a
message, and some answer a failed call with HTTP 200 and a flag (Zuora: `"success": false` with
`reasons: [{code, message}]`). `ErrorBody` says where those are; `body_error` turns a 2xx answer whose
flag says it failed into a `ConnectorError`, and `enrich` adds the code and message to the error an
unexpected status already made. The code travels with the error into the step's error and dead
letters; `retriable_codes` (regular expressions, whole-code matches) mark codes a retry can help
(lock contention, the vendor's own rate limit).
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from connectors.http.pagination import check_path, select_one
from connectors.http.redact import Redactor
from connectors.http.response import Reply, describe, error_body, parse_json
from runtime.connector_api import ConnectorError

MESSAGE_CHARS = 500


def _as_list(value: object) -> object:
    return [value] if isinstance(value, str) else value


Paths = Annotated[list[str], BeforeValidator(_as_list)]


class ErrorBody(BaseModel):
    """Where the system's answers carry its error code and message, and when a 2xx answer is an error."""

    model_config = ConfigDict(extra="forbid")

    flag: str | None = Field(
        None,
        description="Body path of a flag that marks a 2xx answer as failed when it equals `equals` "
        "(Zuora: `$.success`). Unset: only unexpected statuses are errors.",
        examples=["$.success", "$.Success"],
    )
    equals: Any = Field(
        False,
        description="The value at `flag` that means the call failed (default false).",
        examples=[False, "error"],
    )
    code: Paths = Field(
        default_factory=list,
        description="Body paths of the system's error code, tried in order (one path or a list).",
        examples=[["$.reasons[0].code", "$.Errors[0].Code"], "$.error.code"],
    )
    message: Paths = Field(
        default_factory=list,
        description="Body paths of the system's error message, tried in order (one path or a list).",
        examples=[["$.reasons[0].message", "$.error.message"]],
    )
    retriable_codes: list[str] = Field(
        default_factory=list,
        description="Regular expressions; an error whose code matches one in full may succeed when retried "
        "(lock contention, the system's own throttling). Other body errors are not retried; status errors "
        "keep their status's class unless their code matches.",
        examples=[[r"\d{6}(50|60|70)"]],
    )

    @field_validator("flag")
    @classmethod
    def _flag(cls, value: str | None) -> str | None:
        return None if value is None else check_path(value)

    @field_validator("code", "message")
    @classmethod
    def _paths(cls, value: list[str]) -> list[str]:
        return [check_path(path) for path in value]

    @field_validator("retriable_codes")
    @classmethod
    def _patterns(cls, value: list[str]) -> list[str]:
        for pattern in value:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"retriable_codes: invalid regular expression {pattern!r}: {exc}") from None
        return value


def _first_text(document: Any, paths: list[str]) -> str | None:
    for path in paths:
        value = select_one(document, path)
        if isinstance(value, dict):  # SAP: {"message": {"lang": "en", "value": "..."}}
            value = value.get("value")
        if value is not None and not isinstance(value, dict | list) and str(value).strip():
            return str(value).strip()
    return None


def _same(left: Any, right: Any) -> bool:
    if isinstance(left, bool) or isinstance(right, bool):
        return left is right
    return bool(left == right)


def _retriable(rules: ErrorBody, code: str | None) -> bool:
    return code is not None and any(re.fullmatch(pattern, code) for pattern in rules.retriable_codes)


def _document(reply: Reply) -> Any:
    if not reply.content or reply.truncated:
        return None
    try:
        return parse_json(reply.content)
    except ValueError:
        return None


def body_error(reply: Reply, rules: ErrorBody, redact: Redactor) -> ConnectorError | None:
    """The error a 2xx answer reports in its body (`flag` equals `equals`), or None."""
    if rules.flag is None:
        return None
    document = _document(reply)
    found = select_one(document, rules.flag) if document is not None else None
    if found is None or not _same(found, rules.equals):
        return None
    code = _first_text(document, rules.code)
    text = _first_text(document, rules.message)
    message = f"{describe(reply.method, reply.url)} returned HTTP {reply.status} but its body says it failed"
    if code or text:
        message += ": " + ": ".join(part for part in (code, (text or "")[:MESSAGE_CHARS]) if part)
    return ConnectorError(
        redact(message),
        reason="response",
        error_class="retriable" if _retriable(rules, code) else "fatal",
        status=reply.status,
        body=error_body(reply, redact),
        code=redact(code) if code else None,
    )


def enrich(error: ConnectorError, reply: Reply, rules: ErrorBody, redact: Redactor) -> ConnectorError:
    """The status error with the system's code and message added (a matching code makes it retriable)."""
    document = _document(reply)
    if document is None:
        return error
    code = _first_text(document, rules.code)
    text = _first_text(document, rules.message)
    if not code and not text:
        return error
    detail = ": ".join(part for part in (code, (text or "")[:MESSAGE_CHARS]) if part)
    return ConnectorError(
        redact(f"{error}: {detail}"),
        reason=error.reason,
        error_class="retriable" if _retriable(rules, code) else error.error_class,
        status=error.status,
        retry_after=error.retry_after,
        body=error.body,
        code=redact(code) if code else None,
    )
