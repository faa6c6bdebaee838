"""The stable diagnostic codes (`SL` + number) with their one-line meaning.

This table is the single source for `docs/diagnostics.md` (a test checks the page lists every code)
and for the severity a code has by default. Codes are never renumbered or reused.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class Code:
    code: str
    severity: Severity
    title: str
    fix: str


_CODES: list[Code] = [
    # --- files and YAML (SL00x) ---
    Code("SL001", "error", "YAML syntax error", "Fix the YAML at the position shown."),
    Code(
        "SL002",
        "error",
        "duplicate key in a mapping",
        "Remove or rename one of the keys; YAML keeps only one.",
    ),
    Code(
        "SL003",
        "error",
        "forbidden or unknown YAML tag (e.g. `!!python/object`)",
        "Remove the tag; Syncline files hold plain data only.",
    ),
    Code("SL004", "error", "alias expansion too large (alias bomb)", "Do not nest aliases; write the data out."),
    Code("SL005", "error", "nesting deeper than the limit", "Flatten the document (limit: 64 levels)."),
    Code("SL006", "error", "file larger than the limit", "Split the file (limit: 4 MiB per file)."),
    Code("SL007", "error", "file cannot be read or is not UTF-8 text", "Save the file as UTF-8 text."),
    Code(
        "SL008",
        "error",
        "document is not a mapping or has no `kind`",
        "Each document needs `kind:` and `name:`.",
    ),
    Code("SL009", "error", "unknown document kind", "Use one of the kinds listed in the reference."),
    # --- document fields (SL01x) ---
    Code("SL010", "error", "unknown key", "Remove the key or fix its spelling (a suggestion is shown)."),
    Code("SL011", "error", "required field missing", "Add the field."),
    Code("SL012", "error", "value has the wrong type or an invalid value", "Give a value of the type shown."),
    Code("SL013", "error", "two documents of one kind share a name", "Give each document a unique name."),
    Code(
        "SL014",
        "error",
        "a step has no kind or more than one kind",
        "Give each step exactly one of the step keys (call, map, set, switch, ...).",
    ),
    Code("SL015", "error", "duplicate step id in a flow", "Step ids must be unique within a flow."),
    Code("SL016", "error", "invalid duration", "Use a number with a unit: 500ms, 30s, 5m, 2h, 7d."),
    Code(
        "SL018",
        "error",
        "a trigger has no kind, more than one, or a kind no installed package provides",
        "Give the trigger exactly one installed kind (built in: webhook, schedule, poll, queue, event, file, manual; "
        "plugins add more through the `syncline.triggers` entry points, docs/extending.md).",
    ),
    Code(
        "SL019",
        "error",
        "unknown preset, or a preset's account value unknown or missing",
        "Use a preset from `syncline systems list` and the account values `syncline systems show NAME` lists.",
    ),
    Code("SL017", "error", "YAML 1.1 literal where a string was meant (`on`, `no`, `0777`)", "Quote the value."),
    # --- references (SL02x) ---
    Code("SL020", "error", "unknown operation in `call`", "Use `connection.operation` as declared in systems/."),
    Code("SL021", "error", "unknown connection", "Declare the connection in systems/ or fix its name."),
    Code("SL022", "error", "unknown mapping", "Create the mapping under mappings/ or fix its name."),
    Code("SL023", "error", "schema file not found", "Create the file under schemas/ or fix the path."),
    Code("SL024", "error", "invalid JSON Schema", "Fix the schema; it must be valid JSON Schema (2020-12)."),
    Code("SL025", "error", "unknown state machine", "Declare the StateMachine in governance/ or fix its name."),
    Code("SL026", "error", "unknown state", "Use a state declared in the machine's transitions."),
    Code("SL027", "error", "`goto` names no step of the flow", "Use the id of a step in the same flow."),
    Code(
        "SL028",
        "error",
        "`steps.<id>` refers to no earlier step",
        "Reference a step that runs before this one.",
    ),
    Code("SL029", "error", "unknown flow", "Use the name of a Flow in flows/."),
    # --- expressions and mappings (SL03x) ---
    Code(
        "SL030",
        "error",
        "expression or template does not compile",
        "Fix the Jinja2 syntax at the position shown.",
    ),
    Code("SL031", "error", "invalid JSONPath", "Fix the path; JSONPath follows RFC 9535."),
    Code(
        "SL032",
        "error",
        "template path outside mappings/",
        "Keep templates under the project's mappings/ folder.",
    ),
    Code(
        "SL033",
        "error",
        "unknown filter, test or function in an expression",
        "Use a filter from the reference (a suggestion is shown).",
    ),
    Code("SL034", "error", "mapping test failed", "Fix the mapping or the test's expected output."),
    Code("SL035", "error", "templated SQL text", "SQL text is fixed; pass values as bound parameters."),
    Code(
        "SL036",
        "error",
        "a FlowTest's input file is missing, outside the project, or not JSON/YAML",
        "Fix the path (a suggestion is shown) or create the file; it is relative to the project folder.",
    ),
    # --- triggers (SL04x) ---
    Code(
        "SL040",
        "error",
        "two webhook triggers (or triggers of another kind taking HTTP requests) share a method and path",
        "Give each flow its own path.",
    ),
    Code("SL041", "error", "invalid cron expression", "Use five fields: minute hour day month weekday."),
    Code("SL042", "error", "unknown timezone", "Use an IANA name such as Europe/Berlin."),
    Code(
        "SL043",
        "warning",
        "event trigger with no flow emitting that event",
        "Emit the event or fix its name.",
    ),
    Code(
        "SL044",
        "error",
        "invalid webhook path (or the path of another kind taking HTTP requests), or one under a reserved prefix",
        "Paths start with / and hold letters, digits, -_./{}; /api/, /healthz, /readyz, /metrics and /console "
        "are the service's.",
    ),
    Code(
        "SL045",
        "error",
        "a `respond` header name or literal value HTTP cannot carry (CR, LF, control characters)",
        "Remove the control characters; a header name is an RFC 9110 token (letters, digits, !#$%&'*+.^_-~).",
    ),
    Code(
        "SL046",
        "error",
        "webhook auth reads the signature and the signed timestamp from the same header",
        "Give `timestamp_header` its own header (e.g. X-Timestamp); for a combined header (t=…,v1=…) use "
        "`type: signature_header` (or its preset `stripe`).",
    ),
    Code(
        "SL047",
        "error",
        "a trigger's connection is of a type that cannot serve it (e.g. no folder to take files from)",
        "Point the trigger at a connection whose connector provides what it needs (the message names the types).",
    ),
    # --- project (SL05x) ---
    Code(
        "SL050",
        "error",
        "no project file (syncline.yaml) found",
        "Run syncline in a project folder or pass it.",
    ),
    Code("SL051", "warning", "connection declared but never used", "Remove it or use it in a flow."),
    Code(
        "SL052",
        "error",
        "a secret or setting a connection or webhook needs is not set (`validate --env`, `serve`)",
        "Set the environment variable (a secret may also be the file $SYNCLINE_SECRETS_DIR/NAME), "
        "or give a setting a fallback: env('NAME', '...').",
    ),
    # --- run behaviour (SL06x) ---
    Code(
        "SL060",
        "warning",
        "a `goto` loop no condition can leave (its steps fail into each other until the step budget ends the run)",
        "Give the loop a way out: an `if`, a `switch` or `filter` step, an `on_error` other than `goto`, "
        "or a step that can succeed past the loop.",
    ),
    # --- governance: ownership (SL10x) ---
    Code(
        "SL100",
        "error",
        "a flow writes entity fields its source system may not write (ownership)",
        "Propagate only the owner's data, write into the owner only as a declared `requesters` system, "
        "or leave those fields out of the write.",
    ),
    Code(
        "SL101",
        "warning",
        "update cycle between systems that field ownership does not break",
        "Write each field in one direction only (from its owner); the cycle and the fields are shown.",
    ),
    Code(
        "SL102",
        "warning",
        "a flow writes an owned entity but declares no `source`",
        "Add `source: {system: ..., entity: ...}` so ownership can be checked.",
    ),
    Code("SL103", "error", "an entity has owners in two places", "Declare each entity in one Ownership document."),
    Code(
        "SL104",
        "warning",
        "Ownership names an unknown system close to a known one (a typo?)",
        "Fix the system's name (a suggestion is shown) or declare its connection.",
    ),
    # --- governance: static policies (SL11x) ---
    Code(
        "SL110",
        "error",
        "a policy rule's `require` is not met (severity from the rule)",
        "Add what the rule requires (idempotency key, retry, timeout, auth, schema, owner) where shown.",
    ),
    Code(
        "SL111",
        "error",
        "a policy rule's `forbid` is violated (connector or host; severity from the rule)",
        "Use another connector or host, or change the rule.",
    ),
    Code(
        "SL112",
        "warning",
        "a policy rule matches no flow or call",
        "Fix the rule's `match` (a suggestion is shown) or remove the rule.",
    ),
    # --- governance: typed checks (SL12x) ---
    Code(
        "SL120",
        "error",
        "an expression names a property its schema does not declare",
        "Fix the name (a suggestion is shown) or add the property to the schema.",
    ),
    Code(
        "SL121",
        "error",
        "a mapping does not produce a property its output schema requires",
        "Add the field to the mapping or make it optional in the schema.",
    ),
    Code(
        "SL122",
        "error",
        "a mapping produces a field its output schema does not allow",
        "Remove the field or add it to the schema's `properties`.",
    ),
    Code(
        "SL123",
        "error",
        "a mapping field's value has a different type than its output schema wants",
        "Convert the value (`| decimal`, `| string`, ...) or fix the schema.",
    ),
]

CODES: dict[str, Code] = {c.code: c for c in _CODES}


def severity_of(code: str) -> Severity:
    return CODES[code].severity


def render_markdown() -> str:
    """The page docs/diagnostics.md (regenerated by `make docs`; a test keeps it fresh)."""
    lines = [
        "# Diagnostic codes",
        "",
        "`syncline validate` and `syncline test` report problems one per line as",
        "`path:line:col: error|warning CODE message — hint`. Codes are stable: they are never renumbered",
        "or reused, so CI rules and editor integrations can rely on them. `--strict` turns warnings into",
        "errors. Every code has an invalid fixture under `tests/fixtures/invalid/` that must produce it.",
        "",
        "| code | severity | meaning | what to do |",
        "|---|---|---|---|",
    ]
    for code in _CODES:
        lines.append(f"| {code.code} | {code.severity} | {code.title} | {code.fix} |")
    lines += [
        "",
        "Exit codes of `syncline validate`: 0 valid (warnings allowed unless `--strict`), 1 problems found,",
        "2 usage error (unknown option, missing path).",
        "",
        "Output formats: `--format text` (default), `--format json` (an object with `errors`, `warnings`,",
        "`documents` and a `diagnostics` list of `{path, line, col, code, message, severity, hint}`),",
        "`--format github` (workflow commands that annotate pull requests).",
    ]
    return "\n".join(lines) + "\n"
