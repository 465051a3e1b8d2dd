"""Ranges: central prediction intervals around any point forecast, and their scores.

A range is symmetric in log price around the point forecast `p`: `p * exp(-q)` to `p * exp(q)`,
where the half-width `q` of a level (80, 95) at step h comes from one of the methods:

- `const_vol`: the baseline to beat. `q = z * sd(past daily log returns of the target) * sqrt(h)`.
- `ewma`: RiskMetrics' exponentially weighted variance of the returns (lambda 0.94), `sqrt(h)` ahead.
- `garch`: GARCH(1,1) of the returns, fitted by the `arch` package on the training days only, then
  filtered day by day with those parameters; the h-day variance is the sum of the mean-reverting
  one-day forecasts.
- `conformal`: split conformal on the model's own out-of-sample log errors `|log(actual / p)|`
  before the fold: `q` = their `ceil((n + 1) L) / n` empirical quantile.
- `aci`: adaptive conformal inference (Gibbs and Candes, 2021): the level of that quantile moves
  after each day, up after a miss and down after a hit (`alpha += gamma * (alpha_target - miss)`).
- `conformal_ewma`: conformal on the errors divided by the EWMA volatility of their day, so the
  calibrated width follows the volatility (normalised, or locally adaptive, conformal).

The served model computes its ranges with the same functions (`pricecast.forecaster`, which a
registered version carries as its code). Volatility methods read only the target's past returns;
conformal methods read only the model's past errors: a range for day t uses nothing from day t on.
Scores: coverage, width relative to the point forecast, the interval (Winkler) score and the
pinball loss over the quantiles the ranges and the point forecast make, with a Diebold-Mariano
test of the interval score against `const_vol`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from pricecast.errors import DataError
from pricecast.forecaster import (
    EWMA_LAMBDA,
    LEVELS,
    PARAMETER_FREE,
    RANGE_HISTORY,
    VOLATILITY,
    aci_widths,
    conformal_width,
    next_variances,
    z,
)
from pricecast.stages.interval_scores import interval_score, range_scores

METHODS = ("const_vol", "ewma", "garch", "conformal", "aci", "conformal_ewma")
REFERENCE = "const_vol"


def check_levels(levels: Sequence[int]) -> tuple[int, ...]:
    """Levels in percent, each strictly between 0 and 100.

    Raises:
        DataError: naming the level.
    """
    for level in levels:
        if not 0 < level < 100:
            raise DataError(f"Range level {level} is not a percentage strictly between 0 and 100")
    return tuple(int(v) for v in levels)


def check_method(method: str) -> str:
    if method not in METHODS:
        raise DataError(f"Range method {method!r} is not one of {', '.join(METHODS)}")
    return method


def log_returns(prices: np.ndarray) -> np.ndarray:
    """`log(p_t / p_(t-1))` for t >= 1 (one fewer than the prices)."""
    prices = np.asarray(prices, dtype="float64")
    return np.diff(np.log(prices))


def fit_volatility(method: str, returns: np.ndarray) -> dict[str, Any]:
    """A volatility method's parameters, from the training returns only.

    Returns:
        `{"method", "var0", ...}`: `var0` the sample variance (the constant one, and the start of
        the EWMA and GARCH filters); GARCH adds `omega`, `alpha`, `beta` (per unit return squared).

    Raises:
        DataError: fewer than 10 returns, or an unknown method.
    """
    returns = np.asarray(returns, dtype="float64")
    if returns.size < 10:
        raise DataError(f"{returns.size} returns are too few to fit a {method} range (need 10)")
    var0 = float(np.var(returns, ddof=1))
    if method == "const_vol":
        return {"method": method, "var0": var0}
    if method == "ewma":
        return {"method": method, "var0": var0, "lambda": EWMA_LAMBDA}
    if method == "garch":
        from arch import arch_model

        scale = 100.0  # arch's optimiser prefers returns in percent
        fitted = arch_model(returns * scale, mean="Zero", vol="GARCH", p=1, q=1, rescale=False).fit(
            disp="off", show_warning=False
        )
        omega, alpha, beta = (float(fitted.params[k]) for k in ("omega", "alpha[1]", "beta[1]"))
        if not (np.isfinite([omega, alpha, beta]).all() and alpha + beta < 1):  # no stationary fit: EWMA's shape
            return {"method": method, "var0": var0, "omega": 0.0, "alpha": 1 - EWMA_LAMBDA, "beta": EWMA_LAMBDA}
        return {"method": method, "var0": var0, "omega": omega / scale**2, "alpha": alpha, "beta": beta}
    raise DataError(f"Range method {method!r} is not a volatility method ({', '.join(VOLATILITY)})")


def fit_range(
    method: str, levels: Sequence[int], kind: str, prices: np.ndarray, calibration: pd.DataFrame | None = None
) -> dict[str, Any]:
    """The range spec a registered version carries: its method, levels, fitted volatility and calibration scores.

    Args:
        method, levels: the range method and its levels (percent).
        kind: the model's kind.
        prices: the target's training prices (the volatility is fitted on their log returns).
        calibration: the model's out-of-sample forecasts after those prices (`actual`, `predicted`, in
            date order): the test days; their `|log(actual / predicted)|` are the conformal scores. None
            for `naive` and `last_price` in training: they calibrate at forecast time on the history they
            are given (`baseline_calibration`), where their errors are out of sample too.
    """
    check_method(method)
    spec: dict[str, Any] = {"method": method, "levels": list(check_levels(levels))}
    returns = log_returns(prices)
    if method in VOLATILITY or method == "conformal_ewma":
        spec |= {**fit_volatility("ewma" if method == "conformal_ewma" else method, returns), "method": method}
    if method in VOLATILITY or calibration is None or calibration.empty:
        return spec
    actual = calibration["actual"].to_numpy(dtype="float64")
    scores = np.abs(np.log(actual / calibration["predicted"].to_numpy(dtype="float64")))
    if method == "conformal_ewma":  # each score over the volatility forecast for its day
        everything = log_returns(np.concatenate([np.asarray(prices, dtype="float64"), actual]))
        variance = np.concatenate([[spec["var0"]], next_variances({**spec, "method": "ewma"}, everything)])
        scores = scores / np.sqrt(variance[-len(scores) - 1 : -1])
    return spec | {"scores": [float(v) for v in scores]}


def baseline_calibration(kind: str, history: pd.DataFrame, target: str, days: int = RANGE_HISTORY) -> pd.DataFrame:
    """A parameter-free baseline's one-day forecasts over the last `days` of a history, beside the actual prices:
    out-of-sample errors to calibrate its range on (naive: the day before's target; last price: its close)."""
    if kind not in PARAMETER_FREE:
        raise DataError(f"Baseline {kind!r} has fitted parameters: its errors on its own history are not out of sample")
    predicted = history["close" if kind == "last_price" else target].shift(1)
    out = pd.DataFrame({"actual": history[target], "predicted": predicted}).dropna().tail(days)
    return out.reset_index(drop=True).astype("float64")


def bounds(point: np.ndarray, half_width: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper bounds, symmetric in log price around the point forecast."""
    point, half_width = np.asarray(point, dtype="float64"), np.asarray(half_width, dtype="float64")
    return point * np.exp(-half_width), point * np.exp(half_width)


# -- walk-forward: every (model, method) on the backtest's days ------------------------------------------------


def backtest_half_widths(
    frame: pd.DataFrame,
    forecasts: pd.DataFrame,
    model: str,
    method: str,
    levels: Sequence[int],
    target: str = "open",
) -> dict[int, np.ndarray]:
    """The one-day half-width of each level on every row of `walk_forward`'s table, for one model and method.

    Volatility methods are fitted on the rows before each fold (as the models are) and filtered day
    by day; conformal methods calibrate on the model's errors of the days before (out of sample:
    each was forecast before its price was known), so the first days have no finite range.
    """
    check_method(method)
    dates = pd.to_datetime(frame["date"]).to_numpy()
    position = np.searchsorted(dates, pd.to_datetime(forecasts["date"]).to_numpy())
    prices = frame[target].to_numpy(dtype="float64")
    returns = log_returns(prices)  # returns[i] is the move into row i + 1
    folds = forecasts["fold"].to_numpy()
    out = {}
    if method in VOLATILITY or method == "conformal_ewma":
        variance = np.full(len(forecasts), np.nan)
        for fold in np.unique(folds):
            rows = np.flatnonzero(folds == fold)
            start = position[rows].min()
            params = fit_volatility("ewma" if method == "conformal_ewma" else method, returns[: start - 1])
            filtered = next_variances(params, returns[: position[rows].max() - 1])
            variance[rows] = filtered[position[rows] - 2]  # made with the returns up to the day before
        sigma = np.sqrt(variance)
        if method in VOLATILITY:
            return {level: z(level) * sigma for level in levels}
    scores = np.abs(np.log(forecasts["actual"].to_numpy(dtype="float64") / forecasts[model].to_numpy(dtype="float64")))
    if method == "conformal_ewma":
        scores = scores / sigma
    for level in levels:
        if method == "aci":
            out[level] = aci_widths(scores, level)[:-1]
        else:
            out[level] = np.array([conformal_width(scores[:day], level) for day in range(len(scores))])
        if method == "conformal_ewma":
            out[level] = out[level] * sigma
    return out


def calibration_days(levels: Sequence[int]) -> int:
    """Past errors a conformal range needs before its highest level is finite: `ceil((n + 1) L) <= n`."""
    return max(math.ceil(level / (100 - level)) for level in levels)


def walk_forward_ranges(
    frame: pd.DataFrame,
    forecasts: pd.DataFrame,
    methods: Sequence[str] = METHODS,
    levels: Sequence[int] = LEVELS,
    target: str = "open",
) -> pd.DataFrame:
    """Every model of a `walk_forward` table with every range method, scored on the same days.

    The days scored are those after the first `calibration_days(levels)` (the conformal methods'
    calibration; half the days in a shorter backtest, whose highest levels then take `conformal_width`'s
    normal fallback), the same for every method.

    Returns:
        One row per (model, method): `range_scores` plus `days`; the DM p-value is against the
        same model's `const_vol` range (NaN for `const_vol` itself).
    """
    from pricecast.stages.backtest import INFO_COLUMNS

    levels = check_levels(levels)
    models = [c for c in forecasts.columns if c not in INFO_COLUMNS]
    methods = list(dict.fromkeys([REFERENCE, *methods]))
    skip = min(calibration_days(levels), len(forecasts) // 2)  # a short backtest: see `conformal_width`
    if len(forecasts) < 2:
        raise DataError(
            f"{len(forecasts)} backtest day is too few for ranges: the first calibrates, the next is scored"
        )
    scored = np.arange(len(forecasts)) >= skip
    actual = forecasts["actual"].to_numpy(dtype="float64")[scored]
    rows = []
    for model in models:
        point = forecasts[model].to_numpy(dtype="float64")[scored]
        reference = None
        for method in methods:
            half = backtest_half_widths(frame, forecasts, model, method, levels, target)
            lower, upper = {}, {}
            for level in levels:
                lower[level], upper[level] = bounds(point, half[level][scored])
            if method == REFERENCE:
                reference = {lv: interval_score(actual, lower[lv], upper[lv], lv) for lv in levels}
                scores = range_scores(actual, point, lower, upper)
                scores["dm_interval_const_p"] = float("nan")
            else:
                scores = range_scores(actual, point, lower, upper, reference)
            rows.append({"model": model, "method": method, "days": int(scored.sum()), **scores})
    return pd.DataFrame(rows).set_index(["model", "method"])
