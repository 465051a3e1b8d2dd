"""The forecast flow: each ticker's champion forecasts its next trading days, or a past range (backfill)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import pandas as pd
from prefect import flow, get_run_logger
from prefect.runtime import flow_run

from flows import results
from tasks import tracking
from tasks.config import Config
from tasks.forecast import append, forecast, labelled, load_model, publish, read_store, score
from tasks.plot import forecasts_figure
from tasks.promote import store_tickers


@dataclass(frozen=True)
class Forecast:
    """One ticker's forecasts, the version that made them, and their error where the days have passed."""

    ticker: str
    model: str
    rows: pd.DataFrame
    scores: dict[str, float]
    run_id: str


@flow(name="forecast-ticker", flow_run_name="forecast-{ticker}")
def forecast_ticker(config: Config, ticker: str, start: date | None = None, end: date | None = None) -> Forecast:
    """Forecast one ticker from its champion (else its latest version); record the forecasts everywhere."""
    paths = config.paths()
    frame = read_store(paths.store_file(ticker), ticker)
    ref, model = load_model(ticker)
    if ref.alias is None:
        get_run_logger().warning("%s has no champion yet: forecasting with %s", ticker, ref.label)
    rows = labelled(forecast(model, frame, start, end, config.forecast.horizon), ticker, ref, pd.Timestamp.now(tz="UTC"))
    scores = score(rows)
    title = f"{ticker}: {config.forecast.horizon}-day forecasts as of {rows['as_of'].iloc[0]}" + (f"..{rows['as_of'].iloc[-1]}" if start or end else "")
    with tracking.forecast_run(config, ticker, ref, title, flow_run.id) as run:
        tracking.log_forecasts(rows, forecasts_figure(frame, rows, title, tracking.forecaster_of(model).target, config.forecast.plot_days), scores)
        append(paths.forecasts / f"{ticker}.csv", rows)
    publish(ticker, rows, ref)
    return Forecast(ticker, ref.label, rows, scores, run.info.run_id)


@flow(name="forecast")
def forecast_all(config: Config = Config(), tickers: list[str] | None = None, start: date | None = None, end: date | None = None) -> list[Forecast]:
    """Forecast the given tickers (default: every ticker in the store); with `start`/`end`, every day of that past range."""
    paths = config.paths()
    tracking.connect(config.tracking, paths)
    states = {t: forecast_ticker(config, t, start, end, return_state=True) for t in [t.upper() for t in tickers or store_tickers(paths)]}
    return results(states, "forecast")
