"""`syncline test` says what went wrong (issue 9, item 3): a FlowTest whose input file is missing is a
validate error (SL036), never a traceback; a call with other parameters shows the closest call with a
field-by-field difference; `exact: true` compares the scale of numbers as well as their value."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from runtime.cli import main
from tests.service.harness import write_project

FLOW = """
trigger: {manual: {}}
steps:
  - id: customer
    call: sink.post
    with: {path: customers, body: {id: "{{ input.customer }}"}}
  - id: invoice
    call: sink.post
    with: {path: invoices, body: {tax_total: "{{ input.tax }}", currency: EUR}}
"""

MAPPING = """
kind: Mapping
name: totals
fields:
  total: "{{ input.total }}"
tests:
  - name: by value
    input: {total: 19}
    output: {total: 19.00}
  - name: exact scale
    input: {total: 19}
    output: {total: 19.00}
    exact: true
"""


def flowtest(name: str, body: str) -> str:
    return f"kind: FlowTest\nname: {name}\nflow: invoices\n" + textwrap.dedent(body)


def project(tmp_path: Path, tests: dict[str, str], *, mapping: bool = False) -> Path:
    root = write_project(tmp_path / "p", "http://127.0.0.1:9", {"invoices": FLOW})
    (root / "tests" / "flows").mkdir(parents=True)
    for name, text in tests.items():
        (root / "tests" / "flows" / f"{name}.yaml").write_text(text)
    if mapping:
        (root / "mappings").mkdir()
        (root / "mappings" / "totals.yaml").write_text(MAPPING)
    return root


def syncline(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_a_missing_input_file_is_reported_by_validate_and_test(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = project(tmp_path, {"from_file": flowtest("from a file", "input: {file: data/invoice.json}\n")})
    (root / "data").mkdir()
    (root / "data" / "invoices.json").write_text('{"customer": "C-1", "tax": 19}')

    code, out, err = syncline(capsys, "validate", str(root))
    assert code == 1, out + err
    assert "error SL036 input file 'data/invoice.json' not found — did you mean 'data/invoices.json'?" in out

    code, out, err = syncline(capsys, "test", str(root))
    assert code == 1 and "Traceback" not in out + err
    assert "SL036" in out


CALL_TEST = """
input: {customer: C-1, tax: 19.02}
mocks:
  sink.post: {output: {id: X}}
expect:
  status: succeeded
  calls:
    - operation: sink.post
      params: {path: invoices, body: {tax_total: 19.03, currency: EUR}}
      times: 1
"""


def test_a_call_with_other_params_shows_the_closest_call_and_the_difference(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = project(tmp_path, {"calls": flowtest("invoice call", CALL_TEST)})
    code, out, err = syncline(capsys, "test", str(root))
    assert code == 1, out + err
    assert (
        "call sink.post: expected 1 call with these params, got 0 (2 calls to sink.post; the closest, #2 from "
        "step 'invoice', differs: body.tax_total: expected 19.03, got 19.02)"
    ) in out, out


EXACT_TEST = """
input: {customer: C-1, tax: 19}
mocks:
  sink.post: {output: {id: X}}
expect:
  calls:
    - operation: sink.post
      params: {path: invoices, body: {tax_total: 19.00}}
"""


def test_numbers_compare_by_value_unless_exact(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    exact = EXACT_TEST + "  exact: true\n"
    root = project(
        tmp_path,
        {"by_value": flowtest("by value", EXACT_TEST), "exact": flowtest("exact scale", exact)},
        mapping=True,
    )
    code, out, err = syncline(capsys, "test", str(root))
    assert code == 1, out + err
    assert "mapping tests: 1 passed, 1 failed; flow tests: 1 passed, 1 failed" in out
    assert (
        "mapping 'totals' exact scale failed: total: expected 19.00, got 19 "
        "(same value, but exact: 2 decimal places expected, 0 given)"
    ) in out
    assert "flow test 'exact scale' failed: call sink.post: no call with these params" in out
    assert "body.tax_total: expected 19.00, got 19 (same value, but exact: 2 decimal places expected, 0 given)" in out
    assert "'by value' failed" not in out
