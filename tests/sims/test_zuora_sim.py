"""The Zuora simulator answers as the v1 REST API does, driven by Syncline's http connector with the
`errors:` rules for Zuora: HTTP 200 with `success: false` becomes an error carrying Zuora's 8-digit code
(locking contention retriable), `nextPage` paging, Idempotency-Key on writes, JPY (0 decimals) and
KWD (3 decimals) amounts."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from connectors.http import HttpConfig, HttpConnector
from runtime.connector_api import CallRequest, ConnectorError
from runtime.demo.sims.zuora import CLIENT_ID, CLIENT_SECRET, Zuora
from tests.sims.preset_connection import call_all, http_connector

PLAN = "8ad09be48db5aba7018db6004b4f2b3d"
CHARGE = "8ad09be48db5aba7018db6004c2a2b41"


@pytest.fixture
def zuora() -> Iterator[Zuora]:
    with Zuora() as sim:
        yield sim


OPS: dict[str, Any] = {
    "create_account": {"method": "POST", "path": "/v1/accounts"},
    "create_subscription": {"method": "POST", "path": "/v1/subscriptions"},
    "list_subscriptions": {
        "path": "/v1/subscriptions/accounts/{{ params.account }}",
        "query": {"pageSize": 2},
        "pagination": {"type": "next_link", "next": "nextPage", "items": "subscriptions"},
    },
    "create_payment": {"method": "POST", "path": "/v1/payments"},
}


def connector(sim: Zuora) -> HttpConnector:
    config = HttpConfig.model_validate(
        {
            "base_url": sim.url,
            "auth": {
                "type": "oauth2_client_credentials",
                "token_url": "/oauth/token",
                "client_id": CLIENT_ID,
                "client_secret": CLIENT_SECRET,
                "client_auth": "body",
            },
            "errors": {
                "flag": "$.success",
                "code": "$.reasons[0].code",
                "message": "$.reasons[0].message",
                "retriable_codes": [r"\d{6}(50|60|70)"],
            },
        }
    )
    return http_connector("zuora", config, OPS)


calls = call_all


ACCOUNT = {
    "name": "Gulf Supplies WLL",
    "currency": "KWD",
    "billToContact": {"firstName": "Ali", "lastName": "Saleh", "country": "Kuwait"},
}


def test_account_subscriptions_paging_and_payment_in_0_and_3_decimal_currencies(zuora: Zuora) -> None:
    subscription = {
        "accountKey": "A00000001",
        "termType": "TERMED",
        "initialTerm": 12,
        "subscribeToRatePlans": [
            {"productRatePlanId": PLAN, "chargeOverrides": [{"productRatePlanChargeId": CHARGE, "quantity": 10}]}
        ],
    }
    account, *subs, listed = calls(
        connector(zuora),
        CallRequest("create_account", {"body": ACCOUNT}, idempotency_key="acct-1"),
        *[CallRequest("create_subscription", {"body": subscription}, idempotency_key=f"sub-{n}") for n in range(3)],
        CallRequest("list_subscriptions", {"path": "/v1/subscriptions/accounts/A00000001"}),
    )
    assert account["success"] is True and account["accountNumber"] == "A00000002"
    assert [s["contractedMrr"] for s in subs] == [12000, 12000, 12000]  # JPY: no decimals
    assert [s["subscriptionNumber"] for s in listed] == ["A-S00000001", "A-S00000002", "A-S00000003"]
    assert len(zuora.seen("GET", "/v1/subscriptions/")) == 2  # nextPage followed once

    kwd = {"accountId": account["accountId"], "amount": "12.345", "currency": "KWD", "type": "External"}
    payment, again = calls(
        connector(zuora), *[CallRequest("create_payment", {"body": kwd}, idempotency_key="pay-1")] * 2
    )
    assert payment == again and str(payment["amount"]) == "12.345" and len(zuora.data["payments"]) == 1


def test_success_false_is_an_error_with_zuoras_code_and_lock_contention_is_retriable(zuora: Zuora) -> None:
    with pytest.raises(ConnectorError) as caught:
        calls(connector(zuora), CallRequest("create_account", {"body": {**ACCOUNT, "currency": None}}))
    error = caught.value
    assert (error.status, error.code, error.retriable) == (200, "53100320", False)
    assert "'currency' may not be null" in str(error)
    jpy = {"accountId": "A00000001", "amount": "10.5", "currency": "JPY"}
    with pytest.raises(ConnectorError) as caught:
        calls(connector(zuora), CallRequest("create_payment", {"body": jpy}))
    assert caught.value.code == "50000020"  # 10.5 yen

    zuora.inject(
        200,
        path="/v1/payments",
        body={"success": False, "processId": "X", "reasons": [{"code": 50000050, "message": "Lock contention"}]},
    )
    with pytest.raises(ConnectorError) as caught:
        calls(connector(zuora), CallRequest("create_payment", {"body": {**jpy, "amount": "10"}}))
    assert caught.value.retriable and caught.value.code == "50000050"


def test_preset_credit_memo_from_an_invoice_in_yen(zuora: Zuora) -> None:
    """`preset: zuora`: a credit memo from an invoice, posted and applied, lowers its balance; a fraction
    of a yen is Zuora's invalid-value error (HTTP 200, success false); the memo is listed for the account."""
    from tests.sims.preset_connection import preset_connector

    account = {"base_url": zuora.url, "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}
    item = "8ad0823f8455bb4a01845b3a0c5e7c34"
    body = {
        "items": [{"invoiceItemId": item, "amount": 1200}],
        "reasonCode": "Service credit",
        "autoPost": True,
        "autoApplyToInvoiceUponPosting": True,
    }
    memo, listed = calls(
        preset_connector("zuora", account),
        CallRequest(
            "create_credit_memo_from_invoice",
            {"path": "/v1/invoices/INV00000001/creditmemos", "body": body},
            idempotency_key="cm-1",
        ),
        CallRequest("list_credit_memos", {"query": {"accountId": "8ad0823f8455bb4a01845b3a0b4a7c10", "pageSize": 40}}),
    )
    assert memo["status"] == "Posted" and memo["appliedAmount"] == 1200 and memo["number"] == "CM00000001"
    assert [m["number"] for m in listed] == ["CM00000001"]
    assert zuora.data["invoices"]["8ad0823f8455bb4a01845b3a0c5e7c33"]["balance"] == 12000
    fraction = {**body, "items": [{"invoiceItemId": item, "amount": "0.5"}]}
    with pytest.raises(ConnectorError) as caught:
        calls(
            preset_connector("zuora", account),
            CallRequest(
                "create_credit_memo_from_invoice", {"path": "/v1/invoices/INV00000001/creditmemos", "body": fraction}
            ),
        )
    assert (caught.value.status, caught.value.code, caught.value.retriable) == (200, "53000020", False)
