"""The file connector's models: defaults, validation, effects, documentation and registration."""

from __future__ import annotations

from importlib.metadata import entry_points

import pytest
from pydantic import ValidationError

import connectors.files as files
from connectors.files import CONNECTOR, FileAction, FileConfig, FileFormat, FileOperation, format_for
from runtime.connector_api import Effect


def test_config_defaults() -> None:
    config = FileConfig(base_dir="data")
    assert (config.done_dir, config.failed_dir, config.encoding) == ("done", "failed", "utf-8")
    assert (config.csv.delimiter, config.csv.quotechar, config.csv.header) == (",", '"', True)


@pytest.mark.parametrize("folder", ["../done", "/tmp/done", "a/../../b", "", ".", "do\x00ne"])
def test_done_and_failed_folders_stay_inside(folder: str) -> None:
    with pytest.raises(ValidationError):
        FileConfig(base_dir="data", done_dir=folder)
    with pytest.raises(ValidationError):
        FileConfig(base_dir="data", failed_dir=folder)


def test_config_rejects_bad_values() -> None:
    with pytest.raises(ValidationError, match="unknown encoding"):
        FileConfig(base_dir="data", encoding="klingon")
    with pytest.raises(ValidationError):
        FileConfig.model_validate({"base_dir": "data", "csv": {"delimiter": ";;"}})
    with pytest.raises(ValidationError, match="extra"):
        FileConfig.model_validate({"base_dir": "data", "basedir": "x"})
    with pytest.raises(ValidationError, match="NUL"):
        FileConfig(base_dir="da\x00ta")


@pytest.mark.parametrize(
    ("path", "fmt"),
    [
        ("a.csv", FileFormat.csv),
        ("out/A.JSON", FileFormat.json),
        ("x.ndjson", FileFormat.ndjson),
        ("x.jsonl", FileFormat.ndjson),
        ("notes.txt", FileFormat.text),
        ("README", FileFormat.text),
    ],
)
def test_format_follows_the_extension(path: str, fmt: FileFormat) -> None:
    assert format_for(path) is fmt


def test_operation_needs_a_path_except_for_list() -> None:
    with pytest.raises(ValidationError, match="needs a `path`"):
        FileOperation.model_validate({"action": "read"})
    assert FileOperation.model_validate({"action": "list"}).pattern == "*"
    with pytest.raises(ValidationError):
        FileOperation.model_validate({"action": "copy", "path": "a"})


@pytest.mark.parametrize(
    ("action", "effect"),
    [
        ("read", Effect.read),
        ("list", Effect.read),
        ("write", Effect.upsert),
        ("append", Effect.create),
        ("move_done", Effect.command),
        ("delete", Effect.delete),
    ],
)
def test_effect_follows_the_action_unless_given(action: str, effect: Effect) -> None:
    assert FileOperation.model_validate({"action": action, "path": "a.csv"}).effect is effect
    given = FileOperation.model_validate({"action": action, "path": "a.csv", "effect": "publish"})
    assert given.effect is Effect.publish


def test_every_field_is_documented_and_examples_validate() -> None:
    for model, base in (
        (FileConfig, {"base_dir": "data"}),
        (FileOperation, {"action": "read", "path": "a.csv"}),
    ):
        properties = model.model_json_schema()["properties"]
        assert [name for name, prop in properties.items() if not prop.get("description")] == []
        for name, field in model.model_fields.items():
            for example in field.examples or []:
                model.model_validate({**base, name: example})


def test_registered_under_entry_point() -> None:
    (point,) = [ep for ep in entry_points(group="syncline.connectors") if ep.name == "file"]
    assert point.load() is CONNECTOR
    assert (CONNECTOR.name, CONNECTOR.config_model, CONNECTOR.operation_model) == (
        "file",
        FileConfig,
        FileOperation,
    )
    assert FileAction.move_failed.value == "move_failed"


def test_public_names_are_complete() -> None:
    own = {
        name
        for name, value in vars(files).items()
        if not name.startswith("_") and getattr(value, "__module__", "").startswith("connectors.files")
    }
    assert own | {"CONNECTOR"} == set(files.__all__)
