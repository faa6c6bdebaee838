"""The executor fixtures of tests/engine (a plan from YAML text; a harness on a memory store)."""

from tests.engine.conftest import harness, make_plan

__all__ = ["harness", "make_plan"]
