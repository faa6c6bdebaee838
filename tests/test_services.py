"""`tests.services.require_service`: skip when a server is missing, fail instead when CI requires it."""

from __future__ import annotations

import pytest

from tests.services import REQUIRE_ENV, require_service


def test_reachable_service_passes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(REQUIRE_ENV, "1")
    assert require_service("postgresql", True, "up") is None  # returns: neither skipped nor failed


def test_unreachable_service_skips_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(REQUIRE_ENV, raising=False)
    with pytest.raises(pytest.skip.Exception, match=r"postgresql unreachable \(refused\)"):
        require_service("postgresql", False, "refused")


def test_unreachable_service_fails_when_required(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(REQUIRE_ENV, "1")
    with pytest.raises(pytest.fail.Exception, match=r"required .* but unreachable: refused"):
        require_service("postgresql", False, "refused")
