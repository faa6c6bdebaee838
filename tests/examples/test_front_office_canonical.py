"""The front-office presets' canonical mappings (examples/front-office/mappings): their inline tests pass
on realistic vendor payloads, every vendor → canonical mapping is checked against its shipped canonical
schema (a document that breaks it is refused, naming the field), and documents go vendor → canonical →
vendor: a Shopify order through canonical:order into the back-office's SAP and NetSuite sales orders with
its yen and dinar amounts exact, a Stripe customer back into Stripe's form."""

from __future__ import annotations

import copy
import json
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from runtime import canonical
from runtime.commands.test import mapping_for, mapping_test_failures
from runtime.compiler import CheckResult, check_project
from runtime.mappings import CompiledMapping, MappingError

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
FRONT = EXAMPLES / "front-office"
BACK = EXAMPLES / "back-office"

# per preset, the mappings to and from the canonical model the example ships
COVERAGE = {
    "shopify": {"shopify_order_to_order": "order"},
    "stripe": {"stripe_customer_to_customer": "customer", "stripe_payment_intent_to_payment": "payment",
               "stripe_charge_to_payment": "payment", "stripe_customer_from_customer": None},
    "chargebee": {"chargebee_subscription_to_subscription": "subscription",
                  "chargebee_customer_to_customer": "customer", "chargebee_subscription_from_subscription": None},
    "salesforce": {"salesforce_account_to_customer": "customer"},
    "salesforce_cpq": {"cpq_quote_to_quote": "quote"},
}  # fmt: skip


@cache
def checked(project: Path) -> CheckResult:
    result = check_project(project)
    assert not result.errors, [d.text() for d in result.errors]
    return result


def mapping(project: Path, name: str) -> CompiledMapping:
    result = checked(project)
    assert result.context is not None
    return mapping_for(result.context, result.context.named("Mapping")[name])


def vendor_payload(name: str, index: int = 0) -> Any:
    """The vendor payload of one of a mapping's inline tests (a fresh copy)."""
    result = checked(FRONT)
    assert result.context is not None
    return copy.deepcopy(result.context.named("Mapping")[name].model.tests[index].input)


def test_every_front_office_mapping_test_passes_and_each_preset_is_covered() -> None:
    result = checked(FRONT)
    failures, count = mapping_test_failures(result)
    assert failures == [] and count >= 17, [d.text() for d in failures]
    assert result.context is not None
    docs = result.context.named("Mapping")
    for preset, names in COVERAGE.items():
        for name, schema in names.items():
            model = docs[name].model
            assert model.tests, name
            if schema is None:
                assert model.input_schema and model.input_schema.startswith("canonical:"), name
            else:
                assert model.output_schema == f"canonical:{schema}", (preset, name)


@pytest.mark.parametrize(
    ("name", "schema"),
    [(name, schema) for names in COVERAGE.values() for name, schema in names.items() if schema],
)
def test_each_output_is_valid_against_the_shipped_schema(name: str, schema: str) -> None:
    """Independently of the mapping's own check: jsonschema validates every test's output."""
    validator = jsonschema.Draft202012Validator(json.loads((canonical.FOLDER / f"{schema}.json").read_text()))
    result = checked(FRONT)
    assert result.context is not None
    doc = result.context.named("Mapping")[name]
    compiled = mapping(FRONT, name)
    for test in doc.model.tests:
        validator.validate(compiled(copy.deepcopy(test.input)))


def test_a_payload_that_would_break_the_canonical_schema_is_refused_naming_the_field() -> None:
    order = vendor_payload("shopify_order_to_order")
    order["shipping_address"]["country_code"] = "jp"  # not ISO 3166-1 alpha-2 upper case
    with pytest.raises(MappingError, match=r"output does not match its schema at ship_to/country"):
        mapping(FRONT, "shopify_order_to_order")(order)
    subscription = vendor_payload("chargebee_subscription_to_subscription")
    subscription["subscription"]["subscription_items"] = []
    with pytest.raises(MappingError, match=r"at items: \[\] should be non-empty"):
        mapping(FRONT, "chargebee_subscription_to_subscription")(subscription)


def test_minor_units_become_the_currencys_decimals_exactly() -> None:
    yen = mapping(FRONT, "stripe_payment_intent_to_payment")(vendor_payload("stripe_payment_intent_to_payment", 0))
    dinar = mapping(FRONT, "stripe_payment_intent_to_payment")(vendor_payload("stripe_payment_intent_to_payment", 1))
    assert str(yen["amount"]) == "15290" and str(dinar["amount"]) == "43.870"
    charge = mapping(FRONT, "stripe_charge_to_payment")(vendor_payload("stripe_charge_to_payment", 0))
    assert (str(charge["amount"]), str(charge["base"]["total"])) == ("43.870", "142.76")
    intent = vendor_payload("stripe_payment_intent_to_payment", 0)
    intent.update(currency="usd", amount_received=1999)
    assert str(mapping(FRONT, "stripe_payment_intent_to_payment")(intent)["amount"]) == "19.99"


def test_a_shopify_order_goes_through_the_canonical_order_into_sap_and_netsuite() -> None:
    """Vendor → canonical → vendor: the flow's lookup step would add the customer's and the items' ids in
    the ERP to the canonical order (external_ids), as done here."""
    order = mapping(FRONT, "shopify_order_to_order")(vendor_payload("shopify_order_to_order", 0))
    assert order["totals"] == {"subtotal": 14400, "discount": 500, "tax": 1390, "shipping": 0, "total": 15290}
    order["customer"]["external_ids"].update(sap="17100002", netsuite="107")
    for line, item in zip(order["lines"], ("42", "43"), strict=True):
        line["external_ids"]["netsuite"] = item

    sap = mapping(BACK, "sap_sales_order_from_order")(order)
    assert sap["SoldToParty"] == "17100002" and sap["PurchaseOrderByCustomer"] == "WEB-1001"
    assert sap["TransactionCurrency"] == "JPY"
    assert [(i["Material"], i["RequestedQuantity"], i["NetAmount"], i["TaxAmount"]) for i in sap["to_Item"]] == [
        ("WIDGET-42", "3", "4000", "400"), ("GADGET-43", "1", "9900", "990")]  # fmt: skip

    netsuite = mapping(BACK, "netsuite_sales_order_from_order")(order)
    assert netsuite["externalId"] == "SO-WEB-1001" and netsuite["entity"] == {"id": "107"}
    assert netsuite["currency"] == {"id": "5"} and netsuite["memo"] == "Order #1001"
    assert [(i["item"]["id"], i["rate"], i["amount"], i["tax1Amt"]) for i in netsuite["item"]["items"]] == [
        ("42", 1500, 4000, 400), ("43", 9900, 9900, 990)]  # fmt: skip

    dinar = mapping(FRONT, "shopify_order_to_order")(vendor_payload("shopify_order_to_order", 1))
    dinar["customer"]["external_ids"]["sap"] = "17100001"
    sap = mapping(BACK, "sap_sales_order_from_order")(dinar)
    assert sap["TransactionCurrency"] == "BHD"
    assert [(i["NetAmount"], i["TaxAmount"]) for i in sap["to_Item"]] == [("11.250", "1.125"), ("27.675", "2.768")]
    assert dinar["base"] == {"currency": "USD", "exchange_rate": Decimal("2.659423"), "subtotal": Decimal("115.02"),
                             "tax": Decimal("10.35"), "total": Decimal("119.19")}  # fmt: skip


def test_a_stripe_customer_round_trips_through_the_canonical_customer() -> None:
    stripe_customer = vendor_payload("stripe_customer_to_customer", 0)
    customer = mapping(FRONT, "stripe_customer_to_customer")(stripe_customer)
    form = mapping(FRONT, "stripe_customer_from_customer")(customer)
    assert form["metadata"] == {"syncline_id": "CUST-YAMADA", "currency": "JPY"}
    assert {k: v for k, v in form["address"].items() if v is not None} == {
        k: v for k, v in stripe_customer["address"].items() if v is not None}  # fmt: skip
    assert form["shipping"]["address"] == stripe_customer["shipping"]["address"]
    assert (form["name"], form["email"], form["phone"]) == (
        stripe_customer["name"], stripe_customer["email"], stripe_customer["phone"])  # fmt: skip


def test_a_chargebee_subscription_goes_to_zuora_and_back_to_chargebee() -> None:
    subscription = mapping(FRONT, "chargebee_subscription_to_subscription")(
        vendor_payload("chargebee_subscription_to_subscription", 1)
    )
    form = mapping(FRONT, "chargebee_subscription_from_subscription")(subscription)
    assert form["subscription_items"] == [{"item_price_id": "seats-KWD-quarterly", "quantity": 5, "unit_price": 6250}]
    subscription["customer"]["external_ids"]["zuora"] = "A00000002"
    zuora = mapping(BACK, "zuora_subscription_from_subscription")(subscription)
    assert zuora["accountKey"] == "A00000002" and zuora["contractEffectiveDate"] == "2028-02-29"
    assert [p["productRatePlanId"] for p in zuora["subscribeToRatePlans"]] == ["seats-KWD-quarterly"]
