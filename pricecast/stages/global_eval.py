"""A global network's test days: scored per ticker beside the naive and last-price forecasts, pooled, and its range.

Every ticker holds out its own last `test_days`; the network trained on the rows before them forecasts each of
those days from the rows before it. Per ticker the scores are in its price units (`pricecast.stages.evaluate`);
pooled over tickers they are in log units (`|log(actual / forecast)|`, a relative error), so a $2,000 share
does not outweigh a $5 one. Serving reads a ticker's own row to decide whether the network beats the simple
forecasts for it, and the pooled scores for a ticker it never saw.

The range is `conformal_ewma` on the pooled test errors: each `|log(actual / forecast)|` divided by its
ticker's EWMA volatility of that day, so one calibration holds for every series (an error of a calm series
and of a wild one mean the same thing once divided); served, the quantile is multiplied by the requested
series' own EWMA volatility, computed from the history sent.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from pricecast.forecaster import EWMA_LAMBDA, PriceForecaster
from pricecast.stages import ranges
from pricecast.stages.evaluate import compare, skill
from pricecast.stages.split import Split, split_last_days

Predict = Callable[[pd.DataFrame, np.ndarray], np.ndarray]

#: Calibration scores a version carries at most (16 test days of 1,000 tickers are 16,000): evenly taken.
MAX_SCORES = 4000
BY_TICKER = ["ticker", "days", "mae", "naive_mae", "last_price_mae", "skill", "skill_last_price"]


@dataclass(frozen=True)
class GlobalEvaluation:
    """Per-ticker scores (`BY_TICKER`), pooled `metrics`, and every test day's forecasts (`ticker, date, actual,
    predicted, naive, last_price`)."""

    by_ticker: pd.DataFrame
    metrics: dict[str, float]
    predictions: pd.DataFrame


def holdouts(frames: Mapping[str, pd.DataFrame], test_days: int, lookback: int) -> dict[str, Split]:
    """Each ticker's training days and its last `test_days`.

    Raises:
        DataError: a ticker (named) too short for a lookback, one day to learn and the test days.
    """
    return {t: split_last_days(frame, test_days, t, lookback) for t, frame in frames.items()}


def log_mae(actual: pd.Series, predicted: pd.Series) -> float:
    return float(np.mean(np.abs(np.log(actual.to_numpy(dtype="float64") / predicted.to_numpy(dtype="float64")))))


def usable(frames: Mapping[str, pd.DataFrame], rows: int) -> tuple[dict[str, pd.DataFrame], list[str]]:
    """The frames with at least `rows` rows, and the names of those left out."""
    kept = {t: f for t, f in frames.items() if len(f) >= rows}
    return kept, [f"{t} ({len(f)} rows)" for t, f in frames.items() if t not in kept]


def served_rows(forecaster: PriceForecaster) -> Predict:
    """A registered version's `predict_rows`: its one-day forecast of each row position from the rows before it."""

    def predict_rows(frame: pd.DataFrame, positions: np.ndarray) -> np.ndarray:
        values = frame[forecaster.columns].to_numpy(dtype="float64")
        return np.array([forecaster.next_price(values[:p]) for p in positions])

    return predict_rows


def evaluate_global(
    predict_rows: Predict, frames: Mapping[str, pd.DataFrame], test_days: int, target: str
) -> GlobalEvaluation:
    """Forecast every ticker's last `test_days` with `predict_rows(frame, positions)` (each from the rows before
    it: `GlobalNetworkForecaster.predict_rows`, or `served_rows` of a registered version); score per ticker and
    pooled.

    Returns metrics: `log_mae`, `naive_log_mae`, `last_price_log_mae` pooled over every test day, the skills
    `skill`, `skill_last_price` of those, their medians over tickers (`median_skill`, `median_skill_last_price`)
    and `beats_share`, the share of tickers whose MAE is below both the naive and the last price's.
    """
    rows, parts = [], []
    for ticker, frame in frames.items():
        n, close = len(frame), frame["close"].to_numpy(dtype="float64")
        positions = np.arange(n - test_days, n)
        test = frame.iloc[positions]
        evaluation = compare(
            test["date"],
            test[target].to_numpy(dtype="float64"),
            predict_rows(frame, positions),
            float(frame[target].iloc[n - test_days - 1]),
            close[positions - 1],
        )
        m = evaluation.metrics
        rows.append([ticker, test_days, *(m[k] for k in BY_TICKER[2:])])
        parts.append(evaluation.predictions.assign(ticker=ticker))
    by_ticker = pd.DataFrame(rows, columns=BY_TICKER)
    predictions = pd.concat(parts, ignore_index=True)
    pooled = {
        "log_mae": log_mae(predictions["actual"], predictions["predicted"]),
        "naive_log_mae": log_mae(predictions["actual"], predictions["naive"]),
        "last_price_log_mae": log_mae(predictions["actual"], predictions["last_price"]),
    }
    beats = by_ticker["mae"] < by_ticker[["naive_mae", "last_price_mae"]].min(axis=1)
    metrics = pooled | {
        "skill": skill(pooled["log_mae"], pooled["naive_log_mae"]),
        "skill_last_price": skill(pooled["log_mae"], pooled["last_price_log_mae"]),
        "median_skill": float(by_ticker["skill"].median()),
        "median_skill_last_price": float(by_ticker["skill_last_price"].median()),
        "beats_share": float(beats.mean()),
        "tickers": float(len(by_ticker)),
    }
    return GlobalEvaluation(by_ticker, metrics, predictions[["ticker", *predictions.columns[:-1]]])


def pooled_evaluation(metrics: Mapping[str, float]) -> dict[str, float]:
    """The pooled scores in the names serving compares (`mae`, `naive_mae`, `last_price_mae`), in log units."""
    return {
        "mae": metrics["log_mae"],
        "naive_mae": metrics["naive_log_mae"],
        "last_price_mae": metrics["last_price_log_mae"],
    }


def global_range(
    evaluation: GlobalEvaluation, splits: Mapping[str, Split], levels: tuple[int, ...], target: str
) -> dict[str, Any]:
    """The range spec of a global version: `conformal_ewma` on every ticker's test errors, each divided by that
    ticker's EWMA volatility of its day (filtered from the variance of its training returns), pooled.

    No `var0`: the served model starts its filter from the variance of the history it is sent, whichever series.
    """
    scores, days = [], dict(tuple(evaluation.predictions.groupby("ticker", sort=False)))
    for ticker, split in splits.items():
        prices = split.train[target].to_numpy(dtype="float64")
        scores += ranges.fit_range("conformal_ewma", levels, "network", prices, days[ticker])["scores"]
    if len(scores) > MAX_SCORES:
        scores = [scores[i] for i in np.linspace(0, len(scores) - 1, MAX_SCORES).round().astype(int)]
    return {
        "method": "conformal_ewma",
        "levels": list(ranges.check_levels(levels)),
        "lambda": EWMA_LAMBDA,
        "scores": scores,
    }
