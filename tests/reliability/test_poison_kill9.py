"""Poison run (issue 8, item 1): a run whose execution takes its node down every time is not claimed
for ever. A real `syncline serve` on SQLite executes a flow whose one call hangs at the sink; each
time the call arrives the test kills the node (`kill -9`) and starts it again on the same store.
After `poison_after` claims in a row that died without journaling a step, the next claim (by yet
another process: the count lives in the store) dead-letters the run with reason `poison` instead
of executing it again: the sink sees exactly `poison_after` attempts.

Short: the project's default (3). Full: `serve --poison-after 5`, the command-line override.
Every wait is a wait-until on what the test observes (arrivals at the sink, the run's status).
"""

from __future__ import annotations

import textwrap
import threading
from pathlib import Path

import httpx
import pytest

from tests.reliability.node import Node, dead_letters, eventually, get_run
from tests.reliability.scale import SCALES
from tests.reliability.sink import Sink

LEASE = 1.0
HANG = 120.0  # the sink holds every delivery this long: the call is in flight when the node dies

CONNECTION = """\
kind: Connection
name: sink
type: http
system: sink
config:
  base_url: "{{ env('SINK_URL') }}"
  timeout: 120s
operations:
  deliver: {method: POST, path: /effects, body: "{{ params.body }}", entity: effect, effect: create}
"""
FLOW = """\
kind: Flow
name: deliver
trigger:
  webhook: {path: /hooks/events, idempotency_key: "{{ input.id }}"}
steps:
  - id: deliver
    call: sink.deliver
    with: {body: "{{ input }}"}
    timeout: 120s
    retry: {attempts: 1}
"""


class PoisonNode(Node):
    """A node started with `--poison-after N` when `poison_after` is set."""

    poison_after: int | None = None

    def command(self) -> list[str]:
        extra = [] if self.poison_after is None else ["--poison-after", str(self.poison_after)]
        return [*super().command(), *extra]


class Arrivals:
    """Counts deliveries as they arrive at the sink (before it answers, which it never does in time)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.count = 0

    def __call__(self, event_id: str, nth: int) -> tuple[int, dict[str, str]] | None:
        with self._lock:
            self.count += 1
        return None  # then the sink holds the answer (its delay)


def write(root: Path) -> Path:
    for folder in ("flows", "systems"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    (root / "syncline.yaml").write_text("kind: Project\nname: poison\n")
    (root / "systems" / "sink.yaml").write_text(CONNECTION)
    (root / "flows" / "deliver.yaml").write_text(textwrap.dedent(FLOW))
    return root


@pytest.mark.parametrize("scale", SCALES)
async def test_a_run_that_kills_its_node_every_time_ends_as_a_poison_dead_letter(scale: str, tmp_path: Path) -> None:
    poison_after = 3 if scale == "short" else 5
    project = write(tmp_path / "project")
    store = f"sqlite:///{tmp_path / 'store.db'}"
    arrivals = Arrivals()
    with Sink(delay=HANG, failure=arrivals) as sink:
        node = PoisonNode(project, store, tmp_path / "node.log", env={"SINK_URL": sink.url}, lease=LEASE, workers=2)
        if scale != "short":
            node.poison_after = poison_after  # else the project's default, 3
        try:
            node.start()
            await node.wait_ready()
            async with httpx.AsyncClient(timeout=10) as client:
                reply = await client.post(node.url + "/hooks/events", json={"id": "P-1"})
                assert reply.status_code == 202, reply.text
                run_id = reply.json()["run_id"]
                for attempt in range(1, poison_after + 1):

                    async def arrived(wanted: int = attempt) -> str | None:
                        return None if arrivals.count >= wanted else f"{arrivals.count} calls arrived, want {wanted}"

                    await eventually(arrived, timeout=30, interval=0.05)
                    node.kill()  # mid-call: nothing journaled for this claim
                    await node.restart()

                async def dead() -> str | None:
                    run = await get_run(client, node.url, run_id)
                    status = None if run is None else run["status"]
                    return None if status == "dead_lettered" else f"run {run_id} is {status}"

                await eventually(dead, timeout=30, interval=0.1)
                letters = await dead_letters(client, node.url)
                run = await get_run(client, node.url, run_id)
            assert arrivals.count == poison_after, (
                f"the run was executed again after its poison claims:\n{node.log_tail()}"
            )
            (letter,) = [d for d in letters if d["run_id"] == run_id]
            assert letter["reason"] == "poison", letter
            assert run is not None
            text = str(letter) + str(run)
            assert f"{poison_after} times in a row without journaling a step" in text, text
            assert await node.stop() == 0, f"graceful stop failed:\n{node.log_tail()}"
        finally:
            node.kill()
