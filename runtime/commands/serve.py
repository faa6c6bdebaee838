"""`syncline serve [--project DIR] [--store URL] [--host H --port P] [--concurrency N] [--watch] [--poison-after N]`.

Runs the service on uvicorn. SIGTERM/SIGINT shut down gracefully (stop accepting, finish or release
claimed runs within `--grace` seconds, exit 0); SIGHUP, `POST /api/v1/reload` or `--watch` reload the
project after validating it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import socket
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import uvicorn

from runtime.compiler import CheckResult, check_project
from runtime.compiler.settings import missing_settings, required_settings
from runtime.errors import ProjectError
from runtime.secrets import SecretStore, env_resolver
from runtime.service import heap
from runtime.service import loop as serve_loop
from runtime.service.app import build_app, reload_on_sighup
from runtime.service.logs import configure
from runtime.service.service import Service
from runtime.service.workers import DEFAULT_CONCURRENCY
from runtime.store.base import StoreError

log = logging.getLogger("syncline.serve")


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("serve", help="run the service: triggers, workers, admin API")
    add_options(p)
    p.add_argument(
        "--allow-missing-secrets",
        action="store_true",
        help="start although secrets or settings that connections and webhooks need are not set "
        "(/readyz answers 503 naming them until they are)",
    )
    p.set_defaults(handler=run)


def _at_least_one(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of 1 or more, got {text!r}")
    return value


def add_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--project", default=".", help="project folder (default: .)")
    p.add_argument("--store", help="store URL (default: the project's, else .syncline/syncline.db)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument(
        "--concurrency",
        "--workers",
        dest="workers",
        type=int,
        default=DEFAULT_CONCURRENCY,
        metavar="N",
        help=f"runs this node executes at once from the queue, claimed in batches (default {DEFAULT_CONCURRENCY}; "
        "--workers is the former name)",
    )
    p.add_argument("--grace", type=float, default=30.0, help="seconds to finish claimed runs on shutdown")
    p.add_argument("--watch", action="store_true", help="reload when project files change")
    p.add_argument("--log-level", default="info")
    p.add_argument(
        "--poison-after",
        type=_at_least_one,
        metavar="N",
        help="dead-letter a run as poison after N claims in a row that crashed or lost their lease without "
        "journaling a step (default: the project's service.poison_after, 3)",
    )
    # hidden: the worker lease in seconds (how soon a dead node's runs are picked up); the fault tests shorten it
    p.add_argument("--lease", type=float, default=30.0, help=argparse.SUPPRESS)


def _snapshot(root: Path) -> dict[str, float]:
    files: dict[str, float] = {}
    for path in root.rglob("*"):
        if path.suffix in (".yaml", ".yml", ".json", ".j2") and ".syncline" not in path.parts and path.is_file():
            with contextlib.suppress(OSError):
                files[str(path)] = path.stat().st_mtime
    return files


async def watch(service: Service, interval: float = 1.0) -> None:
    before = _snapshot(service.project_dir)
    while True:
        await asyncio.sleep(interval)
        now = _snapshot(service.project_dir)
        if now != before:
            before = now
            problems = await service.reload()
            for d in problems:
                log.warning("reload refused: %s", d.text())


def listen(host: str, port: int) -> socket.socket:
    """A socket bound to host:port (before anything else starts, so a port in use is a clear error)."""
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[
        0
    ]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError:
        sock.close()
        raise
    return sock


def listen_or_explain(command: str, host: str, port: int, hint: str) -> socket.socket | None:
    """`listen`, or None after printing one line that names the address, why it failed and `hint`
    (how to pick another port)."""
    try:
        return listen(host, port)
    except OSError as exc:
        reason = (exc.strerror or str(exc)).lower()
        print(f"syncline {command}: cannot listen on {host}:{port}: {reason}. {hint}", file=sys.stderr)
        return None


def address_of(sock: socket.socket) -> str:
    """The URL a bound socket serves at (the real port when 0 was asked for)."""
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


@contextlib.contextmanager
def _sigterm_ends_cleanly() -> Iterator[None]:
    """uvicorn handles SIGTERM by shutting down gracefully and then re-raises it to the handler that
    was installed before it; with the default one the process would die by the signal (exit -15)
    after a clean shutdown. A no-op handler here lets a graceful stop end with exit code 0."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: None)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


async def serve(service: Service, args: argparse.Namespace, sock: socket.socket | None = None) -> None:
    """Start the service (project, store, workers, triggers), serve HTTP on `sock` (bound here when
    not given) until SIGTERM/SIGINT, then stop the service gracefully within `--grace` seconds."""
    listening = sock or listen(args.host, args.port)
    try:
        await service.start()
    except BaseException:
        listening.close()
        raise
    heap.settle_after_start()
    app = build_app(service, manage_lifecycle=False, grace=args.grace)
    config = uvicorn.Config(
        app,
        host=args.host,
        port=args.port,
        log_config=None,
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=max(1, round(args.grace)),
    )
    server = uvicorn.Server(config)
    reload_on_sighup(service)

    async def stop_when_exiting() -> None:
        """The service stops as soon as uvicorn starts to shut down, so both share one grace period."""
        while not server.should_exit:
            await asyncio.sleep(0.05)
        await service.stop(args.grace)

    stopper = asyncio.create_task(stop_when_exiting())

    async def announce() -> None:
        while not server.started:
            await asyncio.sleep(0.05)
        log.info("listening on %s", address_of(listening))

    announcer = asyncio.create_task(announce())
    watcher = None
    if args.watch:

        async def start_watch() -> None:
            while not server.started:
                await asyncio.sleep(0.05)
            await watch(service)

        watcher = asyncio.create_task(start_watch())
    with _sigterm_ends_cleanly():
        try:
            await server.serve(sockets=[listening])
        finally:
            announcer.cancel()
            if watcher is not None:
                watcher.cancel()
            if server.should_exit:
                await stopper
            else:  # uvicorn ended by itself (it could not serve): nothing is draining yet
                stopper.cancel()
                await service.stop(args.grace)
            listening.close()


def precheck(project: Path) -> CheckResult | None:
    """Validate before starting the server, so a bad project fails with its diagnostics; the result
    is handed to the service, which then need not check the project a second time."""
    result = check_project(project)
    for d in result.diagnostics:
        print(d.text())
    return None if result.errors else result


def settings_present(checked: CheckResult, allow_missing: bool) -> bool:
    """True when every secret and setting the project's connections and webhooks need is set (or
    `allow_missing`); else print each missing one (SL052, file:line) and what to do, and say False."""
    missing = missing_settings(required_settings(checked.docs), SecretStore().resolve, env_resolver())
    if not missing or allow_missing:
        return True
    for d in missing:
        print(d.text())
    print(
        f"syncline serve: not starting: {len(missing)} secret(s) or setting(s) that connections and webhooks "
        "need are not set (listed above). Set them, or start with --allow-missing-secrets: /readyz then "
        "answers 503 naming them until they are set.",
        file=sys.stderr,
    )
    return False


def run(args: argparse.Namespace) -> int:
    checked = precheck(Path(args.project))
    if checked is None:
        return 1
    if not settings_present(checked, args.allow_missing_secrets):
        return 1
    sock = listen_or_explain("serve", args.host, args.port, "Pick another port with --port.")
    if sock is None:
        return 1
    service = Service(
        Path(args.project),
        args.store,
        workers=args.workers,
        lease=args.lease,
        checked=checked,
        poison_after=args.poison_after,
    )
    configure(args.log_level, redact=service.redact_text)
    try:
        serve_loop.run(serve(service, args, sock))
    except ProjectError as exc:
        for d in exc.diagnostics:
            print(d.text())
        return 1
    except StoreError as exc:
        print(f"syncline serve: cannot open the store: {service.secrets.redact(str(exc))}", file=sys.stderr)
        return 1
    return 0
