"""`syncline init DIR`: scaffold a new project with one working flow, its mapping and its test, a
sample input and a mock of its target, so `syncline run` works in it at once."""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

from runtime.errors import UsageError

FILES: dict[str, str] = {
    "syncline.yaml": """\
kind: Project
name: {name}
description: A new Syncline project.
defaults:
  timeout: 30s
  retry: {{attempts: 4, initial: 1s, max: 1m}}
""",
    "systems/target.yaml": """\
kind: Connection
name: target
type: http
description: The system the example flow writes to.
config:
  base_url: "{{{{ env('TARGET_URL') | default('http://127.0.0.1:8099') }}}}"
  timeout: 10s
operations:
  create_contact:
    method: POST
    path: /contacts
    body: "{{{{ params.body }}}}"
    entity: contact
    effect: create
""",
    "schemas/signup.json": """\
{{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "type": "object",
  "required": ["id", "email"],
  "properties": {{
    "id": {{"type": "string"}},
    "email": {{"type": "string"}},
    "first_name": {{"type": "string"}},
    "last_name": {{"type": "string"}}
  }}
}}
""",
    "mappings/signup_to_contact.yaml": """\
kind: Mapping
name: signup_to_contact
input_schema: schemas/signup.json
fields:
  external_id: "{{{{ input.id }}}}"
  email: "{{{{ input.email | lower }}}}"
  name: "{{{{ input.first_name }}}} {{{{ input.last_name }}}}"
tests:
  - input: {{id: S-1, email: Ada@Example.com, first_name: Ada, last_name: Lovelace}}
    output: {{external_id: S-1, email: ada@example.com, name: Ada Lovelace}}
""",
    "flows/signup-to-contact.yaml": """\
kind: Flow
name: signup-to-contact
description: A sign-up received by webhook becomes a contact in the target system.
owner: my-team
trigger:
  webhook:
    path: /hooks/signups
    auth: {{type: api_key, secret: "{{{{ secret('SIGNUP_HOOK_KEY') }}}}", header: X-Api-Key}}
    schema: schemas/signup.json
    idempotency_key: "{{{{ input.id }}}}"
steps:
  - id: contact
    map: signup_to_contact
  - id: create
    call: target.create_contact
    with: {{body: "{{{{ steps.contact.output }}}}"}}
    retry: {{attempts: 5, initial: 1s, max: 1m}}
""",
    "tests/flows/signup-to-contact.yaml": """\
kind: FlowTest
name: a sign-up creates one contact
flow: signup-to-contact
input: {{id: S-1, email: Ada@Example.com, first_name: Ada, last_name: Lovelace}}
mocks:
  target.create_contact: {{output: {{id: 42}}}}
expect:
  status: succeeded
  calls:
    - operation: target.create_contact
      params: {{body: {{external_id: S-1, email: ada@example.com, name: Ada Lovelace}}}}
""",
    "samples/signup.json": """\
{{"id": "S-1", "email": "Ada@Example.com", "first_name": "Ada", "last_name": "Lovelace"}}
""",
    "samples/target-mock.yaml": """\
# What the target answers when `syncline run ... --mock samples/target-mock.yaml` stands in for it
# (the same mock as the FlowTest's). Without --mock the call goes to TARGET_URL.
target.create_contact: {{output: {{id: 42}}}}
""",
    ".gitignore": ".syncline/\n",
}

FLOW = "signup-to-contact"
SAMPLE = "samples/signup.json"
MOCK = "samples/target-mock.yaml"


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("init", help="create a new project with one working flow and its test")
    p.add_argument("dir", metavar="DIR", help="folder to create (must be empty or absent)")
    p.add_argument("--name", help="project name (default: the folder name)")
    p.set_defaults(handler=run)


def scaffold(target: Path, name: str) -> list[Path]:
    """Write the starter project into `target`; refuses to touch a non-empty folder."""
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise UsageError(f"{target} exists and is not empty; choose a new folder")
    written: list[Path] = []
    for relative, text in FILES.items():
        path = target / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text.format(name=name), encoding="utf-8")
        written.append(path)
    return written


def run(args: argparse.Namespace) -> int:
    target = Path(args.dir)
    name = args.name or target.resolve().name or "project"
    written = scaffold(target, name)
    print(next_steps(target, name, len(written)))
    return 0


def next_steps(target: Path, name: str, files: int) -> str:
    """What to do with the new project; every command here works as printed (tests/cli/test_init_runs.py)."""
    folder = shlex.quote(str(target))
    return f"""created project {name!r} in {target}/ ({files} files)
next, in the new project (the run answers from the mock of its target, as the FlowTest does):
  cd {folder}
  syncline validate
  syncline test
  syncline run {FLOW} --input {SAMPLE} --mock {MOCK}
against your own system: its base URL in TARGET_URL (default http://127.0.0.1:8099), then without --mock:
  export TARGET_URL=https://crm.example.com/api
  syncline run {FLOW} --input {SAMPLE}
to serve the webhook, set its key first (syncline validate --env lists what serve still needs):
  export SIGNUP_HOOK_KEY=change-me-to-a-long-random-key
  syncline serve"""
