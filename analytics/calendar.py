"""The centre's calendar: Chinese public holidays, make-up workdays (调休) and office hours.

From the State Council's yearly notices (国务院办公厅关于部分节假日安排的通知) for 2025 and 2026; add
a year's line when its notice is published. Years not listed fall back to Monday–Friday.
"""
from __future__ import annotations

import datetime as dt
from functools import lru_cache

HOLIDAYS: dict[int, list[tuple[str, str]]] = {
    2025: [("2025-01-01", "2025-01-01"), ("2025-01-28", "2025-02-04"), ("2025-04-04", "2025-04-06"), ("2025-05-01", "2025-05-05"),
           ("2025-05-31", "2025-06-02"), ("2025-10-01", "2025-10-08")],
    2026: [("2026-01-01", "2026-01-03"), ("2026-02-15", "2026-02-23"), ("2026-04-04", "2026-04-06"), ("2026-05-01", "2026-05-05"),
           ("2026-06-19", "2026-06-21"), ("2026-09-25", "2026-09-27"), ("2026-10-01", "2026-10-07")],
}
MAKEUP_WORKDAYS = {"2025-01-26", "2025-02-08", "2025-04-27", "2025-09-28", "2025-10-11",
                   "2026-01-04", "2026-02-14", "2026-02-28", "2026-05-09", "2026-09-20", "2026-10-10"}
OFFICE_HOURS = range(8, 18)  # 08:00–17:59, when the service centre's halls and phones are busiest


@lru_cache(maxsize=4096)
def is_holiday(day: dt.date) -> bool:
    """A public holiday day off."""
    return any(dt.date.fromisoformat(a) <= day <= dt.date.fromisoformat(b) for a, b in HOLIDAYS.get(day.year, []))


@lru_cache(maxsize=4096)
def is_workday(day: dt.date) -> bool:
    """A working day: a weekday that is not a holiday, or a make-up weekend workday."""
    return day.isoformat() in MAKEUP_WORKDAYS or (day.isoweekday() <= 5 and not is_holiday(day))


def is_office_hour(at: dt.datetime) -> bool:
    """An office hour of a working day."""
    return at.hour in OFFICE_HOURS and is_workday(at.date())
