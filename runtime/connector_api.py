"""The connector plugin interface: what a connector declares and how the engine calls it.

A connector *type* (`ConnectorType`) is one value exported by a plugin module and named in the
`syncline.connectors` entry-point group. It declares:

- `config_model`: the pydantic model of a Connection's `config:` (shown in the JSON Schema and docs);
- `operation_model`: the pydantic model of one entry under a Connection's `operations:`;
- `create(...)`: builds a live `Connector` for one Connection.

The engine renders every templated field of an operation (``{{ params.x }}``) before the call, so a
connector receives plain values in `CallRequest.spec` and never evaluates expressions itself.
Errors leave a connector only as `ConnectorError`, classified so the retry policy can key off it.
Secret values are redacted by `ConnectorContext.redact` before any text leaves a connector.
A connector that parses JSON itself passes the result through `check_json_text(text, value)`: JSON
values in Syncline are Unicode text, and a lone surrogate escape is refused (`LoneSurrogateError`).
"""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from runtime.errors import SynclineError
from runtime.expr.jsonvalues import LoneSurrogateError as LoneSurrogateError
from runtime.expr.jsonvalues import check_text


class Effect(str, enum.Enum):
    """What an operation does to the entity it touches."""

    read = "read"
    create = "create"
    update = "update"
    upsert = "upsert"
    delete = "delete"
    command = "command"
    publish = "publish"

    @property
    def writes(self) -> bool:
        return self is not Effect.read


class OperationSpec(BaseModel):
    """Fields every operation has, whatever its connector. Connector operation models extend this."""

    model_config = ConfigDict(extra="forbid")

    entity: str | None = Field(None, description="The business entity the operation touches.", examples=["order"])
    effect: Effect = Field(Effect.read, description="What the operation does to the entity.", examples=["create"])
    description: str | None = Field(None, description="Free text for people reading the project.")

    # Fields that hold SQL or other fixed text and must never be templated (checked by validate).
    fixed_text_fields: ClassVar[tuple[str, ...]] = ()


ErrorClass = Literal["retriable", "fatal"]
FailureReason = Literal["timeout", "connect", "status", "response", "egress", "config", "circuit_open", "rate_limited"]


class ConnectorError(SynclineError):
    """A call failed. `error_class` decides whether a retry can help; `reason` and `status` say why.

    `retry_after` (seconds) is the server's own advice (HTTP `Retry-After`), already capped.
    `code` is the system's own error code when its answer names one (`INVALID_VALUE`, `53100020`);
    it is carried into the step's error and dead letters.
    The message never holds secret values (connectors pass it through `ConnectorContext.redact`).
    """

    def __init__(
        self,
        message: str,
        *,
        reason: FailureReason,
        error_class: ErrorClass,
        status: int | None = None,
        retry_after: float | None = None,
        body: Any = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.reason = reason
        self.error_class = error_class
        self.status = status
        self.retry_after = retry_after
        self.body = body
        self.code = code

    @property
    def retriable(self) -> bool:
        return self.error_class == "retriable"


@dataclass
class CallRequest:
    """One call of one operation, with its templated fields already rendered."""

    operation: str
    spec: dict[str, Any]
    params: dict[str, Any] = field(default_factory=dict)
    idempotency_key: str | None = None
    headers: dict[str, str] = field(default_factory=dict)  # correlation id, provenance
    timeout: float | None = None
    dry_run: bool = False


@dataclass
class CallResult:
    output: Any
    status: int | None = None
    meta: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class Connector(Protocol):
    """A live connection to one external system."""

    async def call(self, request: CallRequest) -> CallResult: ...

    async def aclose(self) -> None: ...


@dataclass
class ConnectorContext:
    """What the runtime hands a connector when it creates it."""

    connection: str
    project_dir: str = "."
    redact: Callable[[str], str] = lambda text: text
    allow_hosts: tuple[str, ...] | None = None  # egress allow-list from policy; None means the default rules
    clock: Callable[[], float] | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ConnectorType:
    """A connector plugin: its name, config and operation models, and a factory."""

    name: str
    description: str
    config_model: type[BaseModel]
    operation_model: type[OperationSpec]
    create: Callable[[BaseModel, Mapping[str, OperationSpec], ConnectorContext], Connector]
    # What its live connectors offer besides calls ("folder": `HasFolder`); a trigger kind that
    # needs one (`TriggerType.needs`) is refused by validate on a connection without it.
    provides: frozenset[str] = frozenset()


# ------------------------------------------------------------------------------- consuming
# A live connector may also be consumed from, so that a trigger can take its messages or files
# (runtime/triggers/queue.py, runtime/triggers/file.py). It says so by having the method below.


@runtime_checkable
class InboundMessage(Protocol):
    """One message taken from a broker; settled once with `ack()` or `nack()`."""

    body: bytes
    headers: dict[str, str]
    message_id: str | None
    content_type: str | None
    source: str  # the queue, subject, stream or topic it came from
    delivery_count: int | None  # 1 on first delivery, when the broker tells

    async def ack(self) -> None: ...

    async def nack(self, requeue: bool = True) -> None: ...


@runtime_checkable
class AcksThrough(Protocol):
    """A message that can be acknowledged together with every earlier unsettled message of its
    consumer in one go (AMQP's `multiple` ack): the queue trigger settles a committed batch so."""

    async def ack_through(self) -> None: ...


@runtime_checkable
class Rejects(Protocol):
    """A message that can be settled as poison with Syncline's reason: never delivered again, and
    handed to the broker's own dead-letter place where one is configured, carrying the reason where
    the broker keeps one (a NATS termination advisory, a Redis dead-letter stream entry). The queue
    trigger settles poison so; a message without it is settled with `nack(requeue=False)`."""

    async def reject(self, reason: str, detail: str) -> None: ...


@runtime_checkable
class MessageConsumer(Protocol):
    """Messages of one queue / subject / stream / topic, as an async iterator.

    The broker holds at most `prefetch` unsettled messages for the consumer. A lost connection ends
    the iteration with a retriable `ConnectorError(reason="connect")`; the caller iterates again (after
    a backoff) to go on, and messages it never acked come back."""

    def messages(self) -> AsyncIterator[InboundMessage]: ...


@runtime_checkable
class Consumable(Protocol):
    """A live connector that messages can be consumed from (the broker connectors)."""

    def consumer(self, subject: str, *, group: str | None, prefetch: int) -> MessageConsumer: ...


@dataclass(frozen=True)
class FolderEntry:
    """One file of a folder: its name (relative, `/`-separated), size in bytes and mtime (epoch s)."""

    name: str
    size: int
    mtime: float


@runtime_checkable
class Folder(Protocol):
    """The files of a connection's folder (local or remote), for the `file` trigger.

    Names are relative to the folder; the done/failed folders are never listed. Errors are
    `ConnectorError` (a lost connection is retriable: the trigger scans again later)."""

    encoding: str  # the text encoding of the files

    async def list(self, pattern: str) -> list[FolderEntry]:
        """Regular files matching the glob `pattern` (`**` crosses folders)."""
        ...

    def read(self, name: str, *, offset: int = 0) -> AsyncIterator[bytes]:
        """The bytes of a file from `offset` on, in chunks (never the whole file at once)."""
        ...

    async def move(self, name: str, folder: str) -> str:
        """Move a file into `folder` ("done", "failed" or a path inside the folder) without overwriting
        (a taken name gets a number); returns its new name."""
        ...

    async def write_text(self, name: str, text: str) -> None:
        """Write a small text file (a reason file next to a failed one), replacing it."""
        ...


@runtime_checkable
class HasFolder(Protocol):
    """A live connector that offers a folder (its `ConnectorType.provides` names "folder")."""

    def folder(self) -> Folder: ...


def check_json_text(text: str | bytes, value: Any) -> Any:
    """`value`, parsed by a connector from the JSON `text`; raises `LoneSurrogateError` (a
    `ValueError` naming the JSON pointer) when the text's escapes left a lone surrogate in it."""
    return check_text(text, value)
