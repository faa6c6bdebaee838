"""`syncline serve`: the ASGI app (webhooks, admin API, health, metrics), workers and triggers."""
