"""Reliability tests R1–R4 and R6 (QUALITY.md): real `syncline serve` processes, real sockets,
loopback only, every wait bounded.

Short and full form — one test, two sizes:
  Every scenario is a single test parametrised with `scale.SCALES`: `short` and `full`. The `full`
  parameter carries `@pytest.mark.chaos`, so both forms are the same code at different sizes.

  `make test`   (plain `pytest`) runs every `short` case; each `full` case is skipped with the
                reason "full chaos run" — the same scenario has just run in its short form.
  `make chaos`  (`SYNCLINE_CHAOS=full pytest -m chaos tests`) selects only the `full` cases, and
                `SYNCLINE_CHAOS=full` lets them run.
  `SYNCLINE_CHAOS=full pytest tests/reliability` runs both forms.

  The skip is made in `pytest_runtest_setup` below, before any fixture of the test is set up, so a
  skipped full case never starts a server (module-scoped scenario fixtures included).

Scenarios that need PostgreSQL (R3, R4 on PostgreSQL) go through `tests.services.require_service`:
skipped with the reason when 127.0.0.1:5432 is unreachable, failed when
`SYNCLINE_REQUIRE_SERVICES=1`. Each makes its own database with a random name and drops it.

Every `syncline serve` a test starts is killed when the test ends (the `nodes` fixture).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.reliability.node import Node
from tests.reliability.pg import database
from tests.reliability.scale import CHAOS_ENV, chaos_full


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("chaos") is not None and not chaos_full():
        pytest.skip(f"full chaos run: `make chaos` ({CHAOS_ENV}=full); the short form of this scenario ran")


@pytest.fixture
def nodes() -> Iterator[Callable[..., Node]]:
    """Make `syncline serve` nodes (`Node` arguments); every one is killed at teardown."""
    made: list[Node] = []

    def make(*args: Any, **kwargs: Any) -> Node:
        node = Node(*args, **kwargs)
        made.append(node)
        return node

    yield make
    for node in made:
        node.kill()


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A new PostgreSQL database with a random name on 127.0.0.1:5432, dropped afterwards."""
    with database() as url:
        yield url
