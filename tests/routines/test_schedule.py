"""Schedule parsing and next-fire times with an injected clock: DST, month ends, zones."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from deskloop.routines.schedule import ScheduleError, machine_zone_name, parse_schedule

NEW_YORK = ZoneInfo("America/New_York")
PARIS = ZoneInfo("Europe/Paris")


def fires(spec: str, zone: str, start: datetime, count: int) -> list[datetime]:
    schedule = parse_schedule(spec, zone)
    found, after = [], start
    for _ in range(count):
        nxt = schedule.next_fire(after)
        assert nxt is not None
        found.append(nxt)
        after = nxt
    return found


def test_cron_follows_the_routine_zone_not_utc() -> None:
    start = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
    (paris,) = fires("cron:0 9 * * *", "Europe/Paris", start, 1)
    (new_york,) = fires("cron:0 9 * * *", "America/New_York", start, 1)
    assert paris.astimezone(PARIS).replace(tzinfo=None) == datetime(2026, 6, 2, 9, 0)
    assert paris.astimezone(UTC).hour == 7  # CEST is UTC+2 in June
    assert new_york.astimezone(NEW_YORK).replace(tzinfo=None) == datetime(2026, 6, 1, 9, 0)
    assert new_york.astimezone(UTC).hour == 13


def test_a_slot_in_the_spring_gap_fires_when_the_gap_ends_and_then_daily() -> None:
    # 2026-03-08 02:00 does not exist in New York: clocks jump to 03:00.
    start = datetime(2026, 3, 7, 12, 0, tzinfo=NEW_YORK)
    got = fires("cron:30 2 * * *", "America/New_York", start, 3)
    assert [d.astimezone(NEW_YORK).strftime("%m-%d %H:%M") for d in got] == [
        "03-08 03:00",
        "03-09 02:30",
        "03-10 02:30",
    ]


def test_the_repeated_autumn_hour_fires_once_for_a_daily_slot_and_twice_hourly() -> None:
    # 2026-11-01 01:00-02:00 happens twice in New York.
    start = datetime(2026, 10, 31, 12, 0, tzinfo=NEW_YORK)
    daily = fires("cron:30 1 * * *", "America/New_York", start, 2)
    assert [d.astimezone(UTC) for d in daily] == [
        datetime(2026, 11, 1, 5, 30, tzinfo=UTC),  # the first 01:30 (EDT)
        datetime(2026, 11, 2, 6, 30, tzinfo=UTC),
    ]
    hourly = fires(
        "cron:0 * * * *", "America/New_York", datetime(2026, 11, 1, 0, 30, tzinfo=NEW_YORK), 3
    )
    utc = [d.astimezone(UTC) for d in hourly]
    gaps = [(b - a) for a, b in itertools.pairwise(utc)]
    assert gaps == [timedelta(hours=1), timedelta(hours=1)]  # real hours, both 01:00s


def test_month_ends_skip_months_without_the_day_and_leap_years_count() -> None:
    start = datetime(2026, 1, 31, 12, 0, tzinfo=UTC)
    got = fires("cron:0 0 31 * *", "UTC", start, 3)
    assert [d.month for d in got] == [3, 5, 7]
    feb29 = fires("cron:0 12 29 2 *", "UTC", start, 1)[0]
    assert feb29.year == 2028


def test_every_counts_from_the_given_end_and_ignores_wall_clock_changes() -> None:
    schedule = parse_schedule("every:3600", "America/New_York")
    end_of_run = datetime(2026, 3, 8, 1, 30, tzinfo=NEW_YORK)  # just before the jump
    nxt = schedule.next_fire(end_of_run)
    assert nxt is not None and nxt - end_of_run == timedelta(hours=1)
    assert nxt.astimezone(NEW_YORK).hour == 3  # one real hour later reads 03:30


def test_at_reads_a_naive_time_in_the_routine_zone_and_fires_once() -> None:
    now = datetime(2026, 12, 1, tzinfo=UTC)
    schedule = parse_schedule("at:2026-12-24T18:00", "Europe/Paris", now=now)
    assert schedule.first_fire(now) == datetime(2026, 12, 24, 17, 0, tzinfo=UTC)
    assert schedule.next_fire(datetime(2026, 12, 24, 18, 0, tzinfo=UTC)) is None


def test_at_in_the_past_is_refused_for_a_new_routine_but_readable_when_stored() -> None:
    now = datetime(2026, 12, 1, tzinfo=UTC)
    with pytest.raises(ScheduleError, match="in the past"):
        parse_schedule("at:2026-11-30T23:00", "UTC", now=now)
    assert parse_schedule("at:2026-11-30T23:00", "UTC").kind == "at"


@pytest.mark.parametrize(
    ("spec", "said"),
    [
        ("cron:61 * * * *", "invalid cron field minute: '61'"),
        ("cron:0 24 * * *", "invalid cron field hour: '24'"),
        ("cron:0 0 32 * *", "invalid cron field day-of-month: '32'"),
        ("cron:0 0 1 13 *", "invalid cron field month: '13'"),
        ("cron:0 0 * * mon-xyz", "invalid cron field day-of-week: 'mon-xyz'"),
        ("cron:0 0 * *", "has 4 fields"),
        ("every:0", "whole number of seconds"),
        ("every:ten", "whole number of seconds"),
        ("at:next tuesday", "not an ISO 8601 time"),
        ("weekly", "cron:<5 fields>, every:<seconds> or at:<ISO time>"),
    ],
)
def test_bad_schedules_say_what_is_wrong(spec: str, said: str) -> None:
    with pytest.raises(ScheduleError, match=None) as caught:
        parse_schedule(spec, "UTC")
    assert said in str(caught.value)


def test_an_unknown_zone_names_itself() -> None:
    with pytest.raises(ScheduleError) as caught:
        parse_schedule("every:60", "Mars/Olympus_Mons")
    assert "'Mars/Olympus_Mons'" in str(caught.value)


def test_the_default_zone_is_the_machine_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    assert machine_zone_name() == "Asia/Tokyo"
    assert parse_schedule("cron:0 9 * * *").zone_name == "Asia/Tokyo"


def test_missed_fires_are_counted_for_a_catch_up() -> None:
    schedule = parse_schedule("cron:0 * * * *", "UTC")
    slot = datetime(2026, 1, 1, 0, 0, tzinfo=UTC)
    assert schedule.missed_fires(slot, datetime(2026, 1, 1, 5, 30, tzinfo=UTC)) == 6
    every = parse_schedule("every:600", "UTC")
    assert every.missed_fires(slot, slot + timedelta(minutes=35)) == 4
