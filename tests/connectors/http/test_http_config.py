"""The config and operation models: documentation completeness, examples, durations, validation rules."""

from __future__ import annotations

from decimal import Decimal
from importlib.metadata import entry_points
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from connectors.http import CONNECTOR, HttpConfig, HttpOperation, parse_duration
from connectors.http.config import (
    ApiKeyAuth,
    BasicAuth,
    BearerAuth,
    CircuitBreaker,
    CursorPagination,
    HmacAuth,
    NextLinkPagination,
    OAuth2ClientCredentials,
    PagePagination,
    RateLimit,
)
from runtime.connector_api import OperationSpec

MINIMAL: dict[type[BaseModel], dict[str, Any]] = {
    HttpConfig: {"base_url": "https://erp.example.com"},
    HttpOperation: {},
    BasicAuth: {"type": "basic", "username": "u", "password": "p"},
    BearerAuth: {"type": "bearer", "token": "t"},
    ApiKeyAuth: {"type": "api_key", "name": "X-Key", "value": "v"},
    OAuth2ClientCredentials: {
        "type": "oauth2_client_credentials",
        "token_url": "/t",
        "client_id": "i",
        "client_secret": "s",
    },
    HmacAuth: {"type": "hmac", "secret": "s"},
    RateLimit: {"per_second": 1},
    CircuitBreaker: {"failures": 1, "reset_after": "1s"},
    NextLinkPagination: {"type": "next_link"},
    CursorPagination: {"type": "cursor", "cursor_param": "c", "next_cursor": "$.next"},
    PagePagination: {"type": "page", "size_param": "per_page", "size": 10},
}


def _fields(model: type[BaseModel]) -> list[tuple[str, Any]]:
    inherited = set(OperationSpec.model_fields) if issubclass(model, OperationSpec) else set()
    return [(name, info) for name, info in model.model_fields.items() if name not in inherited]


@pytest.mark.parametrize("model", list(MINIMAL), ids=lambda m: m.__name__)
def test_every_field_is_documented_with_examples(model):
    assert model.__doc__
    for name, info in _fields(model):
        assert info.description, f"{model.__name__}.{name} has no description"
        assert info.examples, f"{model.__name__}.{name} has no examples"


@pytest.mark.parametrize("model", list(MINIMAL), ids=lambda m: m.__name__)
def test_every_example_validates(model):
    for name, info in _fields(model):
        key = info.alias or name
        for example in info.examples or []:
            model.model_validate({**MINIMAL[model], key: example})


def test_json_schemas_generate():
    config_schema = HttpConfig.model_json_schema()
    operation_schema = HttpOperation.model_json_schema()
    assert config_schema["additionalProperties"] is False
    assert "in" in config_schema["$defs"]["ApiKeyAuth"]["properties"]
    assert config_schema["$defs"]["BasicAuth"]["properties"]["password"]["writeOnly"] is True
    assert "pagination" in operation_schema["properties"]


def test_entry_point_names_the_connector():
    (point,) = [ep for ep in entry_points(group="syncline.connectors") if ep.name == "http"]
    assert point.load() is CONNECTOR
    assert CONNECTOR.name == "http" and CONNECTOR.config_model is HttpConfig
    assert CONNECTOR.operation_model is HttpOperation


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("500ms", 0.5),
        ("10s", 10),
        ("5m", 300),
        ("2h", 7200),
        ("7d", 604800),
        ("1.5s", 1.5),
        (3, 3),
        (0.25, 0.25),
        (Decimal("2.5"), 2.5),
    ],
)
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["10", "ten seconds", "5 minutes", "-1s", True, None, -3, float("inf"), "1e3s"])
def test_invalid_durations(bad):
    with pytest.raises(ValueError):
        parse_duration(bad)


def test_config_accepts_the_flow_language_example():
    config = HttpConfig.model_validate(
        {
            "base_url": "{{ env('ERP_URL') }}",
            "auth": {
                "type": "oauth2_client_credentials",
                "token_url": "/oauth/token",
                "client_id": "{{ secret('ERP_ID') }}",
                "client_secret": "{{ secret('ERP_SECRET') }}",
            },
            "timeout": "10s",
            "rate_limit": {"per_second": 20, "burst": 40},
            "circuit_breaker": {"failures": 5, "reset_after": "30s"},
        }
    )
    assert config.timeout == 10 and config.circuit_breaker is not None and config.circuit_breaker.reset_after == 30
    assert config.retry_after_max == 300 and config.max_response_bytes == 10 * 1024 * 1024
    assert config.verify_tls and config.follow_redirects and not config.allow_private
    assert config.idempotency_header == "Idempotency-Key"


def test_operations_of_the_flow_language_example():
    ops = {
        "find_customer": {"method": "GET", "path": "/customers", "query": {"tax_id": "{{ params.tax_id }}"},
                          "entity": "customer", "effect": "read"},
        "create_sales_order": {"method": "POST", "path": "/sales-orders", "body": "{{ params.body }}",
                               "entity": "order", "effect": "create"},
        "cancel_sales_order": {"method": "post", "path": "/sales-orders/{{ params.id }}/cancel",
                               "entity": "order", "effect": "command"},
    }  # fmt: skip
    parsed = {name: HttpOperation.model_validate(spec) for name, spec in ops.items()}
    assert parsed["cancel_sales_order"].method == "POST"


@pytest.mark.parametrize(
    "config",
    [
        {"base_url": "ftp://erp.example.com"},
        {"base_url": "erp.example.com/api"},
        {"base_url": "https://user:pw@erp.example.com"},
        {"base_url": "https://erp.example.com/?x=1"},
        {"base_url": "https://erp.example.com", "unknown": 1},
        {"base_url": "https://erp.example.com", "timeout": "soon"},
        {"base_url": "https://erp.example.com", "auth": {"type": "digest"}},
        {
            "base_url": "https://erp.example.com",
            "auth": {"type": "api_key", "name": "k", "value": "v", "in": "cookie"},
        },
        {"base_url": "https://erp.example.com", "auth": {"type": "hmac", "secret": "s", "algorithm": "md5"}},
        {"base_url": "https://erp.example.com", "rate_limit": {"per_second": 0}},
        {"base_url": "https://erp.example.com", "headers": {"X-A": {"nested": 1}}},
    ],
)
def test_invalid_configs(config):
    with pytest.raises(ValidationError):
        HttpConfig.model_validate(config)


@pytest.mark.parametrize(
    "operation",
    [
        {"body": {"a": 1}, "form": {"a": 1}},
        {"method": "FETCH"},
        {"query": "not a template"},
        {"expect": [99]},
        {"pagination": {"type": "cursor", "cursor_param": "c", "next_cursor": "$[?bad"}},
        {"pagination": {"type": "page", "size": 10}},
        {"pagination": {"type": "next_link", "next": "header:"}},
        {"surprise": True},
    ],
)
def test_invalid_operations(operation):
    with pytest.raises(ValidationError):
        HttpOperation.model_validate(operation)


def test_scalars_become_wire_text():
    op = HttpOperation.model_validate(
        {
            "query": {"n": 5, "d": Decimal("0.10"), "b": False, "l": [1, "x"], "skip": None},
            "headers": {"X-N": 7},
        }
    )
    assert op.query == {"n": "5", "d": "0.10", "b": "false", "l": ["1", "x"], "skip": None}
    assert op.headers == {"X-N": "7"}


def test_templated_mappings_are_accepted_before_rendering():
    op = HttpOperation.model_validate(
        {"query": "{{ params.q }}", "headers": "{{ params.h }}", "form": "{{ params.f }}"}
    )
    assert op.query == "{{ params.q }}"
