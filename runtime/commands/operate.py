"""`syncline runs ...`, `syncline dlq ...`, `syncline outbox ...` and `syncline replay RUN_ID`: inspect
and operate a deployment through its store (the project's store URL, or `--store`).

    syncline runs list [--flow F] [--status S,S] [--correlation-id C] [--business-key order:4711]
    syncline runs show RUN_ID
    syncline dlq list [--flow F] [--all]
    syncline dlq show RUN_ID
    syncline outbox list [--status failed|pending|sent] [--run-id R] [--limit N]
    syncline outbox requeue MESSAGE_ID
    syncline replay RUN_ID [--from-step ID] [--input FILE] [--current-version] [--dry-run] [--queue]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, get_args

from runtime.compiler import check_project
from runtime.engine.context import CallLog
from runtime.engine.dryrun import DryRunReport, dry_run_report
from runtime.engine.executor import Executor, RunResult
from runtime.engine.plan import Plan, build_plan
from runtime.engine.replay import ReplayError, ReplayRequest, replay
from runtime.errors import ProjectError, UsageError
from runtime.expr import dumps
from runtime.policy.mask import presenter_for_project
from runtime.render.redacted import redacted
from runtime.render.report import outbox_view, run_as_dict, run_as_text, wrap
from runtime.secrets import SecretStore
from runtime.store.base import OutboxRecord, OutboxStatus, RunFilter, RunRecord, RunStatus, Store
from runtime.store.factory import open_store


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--project", default=".", help="project folder (default: .)")
    p.add_argument("--store", help="store URL (default: the project's)")
    p.add_argument("--format", choices=["text", "json"], default="text")


def add_parsers(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    runs = sub.add_parser("runs", help="list and show runs").add_subparsers(dest="action", metavar="ACTION")
    listing = runs.add_parser("list", help="runs, newest first")
    _common(listing)
    listing.add_argument("--flow")
    listing.add_argument("--status", help="comma-separated statuses")
    listing.add_argument("--correlation-id")
    listing.add_argument("--business-key", help="name:value, e.g. order:4711")
    listing.add_argument("--limit", type=int, default=50)
    listing.set_defaults(handler=lambda a: _go(a, _runs_list))
    show = runs.add_parser("show", help="a run with its steps")
    _common(show)
    show.add_argument("run_id", metavar="RUN_ID")
    show.set_defaults(handler=lambda a: _go(a, _runs_show))

    dlq = sub.add_parser("dlq", help="the dead-letter queue").add_subparsers(dest="action", metavar="ACTION")
    dlist = dlq.add_parser("list", help="dead-lettered runs")
    _common(dlist)
    dlist.add_argument("--flow")
    dlist.add_argument("--all", action="store_true", help="include replayed ones")
    dlist.set_defaults(handler=lambda a: _go(a, _dlq_list))
    dshow = dlq.add_parser("show", help="a dead letter with its payload and journal")
    _common(dshow)
    dshow.add_argument("run_id", metavar="RUN_ID")
    dshow.set_defaults(handler=lambda a: _go(a, _runs_show))

    outbox = sub.add_parser("outbox", help="messages of publish calls").add_subparsers(dest="action", metavar="ACTION")
    olist = outbox.add_parser("list", help="outbox messages, oldest first")
    _common(olist)
    olist.add_argument("--status", choices=get_args(OutboxStatus), help="failed: given up after their attempts")
    olist.add_argument("--run-id")
    olist.add_argument("--limit", type=int, default=100)
    olist.set_defaults(handler=lambda a: _go(a, _outbox_list))
    requeue = outbox.add_parser("requeue", help="send a given-up message again, with the same message id")
    _common(requeue)
    requeue.add_argument("message_id", metavar="MESSAGE_ID")
    requeue.set_defaults(handler=lambda a: _go(a, _outbox_requeue))

    rp = sub.add_parser("replay", help="replay a run (whole, or from a step)")
    _common(rp)
    rp.add_argument("run_id", metavar="RUN_ID")
    rp.add_argument("--from-step", metavar="ID", help="re-run this step and everything after it")
    rp.add_argument("--input", metavar="FILE", help="an edited payload (JSON or YAML; - for standard input)")
    rp.add_argument("--current-version", action="store_true", help="run on the flow version deployed now")
    rp.add_argument("--dry-run", action="store_true", help="list the side effects instead of causing them")
    rp.add_argument("--queue", action="store_true", help="only queue the replay for a running service")
    rp.set_defaults(handler=lambda a: _go(a, _replay))


def _go(args: argparse.Namespace, action: Callable[[argparse.Namespace, Plan, Store], Awaitable[int]]) -> int:
    if getattr(args, "action", "x") is None:
        raise UsageError("name an action (see --help)")

    async def main() -> int:
        plan = build_plan(check_project(Path(args.project)))
        store = open_store(args.store or plan.project.store, plan.root)
        await store.open()
        try:
            return await action(args, plan, store)
        finally:
            await store.close()

    try:
        return asyncio.run(main())
    except ProjectError as exc:
        for d in exc.diagnostics:
            print(d.text(), file=sys.stderr)
        return 1


def _when(ts: float | None) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d %H:%M:%S") if ts else "-"


def _out(args: argparse.Namespace, value: Any, text: str) -> None:
    sys.stdout.write(dumps(value, pretty=True) + "\n" if args.format == "json" else text)


def _summary(run: RunRecord) -> dict[str, Any]:
    return {
        "id": run.id,
        "flow": run.flow,
        "status": run.status,
        "trigger": run.trigger,
        "created_at": run.created_at,
        "finished_at": run.finished_at,
        "correlation_id": run.correlation_id,
        "business_keys": run.business_keys,
        "error": run.error,
    }


async def _runs_list(args: argparse.Namespace, plan: Plan, store: Store) -> int:
    key = None
    if args.business_key:
        name, sep, value = args.business_key.partition(":")
        if not sep:
            raise UsageError("--business-key is name:value, e.g. order:4711")
        key = (name, value)
    statuses = [s for s in (args.status or "").split(",") if s] or None
    unknown = sorted(set(statuses or ()) - set(get_args(RunStatus)))
    if unknown:
        raise UsageError(f"unknown status {', '.join(unknown)}; one of: {', '.join(get_args(RunStatus))}")
    found = await store.list_runs(
        RunFilter(
            flow=args.flow, status=statuses, correlation_id=args.correlation_id, business_key=key, limit=args.limit
        )
    )
    lines = [
        f"{r.id}  {_when(r.created_at)}  {r.status:<13} {r.flow}  "
        + " ".join(f"{k}={v}" for k, v in r.business_keys.items())
        for r in found
    ]
    _out(args, [_summary(r) for r in found], "\n".join(lines) + ("\n" if lines else "no runs\n"))
    return 0


async def _runs_show(args: argparse.Namespace, plan: Plan, store: Store) -> int:
    run = await store.get_run(args.run_id)
    if run is None:
        print(f"no run {args.run_id!r}", file=sys.stderr)
        return 1
    mask = presenter_for_project(plan)
    run.input, run.output, run.error = mask(run.input), mask(run.output), mask(run.error)
    result = RunResult(run, run.status, run.output, run.error, response=mask(run.meta.get("response")))
    result.journal = await store.journal(run.id)
    for record in result.journal:
        record.input, record.output, record.error = mask(record.input), mask(record.output), mask(record.error)
    text = run_as_text(result)
    if run.status == "dead_lettered":
        letters = [
            d
            for d in await store.list_dead_letters(flow=run.flow, include_replayed=True, limit=1000)
            if d.run_id == run.id
        ]
        if letters:
            letter = letters[0]
            replayed = f", replayed as {letter.replay_run_id}" if letter.replay_run_id else ""
            shown = f"{mask(letter.reason)} (at {_when(letter.created_at)}{replayed})"
            text += "\n".join(wrap(shown, "dead letter: ")) + "\n"
    text += f"input: {dumps(run.input)[:2000]}\n"
    _out(args, {**run_as_dict(result), "input": run.input}, text)
    return 0


async def _dlq_list(args: argparse.Namespace, plan: Plan, store: Store) -> int:
    letters = await store.list_dead_letters(flow=args.flow, include_replayed=args.all, limit=1000)
    mask = presenter_for_project(plan)
    lines = [
        f"{d.run_id}  {_when(d.created_at)}  {d.flow}  {mask(d.reason)}"
        + (f"  replayed as {d.replay_run_id}" if d.replay_run_id else "")
        for d in letters
    ]
    _out(
        args,
        [
            {
                "run_id": d.run_id,
                "flow": d.flow,
                "reason": mask(d.reason),
                "error": mask(d.error),
                "created_at": d.created_at,
                "replay_run_id": d.replay_run_id,
            }
            for d in letters
        ],
        "\n".join(lines) + ("\n" if lines else "the dead-letter queue is empty\n"),
    )
    return 0


def _outbox_line(record: OutboxRecord, mask: Callable[[Any], Any]) -> str:
    error = f"  {mask(record.last_error)}" if record.last_error and record.status != "sent" else ""
    return (
        f"{record.message_id}  {_when(record.created_at)}  {record.status:<7} {record.operation}  "
        f"run {record.run_id}  attempts {record.attempts}{error}"
    )


async def _outbox_list(args: argparse.Namespace, plan: Plan, store: Store) -> int:
    found = await store.list_outbox(run_id=args.run_id, status=args.status, limit=args.limit)
    mask = presenter_for_project(plan)
    lines = [_outbox_line(m, mask) for m in found]
    _out(args, [mask(outbox_view(m)) for m in found], "\n".join(lines) + ("\n" if lines else "no outbox messages\n"))
    return 0


async def _outbox_requeue(args: argparse.Namespace, plan: Plan, store: Store) -> int:
    requeued = await store.requeue_outbox(args.message_id, now=time.time())
    if not requeued:
        print(f"syncline outbox requeue: no given-up (failed) message with id {args.message_id!r}", file=sys.stderr)
        return 1
    mask = presenter_for_project(plan)
    text = "".join(f"requeued: {_outbox_line(m, mask)}\n" for m in requeued)
    text += "a running service sends it at its next poll, with the same message id\n"
    _out(args, [mask(outbox_view(m)) for m in requeued], text)
    return 0


def _dry_run_text(run_id: str, report: DryRunReport) -> str:
    def calls(title: str, found: list[CallLog]) -> str:
        if not found:
            return f"{title}: none\n"
        lines = "".join(
            f"  {c.operation} {dumps(c.params)}" + (f"  key={c.idempotency_key}" if c.idempotency_key else "") + "\n"
            for c in found
        )
        return f"{title}:\n{lines}"

    text = f"dry run of a replay of {run_id}: nothing was changed\n"
    text += "skipped (done in the original run): " + (", ".join(report.skipped) or "none") + "\n"
    text += "run again: " + (", ".join(report.rerun) or "none") + "\n"
    text += calls("reads it made", report.reads)
    text += calls("side effects it would cause", report.side_effects)
    if report.problem is not None:
        text += f"it would not complete: {report.problem}\n"
    return text


async def _replay(args: argparse.Namespace, plan: Plan, store: Store) -> int:
    from runtime.commands.run import _read_input

    request = ReplayRequest(
        run_id=args.run_id, from_step=args.from_step, dry_run=args.dry_run, current_version=args.current_version
    )
    if args.input:
        request.input = _read_input(args.input)
        request.edit_input = True
    executor = Executor(plan, store, secrets=SecretStore())
    try:
        outcome = await replay(executor, store, request, execute=not args.queue)
        if isinstance(outcome, RunResult):  # shown to people: secrets and values derived from them masked
            outcome = redacted(outcome, executor.secrets.redact_value)
    except ReplayError as exc:
        print(f"syncline replay: refused ({exc.reason}): {exc}", file=sys.stderr)
        return 1
    finally:
        await executor.aclose()
    if isinstance(outcome, RunRecord):
        print(f"replay queued as run {outcome.id}")
        return 0
    if args.dry_run:
        report = await dry_run_report(store, request, outcome)
        _out(args, {**report.as_dict(), "replay_of": args.run_id}, _dry_run_text(args.run_id, report))
        if report.problem is not None:
            print(f"syncline replay: the dry run cannot complete: {report.problem}", file=sys.stderr)
            return 1
        return 0
    _out(args, run_as_dict(outcome), run_as_text(outcome))
    return 0 if outcome.status in ("succeeded", "filtered") else 1
