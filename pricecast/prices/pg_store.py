"""The price store in PostgreSQL (psycopg 3): a team's shared store, with the CSV folder's rules.

- What is written was validated before (the readers return canonical frames).
- A date already stored with the very same values is ignored, a new date is added; a date already
  stored with other values refuses the whole write, naming both rows (the CSV store's `merge` checks it).
- One write is one transaction, so nothing is half-written.
- Several writers at once are safe: a transaction-scoped advisory lock per ticker serialises the
  writers of one ticker (other tickers go on in parallel), and the primary key backs it.

Forecasts are an append-only log, as the CSV store's `forecasts/<TICKER>.csv`.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from urllib.parse import urlsplit

import numpy as np
import pandas as pd

from pricecast.errors import DataError, StoreError
from pricecast.prices.parse import CANONICAL, PriceFile
from pricecast.prices.store import empty_frame, merge

SCHEMA = """
CREATE SCHEMA IF NOT EXISTS pricecast;
CREATE TABLE IF NOT EXISTS pricecast.prices (
    ticker text NOT NULL,
    date date NOT NULL,
    open double precision NOT NULL,
    high double precision NOT NULL,
    low double precision NOT NULL,
    close double precision NOT NULL,
    volume double precision,
    PRIMARY KEY (ticker, date)
);
CREATE TABLE IF NOT EXISTS pricecast.forecasts (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    made_at timestamptz NOT NULL,
    ticker text NOT NULL,
    as_of date NOT NULL,
    step integer NOT NULL,
    method text,
    date date NOT NULL,
    forecast double precision NOT NULL,
    naive double precision,
    actual double precision,
    error double precision,
    naive_error double precision,
    model text,
    version text,
    model_alias text,
    run_id text
);
CREATE INDEX IF NOT EXISTS forecasts_ticker ON pricecast.forecasts (ticker, id);
ALTER TABLE pricecast.forecasts ADD COLUMN IF NOT EXISTS method text;  -- direct / recursive, added later
ALTER TABLE pricecast.forecasts ADD COLUMN IF NOT EXISTS lower_80 double precision;  -- ranges, added later
ALTER TABLE pricecast.forecasts ADD COLUMN IF NOT EXISTS upper_80 double precision;
ALTER TABLE pricecast.forecasts ADD COLUMN IF NOT EXISTS lower_95 double precision;
ALTER TABLE pricecast.forecasts ADD COLUMN IF NOT EXISTS upper_95 double precision;
ALTER TABLE pricecast.forecasts ADD COLUMN IF NOT EXISTS range_method text;
"""

#: Advisory-lock namespace of this store (keeps clear of other users' locks in the same database).
LOCK_SPACE = "pricecast.prices"
_LOCK = "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))"


def libpq_url(url: str) -> str:
    """`postgresql+psycopg://…` (SQLAlchemy's spelling) as libpq takes it: `postgresql://…`."""
    scheme, rest = url.split("://", 1)
    return f"{scheme.split('+', 1)[0]}://{rest}"


class PostgresStore:
    """Prices and forecasts in PostgreSQL: `PostgresStore("postgresql://user@host:5432/db")`.

    One connection per call (a worker writes a few times per run; a pool is not worth its state), so
    an instance is cheap to pickle into a task; inside `lock()` this instance's calls share the
    connection that holds the store-wide lock. Advisory locks are released by commit, rollback or a
    dropped connection, so a killed worker never leaves one behind.
    """

    def __init__(self, url: str, connect_timeout: int = 10) -> None:
        self.url = libpq_url(url)
        self.connect_timeout = connect_timeout
        self._schema_ready = False
        self._guard = threading.RLock()
        self._held = None  # the connection holding lock(), and its thread
        self._held_by: int | None = None
        self._depth = 0

    def __repr__(self) -> str:
        return f"PostgresStore({self.where})"

    def __getstate__(self) -> dict:  # picklable into a process or a Dask worker, without its connection
        return {"url": self.url, "connect_timeout": self.connect_timeout}

    def __setstate__(self, state: dict) -> None:
        self.__init__(**state)

    @property
    def where(self) -> str:
        """The server and database, for messages (never a password)."""
        parts = urlsplit(self.url)
        return f"postgresql://{parts.hostname}:{parts.port or 5432}{parts.path}"

    def source(self, ticker: str) -> str:
        """Where a ticker's prices are, as a run's `data.source` tag shows it (no URL scheme: MLflow's
        dataset sources resolve none for PostgreSQL, and take a plain name)."""
        return f"pricecast.prices[{ticker}] in {self.where.removeprefix('postgresql://')}"

    @contextmanager
    def _connect(self) -> Iterator:
        """The connection `lock()` holds, else a new one (committed on success, rolled back on error)."""
        import psycopg

        if self._held is not None and self._held_by == threading.get_ident():
            yield self._held
            return
        try:
            conn = psycopg.connect(self.url, connect_timeout=self.connect_timeout)
        except psycopg.OperationalError as exc:
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise StoreError(f"price store {self.where} cannot be reached: {reason}") from None
        with conn:
            if not self._schema_ready:
                with conn.transaction():  # CREATE … IF NOT EXISTS races with itself: one at a time
                    conn.execute(_LOCK, ["pricecast.schema"])
                    conn.execute(SCHEMA)
                self._schema_ready = True
            yield conn

    def tickers(self) -> list[str]:
        """Every ticker with prices, in name order."""
        with self._connect() as conn:
            return [r[0] for r in conn.execute("SELECT DISTINCT ticker FROM pricecast.prices ORDER BY ticker")]

    def read(self, ticker: str) -> pd.DataFrame:
        """One ticker's canonical prices.

        Raises:
            DataError: the store has no prices for the ticker.
        """
        with self._connect() as conn:
            rows = conn.execute(
                f"SELECT {', '.join(CANONICAL)} FROM pricecast.prices WHERE ticker = %s ORDER BY date", [ticker]
            ).fetchall()
        if not rows:
            raise DataError(f"No prices for ticker {ticker!r} in the price store {self.where}")
        return _frame(rows)

    def merge(self, files: Iterable[PriceFile]) -> set[str]:
        """Merge price files into their tickers' prices in one transaction; returns the tickers that changed.

        Raises:
            DataError: a file gives a stored date (or a date of an earlier file) another value; names
                the file and both rows; nothing of any file is written.
        """
        by_ticker: dict[str, list[PriceFile]] = {}
        for prices in files:
            by_ticker.setdefault(prices.ticker, []).append(prices)
        if not by_ticker:
            return set()
        with self._connect() as conn, conn.transaction():
            if conn is not self._held:
                conn.execute("SELECT pg_advisory_xact_lock_shared(hashtextextended(%s, 0))", [LOCK_SPACE])
            for ticker in sorted(by_ticker):  # one order for every writer: no deadlock
                conn.execute(_LOCK, [f"{LOCK_SPACE}:{ticker}"])
            new = {ticker: self._new_rows(conn, ticker, group) for ticker, group in by_ticker.items()}  # all checked
            columns = ", ".join(["ticker", *CANONICAL])
            for ticker, rows in new.items():
                if rows.empty:
                    continue
                with conn.cursor().copy(f"COPY pricecast.prices ({columns}) FROM STDIN") as copy:
                    for row in rows.itertuples(index=False):
                        volume = None if np.isnan(row.volume) else row.volume
                        copy.write_row((ticker, row.date.date(), row.open, row.high, row.low, row.close, volume))
        return {ticker for ticker, rows in new.items() if not rows.empty}

    def _new_rows(self, conn, ticker: str, files: list[PriceFile]) -> pd.DataFrame:  # noqa: ANN001
        """The rows of `files` the store lacks; each file checked against the store and the files before it."""
        dates = sorted({d for f in files for d in f.frame["date"].dt.date})
        query = (
            f"SELECT {', '.join(CANONICAL)} FROM pricecast.prices WHERE ticker = %s AND date = ANY(%s) ORDER BY date"
        )
        stored = _frame(conn.execute(query, [ticker, dates]).fetchall())
        frame = stored
        for prices in files:
            frame = merge(frame, prices.frame, f"{ticker} in {self.where}", prices.source.rsplit("/", 1)[-1])
        return frame[~frame["date"].isin(stored["date"])]

    @contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the store-wide writer lock (re-entrant): a pass over incoming/ sees no other writer."""
        import psycopg

        with self._guard:
            self._depth += 1
            try:
                if self._depth > 1:
                    yield
                    return
                with self._connect() as conn:
                    conn.autocommit = True  # each merge inside is its own transaction
                    conn.execute("SELECT pg_advisory_lock(hashtextextended(%s, 0))", [LOCK_SPACE])
                    self._held, self._held_by = conn, threading.get_ident()
                    try:
                        yield
                    finally:
                        self._held = self._held_by = None
                        try:
                            conn.execute("SELECT pg_advisory_unlock(hashtextextended(%s, 0))", [LOCK_SPACE])
                        except psycopg.Error:
                            pass  # a dropped connection released it
            finally:
                self._depth -= 1

    def append_forecasts(self, ticker: str, rows: pd.DataFrame, columns: list[str]) -> str:
        """Append forecast rows in one transaction; returns where they went, for the run's log."""
        if not rows.empty:
            out = rows.assign(ticker=ticker)[columns]
            with self._connect() as conn, conn.transaction():
                with conn.cursor().copy(f"COPY pricecast.forecasts ({', '.join(columns)}) FROM STDIN") as copy:
                    for row in out.itertuples(index=False):
                        copy.write_row([_cell(v) for v in row])
        return f"pricecast.forecasts in {self.where} (ticker {ticker})"

    def read_forecasts(self, ticker: str) -> pd.DataFrame:
        """A ticker's forecasts in the order written, with text dates as the CSV file shows them."""
        with self._connect() as conn:
            cursor = conn.execute("SELECT * FROM pricecast.forecasts WHERE ticker = %s ORDER BY id", [ticker])
            frame = pd.DataFrame(cursor.fetchall(), columns=[c.name for c in cursor.description]).drop(columns="id")
        order = ["made_at", "ticker", "as_of", "step", "method", "date"]  # `method` sits last in an older table
        frame = frame[order + [c for c in frame.columns if c not in order]]
        frame["made_at"] = pd.to_datetime(frame["made_at"], utc=True).dt.strftime("%Y-%m-%dT%H:%M:%SZ")
        for column in ("as_of", "date"):
            frame[column] = pd.to_datetime(frame[column]).dt.strftime("%Y-%m-%d")
        return frame


def _frame(rows: Sequence[tuple]) -> pd.DataFrame:
    """Rows of the prices table as a canonical frame."""
    if not rows:
        return empty_frame()
    frame = pd.DataFrame(rows, columns=CANONICAL)
    frame["date"] = pd.to_datetime(frame["date"]).astype("datetime64[ns]")
    return frame.astype({c: "float64" for c in CANONICAL[1:]})


def _cell(value: object) -> object:
    """A forecast cell as COPY takes it: None for missing, text for timestamps."""
    if isinstance(value, str) or value is None:
        return value
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    return None if pd.isna(value) else value
