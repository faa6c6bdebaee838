"""The `syncline` command line: parses arguments and hands off to one module per subcommand."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from runtime import __version__
from runtime.commands import demo, explain, graph, init, operate, plan, run, schema, serve, systems, test, validate
from runtime.errors import SynclineError, UsageError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="syncline", description="Declarative integration runtime.")
    parser.add_argument("--version", action="version", version=f"syncline {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    validate.add_parser(sub)
    schema.add_parser(sub)
    init.add_parser(sub)
    graph.add_parser(sub)
    test.add_parser(sub)
    run.add_parser(sub)
    serve.add_parser(sub)
    demo.add_parser(sub)
    operate.add_parsers(sub)
    plan.add_parser(sub)
    explain.add_parser(sub)
    systems.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    try:
        code: int = handler(args)
    except UsageError as exc:
        print(f"syncline {args.command}: {exc}", file=sys.stderr)
        return 2
    except SynclineError as exc:
        print(f"syncline {args.command}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
