"""`syncline validate`, `schema`, `init`, `graph` and `test` as a user runs them (real subprocesses)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
INVALID = ROOT / "tests" / "fixtures" / "invalid"


def syncline(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "runtime.cli", *args], cwd=cwd, capture_output=True, text=True, timeout=120
    )


def test_the_bundled_project_is_valid() -> None:
    done = syncline("validate", ".")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "valid:" in done.stderr


def test_problems_exit_1_with_path_line_col_code() -> None:
    done = syncline("validate", str(INVALID / "sl010_unknown_key.yaml"))
    assert done.returncode == 1
    line = done.stdout.strip().splitlines()[0]
    assert line.endswith(
        "sl010_unknown_key.yaml:14:5: error SL010 unknown key 'retires' in steps[0] — did you mean 'retry'?"
    ), line


def test_usage_errors_exit_2() -> None:
    assert syncline("validate", "no/such/path").returncode == 2
    assert syncline("validate", "--format", "xml").returncode == 2


def test_json_and_github_formats() -> None:
    done = syncline("validate", "--format", "json", str(INVALID / "sl020_unknown_operation.yaml"))
    report = json.loads(done.stdout)
    assert done.returncode == 1 and report["errors"] == 1
    (diag,) = report["diagnostics"]
    assert diag["code"] == "SL020" and diag["line"] == 14 and diag["hint"] == "did you mean 'create_sales_order'?"
    gh = syncline("validate", "--format", "github", str(INVALID / "sl020_unknown_operation.yaml"))
    assert gh.stdout.startswith("::error file=") and ",line=14," in gh.stdout


def test_strict_turns_warnings_into_errors() -> None:
    path = str(INVALID / "sl051_unused_connection.yaml")
    assert syncline("validate", path).returncode == 0
    strict = syncline("validate", "--strict", path)
    assert strict.returncode == 1 and "error SL051" in strict.stdout


def test_schema_prints_json_schema() -> None:
    done = syncline("schema")
    schema = json.loads(done.stdout)
    assert done.returncode == 0 and schema["$schema"].endswith("2020-12/schema")


def test_init_creates_a_project_that_validates_and_tests(tmp_path: Path) -> None:
    target = tmp_path / "newproj"
    done = syncline("init", str(target))
    assert done.returncode == 0, done.stderr
    assert (target / "syncline.yaml").is_file()
    check = syncline("validate", str(target))
    assert check.returncode == 0, check.stdout + check.stderr
    tests = syncline("test", str(target))
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert "2 passed, 0 failed" in tests.stdout
    again = syncline("init", str(target))
    assert again.returncode == 2 and "not empty" in again.stderr


def test_graph_draws_mermaid_and_dot() -> None:
    mermaid = syncline("graph", "webshop-order-to-erp")
    assert mermaid.returncode == 0, mermaid.stderr
    assert mermaid.stdout.startswith("flowchart TD")
    assert "erp.create_sales_order" in mermaid.stdout and "CUSTOMER_NOT_IN_ERP" in mermaid.stdout
    dot = syncline("graph", "flows/billing-invoice-poll.yaml", "--format", "dot")
    assert dot.returncode == 0 and dot.stdout.startswith('digraph "billing-invoice-poll"')
    missing = syncline("graph", "no-such-flow")
    assert missing.returncode == 2 and "webshop-order-to-erp" in missing.stderr


def test_mapping_tests_run_and_report_differences(tmp_path: Path) -> None:
    ok = syncline("test", ".")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    bad = syncline("test", str(INVALID / "sl034_mapping_test_fails.yaml"))
    assert bad.returncode == 1
    assert "SL034" in bad.stdout and "total: expected 0.31, got 0.3" in bad.stdout
