"""A limit on failed console sign-ins per client address, so tokens cannot be guessed at speed.

After `attempts` failed sign-ins from one address within `window` seconds, that address's sign-ins
are answered 429 with `Retry-After` (whole seconds until its oldest counted failure leaves the
window), whatever token it sends, until then. Only wrong tokens count (not expired forms), and a
right token does not clear the count. The state is per node and in memory: at most `max_clients`
addresses are remembered (the least recently failing are forgotten first), so a flood of addresses
cannot grow it without bound. Time comes from the given function (the service's clock), so tests
move it without waiting.
"""

from __future__ import annotations

import math
from collections import OrderedDict, deque
from collections.abc import Callable

ATTEMPTS = 10
WINDOW = 60.0
MAX_CLIENTS = 10_000


class SignInLimiter:
    """Failed sign-ins per client address over a sliding window."""

    def __init__(
        self,
        time: Callable[[], float],
        *,
        attempts: int = ATTEMPTS,
        window: float = WINDOW,
        max_clients: int = MAX_CLIENTS,
    ) -> None:
        self.time = time
        self.attempts = attempts
        self.window = window
        self.max_clients = max_clients
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def retry_after(self, client: str) -> int | None:
        """Seconds `client` must wait before signing in again; None when it may try now."""
        failures = self._recent(client)
        if failures is None or len(failures) < self.attempts:
            return None
        return max(1, math.ceil(failures[0] + self.window - self.time()))

    def failed(self, client: str) -> None:
        """Count a failed sign-in from `client`."""
        failures = self._recent(client)
        if failures is None:
            failures = self._failures[client] = deque(maxlen=self.attempts)
        failures.append(self.time())
        self._failures.move_to_end(client)
        while len(self._failures) > self.max_clients:
            self._failures.popitem(last=False)

    def _recent(self, client: str) -> deque[float] | None:
        """`client`'s failures still inside the window (the older ones dropped)."""
        failures = self._failures.get(client)
        if failures is None:
            return None
        oldest = self.time() - self.window
        while failures and failures[0] <= oldest:
            failures.popleft()
        if not failures:
            del self._failures[client]
            return None
        return failures
