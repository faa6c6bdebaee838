"""The Avalara simulator answers Avalara's own Python SDK (`avalara.AvataxClient`, pointed at the simulator
as its environment URL): ping, CreateTransaction with per-jurisdiction details rounded to the currency
(USD 2, JPY 0, KWD 3 decimals), a duplicate document code refused, CreateOrAdjust as the idempotent
write, commit and lookup by code, and AvaTax's error body for bad credentials."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from avalara import AvataxClient

from runtime.demo.sims.avalara import ACCOUNT_ID, LICENSE_KEY, Avalara


@pytest.fixture
def avatax() -> Iterator[tuple[Avalara, AvataxClient]]:
    with Avalara() as sim:
        client = AvataxClient("syncline-tests", "1.0", "localhost", sim.url)
        client.add_credentials(ACCOUNT_ID, LICENSE_KEY)
        yield sim, client


def invoice(code: str, currency: str = "USD", region: str = "WA", country: str = "US", **extra: Any) -> dict[str, Any]:
    return {
        "type": "SalesInvoice",
        "companyCode": "DEFAULT",
        "date": "2026-12-04",
        "customerCode": "CUST-107",
        "code": code,
        "currencyCode": currency,
        "purchaseOrderNo": "PO-88",
        "discount": "9.00",
        "addresses": {
            "shipFrom": {
                "line1": "255 S King St",
                "city": "Seattle",
                "region": "WA",
                "country": "US",
                "postalCode": "98104",
            },
            "shipTo": {"line1": "1 Main St", "city": "X", "region": region, "country": country, "postalCode": "1"},
        },
        "lines": [
            {"number": "1", "quantity": 3, "amount": "31.50", "itemCode": "WIDGET-42", "taxCode": "P0000000"},
            {"number": "2", "quantity": 1, "amount": "99.00", "discounted": True, "itemCode": "GADGET-43"},
            {"number": "3", "quantity": 1, "amount": "5.00", "itemCode": "GIFTWRAP", "taxCode": "NT"},
        ],
        **extra,
    }


def test_the_avalara_sdk_creates_commits_and_reads_a_transaction(avatax: tuple[Avalara, AvataxClient]) -> None:
    sim, client = avatax
    ping = client.ping().json()
    assert ping["authenticated"] is True and ping["authenticationType"] == "AccountIdLicenseKey"
    created = client.create_transaction(invoice("INV-1001"))
    assert created.status_code == 201
    doc = created.json()
    # WA: state 6.5% + Seattle 3.85% on 31.50 and 90.00 (gift wrap not taxable)
    assert Decimal(str(doc["totalTaxable"])) == Decimal("121.50") and Decimal(str(doc["totalExempt"])) == 5
    assert Decimal(str(doc["totalTax"])) == Decimal("2.05") + Decimal("1.21") + Decimal("5.85") + Decimal("3.47")
    assert [d["jurisName"] for d in doc["lines"][0]["details"]] == ["WASHINGTON", "KING", "SEATTLE"]
    assert doc["status"] == "Saved"

    duplicate = client.create_transaction(invoice("INV-1001"))
    assert duplicate.status_code == 400 and duplicate.json()["error"]["code"] == "DuplicateDocumentCode"
    adjusted = client.create_or_adjust_transaction({"createTransactionModel": invoice("INV-1001", commit=True)})
    assert adjusted.status_code == 201 and adjusted.json()["version"] == 2 and adjusted.json()["id"] == doc["id"]
    again = client.create_or_adjust_transaction({"createTransactionModel": invoice("INV-1001", commit=True)})
    assert again.json()["id"] == doc["id"] and len(sim.data["transactions"]) == 1
    assert client.get_transaction_by_code("DEFAULT", "INV-1001").json()["status"] == "Committed"
    assert client.list_transactions_by_company("DEFAULT").json()["@recordsetCount"] == 1


def test_currency_decimals_and_errors(avatax: tuple[Avalara, AvataxClient]) -> None:
    sim, client = avatax
    yen = client.create_transaction(invoice("JP-1", "JPY", region="13", country="JP")).json(parse_float=Decimal)
    assert [str(line["tax"]) for line in yen["lines"]] == ["3", "9", "0"]  # 10% rounded to whole yen
    dinar = client.create_transaction(invoice("KW-1", "KWD", region=None, country="KW")).json(parse_float=Decimal)
    assert [str(line["tax"]) for line in dinar["lines"]] == ["3.150", "9.000", "0.000"]
    no_lines = client.create_transaction({**invoice("X-1"), "lines": []})
    assert (no_lines.status_code, no_lines.json()["error"]["code"]) == (400, "MissingLine")
    stranger = AvataxClient("t", "1", "m", sim.url).add_credentials(ACCOUNT_ID, "wrong-key")
    denied = stranger.create_transaction(invoice("X-2"))
    assert denied.status_code == 401 and denied.json()["error"]["code"] == "AuthenticationException"
    sim.inject_rate_limit(path="/transactions/create")
    limited = client.create_transaction(invoice("X-3"))
    assert limited.status_code == 429 and limited.headers["retry-after"] == "1"
