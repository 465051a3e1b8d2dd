"""Scores of ranges: coverage, width, the interval (Winkler) score and the pinball loss, with a DM test."""

from __future__ import annotations

from typing import Any

import numpy as np

from pricecast.stages.backtest import diebold_mariano


def interval_score(actual: np.ndarray, lower: np.ndarray, upper: np.ndarray, level: float) -> np.ndarray:
    """The interval (Winkler) score of each day: width plus `2 / alpha` times the distance outside the range."""
    penalty = 200 / (100 - level)  # 2 / alpha, alpha = 1 - level / 100: exactly 10 at 80%
    actual, lower, upper = (np.asarray(v, dtype="float64") for v in (actual, lower, upper))
    below, above = np.clip(lower - actual, 0, None), np.clip(actual - upper, 0, None)
    return upper - lower + penalty * (below + above)


def pinball(actual: np.ndarray, quantiles: dict[float, np.ndarray]) -> float:
    """The pinball (quantile) loss averaged over days and over the quantiles `tau -> forecasts`."""
    actual = np.asarray(actual, dtype="float64")
    losses = []
    for tau, forecast in quantiles.items():
        diff = actual - np.asarray(forecast, dtype="float64")
        losses.append(np.mean(np.maximum(tau * diff, (tau - 1) * diff)))
    return float(np.mean(losses))


def quantiles_of(point: np.ndarray, lower: dict[int, np.ndarray], upper: dict[int, np.ndarray]) -> dict[float, Any]:
    """The quantiles a point forecast and its central ranges make: 0.5, and (1 -+ L) / 2 for each level."""
    out: dict[float, Any] = {0.5: point}
    for level in lower:
        out[(1 - level / 100) / 2], out[(1 + level / 100) / 2] = lower[level], upper[level]
    return dict(sorted(out.items()))


def range_scores(
    actual: np.ndarray,
    point: np.ndarray,
    lower: dict[int, np.ndarray],
    upper: dict[int, np.ndarray],
    reference: dict[int, np.ndarray] | None = None,
) -> dict[str, float]:
    """Coverage, width relative to the point forecast and interval score per level, the pinball loss, and
    (given the reference's interval scores at the first level) the Diebold-Mariano p-value against it."""
    actual, point = np.asarray(actual, dtype="float64"), np.asarray(point, dtype="float64")
    out: dict[str, float] = {}
    for level in lower:
        inside = (actual >= lower[level]) & (actual <= upper[level])
        out[f"coverage_{level}"] = float(np.mean(inside))
        out[f"width_{level}"] = float(np.mean((upper[level] - lower[level]) / point))
        out[f"interval_score_{level}"] = float(np.mean(interval_score(actual, lower[level], upper[level], level)))
    out["pinball"] = pinball(actual, quantiles_of(point, lower, upper))
    if reference is not None and actual.size >= 2:
        first = next(iter(lower))
        mine = interval_score(actual, lower[first], upper[first], first)
        out["dm_interval_const_p"] = diebold_mariano(mine, reference[first]).pvalue
    return out
