"""Step tests reuse the executor harness: a plan from YAML text, a memory store, mocks and a test clock."""

from tests.engine.conftest import harness, make_plan

__all__ = ["harness", "make_plan"]
