"""Live connectors per connection, started on first use; and mocked operations for tests and `--mock`.

A connection's `config` is rendered with `env()` and `secret()` when its connector starts, validated
against the connector's config model, and handed to the connector type's factory. Every call goes
through `ConnectorPool.invoke`, which applies the system's limits and times the call (`on_call`, for
the service's latency histogram). Egress allow-lists come from Policy
rules with `allow_hosts` that match the connection (the matcher validate uses too).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from runtime.clock import Clock
from runtime.connector_api import CallRequest, CallResult, Connector, ConnectorContext, ConnectorError
from runtime.expr import ENV_KEY, SECRETS_KEY
from runtime.policy.rule_match import pattern_matches
from runtime.secrets import SecretStore
from runtime.spec.common import parse_duration
from runtime.spec.flowtest import Mock, MockResponse

if TYPE_CHECKING:
    from runtime.engine.context import RunState
    from runtime.engine.plan import CompiledConnection, CompiledOperation, Plan
    from runtime.policy.limits import SystemLimits


class MockedOperations:
    """Responses for mocked operations (`connection.operation` → Mock), counting calls per operation."""

    def __init__(self, mocks: Mapping[str, Mock], clock: Clock, *, only_mocks: bool) -> None:
        self.mocks = dict(mocks)
        self.clock = clock
        self.only_mocks = only_mocks
        self.counts: dict[str, int] = {}

    def covers(self, target: str) -> bool:
        return target in self.mocks

    async def respond(self, target: str, request: CallRequest) -> CallResult:
        mock = self.mocks[target]
        index = self.counts.get(target, 0)
        self.counts[target] = index + 1
        response: MockResponse = mock
        if mock.sequence:
            response = mock.sequence[min(index, len(mock.sequence) - 1)]
        if response.latency:
            await self.clock.sleep(parse_duration(response.latency))
        if response.error is not None:
            error = response.error
            status = error.status
            retriable = error.reason in ("timeout", "connect") or (
                status is not None and (status == 429 or status >= 500)
            )
            raise ConnectorError(
                error.message,
                reason=error.reason,
                error_class="retriable" if retriable else "fatal",
                status=status,
                body=error.body,
                code=error.code,
            )
        return CallResult(output=response.output, status=200)


class _MockConnector:
    def __init__(self, connection: str, mocks: MockedOperations) -> None:
        self.connection = connection
        self.mocks = mocks

    async def call(self, request: CallRequest) -> CallResult:
        target = f"{self.connection}.{request.operation}"
        if not self.mocks.covers(target):
            raise ConnectorError(f"operation {target} is not mocked in this test", reason="config", error_class="fatal")
        return await self.mocks.respond(target, request)

    async def aclose(self) -> None:
        return None


class _MixedConnector:
    """Mocked operations answered by the mocks, the rest by the real connector."""

    def __init__(self, connection: str, mocks: MockedOperations, real: Connector) -> None:
        self.connection = connection
        self.mocks = mocks
        self.real = real

    async def call(self, request: CallRequest) -> CallResult:
        target = f"{self.connection}.{request.operation}"
        if self.mocks.covers(target):
            return await self.mocks.respond(target, request)
        return await self.real.call(request)

    async def aclose(self) -> None:
        await self.real.aclose()


# Told of every call a connector made: (system, operation, status class, seconds).
CallObserver = Callable[[str, str, str, float], None]


def status_class(status: int | None, failure: BaseException | None = None) -> str:
    """`2xx`..`5xx` from an HTTP status; else `ok`, or what failed (`timeout`, `connect`, ...)."""
    if status is not None and 100 <= status <= 599:
        return f"{status // 100}xx"
    if failure is None:
        return "ok"
    if isinstance(failure, ConnectorError):
        return failure.reason
    return "cancelled" if isinstance(failure, asyncio.CancelledError) else "error"


class ConnectorPool:
    def __init__(self, plan: Plan, secrets: SecretStore, env: Any, *, mocks: MockedOperations | None = None) -> None:
        self.plan = plan
        self.secrets = secrets
        self.env = env
        self.mocks = mocks
        self.on_call: CallObserver | None = None
        self._live: dict[str, Connector] = {}
        self._lock = asyncio.Lock()

    async def invoke(
        self, operation: CompiledOperation, request: CallRequest, limits: SystemLimits, state: RunState | None = None
    ) -> CallResult:
        """The one way a call reaches a connector (steps, reconcile, poll triggers): through the
        system's shared limits from Policy rules (rate limit, concurrency, circuit breaker)."""
        connector = await self.get(operation.connection, state)
        # values derived from a secret go to the connector as they are; remember them so that text
        # echoing them (the connector's errors, logs, a response body) is masked
        self.secrets.note(request.params)
        self.secrets.note(request.spec)
        async with limits.around(operation):
            started = time.perf_counter()
            try:
                result = await connector.call(request)
            except BaseException as exc:
                self._observe(operation, status_class(getattr(exc, "status", None), exc), started)
                raise
            self._observe(operation, status_class(result.status), started)
            return result

    def _observe(self, operation: CompiledOperation, outcome: str, started: float) -> None:
        if self.on_call is not None:
            self.on_call(operation.system, operation.target, outcome, time.perf_counter() - started)

    def breaker_states(self) -> dict[str, tuple[str, str]]:
        """connection → (system, state) of the connectors started so far that have their own circuit
        breaker (an http connection's `circuit_breaker`): closed, open or half_open."""
        states = {}
        for name, connector in self._live.items():
            state = getattr(getattr(connector, "breaker", None), "state", None)
            compiled = self.plan.connections.get(name)
            if isinstance(state, str) and compiled is not None:
                states[name] = (compiled.system, state)
        return states

    async def get(self, connection: str, state: RunState | None = None) -> Connector:
        live = self._live.get(connection)
        if live is not None:
            return live
        async with self._lock:
            live = self._live.get(connection)
            if live is None:
                live = self._start(connection)
                self._live[connection] = live
        return live

    def _start(self, name: str) -> Connector:
        if self.mocks is not None and self.mocks.only_mocks:
            return _MockConnector(name, self.mocks)
        compiled = self.plan.connections[name]
        real = self._real(compiled)
        if self.mocks is not None:
            return _MixedConnector(name, self.mocks, real)
        return real

    def _real(self, compiled: CompiledConnection) -> Connector:
        rendered = compiled.config.render({SECRETS_KEY: self.secrets.resolve, ENV_KEY: self.env})
        self.secrets.note(rendered)  # derived values (a Basic credential) are masked in its errors too
        try:
            config = compiled.connector_type.config_model.model_validate(rendered)
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
            raise ConnectorError(
                self.secrets.redact(f"connection {compiled.name!r} config: {problems}"),
                reason="config",
                error_class="fatal",
            ) from None
        operations = {name: op.spec for name, op in compiled.operations.items()}
        context = ConnectorContext(
            connection=compiled.name,
            project_dir=str(self.plan.root),
            redact=self.secrets.redact,
            allow_hosts=allow_hosts_for(self.plan, compiled),
        )
        return compiled.connector_type.create(config, operations, context)

    async def aclose(self) -> None:
        for connector in self._live.values():
            await connector.aclose()
        self._live.clear()


def allow_hosts_for(plan: Plan, connection: CompiledConnection) -> tuple[str, ...] | None:
    """Host patterns from Policy rules with `allow_hosts` whose match covers this connection."""
    hosts: list[str] = []
    found = False
    for policy in plan.policies:
        for rule in policy.rules:
            if rule.allow_hosts is None:
                continue
            match = rule.match
            if not pattern_matches(match.system, connection.system) or not pattern_matches(
                match.connector, connection.connector_type.name
            ):
                continue
            found = True
            hosts.extend(rule.allow_hosts)
    return tuple(hosts) if found else None
