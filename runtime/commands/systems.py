"""`syncline systems list|show NAME`: the system presets shipped with Syncline.

`list` prints one line per preset (name, category, title, what it covers); `show NAME` prints the
preset's description, its account values, authentication, pagination and operations, and a
Connection that uses it. `--json` prints the same as JSON for scripts.
"""

from __future__ import annotations

import argparse
import difflib
import json
import sys
from typing import Any

from runtime.errors import UsageError
from runtime.presets import Preset, PresetError, known_presets, load_preset, substitute


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("systems", help="list the system presets (`preset:` of a Connection) or show one")
    inner = p.add_subparsers(dest="systems_command", metavar="ACTION")
    listing = inner.add_parser("list", help="one line per preset")
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.set_defaults(handler=run_list)
    show = inner.add_parser("show", help="what a preset sets up and how to use it")
    show.add_argument("name", help="preset name, e.g. stripe")
    show.add_argument("--json", action="store_true", help="print JSON")
    show.set_defaults(handler=run_show)
    p.set_defaults(handler=run_list, json=False)


def _load(name: str) -> Preset:
    try:
        return load_preset(name)
    except KeyError:
        known = known_presets()
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.5)
        hint = f" — did you mean {close[0]!r}?" if close else ""
        raise UsageError(f"unknown preset {name!r}; known presets: {', '.join(known)}{hint}") from None
    except PresetError as exc:
        raise UsageError(f"preset {name!r} cannot be loaded: {exc}") from None


def summary(preset: Preset) -> dict[str, Any]:
    spec = preset.spec
    return {
        "name": spec.name,
        "title": spec.title,
        "category": spec.category,
        "api_version": spec.api_version,
        "docs": spec.docs,
        "covers": spec.covers,
        "not_covered": spec.not_covered,
    }


def details(preset: Preset) -> dict[str, Any]:
    spec = preset.spec
    defaults = {name: s.default for name, s in spec.account.items() if s.default is not None}
    config = substitute(spec.connection.get("config") or {}, defaults)
    operations = spec.connection.get("operations") or {}
    auth = config.get("auth") or {}
    return {
        **summary(preset),
        "description": spec.description,
        "type": spec.connection.get("type"),
        "base_url": config.get("base_url"),
        "auth": auth.get("type") if isinstance(auth, dict) else None,
        "account": {
            name: {
                "description": setting.description,
                "default": setting.default,
                "example": setting.example,
                "secret": setting.secret,
            }
            for name, setting in spec.account.items()
        },
        "operations": {
            name: {
                "method": op.get("method", "GET"),
                "path": op.get("path", ""),
                "entity": op.get("entity"),
                "effect": op.get("effect", "read"),
                "pagination": (op.get("pagination") or {}).get("type"),
            }
            for name, op in operations.items()
        },
    }


def run_list(args: argparse.Namespace) -> int:
    presets = [_load(name) for name in known_presets()]
    if getattr(args, "json", False):
        json.dump([summary(p) for p in presets], sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    width = max((len(p.name) for p in presets), default=4)
    for preset in presets:
        spec = preset.spec
        print(f"{spec.name:<{width}}  {spec.category:<10}  {spec.title} — {len(preset.operations)} operations")
    print("\nsyncline systems show NAME  — what a preset sets up; use it with `preset: NAME` in a Connection")
    return 0


def run_show(args: argparse.Namespace) -> int:
    preset = _load(args.name)
    info = details(preset)
    if args.json:
        json.dump(info, sys.stdout, indent=2, default=str)
        sys.stdout.write("\n")
        return 0
    spec = preset.spec
    out = [f"{spec.title} (preset {spec.name}, {spec.category})", "", spec.description.strip(), ""]
    out.append(f"connector: {info['type']}   base_url: {info['base_url']}   auth: {info['auth']}")
    if spec.api_version:
        out.append(f"API version: {spec.api_version}")
    out.append(f"docs: {spec.docs}")
    out += ["", "account values (`account:` of the Connection):"]
    for name, setting in spec.account.items():
        default = f" [default: {setting.default}]" if setting.default is not None else " [required]"
        out.append(f"  {name}{default}: {setting.description}")
    if not spec.account:
        out.append("  none")
    out += ["", "operations:"]
    width = max((len(n) for n in info["operations"]), default=4)
    for name, op in info["operations"].items():
        paged = f"  (pages: {op['pagination']})" if op["pagination"] else ""
        entity = f"  {op['entity']}/{op['effect']}" if op["entity"] else f"  {op['effect']}"
        out.append(f"  {name:<{width}}  {op['method']:<6} {op['path']}{entity}{paged}")
    if spec.covers:
        out += ["", "covers:"] + [f"  - {line}" for line in spec.covers]
    if spec.not_covered:
        out += ["", "not covered yet:"] + [f"  - {line}" for line in spec.not_covered]
    out += ["", "use it:", "  kind: Connection", f"  name: {spec.name}", f"  preset: {spec.name}"]
    required = [n for n, s in spec.account.items() if s.default is None]
    if required:
        out.append("  account:")
        for name in required:
            example = spec.account[name].example
            out.append(f"    {name}: {json.dumps(example) if example is not None else '…'}")
    print("\n".join(out))
    return 0
