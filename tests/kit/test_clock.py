"""kit.clock: the business-hour calendar every SLA is measured on."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from clearline.config import Settings
from clearline.kit.clock import BusinessCalendar, ensure_utc, parse_datetime

BERLIN = ZoneInfo("Europe/Berlin")
UTC = dt.UTC
CHRISTMAS = dt.date(2026, 12, 25)
CALENDAR = BusinessCalendar(timezone="Europe/Berlin", holidays=frozenset({CHRISTMAS}))


def berlin(year: int, month: int, day: int, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, tzinfo=BERLIN)


def in_berlin(value: dt.datetime) -> dt.datetime:
    return value.astimezone(BERLIN)


class TestAddHours:
    def test_hours_inside_one_business_day_are_added_as_they_are(self) -> None:
        assert CALENDAR.add_hours(berlin(2026, 11, 23, 10), 3) == berlin(2026, 11, 23, 13)

    def test_the_answer_is_in_utc(self) -> None:
        due = CALENDAR.add_hours(berlin(2026, 11, 23, 10), 1)
        assert due.tzinfo is UTC
        assert due == dt.datetime(2026, 11, 23, 10, tzinfo=UTC)

    def test_time_left_at_closing_carries_over_the_night(self) -> None:
        assert in_berlin(CALENDAR.add_hours(berlin(2026, 11, 23, 15), 4)) == berlin(2026, 11, 24, 11)

    def test_a_friday_afternoon_carries_over_the_weekend(self) -> None:
        assert in_berlin(CALENDAR.add_hours(berlin(2026, 11, 27, 16), 2)) == berlin(2026, 11, 30, 10)

    def test_a_start_on_a_saturday_counts_from_monday_morning(self) -> None:
        assert in_berlin(CALENDAR.add_hours(berlin(2026, 11, 28, 12), 1)) == berlin(2026, 11, 30, 10)

    def test_a_start_before_opening_counts_from_opening(self) -> None:
        assert in_berlin(CALENDAR.add_hours(berlin(2026, 11, 23, 7), 1)) == berlin(2026, 11, 23, 10)

    def test_a_start_at_closing_counts_from_the_next_morning(self) -> None:
        assert in_berlin(CALENDAR.add_hours(berlin(2026, 11, 23, 17), 1)) == berlin(2026, 11, 24, 10)

    def test_a_holiday_is_skipped_like_a_weekend(self) -> None:
        # Thursday 24 December, Friday 25th is a holiday, then the weekend.
        assert in_berlin(CALENDAR.add_hours(berlin(2026, 12, 24, 16), 2)) == berlin(2026, 12, 28, 10)

    def test_hours_that_fill_the_day_exactly_end_at_closing_time(self) -> None:
        assert in_berlin(CALENDAR.add_hours(berlin(2026, 11, 23, 9), 8)) == berlin(2026, 11, 23, 17)

    def test_the_24_hour_content_check_sla_spans_three_working_days(self) -> None:
        assert in_berlin(CALENDAR.add_hours(berlin(2026, 11, 23, 9), 24)) == berlin(2026, 11, 25, 17)

    def test_the_72_hour_rework_sla_started_on_a_friday_spans_two_weekends(self) -> None:
        assert in_berlin(CALENDAR.add_hours(berlin(2026, 11, 20, 9), 72)) == berlin(2026, 12, 2, 17)

    def test_the_local_business_day_is_kept_across_the_spring_clock_change(self) -> None:
        # Summer time starts on Sunday 29 March 2026: Friday is UTC+1, Monday UTC+2.
        due = CALENDAR.add_hours(berlin(2026, 3, 27, 16), 2)
        assert due == dt.datetime(2026, 3, 30, 8, tzinfo=UTC)
        assert in_berlin(due) == berlin(2026, 3, 30, 10)

    def test_a_naive_start_is_taken_as_utc(self) -> None:
        naive = dt.datetime(2026, 11, 23, 9)  # 10:00 in Berlin
        assert CALENDAR.add_hours(naive, 1) == dt.datetime(2026, 11, 23, 10, tzinfo=UTC)

    def test_fractions_of_an_hour_are_kept(self) -> None:
        assert in_berlin(CALENDAR.add_hours(berlin(2026, 11, 23, 16, 30), 0.75)) == berlin(2026, 11, 24, 9, 15)


class TestHoursBetween:
    def test_hours_inside_one_day_are_counted_as_they_are(self) -> None:
        assert CALENDAR.hours_between(berlin(2026, 11, 23, 10), berlin(2026, 11, 23, 12, 30)) == 2.5

    def test_the_night_does_not_count(self) -> None:
        assert CALENDAR.hours_between(berlin(2026, 11, 23, 16), berlin(2026, 11, 24, 10)) == 2

    def test_a_weekend_does_not_count(self) -> None:
        assert CALENDAR.hours_between(berlin(2026, 11, 27, 16), berlin(2026, 11, 30, 10)) == 2

    def test_a_holiday_does_not_count(self) -> None:
        assert CALENDAR.hours_between(berlin(2026, 12, 24, 9), berlin(2026, 12, 28, 17)) == 16

    def test_a_span_wholly_outside_business_hours_is_zero(self) -> None:
        assert CALENDAR.hours_between(berlin(2026, 11, 28, 8), berlin(2026, 11, 29, 20)) == 0

    def test_an_end_before_the_start_is_zero(self) -> None:
        assert CALENDAR.hours_between(berlin(2026, 11, 24, 12), berlin(2026, 11, 23, 12)) == 0

    def test_a_full_working_week_is_forty_hours(self) -> None:
        assert CALENDAR.hours_between(berlin(2026, 11, 23, 0), berlin(2026, 11, 30, 0)) == 40


class TestFromSettings:
    def test_the_calendar_follows_the_organisation_settings(self) -> None:
        settings = Settings(
            database_url="sqlite://",
            timezone="America/New_York",
            business_days=[0, 1, 2, 3],
            business_start=dt.time(8, 0),
            business_end=dt.time(12, 0),
            holidays=[dt.date(2026, 11, 26)],
        )
        calendar = BusinessCalendar.from_settings(settings)
        assert calendar.workdays == frozenset({0, 1, 2, 3})
        # Wednesday 25 November 11:00 New York + 2 h: Thursday is a holiday, Friday is no workday.
        start = dt.datetime(2026, 11, 25, 11, tzinfo=ZoneInfo("America/New_York"))
        assert calendar.add_hours(start, 2).astimezone(ZoneInfo("America/New_York")) == dt.datetime(
            2026, 11, 30, 9, tzinfo=ZoneInfo("America/New_York")
        )


class TestParsing:
    def test_a_trailing_z_is_utc(self) -> None:
        assert parse_datetime("2026-11-01T12:00:00Z") == dt.datetime(2026, 11, 1, 12, tzinfo=UTC)

    def test_an_offset_is_converted_to_utc(self) -> None:
        assert parse_datetime("2026-11-01T13:00:00+01:00") == dt.datetime(2026, 11, 1, 12, tzinfo=UTC)

    def test_a_value_without_offset_is_taken_as_utc(self) -> None:
        assert ensure_utc(dt.datetime(2026, 11, 1, 12)).tzinfo is UTC


# Properties, over a year that includes both clock changes and a holiday.
INSTANTS = st.datetimes(min_value=dt.datetime(2026, 1, 1), max_value=dt.datetime(2027, 1, 1), timezones=st.just(UTC))
HOURS = st.integers(min_value=0, max_value=200 * 60).map(lambda minutes: minutes / 60)
CALENDARS = st.sampled_from(
    [
        CALENDAR,
        BusinessCalendar(),
        BusinessCalendar(timezone="America/Los_Angeles", workdays=frozenset({1, 2, 3, 4, 5})),
        BusinessCalendar(timezone="Asia/Tokyo", start=dt.time(10, 30), end=dt.time(19, 15)),
    ]
)


def _inside_business_time(calendar: BusinessCalendar, instant: dt.datetime) -> bool:
    local = instant.astimezone(calendar.zone)
    return (
        local.weekday() in calendar.workdays
        and local.date() not in calendar.holidays
        and calendar.start <= local.time() <= calendar.end
    )


class TestCalendarProperties:
    @given(calendar=CALENDARS, start=INSTANTS, hours=HOURS)
    def test_hours_between_a_start_and_its_due_time_are_the_hours_added(
        self, calendar: BusinessCalendar, start: dt.datetime, hours: float
    ) -> None:
        due = calendar.add_hours(start, hours)
        assert calendar.hours_between(start, due) == pytest.approx(hours, abs=1e-6)

    @given(calendar=CALENDARS, start=INSTANTS, hours=HOURS)
    def test_a_due_time_always_falls_inside_business_hours(
        self, calendar: BusinessCalendar, start: dt.datetime, hours: float
    ) -> None:
        due = calendar.add_hours(start, hours)
        assert due >= start
        assert _inside_business_time(calendar, due)

    @given(calendar=CALENDARS, start=INSTANTS, first=HOURS, second=HOURS)
    def test_more_hours_never_give_an_earlier_due_time(
        self, calendar: BusinessCalendar, start: dt.datetime, first: float, second: float
    ) -> None:
        low, high = sorted((first, second))
        assert calendar.add_hours(start, low) <= calendar.add_hours(start, high)

    @given(calendar=CALENDARS, instants=st.lists(INSTANTS, min_size=3, max_size=3))
    def test_business_hours_add_up_over_consecutive_spans(
        self, calendar: BusinessCalendar, instants: list[dt.datetime]
    ) -> None:
        a, b, c = sorted(instants)
        whole = calendar.hours_between(a, c)
        assert whole == pytest.approx(calendar.hours_between(a, b) + calendar.hours_between(b, c), abs=1e-6)
        assert whole <= (c - a).total_seconds() / 3600 + 1e-6
