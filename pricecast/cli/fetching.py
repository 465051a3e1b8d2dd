"""`pricecast fetch TICKER ... [--source NAME|URL] [--start DATE] [--end DATE]`: new bars into the store, no Prefect."""

from __future__ import annotations

import argparse
import sys
from datetime import date

from pricecast.config import Config
from pricecast.errors import DataError, FetchError

#: Exit code of a fetch whose calendar check failed (bars missing for `missing_sessions` sessions or more).
CHECK_FAILED = 3
#: Which exit wins when tickers end differently, least severe first: bad input above an unreachable source above
#: a failed check.
SEVERITY = (0, CHECK_FAILED, 1, 2)


def fetch_args(p: argparse.ArgumentParser) -> None:
    day = date.fromisoformat
    p.add_argument(
        "--source",
        dest="fetch.source",
        default=argparse.SUPPRESS,
        metavar="NAME|URL",
        help="yahoo, stooq, a registered name, or an http(s)/file URL of a CSV (the config's fetch.source)",
    )
    p.add_argument("tickers", nargs="*", metavar="TICKER", help="tickers (default: --ticker, else every one stored)")
    p.add_argument("--start", type=day, metavar="YYYY-MM-DD", help="first day (default: after the store's last)")
    p.add_argument("--end", type=day, metavar="YYYY-MM-DD", help="last day (default: the latest session due now)")


def cmd_fetch(config: Config, args: argparse.Namespace) -> int:
    """Fetch each ticker in turn; one line per outcome. Exit: 0 merged or nothing new, 1 a source unreachable,
    2 bad input (a bad answer, a conflict, an unknown ticker or calendar), 3 a failed calendar check."""
    from pricecast.prices.fetch import fetch_ticker
    from pricecast.prices.sourcing import source_for
    from pricecast.prices.stores import open_store

    source = source_for(config.fetch.source, config.fetch)
    store = open_store(config)
    tickers = [t.upper() for t in args.tickers] or ([config.data.ticker] if config.data.ticker else store.tickers())
    if not tickers:
        raise DataError(f"no tickers in {store.where}: name one, e.g. `pricecast fetch AAPL --start 2024-01-02`")
    codes = [0]
    for ticker in tickers:
        try:
            report = fetch_ticker(store, config.paths(), ticker, source, config.fetch, args.start, args.end)
        except (DataError, FileNotFoundError) as exc:
            print(f"pricecast: {exc}", file=sys.stderr)
            codes.append(2)
            continue
        except FetchError as exc:
            print(f"pricecast: {exc}", file=sys.stderr)
            codes.append(1)
            continue
        print("\n".join(report.lines()), flush=True)
        if report.missing:
            print(f"pricecast: {ticker}: {report.check()}", file=sys.stderr)
        if report.status == "failed":
            codes.append(CHECK_FAILED)
    return max(codes, key=SEVERITY.index)  # whatever the tickers' order
