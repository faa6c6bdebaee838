"""The Salesforce CPQ simulator speaks CPQ's API: `simple-salesforce`, pointed at it, reads the SBQQ quote
objects as sObjects and drives the ServiceRouter with `apexecute` (QuoteReader, ProductLoader,
QuoteProductAdder, QuoteCalculator, QuoteSaver — models as JSON text inside JSON), orders a quote and sees
Apex errors as its own exceptions; Syncline's `preset: salesforce_cpq` (operations rendered from the
preset's templates) signs in with a JWT the simulator verifies, reads, prices, saves and orders."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
import requests
from requests.adapters import HTTPAdapter
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceGeneralError, SalesforceMalformedRequest

from connectors.http import HttpConnector
from runtime.connector_api import CallRequest, CallResult, ConnectorError
from runtime.demo.sims.salesforce import CONSUMER_KEY, USERNAME
from runtime.demo.sims.salesforce_cpq import SalesforceCpqSim
from runtime.expr import ExpressionEngine, dumps, loads
from tests.sims.preset_connection import preset_connector

ROUTER = "SBQQ/ServiceRouter"


class _PlainHttp(HTTPAdapter):
    """simple-salesforce always builds https:// URLs; the simulator listens on plain http on loopback."""

    def send(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        request.url = request.url.replace("https://", "http://", 1)
        return super().send(request, *args, **kwargs)


@pytest.fixture(scope="module")
def sim() -> Iterator[SalesforceCpqSim]:
    with SalesforceCpqSim() as running:
        yield running


def _sdk(sim: SalesforceCpqSim) -> Salesforce:
    sim.tokens.add("00D5g000000SIM!cpq")
    session = requests.Session()
    session.mount("https://", _PlainHttp())
    return Salesforce(instance_url=sim.url, session_id="00D5g000000SIM!cpq", session=session, version="59.0")


def _seeded_quote(sim: SalesforceCpqSim) -> str:
    (quote,) = sim.data["SBQQ__Quote__c"].values()
    return str(quote["Id"])


def test_simple_salesforce_reads_prices_saves_and_orders_a_quote(sim: SalesforceCpqSim) -> None:
    sim.reset()
    sf = _sdk(sim)
    quote_id = _seeded_quote(sim)
    opportunity = sim._id("Opportunity", 1)
    found = sf.query(f"SELECT Id, SBQQ__NetAmount__c FROM SBQQ__Quote__c WHERE SBQQ__Opportunity2__c = '{opportunity}'")
    assert found["totalSize"] == 1 and found["records"][0]["SBQQ__NetAmount__c"] == 4770.00
    assert sf.SBQQ__Quote__c.get(quote_id)["CurrencyIsoCode"] == "EUR"

    answer = sf.apexecute(f"{ROUTER}?reader=SBQQ.QuoteAPI.QuoteReader&uid={quote_id}")
    assert isinstance(answer, str)  # an Apex String: the model's JSON text
    model = json.loads(answer)
    assert model["record"]["Id"] == quote_id and model["netTotal"] == 4770.00
    lines = [
        (i["key"], i["record"]["SBQQ__ProductCode__c"], i["record"]["SBQQ__NetPrice__c"]) for i in model["lineItems"]
    ]
    assert lines == [(1, "SL-PRO", 441.00), (2, "SL-CONN", 120.00)]

    product_id = model["lineItems"][1]["record"]["SBQQ__Product__c"]
    context = {"pricebookId": model["record"]["SBQQ__PriceBook__c"], "currencyCode": "EUR"}
    product = json.loads(sf.apexecute(f"{ROUTER}?loader=SBQQ.ProductAPI.ProductLoader&uid={product_id}",
                                      method="PATCH", data={"context": json.dumps(context)}))  # fmt: skip
    assert product["record"]["PricebookEntries"]["records"][0]["UnitPrice"] == 120.00
    adding = {"quote": model, "products": [product], "groupKey": 0}
    added = json.loads(sf.apexecute(f"{ROUTER}?loader=SBQQ.QuoteAPI.QuoteProductAdder", method="PATCH",
                                    data={"context": json.dumps(adding)}))  # fmt: skip
    assert len(added["lineItems"]) == 3 and added["nextKey"] == 4 and added["netTotal"] == 4890.00
    added["lineItems"][0]["record"]["SBQQ__Discount__c"] = 12.5  # 490 less 12.5 % = 428.75
    priced = json.loads(sf.apexecute(f"{ROUTER}?loader=SBQQ.QuoteAPI.QuoteCalculator", method="PATCH",
                                     data={"context": json.dumps({"quote": added})}))  # fmt: skip
    assert priced["lineItems"][0]["record"]["SBQQ__NetPrice__c"] == 428.75 and priced["netTotal"] == 4767.50
    assert sim.data["SBQQ__Quote__c"][quote_id]["SBQQ__NetAmount__c"] == Decimal("4770.00")  # calculating saves nothing

    saving = {"saver": "SBQQ.QuoteAPI.QuoteSaver", "model": json.dumps(priced)}
    saved = json.loads(sf.apexecute(ROUTER, method="POST", data=saving))
    assert saved["netTotal"] == 4767.50 and all(i["record"]["Id"] for i in saved["lineItems"])
    assert len(sim._lines_of(quote_id)) == 3
    assert sim.data["SBQQ__Quote__c"][quote_id]["SBQQ__NetAmount__c"] == Decimal("4767.50")

    assert sf.SBQQ__Quote__c.update(quote_id, {"SBQQ__Ordered__c": True}) == 204
    (order,) = sf.query(f"SELECT Id, Status, TotalAmount FROM Order WHERE SBQQ__Quote__c = '{quote_id}'")["records"]
    assert order["Status"] == "Draft" and order["TotalAmount"] == 4767.50
    assert len([i for i in sim.data["OrderItem"].values() if i["OrderId"] == order["Id"]]) == 3

    with pytest.raises(SalesforceGeneralError) as apex:
        sf.apexecute(f"{ROUTER}?reader=SBQQ.QuoteAPI.QuoteReader&uid=a0x000000000000AAA")
    assert apex.value.status == 500 and apex.value.content[0]["errorCode"] == "APEX_ERROR"
    with pytest.raises(SalesforceMalformedRequest):
        sf.apexecute(ROUTER, method="POST", data={"saver": "SBQQ.QuoteAPI.QuoteSaver", "model": "{not json"})


def _account(sim: SalesforceCpqSim) -> dict[str, Any]:
    return {"my_domain": "acme", "username": USERNAME, "consumer_key": CONSUMER_KEY,
            "private_key": sim.private_key, "login_url": sim.url, "base_url": sim.url}  # fmt: skip


async def _call(connector: HttpConnector, name: str, params: dict[str, Any]) -> CallResult:
    """Call an operation with its templated fields rendered from the preset, as a flow's call step does."""
    operation = connector._operations[name].model_dump(by_alias=True, exclude_unset=True)
    fields = {k: operation[k] for k in ("path", "query", "body", "form") if k in operation}
    spec = ExpressionEngine().render(fields, {"params": params})
    return await connector.call(CallRequest(name, spec, params))


def test_the_preset_reads_prices_saves_and_orders_through_the_cpq_api(sim: SalesforceCpqSim) -> None:
    sim.reset()
    quote_id = _seeded_quote(sim)

    async def scenario() -> None:
        connector = preset_connector("salesforce_cpq", _account(sim))
        try:
            read = await _call(connector, "read_quote", {"id": quote_id})
            model = loads(read.output)
            assert model["netTotal"] == Decimal("4770.00")
            model["lineItems"][1]["record"]["SBQQ__Quantity__c"] = Decimal(5)
            priced = loads((await _call(connector, "calculate_quote", {"model": model})).output)
            assert priced["netTotal"] == Decimal("5010.00")  # 10 × 441.00 + 5 × 120.00
            for currency, list_price, net_price in (("JPY", "4900", "4288"), ("KWD", "10.125", "8.859")):
                model["record"]["CurrencyIsoCode"] = currency  # 12.5 % off, rounded to the currency's decimals
                model["lineItems"][0]["record"].update(SBQQ__ListPrice__c=Decimal(list_price), SBQQ__Discount__c=12.5)
                other = loads((await _call(connector, "calculate_quote", {"model": model})).output)
                assert str(other["lineItems"][0]["record"]["SBQQ__NetPrice__c"]) == net_price
            saved = loads((await _call(connector, "save_quote", {"model": dumps(priced)})).output)
            assert saved["record"]["SBQQ__NetAmount__c"] == Decimal("5010.00")
            lines = await _call(connector, "list_quote_lines", {"quote_id": quote_id})
            assert sorted(line["SBQQ__Quantity__c"] for line in lines.output) == [5, 10]
            await _call(connector, "order_quote", {"id": quote_id})
            await _call(connector, "order_quote", {"id": quote_id})  # ordered once
            (order,) = (await _call(connector, "list_quote_orders", {"quote_id": quote_id})).output
            assert order["TotalAmount"] == Decimal("5010.00")
            with pytest.raises(ConnectorError) as apex:
                await _call(connector, "read_quote", {"id": "a0x000000000000AAA"})
            assert apex.value.status == 500 and apex.value.code == "APEX_ERROR"
            with pytest.raises(ConnectorError) as malformed:  # an id with a quote cannot widen the query
                await _call(connector, "list_quote_lines", {"quote_id": "x' OR Name != '"})
            assert malformed.value.code == "MALFORMED_QUERY"
        finally:
            await connector.aclose()

    asyncio.run(scenario())
    assert len(sim.seen("POST", "/services/oauth2/token")) == 1  # one JWT sign-in, verified with PyJWT
    save = sim.seen("POST", "/services/apexrest/SBQQ/ServiceRouter")[0].json()
    assert save["saver"] == "SBQQ.QuoteAPI.QuoteSaver" and isinstance(save["model"], str)
    calculate = sim.seen("PATCH", "/services/apexrest/SBQQ/ServiceRouter")[0]
    assert "loader=SBQQ.QuoteAPI.QuoteCalculator" in calculate.query and isinstance(calculate.json()["context"], str)
    assert len(sim.data["Order"]) == 1
