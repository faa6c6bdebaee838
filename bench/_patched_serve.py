"""`syncline serve` with proposed optimisations applied in-process (no runtime file is changed), so
their gain can be measured side by side with the shipped code.

    python bench/_patched_serve.py PATCH[,PATCH...] serve --project DIR --port N ...

Patches:
  sniffio   provide `sniffio` (httpcore imports it on every pool operation; when it is not installed
            each import fails after a search of sys.path — `pip install sniffio` does the same)
  aiohttp   the http connector's transport on aiohttp, egress-pinned (bench/_transports.py)
  uvloop    uvloop's event loop, and uvicorn picks httptools (both from bench/.cache/pylib, where the
            benchmarks install them for this experiment only)
  fastjsonschema
            JSON Schemas compiled with fastjsonschema (from bench/.cache/pylib) as a fast path:
            jsonschema runs only when the document is invalid, for the error message
  switch    sys.setswitchinterval(0.0005): the store's writer/reader threads get the GIL back after
            0.5 ms instead of 5 ms (shows how much the threads wait for the GIL); switch1: 0.1 ms
  nogc      the garbage collector off (the upper bound for GC tuning; the shipped node freezes its
            startup objects and raises the thresholds, runtime/service/heap.py)
  gcfreeze  thresholds (10000, 50, 100) set before start, without the freeze
  writerstats
            print the SQLite writer's batches/s, jobs per batch and time per batch every 2 s
  memorystore
            `--store memory://`: no journal cost at all — not shippable (P1 needs the journal), only
            the upper bound of what a leaner journal (fewer store round trips per run) can give
  leanjournal
            (written before write_journal existed; kept for comparison) SQLite store: the journal
            records of pure steps are queued without waiting for their commit, and `journal()` of a
            run this process has just created answers [] without a read
  none      nothing (the shipped code through this launcher)
"""

from __future__ import annotations

import asyncio
import importlib
import sys
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))


def _stub_sniffio() -> None:
    try:
        importlib.import_module("sniffio")
    except ImportError:
        module = types.ModuleType("sniffio")

        def current_async_library() -> str:
            asyncio.get_running_loop()
            return "asyncio"

        module.current_async_library = current_async_library  # type: ignore[attr-defined]
        sys.modules["sniffio"] = module


class _FastValidator:
    """jsonschema's validator with a compiled fast path for valid documents."""

    def __init__(self, slow: Any, fast: Any, error: type[Exception]) -> None:
        self._slow, self._fast, self._error = slow, fast, error

    def iter_errors(self, document: Any) -> Iterator[Any]:
        try:
            self._fast(document)
        except self._error:
            yield from self._slow.iter_errors(document)

    def is_valid(self, document: Any) -> bool:
        try:
            self._fast(document)
        except self._error:
            return False
        return True

    def __getattr__(self, name: str) -> Any:
        return getattr(self._slow, name)


def _fast_schemas() -> None:
    fastjsonschema = importlib.import_module("fastjsonschema")
    import runtime.engine.plan as plan
    import runtime.mappings as mappings

    original = mappings.schema_validator

    def schema_validator(schema: dict[str, Any]) -> Any:
        return _FastValidator(original(schema), fastjsonschema.compile(schema), fastjsonschema.JsonSchemaException)

    setattr(mappings, "schema_validator", schema_validator)  # noqa: B010
    setattr(plan, "schema_validator", schema_validator)  # noqa: B010


PURE_STEPS = frozenset({"validate", "map", "set", "respond"})


def _lean_journal() -> None:
    import runtime.store.sql as sql
    from runtime.store.schema import step_row

    store_class = sql.SqlStore
    fresh: set[str] = set()
    create_run, record_step, journal = store_class.create_run, store_class.record_step, store_class.journal

    async def lean_create_run(self: Any, new: Any, *, now: float) -> Any:
        created = await create_run(self, new, now=now)
        if created.created:
            fresh.add(created.run.id)
        return created

    async def lean_record_step(self: Any, record: Any, events: Any = ()) -> Any:
        writer = getattr(self, "_writer", None)
        if writer is None or events or record.kind not in PURE_STEPS or record.status != "succeeded":
            return await record_step(self, record, events)
        row = step_row(record, 0)
        writer.submit(lambda conn: sql._record_step(conn, row, []))
        return record

    async def lean_journal(self: Any, run_id: str) -> Any:
        if run_id in fresh:
            fresh.discard(run_id)
            return []
        return await journal(self, run_id)

    setattr(store_class, "create_run", lean_create_run)  # noqa: B010
    setattr(store_class, "record_step", lean_record_step)  # noqa: B010
    setattr(store_class, "journal", lean_journal)  # noqa: B010


def _writer_stats() -> None:
    """Print the SQLite writer's batch sizes and times every 2 s (to stderr)."""
    import atexit
    import time as _time

    import runtime.store.sql as sql

    stats = {"batches": 0, "jobs": 0, "busy": 0.0, "since": _time.perf_counter()}
    run = sql._Writer._run

    def timed(self: Any, batch: Any) -> Any:
        started = _time.perf_counter()
        try:
            return run(self, batch)
        finally:
            stats["batches"] += 1
            stats["jobs"] += len(batch)
            stats["busy"] += _time.perf_counter() - started
            now = _time.perf_counter()
            if now - stats["since"] > 2:
                n = max(stats["batches"], 1)
                print(
                    f"writer: {stats['batches'] / (now - stats['since']):.0f} batches/s, "
                    f"{stats['jobs'] / n:.1f} jobs/batch, {1000 * stats['busy'] / n:.2f} ms/batch, "
                    f"busy {100 * stats['busy'] / (now - stats['since']):.0f}%",
                    file=sys.stderr,
                    flush=True,
                )
                stats.update(batches=0, jobs=0, busy=0.0, since=now)

    setattr(sql._Writer, "_run", timed)  # noqa: B010
    atexit.register(lambda: None)


def apply(patches: set[str]) -> None:
    if "sniffio" in patches:
        _stub_sniffio()
    if "aiohttp" in patches:
        from _transports import GuardedAiohttpTransport

        import connectors.http.client as client

        setattr(client, "GuardedTransport", GuardedAiohttpTransport)  # noqa: B010
    if "fastjsonschema" in patches:
        _fast_schemas()
    if "leanjournal" in patches:
        _lean_journal()
    if "writerstats" in patches:
        _writer_stats()
    if "nogc" in patches:
        import gc

        gc.disable()
    if "gcfreeze" in patches:
        import gc

        gc.set_threshold(10_000, 50, 100)
    if "switch" in patches:
        sys.setswitchinterval(0.0005)
    if "switch1" in patches:
        sys.setswitchinterval(0.0001)
    if "uvloop" in patches:
        asyncio.set_event_loop_policy(importlib.import_module("uvloop").EventLoopPolicy())


def main(argv: list[str]) -> int:
    patches = set(argv[0].split(",")) - {"none", ""}
    apply(patches)
    from runtime.cli import main as cli

    args = argv[1:]
    if "memorystore" in patches:
        args += ["--store", "memory://"]
    return cli(args)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
