"""Structured JSON logs: one object per line with time, level, logger, message and the run context
(run id, flow, step, correlation id) when there is one. Secret values are masked before writing."""

from __future__ import annotations

import contextvars
import json
import logging
import sys
import time
from collections.abc import Callable
from typing import Any

EMPTY: dict[str, str] = {}
run_context: contextvars.ContextVar[dict[str, str]] = contextvars.ContextVar("syncline_run_context")


def bind(**fields: str | None) -> contextvars.Token[dict[str, str]]:
    """Add fields (run_id, flow, step, correlation_id) to every log line of the current task."""
    current = dict(run_context.get(EMPTY))
    current.update({k: v for k, v in fields.items() if v is not None})
    return run_context.set(current)


class JsonFormatter(logging.Formatter):
    def __init__(self, redact: Callable[[str], str]) -> None:
        super().__init__()
        self.redact = redact

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            **run_context.get(EMPTY),
        }
        extra = getattr(record, "fields", None)
        if isinstance(extra, dict):
            entry.update(extra)
        if record.exc_info and record.exc_info[1] is not None:
            entry["error"] = f"{type(record.exc_info[1]).__name__}: {record.exc_info[1]}"
        return self.redact(json.dumps(entry, default=str, ensure_ascii=False))


def configure(level: str = "info", *, redact: Callable[[str], str] = lambda s: s, stream: Any = None) -> None:
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter(redact))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("httpcore", "httpx", "apscheduler"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
