"""Forecasts from a registered version: the next trading days, or the days of a past range (backfill).

Each forecast row says when it was made, from which day's history, for which day, which version
made it, and, when the day has passed, what actually happened beside the naive forecast.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd

from pricecast import serving
from pricecast.errors import DataError
from pricecast.forecaster import RANGE_HISTORY, PriceForecaster, model_input, trading_days_after
from pricecast.stages.evaluate import error_metrics, skill
from pricecast.stages.live import SCORE_COLUMNS
from pricecast.tracking import registry

#: Columns of a ticker's forecasts file, in order (ranges at 80% and 95%: other levels only in the run's CSV).
COLUMNS = [
    "made_at",
    "ticker",
    "as_of",
    "step",
    "method",
    "date",
    "forecast",
    "lower_80",
    "upper_80",
    "lower_95",
    "upper_95",
    "range_method",
    "naive",
    "actual",
    "error",
    "naive_error",
    "model",
    "version",
    "model_alias",
    "run_id",
    *SCORE_COLUMNS,  # filled once the day is in the store: pricecast.stages.live
]


def as_of_days(frame: pd.DataFrame, start: date | None, end: date | None, lookback: int) -> pd.Series:
    """The store days to forecast from: the last one, or every day in `start..end` with a full lookback before it.

    Raises:
        DataError: no such day in the store, naming the range and what the store holds.
    """
    usable = frame["date"].iloc[lookback - 1 :]
    if start is None and end is None:
        chosen = usable.tail(1)
    else:
        low, high = pd.Timestamp(start or pd.Timestamp.min), pd.Timestamp(end or pd.Timestamp.max)
        chosen = usable[(usable >= low) & (usable <= high)]
    if chosen.empty:
        held = f"{frame['date'].iloc[0]:%Y-%m-%d}..{frame['date'].iloc[-1]:%Y-%m-%d}" if len(frame) else "nothing"
        wanted = f"{start or '…'}..{end or '…'}"
        raise DataError(
            f"No day in {wanted} has {lookback} days of history before it (the store holds {held}, {len(frame)} days)"
        )
    return chosen.reset_index(drop=True)


def forecast_from(
    forecaster: PriceForecaster, frame: pd.DataFrame, days: pd.Series, horizon: int, levels: tuple[int, ...] = (80, 95)
) -> pd.DataFrame:
    """What the forecaster says from each day's history (its ranges at `levels` too), with the naive forecast and,
    once known, the actual price. The model gets the last `RANGE_HISTORY` days (its range's volatility and, for
    naive and last price, its calibration), or its lookback if longer.

    A forecast for a day the store already holds gets that trading day's date and price (the k-th
    store day after the as-of day); later ones the weekdays after the last day the store holds.
    """
    target = forecaster.target
    parts = []
    for day in days:
        position = int(frame["date"].searchsorted(day, side="right"))
        history = frame.iloc[:position]
        given = model_input(history, forecaster.columns, max(forecaster.lookback, RANGE_HISTORY))
        out = forecaster.predict(None, given, {"horizon": horizon, "levels": ",".join(map(str, levels))})
        if "method" not in out:  # a version's code from before multi-step labels
            out["method"] = ["direct"] + ["recursive"] * (horizon - 1)
        later = frame.iloc[position : position + horizon]
        actual = np.full(horizon, np.nan)
        actual[: len(later)] = later[target].to_numpy()
        known = list(later["date"])
        out["date"] = [
            f"{d:%Y-%m-%d}" for d in [*known, *trading_days_after(known[-1] if known else day, horizon - len(known))]
        ]
        parts.append(
            out.assign(
                as_of=f"{day:%Y-%m-%d}",
                step=range(1, horizon + 1),
                naive=float(history[target].iloc[-1]),
                actual=actual,
            )
        )
    rows = pd.concat(parts, ignore_index=True)
    return rows.assign(error=rows["forecast"] - rows["actual"], naive_error=rows["naive"] - rows["actual"])


def labelled(
    rows: pd.DataFrame, ticker: str, ref: registry.ModelRef, made_at: pd.Timestamp, target: str = "open"
) -> pd.DataFrame:
    """Forecast rows with who made them and when, and the column they forecast, in the file's column order
    (then the bounds of other levels, for the run's CSV)."""
    return rows.assign(
        made_at=f"{made_at:%Y-%m-%dT%H:%M:%SZ}",
        ticker=ticker,
        model=ref.model_column,
        version=ref.version,
        model_alias=ref.alias or "latest",
        run_id=ref.run_id,
        target=target,
        live=rows["actual"].isna().astype("float64"),  # made before its day was known; a backfill is not live
    ).reindex(columns=[*COLUMNS, *range_columns(rows)])


def range_columns(rows: pd.DataFrame) -> list[str]:
    """The bound columns of levels other than 80 and 95 (kept in the run's CSV, not in the forecasts file)."""
    return [c for c in rows.columns if c.startswith(("lower_", "upper_")) and c not in COLUMNS]


def score(rows: pd.DataFrame) -> dict[str, float]:
    """MAE and MSE of the forecasts whose day has passed, beside the naive forecast's; empty when none has."""
    known = rows.dropna(subset=["actual"])
    if known.empty:
        return {}
    model = error_metrics(known["actual"], known["forecast"])
    naive = error_metrics(known["actual"], known["naive"])
    return {
        "mae": model["mae"],
        "mse": model["mse"],
        "naive_mae": naive["mae"],
        "naive_mse": naive["mse"],
        "skill": skill(model["mae"], naive["mae"]),
        "forecasts_scored": float(len(known)),
    }


def load_model(
    ticker: str, requested: str | None = None, kind: str = "network"
) -> tuple[registry.ModelRef, PriceForecaster]:
    """The model to forecast with (`pricecast.serving.choose_model`: never a loser unless asked for), loaded."""
    ref = serving.choose_model(ticker, requested, kind)
    return ref, serving.load(ref)


def forecast_range(
    forecaster: PriceForecaster,
    frame: pd.DataFrame,
    start: date | None,
    end: date | None,
    horizon: int,
    levels: tuple[int, ...] = (80, 95),
) -> pd.DataFrame:
    """Forecasts and their ranges from the store's last day, or from every day of `start..end` (backfill)."""
    return forecast_from(forecaster, frame, as_of_days(frame, start, end, forecaster.lookback), horizon, levels)
