"""The source plugin interface: what a trigger kind declares, and the narrow context a source runs in.

A trigger *kind* is one `TriggerType` value exported by a plugin module and named in the
`syncline.triggers` entry-point group (the built-in kinds are registered the same way, in Syncline's
own pyproject.toml; runtime/trigger_registry.py loads them). It holds:

- `key`: the one key that marks a trigger of this kind in a flow (`trigger: {queue: ...}`);
- `model`: the pydantic model of what follows the key; the flow JSON Schema, docs/reference.md and
  validate's error positions come from it;
- `wrapper` (optional): the model of the whole trigger mapping (`{queue: QueueSpec}`); made from `key`
  and `model` when a plugin gives none;
- what the checker needs to know without knowing the kind: `connection_field` (the field naming the
  connection it reads), `needs` (what that connection's connector must provide, e.g. "folder"),
  `call_field` (an operation it calls), `idempotency_field` and
  `ordering_field` (templates giving each run's keys), `schema_field` (a JSON Schema file under
  schemas/ or `canonical:<name>` its events' payloads must satisfy: validate checks it exists, the
  typed checks read `input.` against it), `explain(spec)` (its rules in words);
- `source`: how to build the long-running `Source` of one flow's trigger, or None when the core takes
  the kind's events itself (webhooks arrive through the service's HTTP intake, `manual` through the
  API and `syncline run`).

A `Source` is started once per flow by the service (and stopped on shutdown or reload) with a
`SourceContext`. Through the context a source can only:

- accept events: `accept(events, cursor=...)` commits one run per event not seen before (its `key`
  is its identity for this trigger: a message id, a file hash and record number) together with the
  cursor, in one transaction, and returns only once that is committed — only then may the source
  acknowledge its origin (ack a message, move a file);
- send an event that cannot become a run (unparseable, over its redelivery limit, failing its schema)
  to the dead letters with a reason (`dead_letter`), after which it may acknowledge it;
- check a payload against the trigger's declared schema (`schema_error`: the first failure, or None);
- read its durable cursor (`cursor()`), and how many runs of its flow are not ended (`active_runs()`);
- read Syncline's own event log, what flows `emit` (`emitted(after, wait=...)`: the events after an
  id, waiting until one comes; `emitted_start()`: where a reader with no cursor begins), as the
  `event` kind does; an accepted event's `caused_by` names the run that emitted it (the new run's
  parent);
- wait while the node is too busy (`ready()`: backpressure — while its backlog is over the limit, and
  briefly while every run slot is taken, so events wait at their origin rather than in the queue; a
  source takes no more than it is told), and learn how many runs could start at once (`room()`: a
  source taking events in batches takes at most that many when it is more than 0, so each starts as
  soon as it is committed);
- reach its connection's live connector (`connector()`), call an operation through the same path as
  flows (`call`), compile the trigger's templates (`compile`), read the clock, log (through `redact`),
  say it reached its origin (`progressed`) and how late an event came (`delay`), count metrics (`count`).

It never sees the service, the store or the executor. Secrets reach it only inside rendered values.

A kind whose events arrive as HTTP requests on the node (`webhook`, or a plugin's vendor push format
with its own handshake) declares `http` instead of (or besides) `source`: a function from the spec to
an `HttpIntake`, which names its `method` and `path` (`{param}` segments match one path segment; their
values are in `request.path_params`) and handles each request routed to it. validate builds it too, to
check the path (reserved prefixes, two flows on one method and path), so building it must be cheap and
do no I/O. The core routes (404, 405 with `Allow`, 503 while the node shuts down) and builds one
`HttpContext` per flow when the project is loaded; through it an intake can only:

- commit the run of one request and get the HTTP answer for it (`accept`): 202 with the run's
  `Location`, 200 with the first run for a repeated idempotency key, 409 when that key came with a
  different body, the flow's `respond` in sync mode (`sync_timeout`: how long to wait before 202), 422
  when the flow's keys cannot be computed for the payload, 503 when the store cannot commit;
- refuse a request as RFC 9457 problem details (`reject`, counted per flow and reason; `problem`, not
  counted), load a JSON Schema of the project (`schema`), render a secret template for a signature
  check (`secret`: raises `SecretUnavailable` while a secret it names is not set), read the clock and
  the project's body timeout, log (through `redact`) and count metrics (`count`).

An intake may also answer without a run (a URL-verification challenge): it returns its own Starlette
`Response`. Requests are the hot path: keep per-request work in `handle` and precompute in the intake.

`SOURCE_API_VERSION` is versioned with the package: it changes when a declaration or a context
method is added or changes meaning.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from pydantic import BaseModel

from runtime.clock import Clock

if TYPE_CHECKING:  # types only: the spec and checker import this module and must not load Starlette
    from starlette.requests import Request
    from starlette.responses import Response

__all__ = [
    "NO_CURSOR",
    "SOURCE_API_VERSION",
    "Accepted",
    "EmittedEvent",
    "HttpContext",
    "HttpIntake",
    "Renderable",
    "SecretUnavailable",
    "Source",
    "SourceContext",
    "SourceError",
    "SourceEvent",
    "TriggerType",
]

# 2: TriggerType.schema_field, SourceContext.schema_error/emitted, SourceEvent.caused_by; TriggerType.http
# with HttpIntake and HttpContext (kinds taking HTTP requests: the webhook's checks moved into its kind)
SOURCE_API_VERSION = 2


class _NoCursor:
    def __repr__(self) -> str:
        return "NO_CURSOR"


NO_CURSOR: Any = _NoCursor()  # `accept(..., cursor=NO_CURSOR)`: leave the stored cursor as it is


class SourceError(Exception):
    """A source cannot go on (bad configuration found at start, a connector without consumers)."""


class SecretUnavailable(SourceError):
    """A secret a template names is not set (`HttpContext.secret`; the node may serve with secrets missing)."""


@dataclass
class SourceEvent:
    """One event a source hands to Syncline.

    `key` is the event's identity for this trigger: an event whose key was accepted before is not
    a new run (a redelivered message, a file taken again). None: every event is new.
    `ordering_key` overrides the flow's declared `ordering_key` for this event. `meta` is kept with the
    run (under `meta.source`), for people and replays: message id, file name, record number.
    """

    payload: Any
    key: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    ordering_key: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    caused_by: str | None = None  # the run that caused this event (an `emit`): the new run's parent


@dataclass(frozen=True)
class EmittedEvent:
    """One event of Syncline's own event log (`SourceContext.emitted`): what an `emit` step sent."""

    id: int  # increasing in the log: a reader's cursor is the id of the last event it read
    name: str
    data: Any
    source_run_id: str | None = None  # the run whose step emitted it


@dataclass(frozen=True)
class Accepted:
    """What `accept` did with one event: the run it is (new or found by its key)."""

    event: SourceEvent
    run_id: str | None  # None when the key was seen and its run is no longer known
    created: bool


class Renderable(Protocol):
    """A compiled template or expression of the trigger (`SourceContext.compile`)."""

    def render(self, scope: Mapping[str, Any]) -> Any: ...


@runtime_checkable
class SourceContext(Protocol):
    """What a running source may do (see the module docstring)."""

    flow: str
    trigger_id: str  # "<kind>:<flow>": the namespace of its keys and cursor
    clock: Clock
    log: logging.Logger

    async def accept(self, events: Sequence[SourceEvent], *, cursor: Any = NO_CURSOR) -> list[Accepted]:
        """Commit a run for each event whose key was not accepted before, and the cursor, in one
        transaction; returns once committed (in the events' order). With no events and a cursor, only
        the cursor is stored (a reader that read past events none of which was for it)."""
        ...

    async def dead_letter(self, event: SourceEvent, reason: str, message: str) -> None:
        """Record an event that cannot run in the dead letters (reason: `poison`, `unparseable`, ...)."""
        ...

    def schema_error(self, payload: Any) -> str | None:
        """The first way `payload` fails the schema named by the trigger's `schema_field` (`at /pointer:
        message`), or None when it satisfies it (or the trigger declares none)."""
        ...

    async def active_runs(self) -> int:
        """How many runs of this flow are not ended yet (0 or more; counted up to 100)."""
        ...

    def delay(self, seconds: float) -> None:
        """How late the last event was taken against its origin's own time (a schedule's fire time, a
        message's timestamp): the gauge `syncline_source_delay_seconds{flow,kind}`."""
        ...

    async def cursor(self) -> Any:
        """The cursor stored by the last `accept` that gave one; None before."""
        ...

    async def emitted(self, after: int, *, limit: int = 100, wait: float = 0.0) -> list[EmittedEvent]:
        """Events of Syncline's event log with an id above `after`, oldest first, at most `limit`.
        When there are none, wait up to `wait` seconds for one (woken at once when a run of this node
        emits, within a moment for one of another node) and return what is there then (maybe none)."""
        ...

    def emitted_start(self) -> int:
        """Where a reader of the event log with no cursor yet begins: the position of the node's own
        reader of the log (it wakes `wait` steps) when this source was set up, before the node took
        traffic, so no event emitted later is missed and none from before is read (on an upgrade, where
        the former core dispatcher had started flows up to; on a new store, the newest event)."""
        ...

    async def ready(self) -> None:
        """Return when the node has room for more runs: waits while its backlog is over the limit, and
        while every run slot is taken for up to a moment (a quarter second), after which events go to
        the queue."""
        ...

    def room(self) -> int:
        """How many runs the node could start right now (free run slots; 0 when all are taken)."""
        ...

    def paused(self) -> bool:
        """True while the node's backlog is over the limit (a source should stop taking events)."""
        ...

    def progressed(self) -> None:
        """The source reached its origin (a poll answered, a scan ended, a message came): the gauge
        `syncline_source_lag_seconds{flow,kind}` shows the time since."""
        ...

    async def connector(self) -> Any:
        """The live connector of the connection named by the trigger's `connection_field`."""
        ...

    async def call(self, operation: str, params: Mapping[str, Any], *, headers: Mapping[str, str] | None = None) -> Any:
        """Call `connection.operation` as a flow's step would (limits, breaker, egress rules); returns
        its output."""
        ...

    def compile(self, template: Any, name: str) -> Renderable:
        """Compile a template or expression of the trigger (rendered with `scope()` plus your names)."""
        ...

    def scope(self) -> dict[str, Any]:
        """The names every render needs (clock, secrets, env); add the event's own (`item`, `message`)."""
        ...

    def redact(self, text: str) -> str:
        """Text with secret values and masked fields replaced by ***: pass anything you log through it."""
        ...

    def count(self, name: str, value: float = 1.0) -> None:
        """Add to the source's counter `name` (exported as syncline_source_events_total{flow,kind,name})."""
        ...


@runtime_checkable
class Source(Protocol):
    """The long-running part of one flow's trigger: `run` takes events until it is cancelled.

    `run` should survive its origin going away (reconnect with backoff, log what happened) and
    return only when there is nothing more to take; cancellation stops it."""

    async def run(self, ctx: SourceContext) -> None: ...


@runtime_checkable
class HttpContext(Protocol):
    """What an HTTP intake may do for one flow (see the module docstring); built once per flow each
    time the project is loaded, and passed to every request the flow's intake handles."""

    flow: str
    trigger_id: str  # "<kind>:<flow>"
    clock: Clock
    log: logging.Logger
    body_timeout: float  # seconds a request's whole body may take (the project's `service.body_timeout`)

    async def accept(
        self,
        payload: Any,
        *,
        headers: dict[str, str],
        correlation_id: str | None = None,
        digest: str | None = None,
        sync_timeout: float | None = None,
    ) -> Response:
        """Commit the run of one request, then answer it (see the module docstring). `headers`: what the
        run keeps (leave out credentials); `digest`: the request's identity for its idempotency key (a
        hash of the body: the same key with another digest is 409); `sync_timeout`: None answers 202 once
        committed, a number waits that long for the flow's `respond`."""
        ...

    def reject(
        self, status: int, reason: str, message: str, *, headers: Mapping[str, str] | None = None, **extra: Any
    ) -> Response:
        """A refusal as problem details (`code` = reason), counted in
        syncline_webhook_rejections_total{flow,reason}."""
        ...

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
        """Problem details without counting a rejection (the node is not ready for this request)."""
        ...

    def schema(self, path: str) -> Any:
        """A validator of the project's JSON Schema file `path` (jsonschema: `iter_errors(value)`),
        loaded once per project version; None when the project has no such schema (validate reports it)."""
        ...

    def secret(self, template: str | None) -> str | None:
        """Render a secret template (`{{ secret('HOOK_SECRET') }}`); None for None. Raises
        `SecretUnavailable` (its message redacted) when a secret it names is not set."""
        ...

    def redact(self, text: str) -> str:
        """Text with secret values and masked fields replaced by ***: pass anything you log through it."""
        ...

    def count(self, name: str, value: float = 1.0) -> None:
        """Add to the counter `name` (exported as syncline_source_events_total{flow,kind,name})."""
        ...


@runtime_checkable
class HttpIntake(Protocol):
    """How a kind takes the requests of one flow's trigger (`TriggerType.http(spec)`)."""

    method: str  # POST, PUT, ...
    path: str  # /hooks/orders, /hooks/{tenant}/orders

    async def handle(self, request: Request, ctx: HttpContext) -> Response:
        """Answer one request routed here: check it, then `ctx.accept(...)` or refuse. Starlette's
        `ClientDisconnect` (the caller went away mid-body) may propagate: nothing is answered."""
        ...


@dataclass(frozen=True)
class TriggerType:
    """A trigger kind (see the module docstring)."""

    key: str
    model: type[BaseModel]
    description: str
    source: Callable[[Any], Source] | None = None  # spec (an instance of `model`) -> Source
    http: Callable[[Any], HttpIntake] | None = None  # spec -> its intake on the node's HTTP surface
    wrapper: type[BaseModel] | None = None
    connection_field: str | None = None
    needs: str | None = None  # what the connection's connector must provide (`ConnectorType.provides`)
    call_field: str | None = None
    idempotency_field: str | None = None
    ordering_field: str | None = None
    schema_field: str | None = None  # a JSON Schema file (under schemas/, or canonical:<name>) payloads satisfy
    explain: Callable[[Any], dict[str, Any]] | None = None
    intake: str = ""  # where its events come in, for docs when `source` is None ("the HTTP intake")
    order: int = 100

    def field_value(self, spec: Any, name: str | None) -> Any:
        """The value of one declared field of a spec (None when the kind declares no such field)."""
        return getattr(spec, name, None) if name else None
