"""Zuora's own Python SDK (`zuora-sdk`) drives the Zuora simulator: its `ZuoraClient` fetches the OAuth
token, its generated APIs create and read accounts and subscriptions, read the product catalog and follow
`nextPage`, and its models carry Zuora's HTTP 200 + `"success": false` answers.

`zuora-sdk` is pinned to 3.0.0 in the dev extra: every later release (3.2.0 … 3.21.0) requires
`urllib3<2.1.0` and `certifi~=2023.11.17`, which would downgrade the dev environment's urllib3 and CA bundle;
3.0.0 requires only `urllib3>=1.15`, `six`, `certifi` and `python-dateutil`.

Which parts are vendor code: everything on the client side — `ZuoraClient.initialize()` (the
`POST /oauth/token` client credentials call), request building, the bearer header, JSON (de)serialisation into
the SDK's models and `ApiException` for HTTP errors. 3.0.0 has no API for
`GET /v1/transactions/invoices/accounts/{key}` (nor does 3.21.0), so invoices are read through the SDK's own
`ApiClient.call_api` with the same auth and transport; its generated error models keep only `success`, so the
`reasons` of a `success: false` answer are read from the raw response (`_preload_content=False`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import zuora_sdk
from zuora_sdk.rest import ApiException
from zuora_sdk.zuora_client import ZuoraClient, ZuoraEnvironment

from runtime.demo.sims.zuora import CLIENT_ID, CLIENT_SECRET, Zuora

PLAN = "8ad09be48db5aba7018db6004b4f2b3d"
SEATS = "8ad09be48db5aba7018db6004c2a2b41"


@pytest.fixture
def sim() -> Iterator[Zuora]:
    with Zuora() as served:
        yield served


def client(sim: Zuora, secret: str = CLIENT_SECRET) -> ZuoraClient:
    made = ZuoraClient(CLIENT_ID, secret, ZuoraEnvironment.SBX)
    made.set_base_url(sim.url)
    return made


def signed_in(sim: Zuora) -> ZuoraClient:
    made = client(sim)
    made.initialize()
    return made


def raw(answer: Any) -> Any:
    """The JSON body of an SDK call made with `_preload_content=False`."""
    return json.loads(answer.data)


def test_sdk_signs_in_with_client_credentials(sim: Zuora) -> None:
    zuora = signed_in(sim)
    token = zuora.token["access_token"]
    assert token in sim.tokens
    assert zuora.api_client.default_headers["Authorization"] == f"Bearer {token}"
    [request] = sim.seen("POST", "^/oauth/token$")
    form = parse_qs(request.body.decode())
    assert form["grant_type"] == ["client_credentials"] and form["client_id"] == [CLIENT_ID]
    with pytest.raises(ApiException) as refused:
        client(sim, secret="wrong").initialize()
    assert refused.value.status == 401


def test_sdk_creates_and_reads_an_account(sim: Zuora) -> None:
    accounts = zuora_sdk.AccountsApi(signed_in(sim).api_client)
    request = zuora_sdk.CreateAccountRequest(
        name="Initech GmbH",
        currency="EUR",
        bill_cycle_day=1,
        account_number="A00000777",
        bill_to_contact={"firstName": "Bill", "lastName": "Lumbergh", "country": "Germany"},
    )
    created = accounts.create_account(request)
    assert created.success is True and created.account_number == "A00000777" and created.account_id
    assert sim.seen("POST", "^/v1/accounts$")[0].json()["billToContact"]["lastName"] == "Lumbergh"
    read = accounts.get_account("A00000777")
    assert read.success is True
    assert read.basic_info.name == "Initech GmbH" and read.billing_and_payment.currency == "EUR"
    assert read.bill_to_contact.last_name == "Lumbergh"

    # the same account number again: HTTP 200, success false, Zuora's 8-digit code (category 30)
    again = accounts.create_account(request, _preload_content=False)
    assert again.status == 200
    body = raw(again)
    assert body["success"] is False and body["reasons"][0]["code"] == 53100030
    assert accounts.create_account(request).success is False  # the SDK's model carries it too


def test_sdk_creates_subscriptions_and_follows_next_page(sim: Zuora) -> None:
    zuora = signed_in(sim)
    subscriptions = zuora_sdk.SubscriptionsApi(zuora.api_client)
    numbers = []
    for seats in (3, 5, 7):
        plan = zuora_sdk.CreateSubscriptionRatePlan(
            product_rate_plan_id=PLAN, charge_overrides=[{"productRatePlanChargeId": SEATS, "quantity": seats}]
        )
        answer = subscriptions.create_subscription(
            zuora_sdk.CreateSubscriptionRequest(
                account_key="A00000001",
                contract_effective_date="2026-12-01",
                term_type="TERMED",
                initial_term=12,
                renewal_term=12,
                subscribe_to_rate_plans=[plan],
            )
        )
        assert answer.success is True
        assert answer.contracted_mrr == 1200 * seats  # JPY: no decimals
        numbers.append(answer.subscription_number)

    seen, page, pages = [], 1, 0
    while True:
        listed = subscriptions.get_subscriptions_by_account("A00000001", page=page, page_size=2)
        assert listed.success is True
        seen += [s.subscription_number for s in listed.subscriptions]
        pages += 1
        if not listed.next_page:
            break
        link = urlsplit(listed.next_page)
        assert f"{link.scheme}://{link.netloc}" == sim.url and link.path == "/v1/subscriptions/accounts/A00000001"
        page = int(parse_qs(link.query)["page"][0])
    assert pages == 2 and seen == numbers

    # a rate plan that does not exist: success false with a category-40 code
    wrong = zuora_sdk.CreateSubscriptionRequest(
        account_key="A00000001",
        contract_effective_date="2026-12-01",
        term_type="TERMED",
        renewal_term=12,
        subscribe_to_rate_plans=[zuora_sdk.CreateSubscriptionRatePlan(product_rate_plan_id="8a0000000000")],
    )
    refused = raw(subscriptions.create_subscription(wrong, _preload_content=False))
    assert refused["success"] is False and str(refused["reasons"][0]["code"]).endswith("40")


def test_sdk_reads_the_catalog_and_invoices(sim: Zuora) -> None:
    zuora = signed_in(sim)
    # the SDK sends a dated Zuora-Version (later than 230.0): a product's rate plans are a URL to read them
    assert zuora.api_client.default_headers["Zuora-Version"] == "2024-05-20"
    products = zuora_sdk.ProductsApi(zuora.api_client).get_products(page_size=10)
    assert products.success is True and products.next_page is None
    [platform] = products.products
    assert (
        platform.sku == "SKU-00000001" and platform.product_rate_plans == f"/v1/rateplan/{platform.id}/productRatePlan"
    )
    plans = zuora_sdk.ProductRatePlansApi(zuora.api_client).get_rate_plans_by_product(platform.id, page_size=10)
    assert plans.success is True and [plan.id for plan in plans.product_rate_plans] == [PLAN]
    assert plans.product_rate_plans[0].name == "Platform Monthly JPY"

    # the older numbered versions (and none) keep the rate plans inline
    versions = {}
    for version in (None, "229.0", "230.0"):
        zuora.api_client.default_headers.pop("Zuora-Version", None)
        if version:
            zuora.api_client.set_default_header("Zuora-Version", version)
        answer = raw(zuora_sdk.ProductsApi(zuora.api_client).get_products(_preload_content=False))
        versions[version] = answer["products"][0]["productRatePlans"]
    assert versions[None] == versions["229.0"] and versions[None][0]["id"] == PLAN
    assert versions["230.0"] == platform.product_rate_plans

    invoices = zuora.api_client.call_api(
        "/v1/transactions/invoices/accounts/{account-key}",
        "GET",
        path_params={"account-key": "A00000001"},
        header_params={"Accept": "application/json"},
        response_type="object",
        _return_http_data_only=True,
    )
    assert invoices["success"] is True
    [invoice] = invoices["invoices"]
    assert invoice["invoiceNumber"] == "INV00000001" and invoice["amount"] == 13200 and invoice["currency"] == "JPY"

    missing = raw(zuora_sdk.AccountsApi(zuora.api_client).get_account("A99999999", _preload_content=False))
    assert missing["success"] is False and missing["reasons"][0]["code"] == 50000040


def test_sdk_raises_for_a_call_without_the_token(sim: Zuora) -> None:
    with pytest.raises(ApiException) as refused:
        zuora_sdk.AccountsApi(client(sim).api_client).get_account("A00000001")
    assert refused.value.status == 401
    body = json.loads(refused.value.body)
    assert body["success"] is False and body["reasons"][0]["code"] == 90000011
