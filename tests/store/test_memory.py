"""`MemoryStore` passes the store contract."""

from __future__ import annotations

import pytest

from runtime.store.memory import MemoryStore
from tests.store.contract import MakeStore, StoreContract
from tests.store.outbox_contract import OutboxContract


class TestMemoryStore(StoreContract, OutboxContract):
    @pytest.fixture
    def make_store(self) -> MakeStore:
        return MemoryStore
