"""The Salesforce simulator speaks Salesforce's REST API: `simple-salesforce`, pointed at it, queries with
nextRecordsUrl paging, creates, upserts by external id and sees Salesforce's error list as its own
exceptions; Syncline's `preset: salesforce` signs in with a JWT bearer assertion that the simulator
verifies with PyJWT, pages, upserts idempotently and reads error codes."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from requests.adapters import HTTPAdapter
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import (
    SalesforceExpiredSession,
    SalesforceMalformedRequest,
    SalesforceResourceNotFound,
)

from runtime.connector_api import CallRequest, ConnectorError
from runtime.demo.sims.salesforce import CONSUMER_KEY, USERNAME, SalesforceSim
from tests.sims.preset_connection import preset_connector


class _PlainHttp(HTTPAdapter):
    """simple-salesforce always builds https:// URLs; the simulator listens on plain http on loopback."""

    def send(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        request.url = request.url.replace("https://", "http://", 1)
        return super().send(request, *args, **kwargs)


@pytest.fixture(scope="module")
def sim() -> Iterator[SalesforceSim]:
    with SalesforceSim() as running:
        yield running


def _account(sim: SalesforceSim, **extra: Any) -> dict[str, Any]:
    return {"my_domain": "acme", "username": USERNAME, "consumer_key": CONSUMER_KEY,
            "private_key": sim.private_key, "login_url": sim.url, "base_url": sim.url, **extra}  # fmt: skip


def _sdk(sim: SalesforceSim, token: str) -> Salesforce:
    session = requests.Session()
    session.mount("https://", _PlainHttp())
    return Salesforce(instance_url=sim.url, session_id=token, session=session, version="59.0")


def test_the_preset_signs_in_with_a_verified_jwt_pages_and_upserts(sim: SalesforceSim) -> None:
    sim.reset()

    async def scenario() -> None:
        connector = preset_connector("salesforce", _account(sim))
        try:
            accounts = await connector.call(
                CallRequest("list_accounts", {"headers": {"Sforce-Query-Options": "batchSize=2"}})
            )
            assert [a["Name"] for a in accounts.output] == [f"Acme {n}" for n in range(1, 6)]
            assert accounts.meta["pages"] == 3
            upsert = {"path": "/sobjects/Account/AccountNumber/A-9", "body": {"Name": "Acme 9"}}
            first = await connector.call(CallRequest("upsert_account", upsert))
            again = await connector.call(CallRequest("upsert_account", upsert))
            assert first.status == 201 and first.output["created"] is True and again.status == 204
            with pytest.raises(ConnectorError) as missing:
                await connector.call(CallRequest("create_account", {"body": {"AccountNumber": "x"}}))
            assert missing.value.status == 400 and missing.value.code == "REQUIRED_FIELD_MISSING"
            sim.inject_rate_limit(path="/query")
            with pytest.raises(ConnectorError) as limited:
                await connector.call(CallRequest("list_accounts", {}))
            assert limited.value.code == "REQUEST_LIMIT_EXCEEDED" and limited.value.retriable
        finally:
            await connector.aclose()

    asyncio.run(scenario())
    assert len(sim.tokens) == 1  # one sign-in, the token cached
    assert len([a for a in sim.data["Account"].values() if a.get("AccountNumber") == "A-9"]) == 1


def test_a_wrong_key_or_user_is_refused_at_sign_in(sim: SalesforceSim) -> None:
    other = SalesforceSim()  # another key pair: its private key does not match the registered certificate

    async def sign_in(account: dict[str, Any]) -> ConnectorError:
        connector = preset_connector("salesforce", account)
        try:
            with pytest.raises(ConnectorError) as caught:
                await connector.call(CallRequest("list_accounts", {}))
            return caught.value
        finally:
            await connector.aclose()

    bad_key = asyncio.run(sign_in(_account(sim, private_key=other.private_key)))
    assert "invalid_grant" in str(bad_key.body) and "Signature verification failed" in str(bad_key.body)
    bad_user = asyncio.run(sign_in(_account(sim, username="someone@else.example")))
    assert "approved" in str(bad_user.body)


def test_simple_salesforce_queries_creates_upserts_and_raises(sim: SalesforceSim) -> None:
    sim.reset()
    sim.tokens.add("00D5g000000SIM!sdk")
    sf = _sdk(sim, "00D5g000000SIM!sdk")
    sf.headers["Sforce-Query-Options"] = "batchSize=2"
    result = sf.query_all("SELECT Id, Name FROM Account")
    assert result["totalSize"] == 5 and [r["Name"] for r in result["records"]] == [f"Acme {n}" for n in range(1, 6)]
    made = sf.Contact.create({"LastName": "Hopper", "FirstName": "Grace"})
    assert made["success"] and sf.Contact.get(made["id"])["LastName"] == "Hopper"
    assert sf.Account.upsert("AccountNumber/A-7", {"Name": "Acme 7"}) == 201
    assert sf.Account.upsert("AccountNumber/A-7", {"Name": "Acme Seven"}) == 204
    with pytest.raises(SalesforceResourceNotFound):
        sf.Account.get("001000000000000AAA")
    with pytest.raises(SalesforceMalformedRequest) as malformed:
        sf.Opportunity.create({"Name": "no stage"})
    assert malformed.value.content[0]["errorCode"] == "REQUIRED_FIELD_MISSING"
    with pytest.raises(SalesforceExpiredSession):
        _sdk(sim, "not-a-token").query("SELECT Id FROM Account")
