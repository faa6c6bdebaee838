"""The `http` connector plugin: calls to REST/JSON systems over httpx.

`CONNECTOR` is what the `syncline.connectors` entry point `http` names. The pieces:

    config.py       the Connection `config:` and operation models (validation, JSON Schema, docs)
    client.py       HttpConnector: one live connection; the call pipeline
    auth.py         basic, bearer, API key, OAuth2 client credentials / JWT bearer, OAuth 1.0a, HMAC signing
    csrf.py         the CSRF token session SAP OData wants on writes
    egress.py       the SSRF guard and the pinned, guarded httpx transport
    request.py      URL, parameter, header and body building (header injection refused)
    response.py     output parsing and status → ConnectorError classification
    pagination.py   next_link / cursor / page pagination helpers and body paths
    ratelimit.py    async token bucket
    breaker.py      circuit breaker
    retry_after.py  Retry-After parsing
    redact.py       secret redaction of everything that leaves the connector
"""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import BaseModel, ValidationError

from connectors.http.client import HttpConnector, coerce_operations
from connectors.http.config import HttpConfig, HttpOperation, parse_duration
from runtime.connector_api import Connector, ConnectorContext, ConnectorError, ConnectorType, OperationSpec

__all__ = ["CONNECTOR", "HttpConfig", "HttpConnector", "HttpOperation", "create_connector", "parse_duration"]


def create_connector(
    config: BaseModel, operations: Mapping[str, OperationSpec], context: ConnectorContext
) -> Connector:
    """Build the live connector for one `http` Connection."""
    try:
        http_config = (
            config if isinstance(config, HttpConfig) else HttpConfig.model_validate(config.model_dump(by_alias=True))
        )
        http_operations = coerce_operations(operations)
    except ValidationError as exc:
        fields = ", ".join(".".join(str(p) for p in err["loc"]) for err in exc.errors(include_input=False))
        raise ConnectorError(
            context.redact(f"connection {context.connection!r}: invalid http config or operation ({fields})"),
            reason="config",
            error_class="fatal",
        ) from None
    return HttpConnector(http_config, http_operations, context)


CONNECTOR = ConnectorType(
    name="http",
    description="Call HTTP/JSON APIs: auth (basic, bearer, API key, OAuth2 client credentials and JWT bearer, "
    "OAuth 1.0a, HMAC), CSRF token session, rate limit, circuit breaker, Retry-After, pagination and an SSRF "
    "egress guard.",
    config_model=HttpConfig,
    operation_model=HttpOperation,
    create=create_connector,
)
