"""The SQL connector's models and helpers: durations, URLs, SQL templating check, schema, registration."""

from __future__ import annotations

from importlib.metadata import entry_points

import pytest
from pydantic import ValidationError

import connectors.sql as sql
from connectors.sql import CONNECTOR, SqlConfig, SqlMode, SqlOperation, contains_template, normalise_url


@pytest.mark.parametrize(
    ("given", "seconds"),
    [("30s", 30.0), ("500ms", 0.5), ("5m", 300.0), ("2h", 7200.0), ("1d", 86400.0), ("1.5", 1.5), (2, 2.0)],
)
def test_timeout_takes_durations_and_seconds(given: object, seconds: float) -> None:
    assert SqlConfig(url="sqlite://", timeout=given).timeout == seconds


@pytest.mark.parametrize("given", ["30 sec", "-1s", "soon", "1w"])
def test_timeout_rejects_bad_durations(given: str) -> None:
    with pytest.raises(ValidationError, match="duration"):
        SqlConfig(url="sqlite://", timeout=given)


def test_config_defaults_and_unknown_keys() -> None:
    config = SqlConfig(url="sqlite://")
    assert (config.pool_size, config.timeout, config.batch_size, config.echo) == (5, 30.0, 1000, False)
    with pytest.raises(ValidationError, match="extra"):
        SqlConfig.model_validate({"url": "sqlite://", "pasword": "x"})


def test_config_rejects_unsupported_or_broken_urls() -> None:
    with pytest.raises(ValidationError, match="unsupported database"):
        SqlConfig(url="mysql://u@h/db")
    with pytest.raises(ValidationError, match="not a database URL"):
        SqlConfig(url="not a url")
    assert SqlConfig(url="{{ env('DB_URL') }}").url == "{{ env('DB_URL') }}"  # rendered before create


def test_normalise_url_picks_psycopg3_and_anchors_sqlite(tmp_path: object) -> None:
    assert normalise_url("postgresql://u@h/db").drivername == "postgresql+psycopg"
    assert normalise_url("postgres://u@h/db").drivername == "postgresql+psycopg"
    assert normalise_url("postgresql+psycopg://u@h/db").drivername == "postgresql+psycopg"
    assert normalise_url("sqlite:///data/erp.db", "/srv/project").database == "/srv/project/data/erp.db"
    assert normalise_url("sqlite:////abs/erp.db", "/srv/project").database == "/abs/erp.db"
    assert normalise_url("sqlite://", "/srv/project").database is None


@pytest.mark.parametrize(
    ("text", "templated"),
    [
        ("SELECT * FROM t WHERE id = :id", False),
        ("SELECT '{' || :a || '}'", False),
        ("SELECT * FROM t WHERE id = {{ params.id }}", True),
        ("SELECT 1 {% if x %}, 2{% endif %}", True),
    ],
)
def test_contains_template(text: str, templated: bool) -> None:
    assert contains_template(text) is templated


def test_operation_model() -> None:
    op = SqlOperation.model_validate({"sql": "SELECT 1", "entity": "order"})
    assert (op.mode, op.params, op.rows) == (SqlMode.query, {}, None)
    assert SqlOperation.fixed_text_fields == ("sql",)
    with pytest.raises(ValidationError, match="identifiers"):
        SqlOperation.model_validate({"sql": "SELECT :a", "params": {"a; drop": 1}})
    with pytest.raises(ValidationError):
        SqlOperation.model_validate({"sql": "SELECT 1", "mode": "fetch"})
    with pytest.raises(ValidationError):
        SqlOperation.model_validate({"sql": ""})


def test_every_field_is_documented() -> None:
    for model in (SqlConfig, SqlOperation):
        properties = model.model_json_schema()["properties"]
        undocumented = [name for name, prop in properties.items() if not prop.get("description")]
        assert undocumented == [], model.__name__
    timeout = SqlConfig.model_json_schema()["properties"]["timeout"]
    assert "string" in str(timeout)  # durations are documented as accepted


def test_examples_validate() -> None:
    for model in (SqlConfig, SqlOperation):
        for name, field in model.model_fields.items():
            for example in field.examples or []:
                base = {"url": "sqlite://"} if model is SqlConfig else {"sql": "SELECT 1"}
                model.model_validate({**base, name: example})


def test_registered_under_entry_point() -> None:
    (point,) = [ep for ep in entry_points(group="syncline.connectors") if ep.name == "sql"]
    assert point.load() is CONNECTOR
    assert CONNECTOR.name == "sql"
    assert CONNECTOR.config_model is SqlConfig
    assert CONNECTOR.operation_model is SqlOperation


def test_public_names_are_complete() -> None:
    own = {
        name
        for name, value in vars(sql).items()
        if not name.startswith("_") and getattr(value, "__module__", "").startswith("connectors.sql")
    }
    assert own | {"CONNECTOR"} == set(sql.__all__)
