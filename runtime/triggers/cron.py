"""Schedule triggers' clock: cron and interval fire times on APScheduler 3's triggers (the only module
importing it).

Cron strings use the standard five fields with standard day-of-week numbers (0 or 7 = Sunday);
APScheduler 3 numbers weekdays from Monday, so numeric weekdays are translated to names first.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.triggers.cron import CronTrigger

_DOW_NAMES = ["sun", "mon", "tue", "wed", "thu", "fri", "sat", "sun"]
_NUM = re.compile(r"\d+")


class ScheduleError(ValueError):
    """A cron expression or timezone that cannot be used."""


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ScheduleError(f"unknown timezone {name!r}") from None


def _translate_dow(field: str) -> str:
    def name(match: re.Match[str]) -> str:
        number = int(match.group(0))
        if number > 7:
            raise ScheduleError(f"day of week {number} is out of range 0-7")
        return _DOW_NAMES[number]

    parts = []
    for part in field.split(","):
        base, _, step = part.partition("/")
        base = _NUM.sub(name, base) if base != "*" else base
        parts.append(base + (f"/{step}" if step else ""))
    return ",".join(parts)


def cron_trigger(expression: str, timezone: str = "UTC") -> CronTrigger:
    """An APScheduler trigger for a standard five-field cron expression."""
    fields = expression.split()
    if len(fields) != 5:
        raise ScheduleError(f"cron needs 5 fields (minute hour day month weekday), got {len(fields)}")
    minute, hour, day, month, dow = fields
    tz = zone(timezone)
    try:
        return CronTrigger(minute=minute, hour=hour, day=day, month=month, day_of_week=_translate_dow(dow), timezone=tz)
    except ValueError as exc:
        raise ScheduleError(f"invalid cron {expression!r}: {exc}") from None


def next_fire(expression: str, timezone: str, after: datetime) -> datetime | None:
    """The first fire time strictly after `after` (timezone-aware)."""
    trigger = cron_trigger(expression, timezone)
    fire: datetime | None = trigger.get_next_fire_time(None, after)
    return fire


_EPOCH = datetime(2020, 1, 1, tzinfo=zone("UTC"))


def latest_fire(trigger: Any, now: datetime, horizon: float = 3600.0) -> datetime | None:
    """The trigger's last fire time at or before `now` (the fire being run).

    Interval fires are computed exactly from the fixed start (any interval, however short); cron
    fires are searched from `now - horizon` (APScheduler runs a fire at most its misfire grace late,
    so the caller passes that grace as the horizon).
    """
    from datetime import timedelta

    from apscheduler.triggers.interval import IntervalTrigger

    if isinstance(trigger, IntervalTrigger):
        start: datetime = trigger.start_date
        if now < start:
            return None
        fire: datetime = start + ((now - start) // trigger.interval) * trigger.interval
        return fire
    probe = trigger.get_next_fire_time(None, now - timedelta(seconds=horizon))
    last: datetime | None = None
    for _ in range(100_000):
        if probe is None or probe > now:
            break
        last = probe
        probe = trigger.get_next_fire_time(probe, probe + timedelta(microseconds=1))
    return last


def fire_trigger(cron: str | None, every: float | None, timezone: str) -> Any:
    """The APScheduler trigger computing a schedule's fire times: the cron expression, or the interval
    counted from a fixed epoch (so that every node computes the same fire times)."""
    from apscheduler.triggers.interval import IntervalTrigger

    if cron:
        return cron_trigger(cron, timezone)
    return IntervalTrigger(seconds=every or 60, start_date=_EPOCH, timezone=zone(timezone))


def next_fire_after(trigger: Any, after: datetime) -> datetime | None:
    """The trigger's first fire time strictly after `after` (None: it never fires again)."""
    from datetime import timedelta

    fire: datetime | None = trigger.get_next_fire_time(None, after + timedelta(microseconds=1))
    return fire
