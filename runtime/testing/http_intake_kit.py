"""The conformance kit for HTTP intakes: what every trigger kind taking requests on the node's HTTP
surface (`TriggerType.http`, runtime/source_api.py) must do, checked without a node.

A plugin author (and the built-in `webhook`) calls `check_http_intake` with the kind (or an intake
factory) and a spec, requests the kind should accept, requests it should refuse, and optionally
requests it answers itself without a run (a URL-verification handshake). The kit drives `handle`
with real Starlette `Request`s built from ASGI scopes, and `KitHttpContext` (http_kit_context.py): a
recording `HttpContext` that answers as the core's does (runtime/service/http_intake.py). It checks:

1. the intake is what the core routes: `method` is a method token, `path` a valid path outside the
   node's reserved prefixes with whole-segment, distinct `{name}` parameters, both the same each time
   the intake is built, and every kit request is matched to it by the core's own route pattern;
2. an accepted request calls `ctx.accept` exactly once (with the expected payload, when given), and
   the intake returns the very response `accept` gave — also the core's 200 repeat, 409 conflict, 422
   key error and 503 store answers: it answers nothing on its own before the run is committed;
3. when `accept` raises the core's `StoreError`, the intake lets it propagate (the node answers 500)
   or answers 5xx: nothing is acknowledged that was not committed;
4. while a secret the kind resolves is not set (`ctx.secret` raises `SecretUnavailable`) nothing is
   accepted or answered 2xx, and a body cut off by the client's disconnect is not accepted;
5. a refused request never calls `accept` and answers 4xx through `ctx.reject`, so it is counted in
   syncline_webhook_rejections_total (`require_reject=False` allows other 4xx answers); a handshake
   (`answered`) calls no `accept` and answers 2xx;
6. no secret value given to the kit appears in a response's body or headers, in the headers or
   correlation id the run would keep, in an exception `handle` raises (the node logs it), or in a
   log record emitted while handling (any level, any logger, extra fields included);
7. `handle` is safe to call concurrently: every accepted request, in many copies at once among the
   refused ones, calls `accept` once with its own payload and gets its own answer.

    from runtime.testing.http_intake_kit import KitRequest, check_http_intake
    await check_http_intake(TRIGGER, spec, accepted=[KitRequest(body, signed_headers)],
                            refused=[KitRequest(body, {}, reason="bad_signature")],
                            secrets={"SIGNING_SECRET": "kit-signing-secret-1"})

Requests are ASGI scopes handed to `handle` directly, not sent through a Starlette app and httpx's ASGI
transport: so `request.path_params` come from the core's route pattern (`route_pattern`) exactly as
the node's router sets them, not from Starlette's router; the body arrives in chunks (or is cut off by
a disconnect) as from a socket; each call's `accept`/`reject` is attributed to its own `handle` through
a context variable even when calls overlap; and nothing else (middleware, exception handlers) can
turn an intake's answer into another. Responses are then rendered through ASGI, as the node sends them.

Each check raises `IntakeKitFailure` (an `AssertionError`, as the other kits raise) naming the request,
what was expected and what happened; a leaked secret is named, never shown.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Message, Receive, Scope

from runtime.clock import Clock
from runtime.compiler.triggers import http_path_problem
from runtime.expr.secrets import MIN_SECRET_LENGTH
from runtime.service.http_intake import accepted_response, route_pattern
from runtime.service.problems import problem, request_path
from runtime.source_api import HttpIntake, TriggerType
from runtime.testing.http_kit_context import CURRENT_CALL, KitAccept, KitHandled, KitHttpContext

__all__ = ["IntakeKitFailure", "KitHandled", "KitHttpContext", "KitRequest", "check_http_intake"]

_UNSET: Any = type("_Unset", (), {"__repr__": lambda self: "UNSET"})()
_PARAM_SEGMENT = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_METHOD = re.compile(r"[A-Z]+")
_LOG_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class IntakeKitFailure(AssertionError):
    """An HTTP intake broke the contract of runtime/source_api.py (the message says how)."""


@dataclass(frozen=True)
class KitRequest:
    """One request for the kit. `body` is sent as is (a str as UTF-8); `method` and `path` default to
    the intake's (give a concrete `path` when it has `{name}` segments). `payload`: what an accepted
    request must hand to `accept` (not checked when not given); `status` and `reason` (a `reject`
    reason): what a refused or answered request must get; `name` names it in failures."""

    body: bytes | str = b""
    headers: Mapping[str, str] = field(default_factory=dict)
    path: str | None = None
    method: str | None = None
    query: str = ""
    payload: Any = _UNSET
    status: int | None = None
    reason: str | None = None
    name: str = ""


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def _record_text(record: logging.LogRecord) -> str:
    """Everything a log formatter could write of a record: message, exception, stack, extra fields."""
    try:
        parts = [record.getMessage()]
    except Exception:
        parts = [str(record.msg), repr(record.args)]
    if record.exc_info:
        parts.append(logging.Formatter().formatException(record.exc_info))
    parts += [record.exc_text or "", record.stack_info or ""]
    parts += [f"{k}={v!r} {v}" for k, v in vars(record).items() if k not in _LOG_ATTRS]
    return "\n".join(parts)


def _receiver(body: bytes, *, cut: bool = False) -> Receive:
    """The request's ASGI `receive`: the body in two chunks (only the first, then a disconnect, when
    `cut`), then — as from a client waiting for its answer — nothing until the task ends."""
    half = len(body) // 2
    if cut:
        messages: list[Message] = [{"type": "http.request", "body": body[:half], "more_body": True}]
    elif len(body) > 1:
        messages = [
            {"type": "http.request", "body": body[:half], "more_body": True},
            {"type": "http.request", "body": body[half:], "more_body": False},
        ]
    else:
        messages = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive() -> Message:
        await asyncio.sleep(0)  # a socket read: concurrent requests interleave here
        if messages:
            return messages.pop(0)
        if cut:
            return {"type": "http.disconnect"}
        connected: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        return await connected

    return receive


async def _render(response: Response, scope: Scope) -> tuple[int, list[tuple[str, str]], bytes]:
    """The response as the node sends it: status, headers and the whole body."""
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    await response(dict(scope), _receiver(b"", cut=False), send)
    start = next((m for m in sent if m["type"] == "http.response.start"), None)
    if start is None:
        raise IntakeKitFailure(f"the intake's {type(response).__name__} sent no http.response.start")
    headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in start.get("headers", [])]
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return int(start["status"]), headers, body


@dataclass
class _Kit:
    """One run of the checks: the intake, its context, the route the core would build, captured logs."""

    intake: HttpIntake
    ctx: KitHttpContext
    method: str
    path: str
    pattern: re.Pattern[str]
    logs: _Records
    timeout: float
    secrets: dict[str, str]
    _scanned: int = 0

    def route(self, req: KitRequest, label: str) -> tuple[str, str, dict[str, str]]:
        method = (req.method or self.method).upper()
        path = req.path or self.path
        if method != self.method:
            raise IntakeKitFailure(f"{label}: the intake takes {self.method}, so the core answers {method} with 405")
        if "{" in path:
            raise IntakeKitFailure(f"{label}: give the request a concrete `path` for the `{{name}}` segments of {path}")
        found = self.pattern.match(path)
        if found is None:
            raise IntakeKitFailure(f"{label}: the core would not route {path} to the intake's {self.path} (404)")
        return method, path, found.groupdict()

    async def handle(self, req: KitRequest, label: str, *, cut: bool = False) -> KitHandled:
        method, path, params = self.route(req, label)
        body = req.body.encode() if isinstance(req.body, str) else bytes(req.body)
        headers = [(k.lower().encode("latin-1"), str(v).encode("latin-1")) for k, v in req.headers.items()]
        if body and not any(k == b"content-length" for k, _ in headers):
            headers.append((b"content-length", str(len(body)).encode()))
        scope: Scope = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1",
            "method": method,
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "root_path": "",
            "query_string": req.query.encode(),
            "headers": headers,
            "client": ("127.0.0.1", 40000),
            "server": ("kit.invalid", 80),
            "path_params": params,  # as the core's router sets them
        }
        handled = KitHandled(label)

        async def run() -> Response:
            CURRENT_CALL.set(handled)
            request_path.set(path)  # the `instance` of problem details, as the node's ASGI entry sets it
            return await self.intake.handle(Request(scope, _receiver(body, cut=cut)), self.ctx)

        try:
            response = await asyncio.wait_for(asyncio.create_task(run()), self.timeout)
        except TimeoutError:
            raise IntakeKitFailure(f"{label}: handle did not answer within {self.timeout:g} s") from None
        except Exception as exc:
            handled.error = exc
            return handled
        if not isinstance(response, Response):
            raise IntakeKitFailure(f"{label}: handle returned {type(response).__name__}, not a Starlette Response")
        handled.response = response
        try:
            rendered = await asyncio.wait_for(_render(response, scope), self.timeout)
        except TimeoutError:
            raise IntakeKitFailure(f"{label}: the response was not sent within {self.timeout:g} s") from None
        except IntakeKitFailure:
            raise
        except Exception as exc:
            raise IntakeKitFailure(f"{label}: the response could not be sent: {type(exc).__name__}: {exc}") from None
        handled.status, handled.headers, handled.body = rendered
        return handled

    def leaks(self, handled: KitHandled) -> None:
        """Fail when a secret's value is in the answer, in what the run keeps, or in a new log record."""
        places = [("the response body", handled.body), ("the response headers", _text(handled.headers))]
        if handled.error is not None:  # the node logs it with its traceback (and answers 500)
            error = "".join(traceback.format_exception(handled.error)).encode()
            places.append((f"the {type(handled.error).__name__} handle raised", error))
        for accept in handled.accepts:
            places.append(("the headers the run keeps", _text(accept.headers)))
            places.append(("the run's correlation id", _text(accept.correlation_id)))
        records = self.logs.records[self._scanned :]
        self._scanned = len(self.logs.records)
        for record in records:
            places.append((f"a log record of {record.name!r} ({record.levelname})", _record_text(record).encode()))
        for name, value in self.secrets.items():
            forms = {value.encode(), json.dumps(value)[1:-1].encode()}
            for where, data in places:
                if any(form in data for form in forms):
                    raise IntakeKitFailure(f"{handled.label}: the value of secret {name!r} is in {where}")

    def stray(self) -> None:
        if self.ctx.stray:
            raise IntakeKitFailure(
                f"ctx.{self.ctx.stray[0]} was called outside any handle() (a task started elsewhere): "
                "every call must belong to the request it answers"
            )


def _text(value: Any) -> bytes:
    return json.dumps(value, default=str, ensure_ascii=False).encode()


def _describe(handled: KitHandled) -> str:
    if handled.error is not None:
        return f"raised {type(handled.error).__name__}"
    return f"answered {handled.status}"


def _one_accept(handled: KitHandled, payload: Any = _UNSET) -> KitAccept:
    """The one `accept` of an accepted request, whose answer the intake returned."""
    label, count = handled.label, len(handled.accepts)
    if count == 0:
        if handled.error is not None:
            raise IntakeKitFailure(f"{label}: handle raised {type(handled.error).__name__}: {handled.error}")
        if 200 <= handled.status < 300:
            raise IntakeKitFailure(
                f"{label}: answered {handled.status} without calling ctx.accept: a 2xx before the run is "
                "committed acknowledges an event that may never run"
            )
        raise IntakeKitFailure(f"{label}: answered {handled.status} without calling ctx.accept (expected accepted)")
    if count > 1:
        raise IntakeKitFailure(f"{label}: called ctx.accept {count} times: one request must be one run")
    accept = handled.accepts[0]
    if handled.error is not None:
        raise IntakeKitFailure(
            f"{label}: handle raised {type(handled.error).__name__} after ctx.accept answered: {handled.error}"
        )
    if handled.response is not accept.response:
        given = accept.response.status_code if accept.response is not None else "nothing"
        raise IntakeKitFailure(
            f"{label}: ctx.accept answered {given} but the intake answered {handled.status} with a response "
            "of its own: return accept's answer as it is (it is the node's: run id, repeats, conflicts, 503)"
        )
    if payload is not _UNSET and accept.payload != payload:
        raise IntakeKitFailure(f"{label}: ctx.accept was given payload {accept.payload!r}, expected {payload!r}")
    if not isinstance(accept.headers, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in accept.headers.items()
    ):
        raise IntakeKitFailure(f"{label}: ctx.accept's headers must be a dict of str to str, got {accept.headers!r}")
    return accept


def _core_answers() -> list[tuple[str, Callable[[], Response]]]:
    """What the node's `accept` answers besides a new run (runtime/service/service.py, http_intake.py)."""
    return [
        ("a repeat of a committed run (200)", lambda: accepted_response("kitrun000001", "running", created=False)),
        (
            "an idempotency conflict (409)",
            lambda: problem(
                409,
                "idempotency_conflict",
                "this idempotency key was used with a different body",
                run_id="kitrun000001",
            ),
        ),
        (
            "keys that cannot be computed (422)",
            lambda: problem(422, "key_error", "the flow's keys cannot be computed for this body: input.id"),
        ),
        (
            "a store that cannot commit (503)",
            lambda: problem(503, "store_unavailable", "the event could not be stored; retry later", retry_after=5),
        ),
    ]


def _declared(intake: Any, again: Any) -> tuple[str, str]:
    """The intake's method and path, checked as the core routes them and validate checks them."""
    if not isinstance(intake, HttpIntake):
        raise IntakeKitFailure(f"{type(intake).__name__} is not an HttpIntake: it needs `method`, `path` and `handle`")
    method, path = str(intake.method).upper(), str(intake.path)
    if not _METHOD.fullmatch(method):
        raise IntakeKitFailure(f"the intake's method {intake.method!r} is not an HTTP method")
    if (str(again.method).upper(), str(again.path)) != (method, path):
        raise IntakeKitFailure(
            f"the intake declares {method} {path} once and {again.method} {again.path} when built again from the "
            "same spec: the node builds it at every load and validate builds it too"
        )
    wrong = http_path_problem(path)
    if wrong is not None:
        raise IntakeKitFailure(f"the intake's path {path!r} {wrong} (validate reports SL044)")
    names: list[str] = []
    for segment in path.split("/"):
        if "{" in segment or "}" in segment:
            found = _PARAM_SEGMENT.fullmatch(segment)
            if found is None:
                raise IntakeKitFailure(
                    f"the intake's path {path!r} has segment {segment!r}: a parameter is a whole segment `{{name}}` "
                    "with a Python identifier as its name (request.path_params would not hold it)"
                )
            names.append(found.group(1))
    if len(set(names)) != len(names):
        raise IntakeKitFailure(f"the intake's path {path!r} names a parameter twice")
    return method, path


async def check_http_intake(
    kind: TriggerType | Callable[[Any], HttpIntake],
    spec: Any,
    *,
    accepted: Sequence[KitRequest],
    refused: Sequence[KitRequest] = (),
    answered: Sequence[KitRequest] = (),
    secrets: Mapping[str, str] | None = None,
    env: Mapping[str, str] | None = None,
    schemas: Mapping[str, dict[str, Any]] | None = None,
    clock: Clock | None = None,
    body_timeout: float = 10.0,
    require_reject: bool = True,
    copies: int = 8,
    timeout: float = 10.0,
) -> KitHttpContext:
    """Run the checks of the module docstring against the intake `kind` builds for `spec`; returns the
    context (its counters, the secrets the intake resolved)."""
    if not accepted:
        raise ValueError("give check_http_intake at least one request the kind accepts")
    short = [name for name, value in (secrets or {}).items() if len(value) < MIN_SECRET_LENGTH]
    if short:
        raise ValueError(f"secrets {short} are too short to be told from other text: use distinctive values")
    if isinstance(kind, TriggerType):
        if kind.http is None:
            raise IntakeKitFailure(f"trigger kind {kind.key!r} declares no `http` intake")
        if not isinstance(spec, kind.model):
            raise IntakeKitFailure(f"spec must be a {kind.model.__name__}, got {type(spec).__name__}")
        if kind.explain is not None and not isinstance(kind.explain(spec), dict):
            raise IntakeKitFailure("explain(spec) must give a mapping")
        factory, key = kind.http, kind.key
    else:
        factory, key = kind, "kit"

    # 1. what the core routes
    intake = factory(spec)
    method, path = _declared(intake, factory(spec))
    ctx = KitHttpContext(key, secrets=secrets, env=env, schemas=schemas, clock=clock, body_timeout=body_timeout)
    logs = _Records()
    kit = _Kit(intake, ctx, method, path, route_pattern(path)[0], logs, timeout, dict(secrets or {}))
    labels = {
        "accepted": [_label("accepted", i, r, kit) for i, r in enumerate(accepted)],
        "refused": [_label("refused", i, r, kit) for i, r in enumerate(refused)],
        "answered": [_label("answered", i, r, kit) for i, r in enumerate(answered)],
    }
    root, own = logging.getLogger(), ctx.log
    levels = root.level, own.level
    root.addHandler(logs)
    root.setLevel(logging.DEBUG)
    own.setLevel(logging.DEBUG)
    try:
        await _check(kit, accepted, refused, answered, labels, require_reject, copies)
    except IntakeKitFailure as exc:  # a message quoting a payload or an error must not show a secret either
        redacted = ctx.redact(str(exc))
        if redacted != str(exc):
            raise IntakeKitFailure(redacted) from None
        raise
    finally:
        root.removeHandler(logs)
        root.setLevel(levels[0])
        own.setLevel(levels[1])
    return ctx


def _label(group: str, index: int, req: KitRequest, kit: _Kit) -> str:
    name = f" {req.name}" if req.name else ""
    return f"{group}[{index}]{name} ({(req.method or kit.method).upper()} {req.path or kit.path})"


async def _check(
    kit: _Kit,
    accepted: Sequence[KitRequest],
    refused: Sequence[KitRequest],
    answered: Sequence[KitRequest],
    labels: dict[str, list[str]],
    require_reject: bool,
    copies: int,
) -> None:
    ctx = kit.ctx
    for group, requests in (("accepted", accepted), ("refused", refused), ("answered", answered)):
        for req, label in zip(requests, labels[group], strict=True):
            kit.route(req, label)

    # 2. one accept per accepted request, and its answer returned as it is
    payloads: list[Any] = []
    for req, label in zip(accepted, labels["accepted"], strict=True):
        handled = await kit.handle(req, label)
        payloads.append(_one_accept(handled, req.payload).payload)
        kit.leaks(handled)
    ctx.mode = "answer"
    for what, answer in _core_answers():
        ctx.answer = answer
        for req, label in zip(accepted, labels["accepted"], strict=True):
            handled = await kit.handle(req, f"{label} meeting {what}")
            _one_accept(handled)
            kit.leaks(handled)

    # 3. a commit that failed is not acknowledged
    ctx.mode = "fail"
    for req, label in zip(accepted, labels["accepted"], strict=True):
        handled = await kit.handle(req, f"{label} whose commit failed")
        if handled.error is None and handled.status < 500:
            raise IntakeKitFailure(
                f"{handled.label}: ctx.accept raised StoreError (nothing was committed) but the intake answered "
                f"{handled.status}: let it propagate (the node answers 500) or answer 5xx, so the sender retries"
            )
        kit.leaks(handled)
    ctx.mode = "commit"

    # 4. nothing accepted while a secret is missing, nor from a body cut off
    if ctx.resolved:
        ctx.secrets_set = False
        missing = ", ".join(sorted(ctx.resolved))
        for req, label in zip(accepted, labels["accepted"], strict=True):
            handled = await kit.handle(req, f"{label} while secrets {missing} are not set")
            if handled.accepts or (handled.error is None and 200 <= handled.status < 300):
                raise IntakeKitFailure(
                    f"{handled.label}: {'called ctx.accept' if handled.accepts else _describe(handled)} though the "
                    "request cannot be checked: answer 503 (ctx.problem) until the secret is set"
                )
            kit.leaks(handled)
        ctx.secrets_set = True
    for req, label in zip(accepted, labels["accepted"], strict=True):
        if len(req.body) > 1:
            handled = await kit.handle(req, f"{label} cut off by a disconnect", cut=True)
            if handled.accepts or (handled.error is None and 200 <= handled.status < 300):
                raise IntakeKitFailure(
                    f"{handled.label}: {'called ctx.accept' if handled.accepts else _describe(handled)} for a body "
                    "that did not fully arrive (let Starlette's ClientDisconnect propagate)"
                )
            kit.leaks(handled)

    # 5. refusals and handshakes
    for req, label in zip(refused, labels["refused"], strict=True):
        handled = await kit.handle(req, label)
        _refusal(handled, req, require_reject)
        kit.leaks(handled)
    for req, label in zip(answered, labels["answered"], strict=True):
        handled = await kit.handle(req, label)
        if handled.accepts:
            raise IntakeKitFailure(f"{label}: called ctx.accept; a request answered without a run must not")
        if handled.error is not None:
            raise IntakeKitFailure(f"{label}: handle raised {type(handled.error).__name__}: {handled.error}")
        expected = req.status
        if (expected is not None and handled.status != expected) or (expected is None and handled.status // 100 != 2):
            raise IntakeKitFailure(f"{label}: answered {handled.status}, expected {expected or '2xx'}")
        kit.leaks(handled)
    kit.stray()

    # 7. concurrent calls: one accept each, with its own payload and answer
    ctx.yields = 3
    jobs = [
        (index, kit.handle(req, f"{label} (copy {n + 1} of {copies}, run concurrently)"))
        for n in range(copies)
        for index, (req, label) in enumerate(zip(accepted, labels["accepted"], strict=True))
    ]
    jobs += [
        (-1, kit.handle(req, f"{label} (run concurrently)"))
        for req, label in zip(refused, labels["refused"], strict=True)
    ]
    results = await asyncio.gather(*(job for _, job in jobs))
    for (index, _), handled in zip(jobs, results, strict=True):
        if index < 0:
            if handled.accepts:
                raise IntakeKitFailure(f"{handled.label}: called ctx.accept for a refused request")
            continue
        accept = _one_accept(handled)
        if accept.payload != payloads[index]:
            raise IntakeKitFailure(
                f"{handled.label}: ctx.accept was given {accept.payload!r} but this request alone gave "
                f"{payloads[index]!r}: calls share state (keep per-request data in handle's locals)"
            )
    for handled in results:
        kit.leaks(handled)
    kit.stray()


def _refusal(handled: KitHandled, req: KitRequest, require_reject: bool) -> None:
    label = handled.label
    if handled.accepts:
        raise IntakeKitFailure(f"{label}: called ctx.accept for a request it should refuse")
    if handled.error is not None:
        raise IntakeKitFailure(
            f"{label}: raised {type(handled.error).__name__} instead of refusing with 4xx: {handled.error}"
        )
    if handled.status // 100 != 4:
        raise IntakeKitFailure(f"{label}: answered {handled.status}; a refusal is 4xx")
    rejections = handled.rejections()
    if len(rejections) > 1:
        raise IntakeKitFailure(f"{label}: called ctx.reject {len(rejections)} times: a refusal is counted once")
    if rejections and handled.response is not rejections[0].response:
        raise IntakeKitFailure(f"{label}: called ctx.reject but answered with another response")
    if require_reject and not rejections:
        raise IntakeKitFailure(
            f"{label}: refused with {handled.status} without ctx.reject, so the refusal is not counted in "
            "syncline_webhook_rejections_total (pass require_reject=False if the kind means to)"
        )
    if req.status is not None and handled.status != req.status:
        raise IntakeKitFailure(f"{label}: answered {handled.status}, expected {req.status}")
    if req.reason is not None:
        reason = rejections[0].reason if rejections else None
        if reason != req.reason:
            raise IntakeKitFailure(f"{label}: refused with reason {reason!r}, expected {req.reason!r}")
