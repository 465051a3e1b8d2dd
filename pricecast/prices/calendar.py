"""Which days an exchange trades, from `exchange_calendars`: a holiday is not a missing bar.

A ticker's calendar comes from the fetch config: its own entry (`calendars`), else its suffix
(`suffix_calendars`, `.NS` -> XNSE), else `default_calendar` (XNYS). A session's bar is due `bar_delay_hours`
after the session's close; a due session without a bar is missing.
"""

from __future__ import annotations

import difflib
from datetime import date, datetime, timedelta
from functools import lru_cache
from typing import Any

import pandas as pd

from pricecast.config_groups import FetchConfig
from pricecast.errors import DataError

#: Codes exchange_calendars does not carry under the name people use. NSE and BSE (Mumbai) share their trading
#: days and holidays; exchange_calendars has them as XBOM.
ALIASES = {"XNSE": "XBOM", "NSE": "XBOM"}

#: The earliest day a calendar is built from (exchange_calendars' own default is 20 years back).
EARLIEST = date(1990, 1, 1)


def calendar_code(ticker: str, config: FetchConfig) -> str:
    """The exchange calendar of a ticker: its entry in `calendars`, its suffix's, or `default_calendar`."""
    ticker = ticker.upper()
    if ticker in config.calendars:
        return config.calendars[ticker]
    for suffix, code in sorted(config.suffix_calendars.items(), key=lambda kv: -len(kv[0])):
        if ticker.endswith(suffix.upper()):
            return code.upper()
    return config.default_calendar.upper()


@lru_cache(maxsize=16)
def exchange(code: str, first_year: int = EARLIEST.year) -> Any:
    """The exchange_calendars calendar of `code` (XNYS, XNSE, XLON, ...) from `first_year` on.

    Raises:
        DataError: a code the package does not know, with the closest known ones.
    """
    import exchange_calendars as xcals

    names = xcals.get_calendar_names(include_aliases=True)
    name = ALIASES.get(code.upper(), code.upper())
    if name not in names:
        close = difflib.get_close_matches(name, names, n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise DataError(f"exchange calendar {code!r} is not one exchange_calendars knows{hint}")
    try:
        return xcals.get_calendar(name, start=f"{first_year}-01-01")
    except ValueError:  # the package records this exchange's holidays from a later year: from there on
        return xcals.get_calendar(name)


def _calendar_for(code: str, start: date) -> Any:
    return exchange(code.upper(), min(start.year, EARLIEST.year))


def sessions(code: str, start: date, end: date) -> list[date]:
    """The exchange's sessions from `start` to `end`, both included."""
    if end < start:
        return []
    cal = _calendar_for(code, start)
    start, last = max(start, cal.first_session.date()), min(end, cal.last_session.date())
    if last < start:
        return []
    return [d.date() for d in cal.sessions_in_range(pd.Timestamp(start), pd.Timestamp(last))]


def latest_due(code: str, now: datetime, delay_hours: float) -> date | None:
    """The latest session whose bar is due at `now` (an aware datetime): its close plus the delay has passed."""
    cal = _calendar_for(code, now.date() - timedelta(days=30))
    stamp = pd.Timestamp(now).tz_convert("UTC")
    for day in reversed(sessions(code, now.date() - timedelta(days=30), now.date() + timedelta(days=1))):
        if cal.session_close(pd.Timestamp(day)) + pd.Timedelta(hours=delay_hours) <= stamp:
            return day
    return None


def missing(code: str, have: pd.Series, start: date, end: date) -> list[date]:
    """Sessions from `start` to `end` without a bar in `have` (the store's dates)."""
    present = set(pd.to_datetime(have).dt.date)
    return [d for d in sessions(code, start, end) if d not in present]


def close_cron(code: str, delay_hours: float) -> tuple[str, str]:
    """A weekday cron at the exchange's (latest) close plus the delay, and its time zone: when the day's bars are due.

    XNYS with the default 1.5 hours is `30 17 * * 1-5` in America/New_York; XNSE is `0 17 * * 1-5` in Asia/Kolkata.
    """
    cal = exchange(code.upper())
    close = cal.close_times[-1][1]
    due = datetime.combine(date(2000, 1, 3), close) + timedelta(hours=delay_hours)
    days = "1-5" if due.date() == date(2000, 1, 3) else "2-6"  # a delay past midnight moves the weekdays on
    return f"{due.minute} {due.hour} * * {days}", str(cal.tz)
