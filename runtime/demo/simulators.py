"""Simulated CRM, billing and ERP systems: real HTTP servers on loopback that keep their records.

They answer the operations the bundled project declares, check the credentials it sends, and
count effects per idempotency key, so demos and tests can see exactly what was written and that a
repeated delivery with the same key wrote once. `/_state` shows a system's records and counters;
`/_control` changes its behaviour (`delay` seconds before answering writes, `fail` the next N writes
with a status).

    ERP      POST /oauth/token, GET /customers, PUT /customers/{no}, POST /sales-orders,
             POST /sales-orders/{id}/cancel, POST /ar-invoices, POST /incoming-payments, POST /shipments
    CRM      GET /accounts (bearer token)
    billing  GET /invoices (API key header)
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import socket
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from runtime.expr import dumps, loads

Handler = Callable[[Request], Awaitable[Response]]

DEMO_CREDENTIALS = {
    "ERP_CLIENT_ID": "demo-erp-client",
    "ERP_CLIENT_SECRET": "demo-erp-secret",
    "CRM_TOKEN": "demo-crm-token",
    "BILLING_API_KEY": "demo-billing-key",
    "WEBSHOP_HOOK_SECRET": "demo-webshop-secret",
    "CRM_HOOK_KEY": "demo-crm-hook-key",
    "ERP_HOOK_KEY": "demo-erp-hook-key",
    "WMS_AMQP_PASSWORD": "guest",  # a local RabbitMQ's default user, for the WMS shipment events
}


def _json(value: Any, status: int = 200) -> Response:
    return Response(dumps(value), status_code=status, media_type="application/json")


@dataclass
class SystemState:
    name: str
    records: dict[str, dict[str, Any]] = field(default_factory=dict)
    effects: dict[str, int] = field(default_factory=dict)  # idempotency key -> times a write with it arrived
    by_key: dict[str, Any] = field(default_factory=dict)  # idempotency key -> first response
    requests: list[dict[str, Any]] = field(default_factory=list)
    delay: float = 0.0
    webhook_url: str | None = None  # where the system announces changed records (change webhooks)
    webhook_key: str | None = None
    webhooks_sent: int = 0
    fail_next: int = 0
    fail_status: int = 503

    def snapshot(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "records": self.records,
            "effects": self.effects,
            "requests": self.requests[-200:],
            "delay": self.delay,
        }


class _System:
    """Common behaviour: request log, control endpoint, idempotent writes, injected delays and failures."""

    def __init__(self, name: str) -> None:
        self.state = SystemState(name)
        self._ids = itertools.count(1)
        self.lock = asyncio.Lock()

    def next_id(self, prefix: str) -> str:
        return f"{prefix}-{next(self._ids)}"

    async def log(self, request: Request) -> None:
        self.state.requests.append(
            {
                "method": request.method,
                "path": request.url.path,
                "idempotency_key": request.headers.get("idempotency-key"),
                "correlation_id": request.headers.get("x-correlation-id"),
                "at": time.time(),
            }
        )

    async def write(self, request: Request, make: Callable[[Any], Awaitable[Response]]) -> Response:
        """Apply a write once per Idempotency-Key; a repeat gets the first answer."""
        await self.log(request)
        key = request.headers.get("idempotency-key")
        if key:
            self.state.effects[key] = self.state.effects.get(key, 0) + 1
        if self.state.delay:
            await asyncio.sleep(self.state.delay)
        if self.state.fail_next > 0:
            self.state.fail_next -= 1
            return _json({"error": "simulated failure"}, self.state.fail_status)
        async with self.lock:
            if key and key in self.state.by_key:
                return _json(self.state.by_key[key])
            body = loads(await request.body()) if await request.body() else None
            response = await make(body)
            if key and response.status_code < 300:
                self.state.by_key[key] = loads(bytes(response.body))
            return response

    async def state_endpoint(self, request: Request) -> Response:
        return _json(self.state.snapshot())

    async def control(self, request: Request) -> Response:
        body = loads(await request.body() or b"{}")
        self.state.delay = float(body.get("delay", self.state.delay))
        self.state.fail_next = int(body.get("fail_next", self.state.fail_next))
        self.state.fail_status = int(body.get("fail_status", self.state.fail_status))
        if "webhook_url" in body:
            self.state.webhook_url = body["webhook_url"]
            self.state.webhook_key = body.get("webhook_key")
        if body.get("reset"):
            self.state.records.clear()
            self.state.effects.clear()
            self.state.by_key.clear()
            self.state.requests.clear()
        return _json({"ok": True})

    def routes(self) -> list[Route]:
        return [
            Route("/_state", self.state_endpoint),
            Route("/_control", self.control, methods=["POST"]),
            Route("/_edit/{no}", self.edit, methods=["POST"]),
        ]

    async def edit(self, request: Request) -> Response:
        """A person edits an account in the CRM UI (no Syncline provenance): change webhook fires."""
        number = request.path_params["no"]
        body = loads(await request.body() or b"{}")
        record = {**self.state.records.get(number, {}), **body, "customer_no": number}
        self.state.records[number] = record
        await self.announce(record, request)
        return _json(record)

    async def announce(self, record: dict[str, Any], request: Request) -> None:
        """Send a change webhook for `record`, passing on the provenance headers of the write that
        caused the change (as systems that keep 'last changed by' metadata do)."""
        url = self.state.webhook_url
        if not url:
            return
        headers = {"Content-Type": "application/json"}
        if self.state.webhook_key:
            headers["X-Api-Key"] = self.state.webhook_key
        for name in ("x-syncline-origin", "x-syncline-chain", "x-syncline-hops"):
            if name in request.headers:
                headers[name] = request.headers[name]
        self.state.webhooks_sent += 1

        async def send() -> None:
            import httpx

            async with httpx.AsyncClient(timeout=10) as client:
                with contextlib.suppress(httpx.HTTPError):
                    await client.post(url, content=dumps(record), headers=headers)

        asyncio.get_running_loop().create_task(send())


class Erp(_System):
    def __init__(self, client_id: str, client_secret: str) -> None:
        super().__init__("erp")
        self.client_id = client_id
        self.client_secret = client_secret
        self.tokens: set[str] = set()
        self.state.records["C-9"] = {
            "customer_no": "C-9",
            "name": "Acme GmbH",
            "tax_id": "DE123",
            "credit_status": "good",
            "payment_terms": "30d",
        }
        self.state.records["C-1"] = {
            "customer_no": "C-1",
            "name": "Globex",
            "tax_id": "DE1",
            "credit_status": "good",
            "payment_terms": "14d",
        }

    def _authorised(self, request: Request) -> bool:
        auth = request.headers.get("authorization", "")
        return auth.startswith("Bearer ") and auth[7:] in self.tokens

    async def token(self, request: Request) -> Response:
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
        client_id, client_secret = form.get("client_id"), form.get("client_secret")
        auth = request.headers.get("authorization", "")
        if auth.lower().startswith("basic "):
            client_id, _, client_secret = base64.b64decode(auth[6:]).decode().partition(":")
        if client_id != self.client_id or client_secret != self.client_secret:
            return _json({"error": "invalid_client"}, 401)
        token = f"erp-token-{next(self._ids)}"
        self.tokens.add(token)
        return _json({"access_token": token, "token_type": "Bearer", "expires_in": 3600})

    async def customers(self, request: Request) -> Response:
        await self.log(request)
        if not self._authorised(request):
            return _json({"error": "unauthorised"}, 401)
        tax_id = request.query_params.get("tax_id")
        found = [
            c
            for c in self.state.records.values()
            if "customer_no" in c and (tax_id is None or c.get("tax_id") == tax_id)
        ]
        return _json(found)

    async def upsert_customer(self, request: Request) -> Response:
        if not self._authorised(request):
            return _json({"error": "unauthorised"}, 401)
        number = request.path_params["no"]

        async def make(body: Any) -> Response:
            record = {**self.state.records.get(number, {}), **(body or {}), "customer_no": number}
            self.state.records[number] = record
            await self.announce(record, request)
            return _json(record)

        return await self.write(request, make)

    async def sales_order(self, request: Request) -> Response:
        if not self._authorised(request):
            return _json({"error": "unauthorised"}, 401)

        async def make(body: Any) -> Response:
            if not isinstance(body, dict) or not body.get("order_ref"):
                return _json({"error": "order_ref is required"}, 422)
            lines_total = sum((Decimal(str(line["amount"])) for line in body.get("lines", [])), Decimal(0))
            if Decimal(str(body.get("total", 0))) != lines_total:
                return _json({"error": f"total {body.get('total')} does not match lines {lines_total}"}, 422)
            number = self.next_id("SO")
            self.state.records[number] = {**body, "id": number, "status": "open"}
            return _json({"id": number, "status": "open"}, 201)

        return await self.write(request, make)

    async def cancel_order(self, request: Request) -> Response:
        if not self._authorised(request):
            return _json({"error": "unauthorised"}, 401)
        number = request.path_params["id"]

        async def make(body: Any) -> Response:
            if number not in self.state.records:
                return _json({"error": "no such order"}, 404)
            self.state.records[number]["status"] = "cancelled"
            return _json({"id": number, "status": "cancelled"})

        return await self.write(request, make)

    async def invoice(self, request: Request) -> Response:
        if not self._authorised(request):
            return _json({"error": "unauthorised"}, 401)

        async def make(body: Any) -> Response:
            number = self.next_id("AR")
            self.state.records[number] = {**(body or {}), "id": number}
            return _json({"id": number}, 201)

        return await self.write(request, make)

    async def payment(self, request: Request) -> Response:
        if not self._authorised(request):
            return _json({"error": "unauthorised"}, 401)

        async def make(body: Any) -> Response:
            number = self.next_id("PAY")
            self.state.records[number] = {**(body or {}), "id": number}
            return _json({"id": number}, 201)

        return await self.write(request, make)

    async def shipment(self, request: Request) -> Response:
        """A parcel shipped for a sales order, found by its `order_ref` (404 when there is none)."""
        if not self._authorised(request):
            return _json({"error": "unauthorised"}, 401)

        async def make(body: Any) -> Response:
            if not isinstance(body, dict) or not body.get("order_ref"):
                return _json({"error": "order_ref is required"}, 422)
            ref = body["order_ref"]
            orders = [r for r in self.state.records.values() if r.get("order_ref") == ref and "sales_order" not in r]
            if not orders:
                return _json({"error": f"no sales order for {body['order_ref']}"}, 404)
            orders[0]["status"] = "shipped"
            number = self.next_id("SH")
            self.state.records[number] = {**body, "id": number, "sales_order": orders[0]["id"]}
            return _json({"id": number, "sales_order": orders[0]["id"], "status": "recorded"}, 201)

        return await self.write(request, make)

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                *self.routes(),
                Route("/oauth/token", self.token, methods=["POST"]),
                Route("/shipments", self.shipment, methods=["POST"]),
                Route("/incoming-payments", self.payment, methods=["POST"]),
                Route("/customers", self.customers, methods=["GET"]),
                Route("/customers/{no}", self.upsert_customer, methods=["PUT"]),
                Route("/sales-orders", self.sales_order, methods=["POST"]),
                Route("/sales-orders/{id}/cancel", self.cancel_order, methods=["POST"]),
                Route("/ar-invoices", self.invoice, methods=["POST"]),
            ]
        )


class Crm(_System):
    def __init__(self, token: str) -> None:
        super().__init__("crm")
        self.token = token
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        self.state.records["C-9"] = {
            "customer_no": "C-9",
            "name": "Acme GmbH ",
            "email": "ops@acme.example",
            "phone": "+49 89 1234",
            "modified_at": stamp,
        }
        self.state.records["C-1"] = {
            "customer_no": "C-1",
            "name": "Globex",
            "email": "it@globex.example",
            "modified_at": stamp,
        }

    async def accounts(self, request: Request) -> Response:
        await self.log(request)
        if request.headers.get("authorization") != f"Bearer {self.token}":
            return _json({"error": "unauthorised"}, 401)
        within = request.query_params.get("changed_within")
        accounts = list(self.state.records.values())
        if within:
            from runtime.spec.common import parse_duration

            cutoff = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - parse_duration(within)))
            accounts = [a for a in accounts if a.get("modified_at", "") >= cutoff]
        return _json(accounts)

    async def update_account(self, request: Request) -> Response:
        if request.headers.get("authorization") != f"Bearer {self.token}":
            return _json({"error": "unauthorised"}, 401)
        number = request.path_params["no"]

        async def make(body: Any) -> Response:
            stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            record = {**self.state.records.get(number, {}), **(body or {}), "customer_no": number, "modified_at": stamp}
            self.state.records[number] = record
            await self.announce(record, request)
            return _json(record)

        return await self.write(request, make)

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                *self.routes(),
                Route("/accounts", self.accounts, methods=["GET"]),
                Route("/accounts/{no}", self.update_account, methods=["PATCH"]),
            ]
        )


class Billing(_System):
    def __init__(self, api_key: str) -> None:
        super().__init__("billing")
        self.api_key = api_key
        self.state.records["INV-100"] = {
            "id": "INV-100",
            "status": "open",
            "customer_id": "C-9",
            "currency": "eur",
            "due_date": "2026-12-24",
            "updated_at": "2026-11-24T08:00:00Z",
            "lines": [
                {"description": "Subscription", "amount": Decimal("99.90")},
                {"description": "Usage", "amount": Decimal("0.10")},
            ],
        }

    async def invoices(self, request: Request) -> Response:
        await self.log(request)
        if request.headers.get("x-api-key") != self.api_key:
            return _json({"error": "unauthorised"}, 401)
        since = request.query_params.get("updated_since") or ""
        data = [i for i in self.state.records.values() if i.get("updated_at", "") > since]
        return _json({"data": sorted(data, key=lambda i: i["updated_at"])})

    def app(self) -> Starlette:
        return Starlette(routes=[*self.routes(), Route("/invoices", self.invoices, methods=["GET"])])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServerThread:
    """Runs an ASGI app with uvicorn on a loopback port in a background thread."""

    def __init__(self, app: Any, port: int | None = None, *, tls: tuple[str, str] | None = None) -> None:
        """`tls`: (certificate file, key file) to serve HTTPS instead of HTTP (tests of clients that insist on it)."""
        self.port = port or free_port()
        self.tls = tls
        certfile, keyfile = tls or (None, None)
        self.config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            lifespan="off",
            access_log=False,
            ssl_certfile=certfile,
            ssl_keyfile=keyfile,
        )
        self.server = uvicorn.Server(self.config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    def start(self) -> ServerThread:
        self.thread.start()
        deadline = time.time() + 10
        while not self.server.started:
            if time.time() > deadline or not self.thread.is_alive():
                raise RuntimeError(f"simulator on port {self.port} did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=5)


@dataclass
class Simulators:
    erp: Erp
    crm: Crm
    billing: Billing
    servers: dict[str, ServerThread]

    def env(self) -> dict[str, str]:
        """Environment for the bundled project: system URLs and the demo credentials."""
        return {
            "ERP_URL": self.servers["erp"].url,
            "CRM_URL": self.servers["crm"].url,
            "BILLING_URL": self.servers["billing"].url,
            **DEMO_CREDENTIALS,
        }

    def stop(self) -> None:
        for server in self.servers.values():
            server.stop()

    def connect_webhooks(self, syncline_url: str) -> None:
        """Point the CRM's and the ERP's change webhooks at a Syncline service."""
        self.crm.state.webhook_url = f"{syncline_url}/hooks/crm/accounts"
        self.crm.state.webhook_key = DEMO_CREDENTIALS["CRM_HOOK_KEY"]
        self.erp.state.webhook_url = f"{syncline_url}/hooks/erp/customers"
        self.erp.state.webhook_key = DEMO_CREDENTIALS["ERP_HOOK_KEY"]


def start_simulators(ports: dict[str, int] | None = None) -> Simulators:
    ports = ports or {}
    erp = Erp(DEMO_CREDENTIALS["ERP_CLIENT_ID"], DEMO_CREDENTIALS["ERP_CLIENT_SECRET"])
    crm = Crm(DEMO_CREDENTIALS["CRM_TOKEN"])
    billing = Billing(DEMO_CREDENTIALS["BILLING_API_KEY"])
    servers = {
        name: ServerThread(system.app(), ports.get(name)).start()
        for name, system in (("erp", erp), ("crm", crm), ("billing", billing))
    }
    return Simulators(erp, crm, billing, servers)
