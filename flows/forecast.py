"""The forecast flow: each ticker's champion forecasts its next trading days, or a past range (backfill)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pandas as pd
from prefect import flow, get_run_logger
from prefect.runtime import flow_run

from flows import quiet_expected_errors, results
from pricecast.config import Config
from pricecast.forecast import labelled, score
from pricecast.prices.stores import open_store
from pricecast.stages.live import score_new_rows
from pricecast.stages.plot import forecast_figure
from pricecast.tracking import connect, forecast_runs
from tasks.forecast import append_forecasts, forecast_range, load_model
from tasks.prices import read_ticker_prices
from tasks.tracking import publish_forecast


@dataclass(frozen=True)
class Forecast:
    """One ticker's forecasts, the version that made them, their error where the days have passed, and where its
    fan chart was written (when asked). No figure: a forecast of every ticker would hold one per ticker."""

    ticker: str
    model: str
    rows: pd.DataFrame
    scores: dict[str, float]
    run_id: str
    path: str
    plot: Path | None


@flow(name="forecast-ticker", flow_run_name="forecast-{ticker}")
def forecast_ticker(
    config: Config, ticker: str, start: date | None = None, end: date | None = None, plot: Path | None = None
) -> Forecast:
    """Forecast one ticker from its champion (else its latest version) unless it loses to a baseline, then from
    the best baseline; or from the version asked for. Record the forecasts everywhere; the fan chart to `plot`."""
    quiet_expected_errors()
    store, horizon = open_store(config), config.forecast.horizon
    frame = read_ticker_prices(store, ticker)
    ref, model = load_model(ticker, config.forecast.version, config.model.kind)
    if ref.baseline or ref.note:
        get_run_logger().warning("%s: forecasting with %s", ticker, ref.label)
    now = pd.Timestamp.now(tz="UTC")
    rows = forecast_range(model, frame, start, end, horizon, config.forecast.levels)
    rows = labelled(rows, ticker, ref, now, model.target)
    # A backfill's days are known: score them as live scoring would (they never count as live).
    rows = score_new_rows(rows, frame, model.target, f"{now:%Y-%m-%dT%H:%M:%SZ}")
    scores = score(rows)
    days = rows["as_of"].iloc[0] + (f"..{rows['as_of'].iloc[-1]}" if start or end else "")
    title = f"{ticker}: {horizon}-day forecasts as of {days} from {ref.model_column}"
    figure = forecast_figure(frame, rows, title, model.target, config.forecast.plot_days)
    with forecast_runs.forecast_run(config, ticker, ref, title, flow_run.id) as run:
        forecast_runs.log_forecasts(rows, figure, scores)
        path = append_forecasts(store, ticker, rows)
    publish_forecast(ticker, rows, ref)
    if plot:
        figure.savefig(plot, dpi=110)
    return Forecast(ticker, ref.label, rows, scores, run.info.run_id, path, plot)


@flow(name="forecast")
def forecast(
    config: Config = Config(),
    tickers: list[str] | None = None,
    start: date | None = None,
    end: date | None = None,
    plot: Path | None = None,
) -> list[Forecast]:
    """Forecast the given tickers (default: every ticker in the store); with `start`/`end`, every day of that range.
    `plot`: the fan chart's file (`<stem>-<TICKER>.png` each when there are several tickers)."""
    quiet_expected_errors()
    paths = config.paths()
    connect.connect(config.tracking, paths)
    store = open_store(config)
    chosen = [t.upper() for t in tickers or store.tickers()]
    config = config.for_store(len(store.tickers()))  # one global network for a store of many tickers
    plots = {t: plot if len(chosen) == 1 else plot.with_stem(f"{plot.stem}-{t}") for t in chosen} if plot else {}
    states = {t: forecast_ticker(config, t, start, end, plots.get(t), return_state=True) for t in chosen}
    return results(states, "forecast")
