"""`syncline schema`: print the JSON Schema of all document kinds (for editors and CI)."""

from __future__ import annotations

import argparse
import sys

from runtime.plugins import default_registry
from runtime.spec.schema import json_schema_text


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("schema", help="print the JSON Schema of every document kind")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    sys.stdout.write(json_schema_text(default_registry()))
    return 0
