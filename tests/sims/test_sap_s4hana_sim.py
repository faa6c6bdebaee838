"""The SAP S/4HANA simulator speaks OData v2 as SAP's clients expect: `pyodata` (SAP's own Python OData
client) reads its `$metadata`, lists and pages sales orders (`d.__next`), counts, filters, expands,
creates one through the CSRF handshake and updates it with its ETag; the simulator refuses writes
without the session's token, stale ETags, and wrong passwords."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pyodata
import pytest
import requests

from runtime.demo.sims.sap_s4hana import CSRF_FAILED, PASSWORD, ROOT, USER, SapS4Hana

SERVICE = "API_SALES_ORDER_SRV"


@pytest.fixture
def sap() -> Iterator[SapS4Hana]:
    with SapS4Hana(page_size=2) as sim:
        yield sim


def session(sim: SapS4Hana, *, fetch_token: bool = True) -> requests.Session:
    http = requests.Session()
    http.auth = (USER, PASSWORD)
    if fetch_token:
        answer = http.get(f"{sim.url}{ROOT}/{SERVICE}/", headers={"x-csrf-token": "Fetch"})
        assert answer.status_code == 200 and "SAP_SESSIONID_S4H_100" in http.cookies
        http.headers["x-csrf-token"] = answer.headers["x-csrf-token"]
    return http


def test_pyodata_reads_metadata_queries_pages_and_creates_through_csrf(sap: SapS4Hana) -> None:
    http = session(sap)
    client = pyodata.Client(f"{sap.url}{ROOT}/{SERVICE}", http)
    order_type = client.schema.entity_type("A_SalesOrderType")
    assert [k.name for k in order_type.key_proprties] == ["SalesOrder"]
    assert order_type.proprty("TotalNetAmount").typ.name == "Edm.Decimal"

    for n in range(3):  # three more orders → four: two pages of two
        created = (
            client.entity_sets.A_SalesOrder.create_entity()
            .set(
                SalesOrderType="OR",
                SalesOrganization="1710",
                DistributionChannel="10",
                OrganizationDivision="00",
                SoldToParty="17100002",
                PurchaseOrderByCustomer=f"PO-{n}",
                TransactionCurrency="JPY",
                to_Item=[{"Material": "TG11", "RequestedQuantity": "3", "NetAmount": "1500"}],
            )
            .execute()
        )
        assert created.SalesOrder == str(n + 2) and Decimal(created.TotalNetAmount) == 1500

    first = client.entity_sets.A_SalesOrder.get_entities().count(inline=True).execute()
    assert len(first) == 2 and first.total_count == 4 and first.next_url is not None
    rest = client.entity_sets.A_SalesOrder.get_entities().next_url(first.next_url).execute()
    assert [o.SalesOrder for o in [*first, *rest]] == ["1", "2", "3", "4"] and rest.next_url is None

    acme = client.entity_sets.A_SalesOrder.get_entities().filter("SoldToParty eq '17100002'").execute()
    assert [o.PurchaseOrderByCustomer for o in acme] == ["PO-0", "PO-1"]
    one = client.entity_sets.A_SalesOrder.get_entity("2").expand("to_Item").execute()
    assert [i.Material for i in one.to_Item] == ["TG11"] and one.TransactionCurrency == "JPY"

    etag = one.etag
    assert etag.startswith("W/\"datetimeoffset'")
    update = client.entity_sets.A_SalesOrder.update_entity("2").set(PurchaseOrderByCustomer="PO-0-changed")
    update.add_headers({"If-Match": etag})  # the ETag pyodata read from __metadata
    update.execute()
    assert sap.data["A_SalesOrder"]["2"]["PurchaseOrderByCustomer"] == "PO-0-changed"
    assert client.entity_sets.A_SalesOrder.get_entity("2").execute().etag != etag


def test_writes_need_the_sessions_csrf_token_and_a_current_etag(sap: SapS4Hana) -> None:
    url = f"{sap.url}{ROOT}/{SERVICE}/A_SalesOrder"
    order = {
        "SalesOrderType": "OR",
        "SalesOrganization": "1710",
        "DistributionChannel": "10",
        "OrganizationDivision": "00",
        "SoldToParty": "17100001",
        "to_Item": [{"Material": "TG11"}],
    }
    no_token = session(sap, fetch_token=False).post(url, json=order)
    assert (no_token.status_code, no_token.headers["x-csrf-token"], no_token.text) == (403, "Required", CSRF_FAILED)

    http = session(sap)
    assert http.post(url, json=order).status_code == 201
    sap.expire_sessions()
    assert http.post(url, json=order).status_code == 403

    http = session(sap)
    read = http.get(f"{url}('1')")
    etag = read.headers["etag"]
    assert read.json()["d"]["__metadata"]["etag"] == etag
    assert http.patch(f"{url}('1')", json={"PurchaseOrderByCustomer": "x"}).status_code == 428
    assert (
        http.patch(f"{url}('1')", json={"PurchaseOrderByCustomer": "x"}, headers={"If-Match": etag}).status_code == 204
    )
    stale = http.patch(f"{url}('1')", json={"PurchaseOrderByCustomer": "y"}, headers={"If-Match": etag})
    assert stale.status_code == 412 and stale.json()["error"]["message"]["lang"] == "en"

    unknown = http.post(url, json={**order, "SoldToParty": "999"})
    assert (unknown.status_code, unknown.json()["error"]["code"]) == (400, "V1/390")
    assert requests.get(url, auth=(USER, "wrong")).status_code == 401


def test_repeatability_request_id_gets_the_first_answer(sap: SapS4Hana) -> None:
    http = session(sap)
    url = f"{sap.url}{ROOT}/{SERVICE}/A_SalesOrder"
    order = {
        "SalesOrderType": "OR",
        "SalesOrganization": "1710",
        "DistributionChannel": "10",
        "OrganizationDivision": "00",
        "SoldToParty": "17100001",
        "to_Item": [{"Material": "TG11"}],
    }
    answers = [http.post(url, json=order, headers={"Repeatability-Request-ID": "run-1"}) for _ in range(2)]
    assert [a.json()["d"]["SalesOrder"] for a in answers] == ["2", "2"]
    assert sorted(sap.data["A_SalesOrder"]) == ["1", "2"]


def test_the_preset_fetches_a_new_csrf_token_once_when_the_session_expired(sap: SapS4Hana) -> None:
    """`preset: sap_s4hana`: the first write fetches the token; after the server forgot the session the
    next write is refused with 403 "CSRF token validation failed", a new token is fetched and the write
    resent — once."""
    import asyncio

    from runtime.connector_api import CallRequest
    from tests.sims.preset_connection import preset_connector

    connector = preset_connector("sap_s4hana", {"host": sap.url, "user": USER, "password": PASSWORD})
    order = {
        "SalesOrderType": "OR",
        "SalesOrganization": "1710",
        "DistributionChannel": "10",
        "OrganizationDivision": "00",
        "SoldToParty": "17100001",
        "to_Item": [{"Material": "TG11"}],
    }

    async def scenario() -> list[str]:
        try:
            first = await connector.call(CallRequest("create_sales_order", {"body": order}, idempotency_key="k1"))
            sap.expire_sessions()
            second = await connector.call(CallRequest("create_sales_order", {"body": order}, idempotency_key="k2"))
            return [first.output["d"]["SalesOrder"], second.output["d"]["SalesOrder"]]
        finally:
            await connector.aclose()

    assert asyncio.run(scenario()) == ["2", "3"]
    trail = [(s.method, s.headers.get("x-csrf-token", "")[:5].lower()) for s in sap.requests]
    assert [m for m, _ in trail] == ["GET", "POST", "POST", "GET", "POST"]
    assert (
        trail[0][1] == trail[3][1] == "fetch"
        and sap.requests[2].headers["x-csrf-token"] == sap.requests[1].headers["x-csrf-token"]
    )
