"""Fetch a ticker's new daily bars from a source into the store, on its exchange's calendar.

The source's rows are validated as a file is (the same parser and messages) and merged by the store's one
merge: a row that disagrees with the store is refused whole, both rows named, unless the source reports a
split after that day whose ratio explains it (then the store keeps its as-traded row and the event says so).
Nothing is written unless all of it is good. Each fetch leaves `data/fetch/<TICKER>.json` (what `pricecast
status` shows) and adds the source's splits and dividends to `data/events/<TICKER>.csv`.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pandas as pd

from pricecast.config_file import Paths
from pricecast.config_groups import FetchConfig
from pricecast.errors import DataError, FetchError
from pricecast.prices import calendar
from pricecast.prices.parse import CANONICAL, PriceFile
from pricecast.prices.remote import Source, parse_body
from pricecast.prices.store import to_csv_bytes, write_atomic
from pricecast.prices.stores import PriceStore

EVENT_COLUMNS = ["date", "kind", "value", "source", "note"]


@dataclass
class FetchReport:
    """What one ticker's fetch did, and the calendar's verdict on the store's bars afterwards."""

    ticker: str
    source: str
    calendar: str
    start: str
    end: str
    added: list[str] = field(default_factory=list)
    events: list[dict] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    status: str = "ok"  # ok | warning (a due bar is missing) | failed (missing_sessions or more are) | error
    note: str = ""

    def lines(self) -> list[str]:
        """What the command prints: the merge, then any events (the calendar's check is `check()`)."""
        if self.note:
            out = [f"{self.ticker}: {self.note}"]
        elif self.added:
            span = self.added[0] if len(self.added) == 1 else f"{self.added[0]} .. {self.added[-1]}"
            days = f"{len(self.added)} new day{'s' * (len(self.added) != 1)}"
            out = [f"{self.ticker}: {days} merged from {self.source} ({span})"]
        else:
            out = [
                f"{self.ticker}: nothing new from {self.source} ({self.start} .. {self.end}); the store is unchanged"
            ]
        return out + [
            f"{self.ticker}: {e['kind']} on {e['date']}: {e['value']:g} ({e['note'] or e['source']})"
            for e in self.events
        ]

    def check(self) -> str:
        shown = ", ".join(self.missing[:5]) + (f" and {len(self.missing) - 5} more" if len(self.missing) > 5 else "")
        word = "check failed" if self.status == "failed" else "warning"
        return f"{word}: no bar for {len(self.missing)} {self.calendar} session(s) due by now: {shown}"


def validated(frame: pd.DataFrame, name: str, ticker: str) -> pd.DataFrame:
    """A source's frame through the file parser (every rule of ingest), its event columns kept beside it."""
    if frame.empty:
        return frame
    missing = [c for c in CANONICAL if c not in frame]
    if missing:
        raise DataError(f"{name} answered without column {', '.join(map(repr, missing))} (it has {', '.join(frame)})")
    checked = parse_body(to_csv_bytes(frame), name, ticker)
    extra = frame[[c for c in ("dividend", "split") if c in frame]].set_index(pd.to_datetime(frame["date"]))
    extra = extra[~extra.index.duplicated()]  # a repeated row is dropped by the parser: its events once too
    return checked.join(extra, on="date") if not extra.empty else checked


def split_events(frame: pd.DataFrame, source: str) -> list[dict]:
    """The splits and dividends a source reported beside its bars."""
    events = []
    for kind, column, none in (("split", "split", {0.0, 1.0}), ("dividend", "dividend", {0.0})):
        if column in frame:
            for day, value in frame.loc[~frame[column].fillna(0.0).isin(none), ["date", column]].itertuples(False):
                events.append(
                    {"date": f"{day:%Y-%m-%d}", "kind": kind, "value": float(value), "source": source, "note": ""}
                )
    return events


def reconcile(stored: pd.DataFrame, fetched: pd.DataFrame, events: list[dict], source: str) -> pd.DataFrame:
    """Drop fetched rows that differ from the store only by a split the source reports after them (its history
    is split-adjusted, the store's as traded), noting it on the split's event; other differences stay, for the
    merge to refuse."""
    splits = [e for e in events if e["kind"] == "split"]
    if stored.empty or fetched.empty or not splits:
        return fetched
    both = fetched.merge(stored, on="date", suffixes=("", "_store"))
    explained = set()
    for event in splits:
        before = both[both["date"] < pd.Timestamp(event["date"])]
        ratio = before["close_store"] / before["close"]
        hits = before.loc[(ratio - event["value"]).abs() <= 0.01 * event["value"], "date"]
        if len(hits):
            explained |= set(hits)
            event["note"] = (
                f"{source}'s history before it is split-adjusted; the store keeps {len(hits)} day(s) as traded"
            )
    return fetched[~fetched["date"].isin(explained)].reset_index(drop=True)


def _append_events(path: Path, events: list[dict]) -> None:
    if not events:
        return
    old = pd.read_csv(path, dtype=str) if path.exists() else pd.DataFrame(columns=EVENT_COLUMNS)
    new = pd.DataFrame(events, columns=EVENT_COLUMNS).astype(str)
    both = pd.concat([old, new]).drop_duplicates(["date", "kind", "source"], keep="last").sort_values("date")
    write_atomic(path, both[EVENT_COLUMNS].to_csv(index=False, lineterminator="\n").encode())


def fetch_ticker(
    store: PriceStore,
    paths: Paths,
    ticker: str,
    source: Source,
    config: FetchConfig,
    start: date | None = None,
    end: date | None = None,
    now: datetime | None = None,
) -> FetchReport:
    """Fetch `ticker`'s bars from `start` (default: the day after the store's last) to `end` (default: the latest
    session whose bar is due at `now`) and merge them; then check the calendar's sessions against the store.

    The source is not asked when the calendar has no session in the range (a holiday, a weekend).

    Raises:
        DataError: a new ticker without `start`, a bad answer, or a row that conflicts with the store; the
            store is unchanged.
        FetchError: the source cannot be reached; the store is unchanged.
    """
    ticker, now = ticker.upper(), now or datetime.now(UTC)
    code = calendar.calendar_code(ticker, config)
    calendar.exchange(code)  # an unknown calendar is one line, before the source is asked
    stored = store.read(ticker) if ticker in store.tickers() else None
    if start is None:
        if stored is None or stored.empty:
            raise DataError(
                f"{ticker} is not in the store {store.where} yet: give --start YYYY-MM-DD for its first fetch"
            )
        start = stored["date"].max().date() + timedelta(days=1)
    end = end or calendar.latest_due(code, now, config.bar_delay_hours) or start - timedelta(days=1)
    report = FetchReport(ticker, source.name, code, start.isoformat(), end.isoformat())
    if start > end:
        report.note = (
            f"nothing to fetch: the store already has it up to {start - timedelta(days=1)} (asked up to {end})"
        )
        return _done(report, paths)
    if not calendar.sessions(code, start, end):
        report.note = (
            f"no {code} session due from {start} to {end} (a holiday, a weekend, or not due yet): nothing to fetch"
        )
        return _done(report, paths)
    try:
        after, before = _merge(store, ticker, source, stored, start, end, report)
    except (DataError, FetchError) as exc:  # said once by the caller; kept for `pricecast status`
        report.status, report.note = "error", str(exc)
        _done(report, paths)
        raise
    report.added = [f"{d:%Y-%m-%d}" for d in sorted(set(after["date"]) - before)]
    _append_events(paths.root / "data" / "events" / f"{ticker}.csv", report.events)
    report.missing = [d.isoformat() for d in calendar.missing(code, after["date"], start, end)]
    if report.missing:
        report.status = "failed" if len(report.missing) >= config.missing_sessions else "warning"
    return _done(report, paths)


def _merge(
    store: PriceStore,
    ticker: str,
    source: Source,
    stored: pd.DataFrame | None,
    start: date,
    end: date,
    report: FetchReport,
) -> tuple[pd.DataFrame, set]:
    """Ask the source, validate, set split-adjusted overlaps aside, merge: the ticker's prices after, dates before."""
    fetched = validated(source.fetch(ticker, start, end), source.name, ticker)
    if fetched.empty and stored is None:
        raise DataError(f"{source.name} returned no bars for {ticker} from {start} to {end}: an unknown ticker?")
    report.events = split_events(fetched, source.name)
    fetched = reconcile(stored if stored is not None else fetched.iloc[:0], fetched, report.events, source.name)
    with store.lock():
        before = set(stored["date"]) if stored is not None else set()
        if not fetched.empty:
            store.merge([PriceFile(ticker, fetched[CANONICAL], source.name)])
        return (store.read(ticker) if ticker in store.tickers() else fetched[CANONICAL]), before


def _done(report: FetchReport, paths: Paths) -> FetchReport:
    record = {**asdict(report), "at": datetime.now(UTC).isoformat(timespec="seconds")}
    write_atomic(state_file(paths, report.ticker), json.dumps(record, indent=1).encode())
    return report


def state_file(paths: Paths, ticker: str) -> Path:
    return paths.root / "data" / "fetch" / f"{ticker.upper()}.json"


def last_fetch(paths: Paths, ticker: str) -> str | None:
    """`pricecast status`'s line on a ticker's last fetch, None when it was never fetched."""
    path = state_file(paths, ticker)
    if not path.exists():
        return None
    r = json.loads(path.read_text())
    if r["status"] == "error":
        return f"  last fetch: {r['at']} from {r['source']} ({r['calendar']}): failed: {r['note']}"
    said = FetchReport(**{k: v for k, v in r.items() if k != "at"})
    verdict = said.check() if said.missing else "every due session has its bar"
    return f"  last fetch: {r['at']} from {r['source']} ({r['calendar']}): {len(r['added'])} new day(s); {verdict}"
