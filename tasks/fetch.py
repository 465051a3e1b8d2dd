"""Tasks that fetch new bars: each ticker from the configured source, on its exchange's calendar."""

from __future__ import annotations

from datetime import datetime

from prefect import get_run_logger

from pricecast.config import FetchConfig, Paths
from pricecast.errors import DataError, FetchError
from pricecast.prices.fetch import FetchReport, fetch_ticker
from pricecast.prices.sourcing import source_for
from pricecast.prices.stores import PriceStore
from tasks import stage


@stage("fetch")
def fetch_bars(
    config: FetchConfig, store: PriceStore, paths: Paths, tickers: list[str], now: datetime | None = None
) -> list[str]:
    """Fetch each ticker's new bars into the store (the source retries within the fetch config's bounds); nothing
    when the config names no source.

    Returns the problems: a source down or a bad answer per ticker, and failed calendar checks (the flow ends
    failed with them, after retraining what it has). A missing bar is a warning; a holiday is not one.
    """
    log, problems = get_run_logger(), []
    if not config.source:
        return problems
    source = source_for(config.source, config)
    for ticker in (t.upper() for t in tickers):
        try:
            report: FetchReport = fetch_ticker(store, paths, ticker, source, config, now=now)
        except (DataError, FetchError) as exc:
            log.error("fetch %s: %s", ticker, exc)
            problems.append(f"{ticker}: {exc}")
            continue
        for line in report.lines():
            log.info(line)
        if report.missing:
            log.warning("%s: %s", ticker, report.check())
        if report.status == "failed":
            problems.append(f"{ticker}: {report.check()}")
    return problems
