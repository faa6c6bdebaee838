"""Microsoft's own packages talk to the Dynamics 365 simulator, served over HTTPS on loopback (both refuse
plain HTTP, hence a throwaway CA and certificate from `trustme`).

Which parts are vendor code:
- `msal` (Microsoft's authentication library) does everything on the identity side: the authority's
  OpenID Connect discovery (`/{tenant}/v2.0/.well-known/openid-configuration`), the client credentials
  request to the discovered token endpoint, parsing the token answer, its token cache, and its error results.
- `powerplatform-dataverse-client` (Microsoft's Dataverse SDK, `DataverseClient`, with an MSAL-backed
  `TokenCredential`) resolves the table through `EntityDefinitions`, creates (reading `OData-EntityId`),
  retrieves, updates (`If-Match: *`), upserts by alternate key, lists page by page following
  `@odata.nextLink` under `Prefer: odata.maxpagesize`, and turns Dataverse's error body
  `{"error": {"code", "message"}}` into its `HttpError` with the service error code.
- What that SDK never sends — an `If-Match` with a record's own ETag, so the 412 on a stale version — is
  checked with plain `requests` (not Microsoft code; the HTTP library both packages use) and the MSAL token.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import msal
import pytest
import requests
import trustme
from azure.core.credentials import AccessToken, TokenCredential
from PowerPlatform.Dataverse.client import DataverseClient
from PowerPlatform.Dataverse.core.errors import HttpError
from PowerPlatform.Dataverse.models.upsert import UpsertItem

from runtime.demo.sims.dynamics365 import API, CLIENT_ID, CLIENT_SECRET, TENANT, Dynamics365


@dataclass
class Served:
    sim: Dynamics365
    ca_file: str
    sessions: list[requests.Session] = field(default_factory=list)

    def session(self) -> requests.Session:
        session = requests.Session()
        self.sessions.append(session)  # closed before the server stops: no idle TLS connection holds it up
        session.trust_env = False  # else REQUESTS_CA_BUNDLE / proxies from the environment win over `verify`
        session.verify = self.ca_file  # trust only the test CA
        return session

    def app(self, secret: str = CLIENT_SECRET, tenant: str = TENANT) -> msal.ConfidentialClientApplication:
        return msal.ConfidentialClientApplication(
            CLIENT_ID,
            client_credential=secret,
            authority=f"{self.sim.url}/{tenant}",
            validate_authority=False,
            instance_discovery=False,
            http_client=self.session(),
        )

    @property
    def scope(self) -> str:
        return f"{self.sim.url}/.default"


class MsalCredential:
    """An Azure Identity `TokenCredential` over MSAL's client credentials flow (what azure-identity's
    `ClientSecretCredential` does, pointed at the simulator's authority)."""

    def __init__(self, app: msal.ConfidentialClientApplication) -> None:
        self.app = app

    def get_token(self, *scopes: str, **_: object) -> AccessToken:
        result = self.app.acquire_token_for_client(scopes=list(scopes))
        assert "access_token" in result, result
        return AccessToken(str(result["access_token"]), int(time.time()) + int(result["expires_in"]))


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str, str]:
    """A throwaway CA and a certificate for the loopback address it signs: (CA, certificate, key) files."""
    folder: Path = tmp_path_factory.mktemp("tls")
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    ca_file, cert_file, key_file = folder / "ca.pem", folder / "cert.pem", folder / "key.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    cert.cert_chain_pems[0].write_to_path(str(cert_file))
    cert.private_key_pem.write_to_path(str(key_file))
    return str(ca_file), str(cert_file), str(key_file)


@pytest.fixture
def served(tls_files: tuple[str, str, str]) -> Iterator[Served]:
    ca_file, cert_file, key_file = tls_files
    sim = Dynamics365().start(tls=(cert_file, key_file))
    served = Served(sim, ca_file)
    try:
        yield served
    finally:
        for session in served.sessions:
            session.close()
        sim.stop()


def token(served: Served) -> str:
    result = served.app().acquire_token_for_client(scopes=[served.scope])
    assert "access_token" in result, result
    return str(result["access_token"])


def test_msal_discovers_the_tenant_and_acquires_a_client_credentials_token(served: Served) -> None:
    assert served.sim.url.startswith("https://")
    app = served.app()
    first = app.acquire_token_for_client(scopes=[served.scope])
    assert first.get("token_type") == "Bearer" and first.get("expires_in", 0) > 3000, first
    assert first["access_token"] in served.sim.tokens
    assert served.sim.seen("GET", r"/v2\.0/\.well-known/openid-configuration$")
    [request] = served.sim.seen("POST", rf"^/{TENANT}/oauth2/v2\.0/token$")
    body = request.body.decode()
    assert "grant_type=client_credentials" in body and f"client_id={CLIENT_ID}" in body
    # MSAL's cache answers the second call: the simulator's expires_in was understood
    again = app.acquire_token_for_client(scopes=[served.scope])
    assert again["access_token"] == first["access_token"]
    assert again.get("token_source") == "cache"
    assert served.sim.token_requests == 1


def test_msal_reports_the_identity_platforms_errors(served: Served) -> None:
    refused = served.app(secret="wrong").acquire_token_for_client(scopes=[served.scope])
    assert refused.get("error") == "invalid_client"
    assert str(refused.get("error_description", "")).startswith("AADSTS7000215")
    assert "access_token" not in refused
    with pytest.raises(ValueError, match="Unable to get authority configuration"):
        served.app(tenant="00000000-0000-4000-8000-000000000000")


def test_msal_refuses_the_plain_http_simulator() -> None:
    with Dynamics365() as sim, pytest.raises(ValueError, match="https"):
        msal.ConfidentialClientApplication(
            CLIENT_ID, client_credential=CLIENT_SECRET, authority=f"{sim.url}/{TENANT}", validate_authority=False
        )


def test_web_api_with_the_msal_token_pages_creates_and_guards_versions(served: Served) -> None:
    http = served.session()
    http.headers.update({"Authorization": f"Bearer {token(served)}", "OData-MaxVersion": "4.0", "OData-Version": "4.0"})
    api = served.sim.url + API
    created = []
    for number in ("ACC-2001", "ACC-2002"):
        answer = http.post(f"{api}/accounts", json={"name": f"Contoso {number}", "accountnumber": number})
        assert answer.status_code == 204, answer.text
        created.append(answer.headers["OData-EntityId"])
    assert all(link.startswith(f"{api}/accounts(") for link in created)

    # @odata.nextLink paging: absolute links on the same https host, until the last page has none
    url: str | None = f"{api}/accounts?$select=name,accountnumber"
    names, pages = [], 0
    while url:
        page = http.get(url, headers={"Prefer": "odata.maxpagesize=1"})
        assert page.status_code == 200 and page.headers["Preference-Applied"] == "odata.maxpagesize=1"
        body = page.json()
        names += [record["accountnumber"] for record in body["value"]]
        pages += 1
        url = body.get("@odata.nextLink")
        assert url is None or url.startswith(f"{api}/accounts?")
    assert pages == 3 and sorted(names) == ["ACC-1001", "ACC-2001", "ACC-2002"]

    # ETag / If-Match: the current version updates, the same (now stale) version is refused with 412
    one = f"{api}/accounts(accountnumber='ACC-2001')"
    record = http.get(one)
    etag = record.headers["ETag"]
    assert etag == record.json()["@odata.etag"] and etag.startswith('W/"')
    updated = http.patch(one, json={"name": "Renamed"}, headers={"If-Match": etag})
    assert updated.status_code == 204
    stale = http.patch(one, json={"name": "Lost"}, headers={"If-Match": etag})
    assert stale.status_code == 412
    assert stale.json()["error"]["code"] == "0x80060882"
    assert http.get(one).json()["name"] == "Renamed"

    # If-Match: * never creates
    absent = http.patch(f"{api}/accounts(accountnumber='ACC-404')", json={"name": "x"}, headers={"If-Match": "*"})
    assert absent.status_code == 404
    assert set(absent.json()["error"]) == {"code", "message"}


def test_web_api_refuses_a_request_without_the_token(served: Served) -> None:
    answer = served.session().get(f"{served.sim.url}{API}/accounts")
    assert answer.status_code == 401
    assert answer.headers["WWW-Authenticate"].startswith("Bearer authorization_uri=")
    error = answer.json()["error"]
    assert set(error) == {"code", "message"} and error["code"].startswith("0x")


@pytest.fixture
def dataverse(served: Served, monkeypatch: pytest.MonkeyPatch) -> Iterator[DataverseClient]:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", served.ca_file)  # the SDK's own requests session trusts the test CA
    credential = MsalCredential(served.app())
    assert isinstance(credential, TokenCredential)
    with DataverseClient(served.sim.url, credential) as client:
        yield client


def test_dataverse_sdk_creates_reads_updates_and_upserts(served: Served, dataverse: DataverseClient) -> None:
    record_id = dataverse.records.create("account", {"name": "Contoso", "accountnumber": "ACC-3001"})
    assert record_id in served.sim.data["accounts"]
    assert served.sim.seen("GET", r"/EntityDefinitions$")  # the table's entity set, from metadata
    record = dataverse.records.retrieve("account", record_id)
    assert record is not None and record.data["name"] == "Contoso"
    assert record.etag == f'W/"{served.sim.data["accounts"][record_id]["versionnumber"]}"'

    dataverse.records.update("account", record_id, {"name": "Contoso Ltd"})
    [patch] = served.sim.seen("PATCH", "/accounts")
    assert patch.headers["if-match"] == "*"  # the SDK never creates by accident
    renamed = dataverse.records.retrieve("account", record_id, select=["name"])
    assert renamed is not None and renamed.data["name"] == "Contoso Ltd" and renamed.etag != record.etag

    dataverse.records.upsert(
        "account", [UpsertItem(alternate_key={"accountnumber": "ACC-3002"}, record={"name": "New"})]
    )
    dataverse.records.upsert(
        "account", [UpsertItem(alternate_key={"accountnumber": "ACC-3001"}, record={"name": "Up"})]
    )
    by_number = {r["accountnumber"]: r for r in served.sim.data["accounts"].values()}
    assert by_number["ACC-3002"]["name"] == "New" and by_number["ACC-3001"]["name"] == "Up"

    assert dataverse.records.retrieve("account", "00000000-0000-4000-8000-000000000000") is None


def test_dataverse_sdk_pages_through_next_links(served: Served, dataverse: DataverseClient) -> None:
    for number in ("ACC-4001", "ACC-4002", "ACC-4003"):
        dataverse.records.create("account", {"name": number, "accountnumber": number})
    pages = list(dataverse.records.list_pages("account", select=["accountnumber"], page_size=2))
    assert [len(page) for page in pages] == [2, 2]
    numbers = sorted(record.data["accountnumber"] for page in pages for record in page)
    assert numbers == ["ACC-1001", "ACC-4001", "ACC-4002", "ACC-4003"]
    listed = served.sim.seen("GET", r"/accounts$")
    assert [s.headers.get("prefer") for s in listed] == ["odata.maxpagesize=2"] * 2
    assert "$skiptoken=2" in listed[1].query  # the second page came from the first one's @odata.nextLink


def refusal(call: Callable[[], object]) -> tuple[int | None, str | None, str]:
    """Status, Dataverse error code and text of the `HttpError` that `call` raises. Only these are kept: the
    exception's traceback holds the SDK's response, whose TLS connection would hold up the server's stop."""
    try:
        call()
    except HttpError as error:
        return error.status_code, error.details.get("service_error_code"), str(error)
    pytest.fail("no HttpError")


def test_dataverse_sdk_reads_dataverse_errors(served: Served, dataverse: DataverseClient) -> None:
    unknown = "00000000-0000-4000-8000-000000000000"
    status, code, text = refusal(lambda: dataverse.records.update("account", unknown, {"name": "x"}))
    assert (status, code) == (404, "0x80040217") and "Does Not Exist" in text
    duplicate = {"name": "Again", "accountnumber": "ACC-1001"}
    status, code, text = refusal(lambda: dataverse.records.create("account", duplicate))
    assert (status, code) == (412, "0x80040237") and "already exists" in text
