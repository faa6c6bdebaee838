"""The Dynamics 365 simulator answers as the Web API does, driven by Syncline's http connector: a client
credentials token from the identity platform's endpoint, `@odata.nextLink` paging under
`Prefer: odata.maxpagesize`, a sales order with lines (0-decimal currency) created with
`Prefer: return=representation`, an update with the ETag fetched first, and a stale ETag refused
with 412 and Dataverse's error code."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from connectors.http import HttpConfig, HttpConnector
from runtime.connector_api import CallRequest, ConnectorError
from runtime.demo.sims.dynamics365 import CLIENT_ID, CLIENT_SECRET, CURRENCY_IDS, TENANT, Dynamics365
from tests.sims.preset_connection import call_all, http_connector


@pytest.fixture
def d365() -> Iterator[Dynamics365]:
    with Dynamics365() as sim:
        yield sim


OPS: dict[str, Any] = {
    "list_accounts": {
        "path": "/accounts",
        "query": {"$select": "name,accountnumber"},
        "headers": {"Prefer": "odata.maxpagesize=2"},
        "pagination": {"type": "next_link", "next": "$['@odata.nextLink']", "items": "value"},
    },
    "create_account": {"method": "POST", "path": "/accounts", "body": {"name": "n"}},
    "create_order": {"method": "POST", "path": "/salesorders", "headers": {"Prefer": "return=representation"}},
    "update_account": {"method": "PATCH", "path": "/accounts(accountnumber='ACC-1001')", "if_match": "fetch"},
    "get_quote": {"path": "/quotes(7c2f9a10-5b3e-4d21-9f00-0000000000a1)", "query": {"$expand": "quote_details"}},
    "stale_update": {"method": "PATCH", "path": "/accounts(accountnumber='ACC-1001')", "if_match": 'W/"1"'},
}


def connector(sim: Dynamics365, secret: str = CLIENT_SECRET) -> HttpConnector:
    config = HttpConfig.model_validate(
        {
            "base_url": sim.url + "/api/data/v9.2",
            "headers": {"OData-MaxVersion": "4.0", "OData-Version": "4.0"},
            "auth": {
                "type": "oauth2_client_credentials",
                "token_url": f"{sim.url}/{TENANT}/oauth2/v2.0/token",
                "client_id": CLIENT_ID,
                "client_secret": secret,
                "client_auth": "body",
                "scope": f"{sim.url}/.default",
            },
            "idempotency_header": None,
            "errors": {"code": "$.error.code", "message": "$.error.message", "retriable_codes": ["0x80072322"]},
        }
    )
    return http_connector("dynamics365", config, OPS)


calls = call_all


def test_token_paging_order_with_lines_and_etag_update(d365: Dynamics365) -> None:
    account_id = next(iter(d365.data["accounts"]))
    order_body = {
        "name": "Web order A-1",
        "customerid_account@odata.bind": f"/accounts({account_id})",
        "transactioncurrencyid@odata.bind": f"/transactioncurrencies({CURRENCY_IDS['JPY']})",
        "order_details": [
            {
                "productid@odata.bind": "/products(productnumber='SKU-100')",
                "quantity": 3,
                "priceperunit": 1500,
                "manualdiscountamount": 500,
                "tax": 400,
            },
        ],
    }
    created = [
        CallRequest("create_account", {"body": {"name": f"Account {n}", "accountnumber": f"ACC-{n}"}}) for n in range(3)
    ]
    *_, accounts, order, updated = calls(
        connector(d365),
        *created,
        CallRequest("list_accounts", {}),
        CallRequest("create_order", {"body": order_body}),
        CallRequest("update_account", {"body": {"telephone1": "+1 425 555 0100"}}),
    )
    assert [a["accountnumber"] for a in accounts] == ["ACC-1001", "ACC-0", "ACC-1", "ACC-2"]
    assert len(d365.seen("GET", "/accounts$")) == 2  # two pages of two
    assert d365.token_requests == 1
    assert order["totallineitemamount"] == 4000 and order["totaltax"] == 400 and order["totalamount"] == 4400
    assert order["@odata.etag"].startswith('W/"') and order["ordernumber"].startswith("ORD-")
    assert updated is None and d365.data["accounts"][account_id]["telephone1"] == "+1 425 555 0100"
    read, write = d365.seen("GET", r"accountnumber")[-1], d365.seen("PATCH")[-1]
    assert write.headers["if-match"] == 'W/"1000"' and read.method == "GET"


def test_stale_etag_is_a_conflict_with_the_vendor_code(d365: Dynamics365) -> None:
    with pytest.raises(ConnectorError) as caught:
        calls(connector(d365), CallRequest("stale_update", {"body": {"name": "x"}}))
    assert (caught.value.status, caught.value.code, caught.value.retriable) == (412, "0x80060882", False)


def test_service_protection_limit_is_retriable_and_a_bad_secret_is_invalid_client(d365: Dynamics365) -> None:
    d365.inject_rate_limit(path="/api/data")
    with pytest.raises(ConnectorError) as caught:
        calls(connector(d365), CallRequest("list_accounts", {}))
    assert (caught.value.status, caught.value.retry_after, caught.value.code) == (429, 2, "0x80072322")
    with pytest.raises(ConnectorError) as caught:
        calls(connector(d365, secret="wrong"), CallRequest("list_accounts", {}))
    assert caught.value.status == 401 and caught.value.body["error"] == "invalid_client"


def test_a_quote_reads_with_its_lines_in_three_decimals(d365: Dynamics365) -> None:
    (quote,) = calls(connector(d365), CallRequest("get_quote", {}))
    assert quote["quotenumber"] == "QUO-01001-K3L9" and str(quote["totalamount"]) == "1254.750"
    lines = sorted(quote["quote_details"], key=lambda line: line["lineitemnumber"])
    assert [(line["productnumber"], str(line["extendedamount"])) for line in lines] == [
        ("WIDGET-42", "348.500"),
        ("GADGET-43", "931.250"),
    ]
    assert sum(line["extendedamount"] for line in lines) == quote["totallineitemamount"]


def test_preset_opportunity_create_and_update_with_the_fetched_etag(d365: Dynamics365) -> None:
    from tests.sims.preset_connection import preset_connector

    account_id = next(iter(d365.data["accounts"]))
    made = preset_connector(
        "dynamics365",
        {
            "environment_url": d365.url,
            "login_url": d365.url,
            "tenant_id": TENANT,
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
        },
    )
    body = {
        "name": "Platform rollout",
        "estimatedvalue": 125000,
        "customerid_account@odata.bind": f"/accounts({account_id})",
    }
    created, _ = calls(
        made,
        CallRequest("create_opportunity", {"body": body}),
        CallRequest("list_opportunities", {"query": {}}),
    )
    opportunity = created["opportunityid"]
    (updated,) = calls(
        preset_connector(
            "dynamics365",
            {
                "environment_url": d365.url,
                "login_url": d365.url,
                "tenant_id": TENANT,
                "client_id": CLIENT_ID,
                "client_secret": CLIENT_SECRET,
            },
        ),
        CallRequest(
            "update_opportunity", {"path": f"/opportunities({opportunity})", "body": {"stepname": "3-Propose"}}
        ),
    )
    assert updated is None and d365.data["opportunities"][opportunity]["stepname"] == "3-Propose"
    assert d365.data["opportunities"][opportunity]["_customerid_value"] == account_id
    assert d365.seen("PATCH")[-1].headers["if-match"] == created["@odata.etag"]
