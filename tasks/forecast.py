"""Tasks of the forecast flow: load the model, forecast, keep the forecasts."""

from __future__ import annotations

from datetime import date

import pandas as pd

from pricecast import forecast
from pricecast.forecaster import PriceForecaster
from pricecast.prices.stores import PriceStore
from pricecast.tracking import registry
from tasks import stage


@stage("load-model", retry="any")
def load_model(
    ticker: str, requested: str | None = None, kind: str = "network"
) -> tuple[registry.ModelRef, PriceForecaster]:
    """The champion (else the latest version) when it beats naive and last price, else the best baseline; or
    the version asked for. The global network's with `kind` global, or for a ticker with no model of its own."""
    return forecast.load_model(ticker, requested, kind)


@stage("forecast")
def forecast_range(
    model: PriceForecaster,
    frame: pd.DataFrame,
    start: date | None,
    end: date | None,
    horizon: int,
    levels: tuple[int, ...] = (80, 95),
) -> pd.DataFrame:
    """Forecasts and their ranges from the store's last day, or from every day of `start..end` (backfill)."""
    return forecast.forecast_range(model, frame, start, end, horizon, levels)


@stage("append-forecasts", retry="io")
def append_forecasts(store: PriceStore, ticker: str, rows: pd.DataFrame) -> str:
    """Add the forecasts to the ticker's forecast log (a CSV file or a table); returns where they went."""
    return str(store.append_forecasts(ticker, rows[forecast.COLUMNS], forecast.COLUMNS))
