"""Triggers: what turns outside events (webhooks, schedules, polls, queues, files, events) into runs."""
