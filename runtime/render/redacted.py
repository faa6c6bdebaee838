"""A run's outcome as it may be shown to people: `redacted(result, redact)`.

The outcome of a run executed in this process (`syncline run`, `syncline replay`) holds the real
values in its output, error, answer, calls and events, secrets and values derived from them
included (the connector calls needed them). Everything shown goes through `redact` first, e.g.
`SecretStore.redact_value`; the journal read back from the store is masked already.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from runtime.engine.executor import RunResult


def redacted(result: RunResult, redact: Callable[[Any], Any]) -> RunResult:
    """A copy of `result` with every value passed through `redact`."""
    calls = [
        dataclasses.replace(
            c,
            params=redact(c.params),
            output=redact(c.output),
            error=redact(c.error) if c.error is not None else None,
        )
        for c in result.calls
    ]
    journal = [
        dataclasses.replace(r, input=redact(r.input), output=redact(r.output), error=redact(r.error))
        for r in result.journal
    ]
    return dataclasses.replace(
        result,
        run=dataclasses.replace(result.run, output=redact(result.run.output), error=redact(result.run.error)),
        output=redact(result.output),
        error=redact(result.error),
        response=redact(result.response),
        calls=calls,
        emitted=[dataclasses.replace(e, data=redact(e.data)) for e in result.emitted],
        journal=journal,
    )
