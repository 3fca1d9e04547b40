"""Schedules: `cron:<5 fields>`, `every:<seconds>`, `at:<ISO time>`, each read in an IANA zone.

Times cross this module's edge as aware datetimes; the store keeps them as Unix seconds.
Cron slots come from cronsim, which follows Debian cron across DST changes: a slot in
the spring-forward gap fires when the gap ends, a slot in the repeated autumn hour once.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

from deskloop.errors import DeskloopError

ScheduleKind = Literal["cron", "every", "at"]
SCHEDULE_KINDS: tuple[ScheduleKind, ...] = ("cron", "every", "at")
CRON_FIELDS = ("minute", "hour", "day-of-month", "month", "day-of-week")
CRON_RANGES = ("0-59", "0-23", "1-31", "1-12 or jan-dec", "0-7 or sun-sat")
SCHEDULE_EXAMPLES = "cron:0 9 * * 1-5, every:3600 or at:2026-12-24T18:00"
# Counting missed cron slots stops here; "at least" is enough to say in a run's row.
MISSED_COUNT_LIMIT = 1000


class ScheduleError(DeskloopError):
    """A schedule or time zone that cannot be used; the message says what to write instead."""


@dataclass(frozen=True)
class Schedule:
    """A parsed schedule in its zone; `spec` is the text after the colon, tidied."""

    kind: ScheduleKind
    spec: str
    zone: ZoneInfo

    def __str__(self) -> str:
        return f"{self.kind}:{self.spec}"

    @property
    def zone_name(self) -> str:
        return self.zone.key

    def first_fire(self, now: datetime) -> datetime | None:
        """When a routine created (or changed) at `now` first fires."""
        if self.kind == "at":
            return self.at_time.astimezone(UTC)
        return self.next_fire(now)

    def next_fire(self, after: datetime) -> datetime | None:
        """The first fire strictly after `after` (for `every:`, `after` is the last run's end).

        Arithmetic is in UTC: Python adds and compares two times of one zone by the wall
        clock, which is off by an hour across a DST change.
        """
        after = after.astimezone(UTC)
        if self.kind == "every":
            return after + timedelta(seconds=int(self.spec))
        if self.kind == "at":
            when = self.at_time.astimezone(UTC)
            return when if when > after else None
        return next(CronSim(self.spec, after.astimezone(self.zone))).astimezone(UTC)

    def missed_fires(self, slot: datetime, now: datetime) -> int:
        """How many fires fell in [slot, now]: what a catch-up run stands for."""
        if self.kind == "at":
            return 1
        slot, now = slot.astimezone(UTC), now.astimezone(UTC)
        if self.kind == "every":
            return 1 + int((now - slot).total_seconds() // int(self.spec))
        count = 1
        for later in CronSim(self.spec, slot.astimezone(self.zone)):
            if later.astimezone(UTC) > now or count >= MISSED_COUNT_LIMIT:
                break
            count += 1
        return count

    @property
    def at_time(self) -> datetime:
        when = datetime.fromisoformat(self.spec)
        return when if when.tzinfo is not None else when.replace(tzinfo=self.zone)


def machine_zone_name() -> str:
    """The IANA name of this machine's zone: $TZ, the /etc/localtime link, /etc/timezone, else UTC."""
    candidates = [os.environ.get("TZ", "").removeprefix(":")]
    localtime = Path("/etc/localtime")
    if localtime.is_symlink():
        target = str(localtime.resolve())
        if "zoneinfo/" in target:
            candidates.append(target.split("zoneinfo/", 1)[1])
    with contextlib.suppress(OSError):
        candidates.append(Path("/etc/timezone").read_text(encoding="utf-8").strip())
    for name in candidates:
        if name and _zone_or_none(name) is not None:
            return name
    return "UTC"


def _zone_or_none(name: str) -> ZoneInfo | None:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return None


def parse_zone(name: str | None) -> ZoneInfo:
    """An IANA zone by name; empty or None means the machine's own zone."""
    if not name:
        return ZoneInfo(machine_zone_name())
    zone = _zone_or_none(name)
    if zone is None:
        raise ScheduleError(
            f"unknown time zone {name!r}: give an IANA name such as Europe/Paris, "
            "America/New_York or UTC"
        )
    return zone


def parse_schedule(
    text: str, zone_name: str | None = None, *, now: datetime | None = None
) -> Schedule:
    """Parse `text` in the zone `zone_name` (default: the machine's).

    With `now`, an `at:` time that is not in the future is refused (a new or changed
    routine); without it, a past `at:` is accepted (a stored routine that missed its time).
    """
    zone = parse_zone(zone_name)
    kind, colon, spec = text.strip().partition(":")
    kind = kind.strip().lower()
    spec = spec.strip()
    if not colon or kind not in SCHEDULE_KINDS:
        raise ScheduleError(
            f"unknown schedule {text!r}: write cron:<5 fields>, every:<seconds> or "
            f"at:<ISO time>, e.g. {SCHEDULE_EXAMPLES}"
        )
    if kind == "cron":
        return Schedule("cron", _checked_cron(spec, zone), zone)
    if kind == "every":
        return Schedule("every", _checked_every(spec), zone)
    schedule = Schedule("at", _checked_at(spec), zone)
    if now is not None and schedule.at_time <= now:
        raise ScheduleError(
            f"at:{spec} is in the past (it is now "
            f"{now.astimezone(zone).isoformat(timespec='minutes')} in {zone.key}); "
            "give a time in the future"
        )
    return schedule


def _checked_cron(spec: str, zone: ZoneInfo) -> str:
    fields = spec.split()
    if len(fields) != len(CRON_FIELDS):
        raise ScheduleError(
            f"cron:{spec} has {len(fields)} fields; a cron schedule has 5: "
            f"{' '.join(CRON_FIELDS)}, e.g. cron:0 9 * * 1-5 (09:00 on weekdays)"
        )
    try:
        CronSim(" ".join(fields), datetime.now(zone))
    except CronSimError as exc:
        said = str(exc).removeprefix("Bad ").strip()
        for index, name in enumerate(CRON_FIELDS):
            if said == name:
                raise ScheduleError(
                    f"invalid cron field {name}: {fields[index]!r} in cron:{spec} "
                    f"(allowed: {CRON_RANGES[index]}, with * , - and /)"
                ) from exc
        raise ScheduleError(f"invalid cron schedule cron:{spec}: {exc}") from exc
    return " ".join(fields)


def _checked_every(spec: str) -> str:
    if not spec.isdigit() or int(spec) < 1:
        raise ScheduleError(
            f"every:{spec} is not a whole number of seconds above 0; write e.g. every:3600 "
            "(an hour, counted from the end of the previous run)"
        )
    return str(int(spec))


def _checked_at(spec: str) -> str:
    try:
        datetime.fromisoformat(spec)
    except ValueError as exc:
        raise ScheduleError(
            f"at:{spec} is not an ISO 8601 time; write e.g. at:2026-12-24T18:00 "
            "(in the routine's zone) or at:2026-12-24T18:00+01:00"
        ) from exc
    return spec
