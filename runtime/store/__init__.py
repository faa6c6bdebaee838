"""Durable state: the `Store` protocol and its implementations (memory, SQLite, PostgreSQL)."""
