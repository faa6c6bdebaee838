"""`syncline validate` speaks to people (issue 9, item 4): one root cause gives one error, union
fields say what is allowed in the document's words, a tab in indentation says so, a webhook whose
signature and timestamp share a header is refused, and `plan` outside git suggests `--against`."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from runtime.cli import main


def syncline(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def write(root: Path, files: dict[str, str]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "syncline.yaml").write_text("kind: Project\nname: messages\n")
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(textwrap.dedent(text))
    return root


TESTS = {f"tests/flows/t{i}.yaml": f"kind: FlowTest\nname: t{i}\nflow: orders\ninput: {{id: {i}}}\n" for i in (1, 2, 3)}


@pytest.mark.parametrize(
    "flow",
    [
        "kind: Flow\nname: orders\ntrigger: {manual: {}}\nsteps:\n  - set: {a: 1}\n    retry: {attempts: many}\n",
        "kind: Flow\nname: orders\ntrigger: {manual: {}\nsteps:\n  - set: {a: 1}\n",  # not YAML
    ],
    ids=["schema error", "yaml error"],
)
def test_a_broken_flow_is_one_error_not_one_per_flowtest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flow: str
) -> None:
    root = write(tmp_path / "p", {"flows/orders.yaml": flow, **TESTS})
    code, out, _err = syncline(capsys, "validate", str(root))
    assert code == 1
    lines = out.strip().splitlines()
    assert len(lines) == 1 and "flows/orders.yaml" in lines[0], out
    assert "SL029" not in out


def test_an_unknown_flow_is_still_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    flow = "kind: Flow\nname: orders\ntrigger: {manual: {}}\nsteps: [{set: {a: 1}}]\n"
    root = write(tmp_path / "p", {"flows/orders.yaml": flow, **TESTS})
    (root / "tests/flows/t1.yaml").write_text("kind: FlowTest\nname: t1\nflow: ordres\ninput: {}\n")
    code, out, _err = syncline(capsys, "validate", str(root))
    assert code == 1 and "SL029 unknown flow 'ordres'" in out and "did you mean 'orders'?" in out


UNIONS = """\
kind: Flow
name: unions
trigger: {manual: {}}
steps:
  - set: {a: 1}
    on_error: retry_later
  - set: {b: 1}
    on_error: {gotoo: x}
  - set: {c: 1}
    retry: {on: [timeout, 6xx]}
  - set: {d: 1}
    retry: {on: timeout}
"""


def test_union_fields_say_what_is_allowed_in_the_documents_words(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = write(tmp_path / "p", {"flows/unions.yaml": UNIONS})
    code, out, _err = syncline(capsys, "validate", str(root))
    assert code == 1
    lines = [line.split(": error ", 1)[1] for line in out.strip().splitlines()]
    assert lines == [
        "SL012 steps[0].on_error: 'retry_later' is not allowed here; use fail, continue, dead_letter, or {goto: …}"
        " — What happens when the step fails after its retries.",
        "SL011 missing required field 'goto' in steps[1].on_error",
        "SL010 unknown key 'gotoo' in steps[1].on_error — did you mean 'goto'?",
        "SL012 steps[2].retry.on[1]: '6xx' is not allowed here; use timeout, connect, 429, 5xx, 4xx, any, or a whole"
        " number — did you mean '5xx'?",
        "SL012 steps[3].retry.on: expected a list (e.g. [a, b]), got 'timeout'",
    ], out
    assert "GotoAction" not in out and "literal[" not in out and "Input should" not in out


def test_trigger_and_auth_types_list_the_allowed_values(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    flow = """\
    kind: Flow
    name: hook
    trigger:
      webhook:
        path: /hooks/x
        auth: {type: hmac, secret: "{{ secret('K') }}", header: X-Sig}
    steps: [{set: {a: 1}}]
    """
    root = write(tmp_path / "p", {"flows/hook.yaml": flow})
    code, out, _err = syncline(capsys, "validate", str(root))
    assert code == 1
    assert (
        "SL012 trigger.webhook.auth.type: 'hmac' is not one of: hmac_sha256, hmac_sha512, github, shopify, stripe,"
        " signature_header, api_key, basic, none — did you mean 'hmac_sha256'?"
    ) in out


def test_a_tab_in_the_indentation_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = write(tmp_path / "p", {})
    (root / "flows").mkdir()
    (root / "flows/tabs.yaml").write_text("kind: Flow\nname: tabs\ntrigger: {manual: {}}\nsteps:\n\t- set: {a: 1}\n")
    code, out, _err = syncline(capsys, "validate", str(root))
    assert code == 1
    assert out.strip().endswith(
        "flows/tabs.yaml:5:1: error SL001 a tab in the indentation: YAML indents with spaces only"
        " — replace the tab with spaces"
    ), out


def test_one_header_for_signature_and_timestamp_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    flow = """\
    kind: Flow
    name: hook
    trigger:
      webhook:
        path: /hooks/x
        auth: {type: hmac_sha256, secret: "{{ secret('K') }}", header: X-Sig, timestamp_header: x-sig}
    steps: [{set: {a: 1}}]
    """
    root = write(tmp_path / "p", {"flows/hook.yaml": flow})
    code, out, _err = syncline(capsys, "validate", str(root))
    assert code == 1
    assert "error SL046 webhook auth reads the signature and the timestamp from the same header 'X-Sig'" in out


def test_plan_outside_git_suggests_against(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    root = write(
        tmp_path / "p", {"flows/a.yaml": "kind: Flow\nname: a\ntrigger: {manual: {}}\nsteps: [{set: {a: 1}}]\n"}
    )
    code = main(["plan", str(root)])
    _out, err = capsys.readouterr()
    assert code == 2
    assert "is not in a git repository, so there is no git:HEAD to compare with" in err
    assert f"syncline plan {root} --against DIR" in err
    assert "fatal:" not in err


def test_a_mistyped_template_file_gets_a_did_you_mean(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    flow = "kind: Flow\nname: f\ntrigger: {manual: {}}\nsteps:\n  - map: mappings/invoce.json.j2\n"
    root = write(tmp_path / "p", {"flows/f.yaml": flow, "mappings/invoice.json.j2": '{"a": 1}'})
    code, out, _err = syncline(capsys, "validate", str(root))
    assert code == 1
    assert (
        "SL022 template file 'mappings/invoce.json.j2' not found — did you mean 'mappings/invoice.json.j2'?" in out
    ), out
