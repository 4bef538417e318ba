"""UTC time and the organisation's business-hour calendar (every SLA uses it)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

UTC = dt.UTC


def utcnow() -> dt.datetime:
    return dt.datetime.now(UTC)


def ensure_utc(value: dt.datetime) -> dt.datetime:
    """Treat a naive datetime as UTC (SQLite hands them back naive) and convert aware ones to UTC."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def parse_datetime(text: str) -> dt.datetime:
    """Parse ISO 8601 (a trailing Z allowed); a value without an offset is taken as UTC."""
    value = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    return ensure_utc(value)


@dataclass(frozen=True)
class BusinessCalendar:
    """Working hours in a time zone; ``add_hours`` counts only time inside them."""

    timezone: str = "UTC"
    workdays: frozenset[int] = frozenset({0, 1, 2, 3, 4})
    start: dt.time = dt.time(9, 0)
    end: dt.time = dt.time(17, 0)
    holidays: frozenset[dt.date] = field(default_factory=frozenset)

    @classmethod
    def from_settings(cls, settings: object) -> BusinessCalendar:
        return cls(
            timezone=settings.timezone,  # type: ignore[attr-defined]
            workdays=frozenset(settings.business_days),  # type: ignore[attr-defined]
            start=settings.business_start,  # type: ignore[attr-defined]
            end=settings.business_end,  # type: ignore[attr-defined]
            holidays=frozenset(settings.holidays),  # type: ignore[attr-defined]
        )

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def _is_workday(self, day: dt.date) -> bool:
        return day.weekday() in self.workdays and day not in self.holidays

    def _windows(self, local_start: dt.datetime) -> Iterable[tuple[dt.datetime, dt.datetime]]:
        day = local_start.date()
        for _ in range(3660):
            if self._is_workday(day):
                opens = dt.datetime.combine(day, self.start, tzinfo=self.zone)
                closes = dt.datetime.combine(day, self.end, tzinfo=self.zone)
                if closes > local_start:
                    yield max(opens, local_start), closes
            day += dt.timedelta(days=1)
        raise ValueError("business calendar has no working time in ten years")

    def add_hours(self, start: dt.datetime, hours: float) -> dt.datetime:
        """The UTC instant ``hours`` business hours after ``start``."""
        remaining = dt.timedelta(hours=hours)
        local = ensure_utc(start).astimezone(self.zone)
        for opens, closes in self._windows(local):
            available = closes - opens
            if remaining <= available:
                return (opens + remaining).astimezone(UTC)
            remaining -= available
        raise AssertionError("unreachable")

    def hours_between(self, start: dt.datetime, end: dt.datetime) -> float:
        """Business hours elapsed from ``start`` to ``end`` (0 if end is before start)."""
        start_local = ensure_utc(start).astimezone(self.zone)
        end_local = ensure_utc(end).astimezone(self.zone)
        if end_local <= start_local:
            return 0.0
        total = dt.timedelta()
        for opens, closes in self._windows(start_local):
            if opens >= end_local:
                break
            total += min(closes, end_local) - opens
        return total.total_seconds() / 3600
