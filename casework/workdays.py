"""Working days in China, and the clock every deadline is measured against.

Whether a date is a working day comes from the maintained ``chinese-calendar`` library: public
holidays (春节, 国庆 …) are off, and the weekend days the State Council moves to make up for them
(调休) are working days. The library only knows the years the State Council has published
(1.11.0: 2004–2026; the next year's schedule is usually announced in November). For a year it does
not know, :class:`WorkCalendar` falls back to Monday–Friday, logs that once per year, and says so
through :meth:`WorkCalendar.covers` — upgrade ``chinese-calendar`` when the new schedule is out.

Deadlines end at the end of a local (Beijing) day: "3 working days" after a Friday receipt is the
end of the third working day that follows it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import chinese_calendar

__all__ = ["BEIJING", "Clock", "MovableClock", "WorkCalendar", "system_clock"]

log = logging.getLogger(__name__)

BEIJING = ZoneInfo("Asia/Shanghai")
MAX_SCAN_DAYS = 400  # no run of days off is this long; stops a broken calendar from looping

Clock = Callable[[], datetime]
"""Answers the current time as an aware UTC datetime; tests pass a :class:`MovableClock`."""


def system_clock() -> datetime:
    return datetime.now(UTC)


class MovableClock:
    """A clock tests set and move forward: ``clock()`` answers the time it was set to."""

    def __init__(self, start: datetime) -> None:
        self.now = start.astimezone(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> datetime:
        self.now += delta
        return self.now

    def set(self, moment: datetime) -> None:
        self.now = moment.astimezone(UTC)


class WorkCalendar:
    """China's working days (holidays and make-up days), with a Monday–Friday fallback."""

    def __init__(self, zone: ZoneInfo = BEIJING) -> None:
        self.zone = zone
        self._warned: set[int] = set()

    def covers(self, year: int) -> bool:
        """Whether the library knows this year's holidays (otherwise weekends are the only days off)."""
        try:
            chinese_calendar.is_workday(date(year, 6, 1))
        except NotImplementedError:
            return False
        return True

    def is_workday(self, day: date) -> bool:
        try:
            return bool(chinese_calendar.is_workday(day))
        except NotImplementedError:
            if day.year not in self._warned:
                self._warned.add(day.year)
                log.warning(
                    "chinese-calendar has no holiday data for %d: counting Monday-Friday as working "
                    "days; upgrade chinese-calendar once the State Council publishes the year",
                    day.year,
                )
            return day.weekday() < 5

    def local_day(self, moment: datetime) -> date:
        return moment.astimezone(self.zone).date()

    def end_of(self, day: date) -> datetime:
        """The last instant of a local day, in UTC."""
        return datetime.combine(day, time(23, 59, 59), tzinfo=self.zone).astimezone(UTC)

    def same_working_day(self, start: datetime) -> datetime:
        """End of the day of ``start`` when it is a working day, else of the next working day."""
        day = self.local_day(start)
        for _ in range(MAX_SCAN_DAYS):
            if self.is_workday(day):
                return self.end_of(day)
            day += timedelta(days=1)
        raise RuntimeError("no working day within a year")

    def add_working_days(self, start: datetime, count: int) -> datetime:
        """End of the ``count``-th working day after the day of ``start`` (0: :meth:`same_working_day`)."""
        if count <= 0:
            return self.same_working_day(start)
        day, left = self.local_day(start), count
        for _ in range(MAX_SCAN_DAYS * max(1, count)):
            day += timedelta(days=1)
            if self.is_workday(day):
                left -= 1
                if left == 0:
                    return self.end_of(day)
        raise RuntimeError("working days ran out")

    def add_days(self, start: datetime, count: int) -> datetime:
        """End of the ``count``-th calendar day after the day of ``start`` (statutory "days")."""
        return self.end_of(self.local_day(start) + timedelta(days=count))

    def working_days_between(self, start: datetime, end: datetime) -> int:
        """Working days after the day of ``start`` up to and including the day of ``end``."""
        day, last, count = self.local_day(start), self.local_day(end), 0
        while day < last:
            day += timedelta(days=1)
            count += self.is_workday(day)
        return count
