"""The conformance kit for connectors: what every `ConnectorType` must do, checked against its real
system (a local server, a temporary folder, a broker on loopback).

A plugin author (and every built-in connector) calls `check_connector` with the connector type, a
connection's `config` and `operations` as they would appear in a Connection file, one call that
succeeds and one that fails. The kit checks that:

1. the type is well formed: its models are pydantic models, operations extend `OperationSpec`, the
   config and operations given validate against them;
2. `create` gives a live connector with `call` and `aclose`, without connecting yet (a connection
   that cannot be reached must not stop a project from loading);
3. the good call returns a `CallResult`;
4. the failing call raises `ConnectorError` (never another exception) with a known `reason` and
   `error_class`, and neither its message nor its `body` holds the secret the kit planted: the text
   handed to `ConnectorContext.redact` is what leaves the connector;
5. a message taken from a `Consumable` connector (when `consume` is given) arrives with its id;
6. `aclose` can be called twice, and a call after it fails cleanly or reconnects (no hang).

    from runtime.testing.connector_kit import KitCall, check_connector
    await check_connector(CONNECTOR, config, operations, good=KitCall("get", {...}), bad=KitCall(...))

Each check raises `AssertionError` saying what was expected and what happened.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, get_args

from pydantic import BaseModel

from runtime.connector_api import (
    CallRequest,
    CallResult,
    Connector,
    ConnectorContext,
    ConnectorError,
    ConnectorType,
    ErrorClass,
    FailureReason,
    OperationSpec,
)

__all__ = ["CANARY", "KitCall", "check_connector"]

CANARY = "kit-canary-7Hq2vX9pLm"  # the secret the kit plants; it must never leave the connector


@dataclass
class KitCall:
    """One call for the kit: an operation of the connection, its rendered fields and parameters."""

    operation: str
    spec: dict[str, Any] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    idempotency_key: str | None = None

    def request(self) -> CallRequest:
        return CallRequest(
            operation=self.operation,
            spec=dict(self.spec),
            params=dict(self.params),
            headers={**self.headers, "X-Kit-Secret": CANARY},
            idempotency_key=self.idempotency_key,
            timeout=10.0,
        )


async def check_connector(
    connector_type: ConnectorType,
    config: Mapping[str, Any],
    operations: Mapping[str, Mapping[str, Any]],
    *,
    good: KitCall,
    bad: KitCall,
    check_output: Callable[[Any], None] | None = None,
    consume: Callable[[Connector], Awaitable[str | None]] | None = None,
    project_dir: str = ".",
    allow_hosts: tuple[str, ...] | None = None,
    timeout: float = 20.0,
) -> CallResult:
    """Run the checks of the module docstring; returns the good call's result."""
    # 1. well-formed type
    assert isinstance(connector_type, ConnectorType), f"{connector_type!r} is not a ConnectorType"
    assert issubclass(connector_type.config_model, BaseModel), "config_model must be a pydantic model"
    assert issubclass(connector_type.operation_model, OperationSpec), "operation_model must extend OperationSpec"
    parsed_config = connector_type.config_model.model_validate(dict(config))
    parsed_ops = {name: connector_type.operation_model.model_validate(dict(op)) for name, op in operations.items()}
    assert good.operation in parsed_ops and bad.operation in parsed_ops, "good and bad must name declared operations"

    # 2. create without connecting
    redacted: list[str] = []

    def redact(text: str) -> str:
        redacted.append(text)
        return text.replace(CANARY, "***")

    context = ConnectorContext(connection="kit", project_dir=project_dir, redact=redact, allow_hosts=allow_hosts)
    connector = connector_type.create(parsed_config, parsed_ops, context)
    assert callable(getattr(connector, "call", None)) and callable(getattr(connector, "aclose", None)), (
        "create() must return a live connector with call() and aclose()"
    )
    try:
        # 3. the good call
        result = await asyncio.wait_for(connector.call(good.request()), timeout)
        assert isinstance(result, CallResult), f"call() returned {type(result).__name__}, not a CallResult"
        if check_output is not None:
            check_output(result.output)

        # 4. the failing call
        try:
            await asyncio.wait_for(connector.call(bad.request()), timeout)
        except ConnectorError as exc:
            assert exc.reason in get_args(FailureReason), f"unknown failure reason {exc.reason!r}"
            assert exc.error_class in get_args(ErrorClass), f"unknown error class {exc.error_class!r}"
            leaked = CANARY in str(exc) or CANARY in json.dumps(exc.body, default=str)
            assert not leaked, f"the planted secret left the connector in its error: {exc}"
        except Exception as exc:  # pragma: no cover - what the kit exists to catch
            raise AssertionError(f"a failing call must raise ConnectorError, not {type(exc).__name__}: {exc}") from exc
        else:
            raise AssertionError(f"the call meant to fail ({bad.operation}) succeeded")

        # 5. consuming
        if consume is not None:
            message_id = await asyncio.wait_for(consume(connector), timeout)
            assert message_id, "a consumed message must carry its id (or the broker's)"
    finally:
        # 6. closing twice
        await asyncio.wait_for(connector.aclose(), timeout)
        await asyncio.wait_for(connector.aclose(), timeout)
    try:
        await asyncio.wait_for(connector.call(good.request()), timeout)
    except ConnectorError:
        pass
    except TimeoutError:
        raise AssertionError("a call after aclose() hung instead of failing or reconnecting") from None
    finally:
        await asyncio.wait_for(connector.aclose(), timeout)
    return result
