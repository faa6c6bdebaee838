"""`syncline run FLOW [--input FILE|-] [--mock FILE] [--dry-run] [--new] [--format text|json] [--resume RUN_ID]`.

Runs one flow once, in-process, against the real connectors (or mocked operations), journaled in the
project's store so an interrupted run can be resumed with `--resume`. `--dry-run` performs reads but
lists the writes it would make instead of making them.

Messages of `effect: publish` calls go through the transactional outbox, as under `syncline serve`:
each is committed with its step, and once the run has ended (or suspended) the command sends every
message due in the store's outbox once, then says how many went out. A message whose send failed
stays in the outbox with its next attempt's time; the next `syncline run` or `syncline serve` on the
same store sends it, with the same message id.

When the input's idempotency key already has a run, nothing new runs: the command says so (run id,
status, how to replay it) and shows that run; one that has not ended yet is resumed. `--new` forces a
fresh run. It carries no idempotency key (the key stays with the earlier run, so later deliveries of
the event still find that one; the key is kept in the run's `meta.forced_from_key`), and its calls get
default idempotency keys of their own: to the target it is a new attempt.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shlex
import sys
from pathlib import Path
from typing import Any

from runtime.compiler import check_project
from runtime.engine.connectors import ConnectorPool, MockedOperations
from runtime.engine.executor import Executor, RunResult
from runtime.engine.plan import build_plan
from runtime.errors import ProjectError, UsageError
from runtime.expr import dumps, loads
from runtime.render.redacted import redacted
from runtime.render.report import run_as_dict, run_as_text
from runtime.secrets import SecretStore, env_resolver
from runtime.spec.flowtest import Mock
from runtime.spec.yamlload import YamlLoadError, load_bytes
from runtime.store.base import FINAL_STATUSES, CreatedRun, RunRecord, Store

FINAL = ("succeeded", "filtered")
ENDED = FINAL_STATUSES


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("run", help="run one flow once in-process and print the run")
    p.add_argument("flow", metavar="FLOW", nargs="?", help="flow name")
    p.add_argument("--input", metavar="FILE", help="JSON or YAML input file, or - for standard input")
    p.add_argument("--mock", metavar="FILE", help="YAML/JSON file: operation -> mocked output or error")
    p.add_argument("--dry-run", action="store_true", help="perform reads, list the writes instead of doing them")
    p.add_argument("--format", choices=["text", "json"], default="text")
    p.add_argument("--project", default=".", help="project folder (default: .)")
    p.add_argument("--store", help="store URL (default: the project's)")
    p.add_argument("--resume", metavar="RUN_ID", help="resume an interrupted run from its journal")
    p.add_argument(
        "--new",
        action="store_true",
        help="run even when the input's idempotency key already has a run (the new run carries no key)",
    )
    p.set_defaults(handler=run)


def _read_input(spec: str | None) -> Any:
    if spec is None:
        return {}
    raw = sys.stdin.buffer.read() if spec == "-" else Path(spec).read_bytes()
    name = "<stdin>" if spec == "-" else spec
    try:
        return loads(raw)
    except ValueError:
        try:
            docs = load_bytes(raw, name)
        except YamlLoadError as exc:
            raise UsageError(f"input {name}: " + "; ".join(d.text() for d in exc.diagnostics)) from None
        return docs[0].data if docs else None


def _read_mocks(spec: str) -> dict[str, Mock]:
    data = _read_input(spec)
    if not isinstance(data, dict):
        raise UsageError(f"{spec}: mocks must be a mapping of operation -> mock")
    try:
        return {str(k): Mock.model_validate(v) for k, v in data.items()}
    except ValueError as exc:
        raise UsageError(f"{spec}: {exc}") from None


async def _run(args: argparse.Namespace) -> tuple[RunResult, bool]:
    """The run's outcome, and whether it is an earlier run the idempotency key led to (nothing ran)."""
    from runtime.store.factory import open_store

    result = check_project(Path(args.project))
    plan = build_plan(result)
    store = open_store(args.store or plan.project.store, plan.root)
    await store.open()
    secrets = SecretStore()
    env = env_resolver()
    mocks = None
    if args.mock:
        from runtime.clock import SystemClock

        mocks = MockedOperations(_read_mocks(args.mock), SystemClock(), only_mocks=False)
    executor = Executor(
        plan,
        store,
        secrets=secrets,
        env=env,
        dry_run=args.dry_run,
        connectors=ConnectorPool(plan, secrets, env, mocks=mocks),
        outbox=True,
    )
    existing = False
    try:
        if args.resume:
            record = await store.get_run(args.resume)
            if record is None:
                raise UsageError(f"no run {args.resume!r} in the store")
            outcome = await executor.execute(record)
        else:
            if args.flow not in plan.flows:
                raise UsageError(f"no flow {args.flow!r} (flows: {', '.join(sorted(plan.flows))})")
            created = await _create(executor, store, args.flow, _read_input(args.input), forced=args.new)
            if created.created:
                print(f"run {created.run.id} started", file=sys.stderr, flush=True)
                outcome = await executor.execute(created.run)
            elif created.run.status in ENDED:
                print(already_ran(created.run, _options(args)), file=sys.stderr, flush=True)
                existing = True
                outcome = RunResult(created.run, created.run.status, created.run.output, created.run.error)
            else:
                print(
                    f"run {created.run.id} has the same idempotency key ({created.run.idempotency_key}) and is "
                    f"{created.run.status}: resuming it",
                    file=sys.stderr,
                    flush=True,
                )
                outcome = await executor.execute(created.run)
        outcome.journal = await store.journal(outcome.run.id)
        if not args.dry_run:
            await _send_outbox(executor)
        return redacted(outcome, secrets.redact_value), existing
    finally:
        await executor.aclose()
        await store.close()


async def _send_outbox(executor: Executor) -> None:
    """Send the outbox messages due now, once each (the run's, and any an earlier run left)."""
    from runtime.engine.outbox import drain

    report = await drain(executor, owner=f"syncline-run-{os.getpid()}")
    if report.sent:
        print(f"outbox: {report.sent} message(s) sent", file=sys.stderr, flush=True)
    for failed in report.failed:
        record = failed.record
        when = "given up" if failed.retry_at is None else "kept for the next attempt (syncline run or serve)"
        print(
            f"outbox: message {record.message_id} ({record.operation}, run {record.run_id}) not sent: "
            f"{failed.error}; {when}",
            file=sys.stderr,
            flush=True,
        )


async def _create(executor: Executor, store: Store, flow: str, payload: Any, *, forced: bool) -> CreatedRun:
    """The run for this input: a new one, or the one its idempotency key already has (unless `forced`)."""
    if not forced:
        return await executor.submit(flow, payload, trigger="manual")
    new = executor.new_run(executor.plan.flow(flow), payload, trigger="manual")
    if new.idempotency_key is not None:
        new.meta["forced_from_key"] = new.idempotency_key
        new.idempotency_key = None
    created = await store.create_run(new, now=executor.clock.time())
    executor.mark_fresh(created.run.id)
    return created


def already_ran(run: RunRecord, options: str = "") -> str:
    """What `syncline run` says when the input's idempotency key already has a run that ended
    (`options`: the --project/--store the user gave, repeated in the commands it suggests)."""
    return (
        f"nothing was run: idempotency key {run.idempotency_key!r} already has run {run.id} "
        f"(status {run.status}).\n"
        f"  replay it:     syncline replay {run.id}{options}\n"
        f"  or run anew:   syncline run {run.flow} --new{options} ...  (a fresh run; it carries no idempotency key)"
    )


def _options(args: argparse.Namespace) -> str:
    out = ""
    if args.project not in (None, "."):
        out += f" --project {shlex.quote(args.project)}"
    if args.store:
        out += f" --store {shlex.quote(args.store)}"
    return out


def run(args: argparse.Namespace) -> int:
    if not args.flow and not args.resume:
        raise UsageError("name a FLOW (or --resume RUN_ID)")
    try:
        outcome, existing = asyncio.run(_run(args))
    except ProjectError as exc:
        for d in exc.diagnostics:
            print(d.text(), file=sys.stderr)
        return 1
    if args.format == "json":
        print(dumps({**run_as_dict(outcome), "existing_run": existing}, pretty=True))
    else:
        sys.stdout.write(run_as_text(outcome))
    return 0 if outcome.status in FINAL else 1
