"""The web console of `syncline serve`, at /console: runs, lineage by business key, dead letters
and replay, holds, business exceptions and reconciliation results, rendered on the server.

`Console(service, admin, governance).routes()` is what the service's app mounts; see
`runtime/console/routes.py` for the pages and `runtime/console/auth.py` for sign-in and CSRF.
"""

from runtime.console.routes import Console

__all__ = ["Console"]
