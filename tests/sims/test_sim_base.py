"""The simulators' shared base: request log, injected faults (Python and HTTP), the vendor's rate-limit
answer, state and reset, over a real socket."""

from __future__ import annotations

from typing import Any

import httpx
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from runtime.demo.sims.base import Fault, VendorSim, json_response


class Echo(VendorSim):
    name = "echo"

    def seed(self) -> None:
        self.data = {"items": {"1": {"id": "1"}}}

    def vendor_routes(self) -> list[BaseRoute]:
        async def items(request: Request) -> Response:
            if request.method == "POST":
                number = str(self.next_number("items", start=2))
                self.data["items"][number] = {"id": number, **(await request.json())}
                return json_response(self.data["items"][number], 201)
            return json_response(list(self.data["items"].values()))

        return [Route("/items", items, methods=["GET", "POST"])]

    def rate_limited(self, fault: Fault) -> Response:
        return json_response({"code": "SLOW_DOWN"}, 429, {"Retry-After": "7"})


def test_faults_state_reset_and_request_log() -> None:
    with Echo() as sim, httpx.Client(base_url=sim.url) as client:
        assert client.post("/items", json={"name": "a"}).status_code == 201
        sim.inject(503, path="^/items$", method="POST", body={"down": True})
        failed = client.post("/items", json={"name": "b"})
        assert (failed.status_code, failed.json()) == (503, {"down": True})
        assert client.post("/items", json={"name": "c"}).status_code == 201  # times=1: only once
        sim.inject_rate_limit(times=2)
        limited = [client.get("/items") for _ in range(3)]
        assert [r.status_code for r in limited] == [429, 429, 200]
        assert limited[0].headers["retry-after"] == "7" and limited[0].json() == {"code": "SLOW_DOWN"}
        assert client.post("/_sim/faults", json={"status": 500, "path": "/items", "times": 1}).status_code == 200
        assert client.get("/items").status_code == 500
        state: Any = client.get("/_sim/state").json()
        assert sorted(state["data"]["items"]) == ["1", "2", "3"]
        assert [s.json() for s in sim.seen("POST", "^/items$")] == [{"name": "a"}, {"name": "b"}, {"name": "c"}]
        client.post("/_sim/reset")
        assert sorted(sim.data["items"]) == ["1"] and sim.requests == []
        assert client.post("/_sim/faults", json={"path": "x"}).status_code == 400


def test_simulators_are_found_by_module_name() -> None:
    from runtime.demo import sims

    assert "base" not in sims.available()
    for name in sims.available():
        assert issubclass(sims.load(name), VendorSim)


def test_every_simulator_starts_and_shows_its_state() -> None:
    from runtime.demo import sims

    for name in sims.available():
        with sims.load(name)() as sim:
            answer = httpx.get(sim.url + "/_sim/state")
            assert answer.status_code == 200 and answer.json()["name"] == name, name
