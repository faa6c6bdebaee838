"""The back-office presets set up what their vendors need: SAP's CSRF session and ETag updates, NetSuite's
OAuth 1.0a with the account id as realm and no idempotency header (external-id upserts instead),
Dynamics 365's client credentials at the tenant's token endpoint with the environment's scope, Zuora's
HTTP-200 failures as errors, Avalara's basic auth and company code, the WMS's API key and
Idempotency-Key; and a project can still override any part."""

from __future__ import annotations

from typing import Any

from runtime.plugins import default_registry
from runtime.spec.documents import DocumentKinds, parse_document
from runtime.spec.yamlload import load_text

KINDS = DocumentKinds(default_registry())


def connection(text: str) -> Any:
    parsed, diags = parse_document(load_text(text, "systems/x.yaml")[0], KINDS)
    assert diags == [] and parsed is not None, [d.text() for d in diags]
    return parsed.model


def test_sap_s4hana() -> None:
    model = connection(
        "kind: Connection\nname: sap\npreset: sap_s4hana\naccount: {host: 'https://my300000-api.s4hana.cloud.sap'}\n"
    )
    config = model.config
    assert config.base_url == "https://my300000-api.s4hana.cloud.sap/sap/opu/odata/sap"
    assert config.auth.type == "basic" and config.auth.username == "{{ secret('SAP_USER') }}"
    assert config.csrf.path == "/API_SALES_ORDER_SRV/" and config.idempotency_header == "Repeatability-Request-ID"
    assert model.operations["update_sales_order"].if_match == "fetch"
    assert model.operations["list_sales_orders"].pagination.next == "d.__next"
    assert config.errors.code == ["$.error.code"]


def test_netsuite() -> None:
    model = connection(
        "kind: Connection\nname: ns\npreset: netsuite\n"
        "account: {account_id: 1234567_SB1, base_url: 'https://1234567-sb1.suitetalk.api.netsuite.com'}\n"
    )
    auth = model.config.auth
    assert (auth.type, auth.realm, auth.signature_method) == ("oauth1", "1234567_SB1", "HMAC-SHA256")
    assert model.config.idempotency_header is None
    assert model.operations["upsert_sales_order"].method == "PUT"
    assert model.operations["upsert_sales_order"].path == "/record/v1/salesOrder/eid:{{ params.external_id }}"
    suiteql = model.operations["suiteql"]
    assert suiteql.headers == {"Prefer": "transient"} and suiteql.pagination.more == "hasMore"
    assert model.config.errors.code == ["$['o:errorDetails'][0]['o:errorCode']"]


def test_dynamics365() -> None:
    model = connection(
        "kind: Connection\nname: d365\npreset: dynamics365\n"
        "account: {environment_url: 'https://contoso.crm.dynamics.com', tenant_id: t-1}\n"
    )
    auth = model.config.auth
    assert auth.token_url == "https://login.microsoftonline.com/t-1/oauth2/v2.0/token"
    assert auth.scope == "https://contoso.crm.dynamics.com/.default" and auth.client_auth == "body"
    assert model.config.base_url == "https://contoso.crm.dynamics.com/api/data/v9.2"
    assert model.operations["upsert_account"].path.startswith("/accounts(accountnumber='")
    assert "0x80072322" in model.config.errors.retriable_codes


def test_zuora_avalara_wms() -> None:
    zuora = connection("kind: Connection\nname: z\npreset: zuora\n").config
    assert zuora.base_url == "https://rest.zuora.com" and zuora.errors.flag == "$.success"
    assert zuora.errors.equals is False and zuora.idempotency_header == "Idempotency-Key"
    avalara = connection("kind: Connection\nname: t\npreset: avalara\naccount: {company_code: ACME}\n")
    assert avalara.config.auth.username == "{{ secret('AVALARA_ACCOUNT_ID') }}"
    assert avalara.operations["get_transaction"].path == "/companies/ACME/transactions/{{ params.code }}"
    wms = connection("kind: Connection\nname: w\npreset: wms\naccount: {base_url: 'https://wms.example.com/api'}\n")
    assert wms.config.auth.name == "X-Api-Key" and wms.config.base_url == "https://wms.example.com/api/v1"


def test_a_project_overrides_the_preset() -> None:
    model = connection(
        "kind: Connection\nname: z\npreset: zuora\n"
        "config:\n  errors: {retriable_codes: []}\n  timeout: 5s\n"
        "operations:\n  create_payment: {path: /v1/object/payment}\n  list_products: null\n"
    )
    assert model.config.errors.retriable_codes == [] and model.config.errors.flag == "$.success"
    assert model.config.timeout == 5 and model.operations["create_payment"].path == "/v1/object/payment"
    assert "list_products" not in model.operations
