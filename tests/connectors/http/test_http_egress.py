"""The egress guard: SSRF spellings, allow-lists, every redirect hop, and connection pinning."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from typing import Any

import pytest

from connectors.http.egress import EgressPolicy, EgressRefused, internal_reason
from runtime.connector_api import CallRequest, ConnectorError
from tests.connectors.http.http_target import Reply, call_once, json_reply, make_connector, run


class Connects(list[tuple[Any, Any]]):
    """Every outgoing TCP connection attempt (host, port); `routes` stands in for the internet by
    sending connections for a public (address, port) to a local server instead."""

    def __init__(self) -> None:
        super().__init__()
        self.routes: dict[tuple[str, int], tuple[str, int]] = {}


@pytest.fixture
def connects(monkeypatch: pytest.MonkeyPatch) -> Connects:
    attempts = Connects()
    original = asyncio.BaseEventLoop.create_connection

    async def spy(self: Any, protocol_factory: Any, host: Any = None, port: Any = None, **kwargs: Any) -> Any:
        if host is None:  # a socket already connected (and recorded) by aiohappyeyeballs
            return await original(self, protocol_factory, host, port, **kwargs)
        attempts.append((host, port))
        host, port = attempts.routes.get((host, port), (host, port))
        return await original(self, protocol_factory, host, port, **kwargs)

    monkeypatch.setattr(asyncio.BaseEventLoop, "create_connection", spy)

    import aiohttp.connector

    start = aiohttp.connector.aiohappyeyeballs.start_connection

    async def spy_start(addr_infos: Any, **kwargs: Any) -> Any:  # aiohttp connects through aiohappyeyeballs
        routed = []
        for family, kind, proto, name, sockaddr in addr_infos:
            attempts.append((sockaddr[0], sockaddr[1]))
            host, port = attempts.routes.get((sockaddr[0], sockaddr[1]), (sockaddr[0], sockaddr[1]))
            routed.append((family, kind, proto, name, (host, port, *sockaddr[2:])))
        return await start(addr_infos=routed, **kwargs)

    monkeypatch.setattr(aiohttp.connector.aiohappyeyeballs, "start_connection", spy_start)
    return attempts


class FakeDns:
    """`answers[name]`: one list of addresses per lookup (the last one repeats); `lookups`: names asked."""

    def __init__(self) -> None:
        self.answers: dict[str, list[list[str]]] = {}
        self.lookups: list[str] = []

    def __setitem__(self, name: str, answers: list[list[str]]) -> None:
        self.answers[name] = answers


@pytest.fixture
def resolver(monkeypatch: pytest.MonkeyPatch) -> FakeDns:
    """Fake DNS for chosen names (the event loop's getaddrinfo); other names resolve normally."""
    dns = FakeDns()
    original = asyncio.BaseEventLoop.getaddrinfo

    async def fake(self: Any, host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else host
        if name not in dns.answers:
            return await original(self, host, port, *args, **kwargs)
        dns.lookups.append(name)
        queue = dns.answers[name]
        addresses = queue.pop(0) if len(queue) > 1 else queue[0]
        family = {True: socket.AF_INET6, False: socket.AF_INET}
        return [(family[":" in a], socket.SOCK_STREAM, 6, "", (a, port)) for a in addresses]

    monkeypatch.setattr(asyncio.BaseEventLoop, "getaddrinfo", fake)
    return dns


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "127.9.9.9",
        "10.1.2.3",
        "172.16.0.1",
        "172.31.255.255",
        "192.168.1.1",
        "169.254.169.254",
        "0.0.0.0",
        "224.0.0.1",
        "100.64.0.1",
        "::1",
        "::",
        "fe80::1",
        "fc00::1",
        "fd12:3456::1",
        "::ffff:127.0.0.1",
        "::ffff:a9fe:a9fe",
        "::ffff:10.0.0.1",
        "64:ff9b::a9fe:a9fe",
        "2002:7f00:1::",
        "ff02::1",
    ],
)
def test_internal_addresses(address):
    assert internal_reason(ipaddress.ip_address(address)) is not None


@pytest.mark.parametrize("address", ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111", "::ffff:8.8.8.8"])
def test_public_addresses(address):
    assert internal_reason(ipaddress.ip_address(address)) is None


def test_allow_list_patterns():
    policy = EgressPolicy(("*.example-erp.com", "127.0.0.1", "10.0.0.5:8443", "[::1]:9000"))
    assert policy.listed("api.example-erp.com", 443)
    assert policy.listed("API.Example-ERP.com.", 443)
    assert not policy.listed("example-erp.com", 443)
    assert not policy.listed("example-erp.com.evil.net", 443)
    assert policy.listed("127.0.0.1", 8080)
    assert not policy.listed("127.1", 8080)  # the list names what the URL says, exactly
    assert policy.listed("10.0.0.5", 8443) and not policy.listed("10.0.0.5", 8444)
    assert policy.listed("::1", 9000)
    with pytest.raises(EgressRefused):
        policy.check_host("evil.net", 80)


LOOPBACK_SPELLINGS = [
    "127.1",
    "0177.1",
    "2130706433",
    "0x7f000001",
    "[::ffff:127.0.0.1]",
    "[::ffff:7f00:1]",
    "localhost",
    "127.0.0.1",
]


@pytest.fixture
def public(serve, resolver, connects):
    """`public.example`, the declared host: a public address that the test's stand-in internet routes
    to a local server. `public.app` decides what that server answers."""

    class Public:
        app = staticmethod(lambda seen: json_reply({"ok": True}))

    server = serve(lambda seen: Public.app(seen))
    resolver["public.example"] = [["93.184.216.34"]]
    connects.routes[("93.184.216.34", 80)] = ("127.0.0.1", server.port)
    return Public


@pytest.mark.parametrize("host", LOOPBACK_SPELLINGS)
def test_ssrf_spellings_of_loopback_never_connect(serve, connects, public, host):
    """The declared host redirects to loopback, spelled every way; B listens on 127.0.0.1 and is never reached."""
    b = serve()
    public.app = lambda seen: Reply(302, headers={"Location": f"http://{host}:{b.port}/admin"})
    with pytest.raises(ConnectorError) as caught:
        run(call_once(make_connector("http://public.example")))
    assert (caught.value.reason, caught.value.error_class) == ("egress", "fatal")
    assert "loopback" in str(caught.value)
    assert connects == [("93.184.216.34", 80)] and b.connections == 0


@pytest.mark.parametrize(
    "host", ["169.254.169.254", "0xA9FEA9FE", "2852039166", "[::ffff:169.254.169.254]", "10.0.0.1"]
)
def test_ssrf_to_metadata_and_private_addresses_never_connects(connects, public, host):
    public.app = lambda seen: Reply(307, headers={"Location": f"http://{host}/latest/meta-data/"})
    with pytest.raises(ConnectorError) as caught:
        run(call_once(make_connector("http://public.example")))
    assert caught.value.reason == "egress"
    assert connects == [("93.184.216.34", 80)]


@pytest.mark.parametrize("host", LOOPBACK_SPELLINGS)
def test_a_declared_base_url_is_reached_whatever_it_resolves_to(serve, host):
    """The author chose the host in `base_url` (a simulator on loopback): no switch is needed."""
    server = serve()
    result = run(call_once(make_connector(f"http://{host}:{server.port}")))
    assert result.status == 200 and server.connections == 1


def test_a_declared_private_host_by_name_is_reached(serve, resolver, connects):
    """An on-premises ERP: a name on the private network, declared in base_url."""
    server = serve()
    resolver["erp.corp.internal"] = [["10.20.30.40"]]
    connects.routes[("10.20.30.40", 80)] = ("127.0.0.1", server.port)
    result = run(call_once(make_connector("http://erp.corp.internal/api")))
    assert result.status == 200
    assert connects == [("10.20.30.40", 80)]
    assert server.requests[0].headers["host"] == "erp.corp.internal"


def test_a_declared_private_ip_literal_is_reached(serve, connects):
    server = serve()
    connects.routes[("10.20.30.41", 8080)] = ("127.0.0.1", server.port)
    assert run(call_once(make_connector("http://10.20.30.41:8080"))).status == 200
    assert connects == [("10.20.30.41", 8080)]


def test_a_declared_host_is_trusted_on_every_port(serve, resolver, connects):
    """The declaration names a host: a redirect to the same host on another port is followed."""
    b = serve()
    a = serve(lambda seen: Reply(302, headers={"Location": f"http://erp.test:{b.port}/moved"}))
    resolver["erp.test"] = [["127.0.0.1"]]
    result = run(call_once(make_connector(f"http://erp.test:{a.port}")))
    assert result.status == 200 and [r.path for r in b.requests] == ["/moved"]


def test_allow_private_lifts_the_address_rule_for_undeclared_hosts(serve, public):
    b = serve()
    public.app = lambda seen: Reply(302, headers={"Location": f"http://127.1:{b.port}/inside"})
    result = run(call_once(make_connector("http://public.example", allow_private=True)))
    assert result.status == 200 and [r.path for r in b.requests] == ["/inside"]


def test_a_listed_host_lifts_the_address_rule_for_an_undeclared_host(serve, public):
    b = serve()
    public.app = lambda seen: Reply(302, headers={"Location": f"http://127.0.0.1:{b.port}/inside"})
    connector = make_connector("http://public.example", allow_hosts=("public.example", "127.0.0.1"))
    assert run(call_once(connector)).status == 200 and len(b.requests) == 1


def test_host_outside_the_allow_list_is_not_even_resolved(resolver, connects):
    """A Policy's allow-list binds declared hosts too: the governance rule is above the author's choice."""
    resolver["erp.example.com"] = [["93.184.216.34"]]
    with pytest.raises(ConnectorError) as caught:
        run(call_once(make_connector("https://erp.example.com", allow_hosts=("*.example-erp.com",))))
    assert caught.value.reason == "egress" and "allow-list" in str(caught.value)
    assert resolver.lookups == [] and connects == []


def test_refused_when_any_resolved_address_is_internal(resolver, connects, public):
    resolver["mixed.example.com"] = [["93.184.216.35", "127.0.0.1"]]
    public.app = lambda seen: Reply(302, headers={"Location": "http://mixed.example.com/"})
    with pytest.raises(ConnectorError) as caught:
        run(call_once(make_connector("http://public.example")))
    assert caught.value.reason == "egress" and "127.0.0.1" in str(caught.value)
    assert connects == [("93.184.216.34", 80)]


def test_an_undeclared_host_is_pinned_to_its_checked_address(serve, resolver, connects, public):
    """DNS rebinding: the redirect target first resolves to a public address, then to loopback. It is
    resolved once, checked, and the connection goes to exactly that checked address."""
    b = serve()
    resolver["rebinding.example"] = [["93.184.216.35"], ["127.0.0.1"]]
    connects.routes[("93.184.216.35", 80)] = ("127.0.0.1", b.port)
    public.app = lambda seen: Reply(302, headers={"Location": "http://rebinding.example/next"})
    assert run(call_once(make_connector("http://public.example"))).status == 200
    assert resolver.lookups == ["public.example", "rebinding.example"]
    assert connects == [("93.184.216.34", 80), ("93.184.216.35", 80)]
    assert b.requests[0].headers["host"] == "rebinding.example"


def test_a_pagination_link_to_an_undeclared_internal_host_is_refused(serve, public, connects):
    b = serve(lambda seen: json_reply([{"secret": 1}]))
    public.app = lambda seen: json_reply([{"id": 1}], headers={"Link": f'<http://127.0.0.1:{b.port}/p2>; rel="next"'})
    ops = {"list": {"path": "/items", "pagination": {"type": "next_link"}}}
    with pytest.raises(ConnectorError) as caught:
        run(call_once(make_connector("http://public.example", operations=ops), "list"))
    assert caught.value.reason == "egress" and "loopback" in str(caught.value)
    assert b.connections == 0 and connects == [("93.184.216.34", 80)]


def test_a_redirect_from_a_declared_loopback_host_to_another_loopback_host_is_refused(serve, connects):
    """Declared `127.0.0.1` is trusted; `localhost` and `127.0.0.2` (also loopback) are other hosts."""
    b = serve()
    for target in (f"http://localhost:{b.port}/", f"http://127.0.0.2:{b.port}/"):
        a = serve(lambda seen, target=target: Reply(302, headers={"Location": target}))
        with pytest.raises(ConnectorError) as caught:
            run(call_once(make_connector(a.url)))
        assert caught.value.reason == "egress" and "loopback" in str(caught.value)
    assert b.connections == 0


def test_connection_is_pinned_to_the_checked_address(serve, resolver, connects):
    """One lookup per connection; the socket goes to that answer (an IP), never to the name again.

    The second answer (a rebinding attempt) would point elsewhere; it is never asked for.
    """
    server = serve()
    resolver["erp.test"] = [["127.0.0.1"], ["10.9.9.9"]]
    connector = make_connector(f"http://erp.test:{server.port}", allow_hosts=(f"erp.test:{server.port}",))
    assert run(call_once(connector)).status == 200
    assert resolver.lookups == ["erp.test"]
    assert connects == [("127.0.0.1", server.port)]
    assert server.requests[0].headers["host"] == f"erp.test:{server.port}"


def test_redirect_hop_outside_the_allow_list_is_refused(serve, connects):
    """A is allowed (by host:port), B is not; A redirects to B; B must never see a connection."""
    b = serve()
    a = serve(lambda seen: Reply(302, headers={"Location": f"{b.url}/internal"}))
    with pytest.raises(ConnectorError) as caught:
        run(call_once(make_connector(a.url, allow_hosts=(a.hostport,))))
    assert (caught.value.reason, caught.value.error_class) == ("egress", "fatal")
    assert len(a.requests) == 1 and b.connections == 0
    assert connects == [("127.0.0.1", a.port)]


@pytest.mark.parametrize("listed", [True, False], ids=["allow-list", "no-policy"])
@pytest.mark.parametrize(
    "location", ["http://169.254.169.254/latest/meta-data/", "http://0xA9FEA9FE/", "http://127.1:1/"]
)
def test_redirect_to_internal_addresses_is_refused(serve, connects, location, listed):
    a = serve(lambda seen: Reply(307, headers={"Location": location}))
    with pytest.raises(ConnectorError) as caught:
        run(call_once(make_connector(a.url, allow_hosts=(a.hostport,) if listed else None)))
    assert caught.value.reason == "egress"
    assert connects == [("127.0.0.1", a.port)]


def test_redirect_hop_checked_by_address_without_an_allow_list(serve, resolver, connects):
    """No allow-list. `public.example` resolves to a public address (routed to server A by the test's
    stand-in internet); A redirects to `rebound.example`, which resolves to loopback where B listens.
    The hop is refused by the address rule and B never sees a connection."""
    b = serve()
    a = serve(lambda seen: Reply(302, headers={"Location": f"http://rebound.example:{b.port}/admin"}))
    resolver["public.example"] = [["93.184.216.34"]]
    resolver["rebound.example"] = [["127.0.0.1"]]
    connects.routes[("93.184.216.34", 80)] = ("127.0.0.1", a.port)
    with pytest.raises(ConnectorError) as caught:
        run(call_once(make_connector("http://public.example", allow_hosts=None)))
    assert caught.value.reason == "egress" and "loopback" in str(caught.value)
    assert len(a.requests) == 1 and b.connections == 0
    assert connects == [("93.184.216.34", 80)]


def test_redirects_followed_within_the_allow_list(serve):
    b = serve(lambda seen: json_reply({"from": "b", "method": seen.method, "auth": seen.headers.get("authorization")}))
    a = serve(
        lambda seen: (
            Reply(303, headers={"Location": f"{b.url}/done"})
            if seen.path == "/start"
            else Reply(302, headers={"Location": "/start"})
        )
    )
    ops = {"create": {"method": "POST", "path": "/begin", "body": {"x": 1}}}
    connector = make_connector(
        a.url,
        operations=ops,
        allow_hosts=(a.hostport, b.hostport),
        auth={"type": "bearer", "token": "tkn-123"},
    )
    result = run(call_once(connector, "create", idempotency_key="k"))
    # POST /begin -302-> POST→GET /start (same origin, keeps auth) -303-> GET b/done (cross origin, no auth)
    assert [r.method for r in a.requests] == ["POST", "GET"]
    assert a.requests[1].headers["authorization"] == "Bearer tkn-123"
    assert result.output == {"from": "b", "method": "GET", "auth": None}
    assert "idempotency-key" not in b.requests[0].headers


def test_307_keeps_method_and_body(serve):
    server = serve(
        lambda seen: (
            Reply(307, headers={"Location": "/v2/orders"}) if seen.path == "/orders" else json_reply(seen.json())
        )
    )
    ops = {"create": {"method": "POST", "path": "/orders", "body": {"n": 1}}}
    result = run(call_once(make_connector(server.url, operations=ops), "create"))
    assert result.output == {"n": 1} and [r.method for r in server.requests] == ["POST", "POST"]


def test_too_many_redirects(serve):
    server = serve(lambda seen: Reply(302, headers={"Location": f"/r{len(server.requests)}"}))
    with pytest.raises(ConnectorError) as caught:
        run(call_once(make_connector(server.url, max_redirects=3)))
    assert caught.value.reason == "response" and len(server.requests) == 4


def test_redirects_not_followed_when_disabled(serve):
    server = serve(lambda seen: Reply(302, headers={"Location": "/elsewhere"}))
    with pytest.raises(ConnectorError) as caught:
        run(call_once(make_connector(server.url, follow_redirects=False)))
    assert caught.value.status == 302 and len(server.requests) == 1


def test_redirect_to_another_scheme_is_refused(serve):
    server = serve(lambda seen: Reply(302, headers={"Location": "file:///etc/passwd"}))
    with pytest.raises(ConnectorError) as caught:
        run(call_once(make_connector(server.url)))
    assert caught.value.reason == "egress"


def test_pinned_connection_keeps_working_across_calls(serve, resolver):
    server = serve()
    resolver["erp.test"] = [["127.0.0.1"]]
    connector = make_connector(f"http://erp.test:{server.port}", allow_hosts=("erp.test:*",))

    async def calls():
        for _ in range(3):
            await connector.call(CallRequest("get", {}))
        await connector.aclose()

    run(calls())
    assert len(server.requests) == 3 and server.connections == 1
