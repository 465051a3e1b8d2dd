"""The retrain flow: merge new prices, train a challenger per ticker (in parallel), promote only when better."""

from __future__ import annotations

from datetime import datetime

from prefect import flow

from flows import quiet_expected_errors, results, retrained
from flows.forecast import forecast
from flows.monitor import score_forecasts
from flows.retrain_global import retrain_global
from flows.retrain_ticker import retrain_one
from pricecast.config import Config
from pricecast.prices.stores import open_store
from pricecast.promote import Decision
from pricecast.tracking import connect
from pricecast.tracking.global_runs import GLOBAL
from tasks.fanout import fan_out
from tasks.fetch import fetch_bars
from tasks.monitor import with_forecasts
from tasks.prices import merge_incoming_files


@flow(name="retrain")
def retrain(
    config: Config = Config(), tickers: list[str] | None = None, force: bool = False, as_of: datetime | None = None
) -> list[Decision]:
    """Fetch new bars (when `fetch.source` is set), merge `data/incoming/`, retrain the given tickers (default: all
    in the store) that got new data, forecast the changed ones. `as_of`: the time the calendar judges by (now)."""
    quiet_expected_errors()
    paths, store = config.paths(), open_store(config)
    connect.connect(config.tracking, paths)
    # Fetch each ticker's bars due since its last day; a holiday asks nothing, a source down is reported at the end.
    problems = fetch_bars(config.fetch, store, paths, tickers or store.tickers(), as_of)
    # Merge new files into the store; bad ones go to incoming/rejected/ with the reason.
    merged = merge_incoming_files(store, paths.incoming, config.min_history_rows())
    chosen = [t.upper() for t in tickers or store.tickers()]
    config = config.for_store(len(store.tickers()))  # one global network for a store of many tickers
    # Score the forecasts whose days just arrived (fetched or merged); a version losing live is demoted (and
    # retrained below). A scoring that fails shows as a failed subflow run; it does not hold the retrain up.
    if scored := with_forecasts(store, {*merged.tickers, *chosen}, paths.forecasts / "served"):
        score_forecasts(config, scored, chosen, return_state=True)
    # Retrain one global network on every ticker, or each ticker's own on the configured task runner (threads,
    # processes, Dask): one ticker's failure does not stop the others, but fails the run.
    if config.model.kind == "global":
        states = {GLOBAL: retrain_global(config, store.tickers(), force, return_state=True)}
    else:
        states = fan_out(
            retrain_one, {t: {"config": config, "ticker": t, "force": force} for t in chosen}, config.parallel
        )
    # Forecast every ticker that got a new model (every one in the store when the global network did).
    changed = retrained(states, store.tickers())
    if config.forecast.after_retrain and changed:
        forecast(config, changed)
    # A source that failed or bars missing for too many sessions fail the run (Prefect's notifications see it).
    decisions = results(states, "retrain")
    if problems:
        raise RuntimeError("fetch failed for " + "; ".join(problems))
    return decisions
