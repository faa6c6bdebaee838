"""The recording `HttpContext` of the HTTP intake kit (runtime/testing/http_intake_kit.py).

`KitHttpContext` implements runtime/source_api.py's `HttpContext` as the core's `FlowHttpContext`
(runtime/service/http_intake.py) answers — `accept` gives the node's 202 with a run id and `Location`,
`reject`/`problem` the node's RFC 9457 problem details, `secret` renders templates, `schema` gives a
validator — and records every call in the `KitHandled` of the `handle` call it belongs to (a context
variable set per call, so calls that overlap are told apart). The kit switches what `accept` does
(`mode`): commit, answer as the node does without a new run (`answer`: a repeat, a conflict, a store
that cannot commit), or raise the core's `StoreError`; and whether the secrets are set (`secrets_set`).
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from starlette.responses import Response

from runtime.clock import Clock, SystemClock
from runtime.errors import ExpressionError
from runtime.expr import ENV_KEY, SECRETS_KEY, ExpressionEngine
from runtime.mappings import schema_validator
from runtime.service.http_intake import accepted_response
from runtime.service.problems import problem
from runtime.source_api import HttpContext, SecretUnavailable
from runtime.store.base import StoreError

__all__ = ["CURRENT_CALL", "KitAccept", "KitHandled", "KitHttpContext", "KitRefusal"]


@dataclass
class KitAccept:
    """One `accept` call: what the intake handed over and what the kit answered (None: it raised)."""

    payload: Any
    headers: Any
    correlation_id: str | None
    digest: str | None
    sync_timeout: float | None
    response: Response | None


@dataclass
class KitRefusal:
    """One `reject` (counted) or `problem` call and the response it gave."""

    status: int
    reason: str
    message: str
    response: Response
    counted: bool


@dataclass
class KitHandled:
    """What one `handle` call did through the context, and its answer as the node would send it."""

    label: str
    accepts: list[KitAccept] = field(default_factory=list)
    refusals: list[KitRefusal] = field(default_factory=list)
    response: Response | None = None
    error: Exception | None = None  # what handle raised instead of answering
    status: int = 0
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    def rejections(self) -> list[KitRefusal]:
        return [r for r in self.refusals if r.counted]


CURRENT_CALL: contextvars.ContextVar[KitHandled | None] = contextvars.ContextVar(
    "syncline_intake_kit_call", default=None
)


class KitHttpContext(HttpContext):
    """A recording `HttpContext` answering as the core's `FlowHttpContext` does: `accept` commits (202
    with a run id and `Location`), answers as the node would (`mode = "answer"`: `answer()`), or raises
    `StoreError` (`mode = "fail"`); `reject`/`problem` give the core's problem details; `secret`
    renders templates against `secrets` (all unset while `secrets_set` is False); `schema` gives a
    validator of `schemas[path]`."""

    def __init__(
        self,
        kind: str,
        *,
        secrets: Mapping[str, str] | None = None,
        env: Mapping[str, str] | None = None,
        schemas: Mapping[str, dict[str, Any]] | None = None,
        clock: Clock | None = None,
        body_timeout: float = 10.0,
        flow: str = "kit",
    ) -> None:
        self.flow = flow
        self.trigger_id = f"{kind}:{flow}"
        self.clock = clock or SystemClock()
        self.log = logging.getLogger(f"syncline.intake.{kind}")
        self.body_timeout = body_timeout
        self.secrets = dict(secrets or {})
        self.env = dict(env or {})
        self.schemas = dict(schemas or {})
        self.mode: Literal["commit", "answer", "fail"] = "commit"
        self.answer: Callable[[], Response] = lambda: problem(503, "store_unavailable", "retry later", retry_after=5)
        self.secrets_set = True
        self.resolved: set[str] = set()  # names of secrets the intake rendered
        self.yields = 2  # times `accept` gives way to other tasks before answering (calls overlap)
        self.runs = 0
        self.counters: dict[str, float] = {}
        self.stray: list[str] = []  # context calls made outside any handle()
        self._engine = ExpressionEngine()
        self._validators: dict[str, Any] = {}

    def _current(self, what: str) -> KitHandled:
        call = CURRENT_CALL.get()
        if call is None:
            self.stray.append(what)
            return KitHandled("(outside handle)")
        return call

    async def accept(
        self,
        payload: Any,
        *,
        headers: dict[str, str],
        correlation_id: str | None = None,
        digest: str | None = None,
        sync_timeout: float | None = None,
    ) -> Response:
        call = self._current("accept")
        record = KitAccept(payload, headers, correlation_id, digest, sync_timeout, None)
        call.accepts.append(record)
        for _ in range(self.yields):
            await asyncio.sleep(0)
        if self.mode == "fail":
            raise StoreError("the kit's store cannot commit this run (as a store that is down would)")
        if self.mode == "answer":
            record.response = self.answer()
        else:
            self.runs += 1
            record.response = accepted_response(f"kitrun{self.runs:06d}", "queued", created=True)
        return record.response

    def reject(
        self, status: int, reason: str, message: str, *, headers: Mapping[str, str] | None = None, **extra: Any
    ) -> Response:
        response = problem(status, reason, message, headers=dict(headers) if headers else None, **extra)
        self._current("reject").refusals.append(KitRefusal(status, reason, message, response, counted=True))
        return response

    def problem(
        self,
        status: int,
        reason: str,
        message: str,
        *,
        headers: Mapping[str, str] | None = None,
        retry_after: int | None = None,
        **extra: Any,
    ) -> Response:
        response = problem(
            status, reason, message, headers=dict(headers) if headers else None, retry_after=retry_after, **extra
        )
        self._current("problem").refusals.append(KitRefusal(status, reason, message, response, counted=False))
        return response

    def schema(self, path: str) -> Any:
        if path not in self._validators:
            schema = self.schemas.get(path)
            self._validators[path] = None if schema is None else schema_validator(schema)
        return self._validators[path]

    def secret(self, template: str | None) -> str | None:
        if template is None:
            return None

        def resolve(name: str) -> str | None:
            self.resolved.add(name)
            return self.secrets.get(name) if self.secrets_set else None

        try:
            value = self._engine.compile(template, name="secret").render({SECRETS_KEY: resolve, ENV_KEY: self.env.get})
        except ExpressionError as exc:
            raise SecretUnavailable(self.redact(str(exc))) from None
        return None if value is None else str(value)

    def redact(self, text: str) -> str:
        for value in self.secrets.values():
            text = text.replace(value, "***")
        return text

    def count(self, name: str, value: float = 1.0) -> None:
        self.counters[name] = self.counters.get(name, 0.0) + value
