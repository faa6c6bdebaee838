"""The NetSuite simulator verifies every request's OAuth 1.0a signature with oauthlib's server-side
`ResourceEndpoint`: Syncline's http connector (oauth1, HMAC-SHA256, realm) is accepted; a wrong
secret, another realm and a replayed request are refused with NetSuite's INVALID_LOGIN. Records,
external-id upserts and SuiteQL paging (hasMore/offset) answer as NetSuite documents them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests
from oauthlib import oauth1

from connectors.http import HttpConfig, HttpConnector
from runtime.connector_api import CallRequest, ConnectorError
from runtime.demo.sims.netsuite import ACCOUNT, CONSUMER_KEY, CONSUMER_SECRET, TOKEN_ID, TOKEN_SECRET, NetSuite
from tests.sims.preset_connection import call_all, http_connector


@pytest.fixture
def netsuite() -> Iterator[NetSuite]:
    with NetSuite() as sim:
        yield sim


def connector(sim: NetSuite, operations: dict[str, Any], **auth: Any) -> HttpConnector:
    config = HttpConfig.model_validate(
        {
            "base_url": sim.url + "/services/rest",
            "auth": {
                "type": "oauth1",
                "consumer_key": CONSUMER_KEY,
                "consumer_secret": CONSUMER_SECRET,
                "token": TOKEN_ID,
                "token_secret": TOKEN_SECRET,
                "realm": ACCOUNT,
                **auth,
            },
            "idempotency_header": None,
            "errors": {"code": "$['o:errorDetails'][0]['o:errorCode']", "message": "$['o:errorDetails'][0].detail"},
        }
    )
    return http_connector("netsuite", config, operations)


call = call_all


ORDER = {
    "entity": {"id": "107"},
    "otherRefNum": "PO-88",
    "item": {"items": [{"item": {"id": "42"}, "quantity": 3, "rate": 10.5}, {"item": {"id": "43"}, "quantity": 1}]},
}
OPS = {
    "upsert_order": {"method": "PUT", "path": "/record/v1/salesOrder/eid:{{ params.eid }}", "body": ORDER},
    "get_order": {"path": "/record/v1/salesOrder/eid:SO-A-1", "query": {"expandSubResources": True}},
    "bad_order": {"method": "POST", "path": "/record/v1/salesOrder", "body": {**ORDER, "entity": {"id": "999"}}},
}


def test_syncline_signatures_are_verified_by_oauthlib_and_eid_upserts_are_idempotent(netsuite: NetSuite) -> None:
    first, again, order = call(
        connector(netsuite, OPS),
        CallRequest("upsert_order", {"path": "/record/v1/salesOrder/eid:SO-A-1"}),
        CallRequest("upsert_order", {"path": "/record/v1/salesOrder/eid:SO-A-1"}),
        CallRequest("get_order", {}),
    )
    assert first is None and again is None  # 204 No Content, Location header
    assert netsuite.verified == 3
    assert len(netsuite.data["salesOrder"]) == 1  # the repeat updated the same record
    assert order["externalId"] == "SO-A-1" and order["entity"]["refName"] == "Acme Corp"
    assert [(line["item"]["id"], line["amount"]) for line in order["item"]["items"]] == [("42", 31.5), ("43", 99)]
    assert order["total"] == 130.5 and order["currency"]["refName"] == "USD"
    assert netsuite.seen("PUT")[0].headers["authorization"].startswith(f'OAuth realm="{ACCOUNT}"')

    with pytest.raises(ConnectorError) as caught:
        call(connector(netsuite, OPS), CallRequest("bad_order", {}))
    assert (caught.value.status, caught.value.code) == (400, "INVALID_VALUE")


@pytest.mark.parametrize(
    "auth", [{"token_secret": "f" * 64}, {"realm": "7654321"}, {"signature_method": "HMAC-SHA1"}], ids=str
)
def test_wrong_secret_realm_or_method_is_invalid_login(netsuite: NetSuite, auth: dict[str, Any]) -> None:
    with pytest.raises(ConnectorError) as caught:
        call(connector(netsuite, {"list": {"path": "/record/v1/customer"}}, **auth), CallRequest("list", {}))
    assert (caught.value.status, caught.value.code) == (401, "INVALID_LOGIN") and netsuite.verified == 0


def signed(sim: NetSuite, method: str, url: str, body: str | None = None, nonce: str | None = None) -> dict[str, str]:
    client = oauth1.Client(
        CONSUMER_KEY,
        client_secret=CONSUMER_SECRET,
        resource_owner_key=TOKEN_ID,
        resource_owner_secret=TOKEN_SECRET,
        signature_method="HMAC-SHA256",
        realm=ACCOUNT,
        nonce=nonce,
    )
    _, headers, _ = client.sign(url, method, body=None, headers={"Content-Type": "application/json"} if body else {})
    return dict(headers)


def test_a_replayed_request_is_refused(netsuite: NetSuite) -> None:
    url = f"{netsuite.url}/services/rest/record/v1/customer/107"
    headers = signed(netsuite, "GET", url, nonce="n" * 32)
    assert requests.get(url, headers=headers).json()["companyName"] == "Acme Corp"
    replay = requests.get(url, headers=headers)
    assert replay.status_code == 401 and replay.json()["o:errorDetails"][0]["o:errorCode"] == "INVALID_LOGIN"


def test_suiteql_pages_with_has_more_and_offset(netsuite: NetSuite) -> None:
    pages = []
    offset = 0
    while True:
        url = f"{netsuite.url}/services/rest/query/v1/suiteql?limit=2&offset={offset}"
        body = '{"q": "SELECT id, companyname, currency FROM customer WHERE id >= \'107\' ORDER BY id"}'
        headers = {**signed(netsuite, "POST", url, body), "Prefer": "transient", "Content-Type": "application/json"}
        page = requests.post(url, data=body, headers=headers).json()
        pages.append(page)
        if not page["hasMore"]:
            break
        offset += page["count"]
    assert [p["offset"] for p in pages] == [0, 2] and pages[0]["totalResults"] == 3
    assert [i["companyname"] for p in pages for i in p["items"]] == [
        "Acme Corp",
        "Kanto Trading KK",
        "Gulf Supplies WLL",
    ]
    url = f"{netsuite.url}/services/rest/query/v1/suiteql"
    no_prefer = requests.post(url, data='{"q": "SELECT id FROM customer"}', headers=signed(netsuite, "POST", url, "{}"))
    assert no_prefer.status_code == 400


def test_preset_suiteql_pages_by_offset_until_has_more_is_false(netsuite: NetSuite) -> None:
    """`preset: netsuite`'s suiteql operation (offset pagination with `more: hasMore`), with a page size of
    two, against the simulator: every row once, in two signed pages."""
    from tests.sims.preset_connection import preset_connector

    account = {
        "account_id": ACCOUNT,
        "base_url": netsuite.url,
        "consumer_key": CONSUMER_KEY,
        "consumer_secret": CONSUMER_SECRET,
        "token_id": TOKEN_ID,
        "token_secret": TOKEN_SECRET,
    }
    made = preset_connector("netsuite", account, "operations:\n  suiteql: {pagination: {limit: 2}}\n")
    query = "SELECT id, companyname FROM customer ORDER BY id"
    (rows,) = call(made, CallRequest("suiteql", {"body": {"q": query}}))
    assert [row["companyname"] for row in rows] == ["Acme Corp", "Kanto Trading KK", "Gulf Supplies WLL"]
    pages = netsuite.seen("POST", "/suiteql")
    assert [p.query for p in pages] == ["offset=0&limit=2", "offset=2&limit=2"] and netsuite.verified == 2


def test_preset_invoice_payment_and_credit_memo_upserts(netsuite: NetSuite) -> None:
    """An invoice, a partial customer payment applied to it and a credit memo, each upserted by external id
    through `preset: netsuite`, in three-decimal dinars; over-applying a payment is refused."""
    from tests.sims.preset_connection import preset_connector

    account = {
        "account_id": ACCOUNT,
        "base_url": netsuite.url,
        "consumer_key": CONSUMER_KEY,
        "consumer_secret": CONSUMER_SECRET,
        "token_id": TOKEN_ID,
        "token_secret": TOKEN_SECRET,
    }
    lines = {"items": [{"item": {"id": "42"}, "quantity": 4, "rate": "3.125"}]}
    invoice = {"entity": {"id": "109"}, "item": lines}
    made = preset_connector("netsuite", account)
    calls = [CallRequest("upsert_invoice", {"path": "/record/v1/invoice/eid:INV-9", "body": invoice})]
    (created,) = call(made, *calls)
    invoice_id = next(iter(netsuite.data["invoice"]))
    payment = {
        "customer": {"id": "109"},
        "payment": "10.000",
        "apply": {"items": [{"doc": {"id": invoice_id}, "amount": "10.000"}]},
    }
    memo = {"entity": {"id": "109"}, "item": {"items": [{"item": {"id": "42"}, "quantity": 1, "rate": "1.250"}]}}
    paid_answer, memo_answer = call(
        preset_connector("netsuite", account),
        CallRequest("upsert_customer_payment", {"path": "/record/v1/customerPayment/eid:PAY-9", "body": payment}),
        CallRequest("upsert_credit_memo", {"path": "/record/v1/creditMemo/eid:CM-9", "body": memo}),
    )
    payment_id = next(iter(netsuite.data["customerPayment"]))
    (paid,) = call(
        preset_connector("netsuite", account),
        CallRequest("get_customer_payment", {"path": f"/record/v1/customerPayment/{payment_id}"}),
    )
    assert created is None and paid_answer is None and memo_answer is None
    assert str(netsuite.data["invoice"][invoice_id]["amountRemaining"]) == "2.500"  # 12.500 − 10.000
    assert paid["customer"]["id"] == "109" and str(paid["unapplied"]) == "0.000" and paid["tranId"].startswith("PYMT")
    (credit,) = netsuite.data["creditMemo"].values()
    assert credit["tranId"].startswith("CM") and str(credit["total"]) == "1.250"

    too_much = {**payment, "apply": {"items": [{"doc": {"id": invoice_id}, "amount": "5.000"}]}}
    with pytest.raises(ConnectorError) as caught:
        call(
            preset_connector("netsuite", account),
            CallRequest("upsert_customer_payment", {"path": "/record/v1/customerPayment/eid:PAY-10", "body": too_much}),
        )
    assert (caught.value.status, caught.value.code) == (400, "USER_ERROR")
