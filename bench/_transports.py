"""The egress-pinned aiohttp transport that was prototyped here now ships as
`connectors.http.aiohttp_transport.GuardedAiohttpTransport`; this name stays for the bench variants."""

from __future__ import annotations

from connectors.http.aiohttp_transport import GuardedAiohttpTransport, GuardedResolver

__all__ = ["GuardedAiohttpTransport", "GuardedResolver"]
