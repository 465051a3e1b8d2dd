"""Walk-forward backtests: every model refit before each fold, one-step forecasts inside it, scored together.

The last `folds` blocks of `fold_days` trading days are the test folds. For each fold every
model is fitted on the rows before the fold only, then forecasts each day of the fold from the
rows before that day (the actual prices up to the previous close, as a daily forecast would
have them). Every model forecasts exactly the same days. Scores per model: MAE, RMSE, MASE (each
error scaled by its fold's in-sample naive MAE), `skill = 1 - MAE / naive MAE`,
`skill_last_price = 1 - MAE / last-price MAE`, and Diebold-Mariano p-values (absolute-error
loss, Harvey-Leybourne-Newbold correction) against naive and last price.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from scipy import stats

from pricecast.errors import DataError
from pricecast.stages.baselines import Forecaster, LastPrice, Naive

DEFAULT_FOLDS = 8
DEFAULT_FOLD_DAYS = 16
REFERENCES = ("naive", "last_price")
INFO_COLUMNS = ("fold", "date", "actual", "naive_scale")

ModelSource = Forecaster | Callable[[], Forecaster]


@dataclass(frozen=True)
class Fold:
    """Test rows `start .. stop - 1` of a frame; the model is fitted on rows `0 .. start - 1`."""

    number: int
    start: int
    stop: int


def make_folds(
    rows: int, folds: int = DEFAULT_FOLDS, fold_days: int = DEFAULT_FOLD_DAYS, min_train: int = 2
) -> list[Fold]:
    """The last `folds` blocks of `fold_days` rows, oldest first.

    Raises:
        ValueError: fewer than `min_train` rows would be left to fit the first fold on.
    """
    if folds < 1 or fold_days < 1:
        raise DataError(f"folds ({folds}) and fold_days ({fold_days}) must be at least 1")
    first = rows - folds * fold_days
    if first < min_train:
        raise DataError(
            f"{rows} rows are too few for {folds} folds of {fold_days} days: the first fold would be fitted on "
            f"{max(first, 0)} rows, at least {min_train} are needed"
        )
    return [Fold(k, first + k * fold_days, first + (k + 1) * fold_days) for k in range(folds)]


def _instance(source: ModelSource) -> Forecaster:
    """A model object: the object itself (its `fit` starts from scratch) or what a factory returns."""
    return source if hasattr(source, "fit") else source()


def run_fold(frame: pd.DataFrame, fold: Fold, model: Forecaster) -> np.ndarray:
    """Fit on the rows before the fold, then forecast each fold day from the rows before it."""
    model.fit(frame.iloc[: fold.start].reset_index(drop=True))
    if hasattr(model, "predict_rows"):  # a network: one call for the fold, each day from the rows before it
        return np.asarray(model.predict_rows(frame.iloc[: fold.stop], np.arange(fold.start, fold.stop)), "float64")
    return np.array(
        [model.forecast(frame.iloc[:day].reset_index(drop=True)) for day in range(fold.start, fold.stop)],
        dtype="float64",
    )


def walk_forward(
    frame: pd.DataFrame,
    models: Mapping[str, ModelSource],
    target: str = "open",
    folds: int = DEFAULT_FOLDS,
    fold_days: int = DEFAULT_FOLD_DAYS,
    min_train: int = 2,
) -> pd.DataFrame:
    """Forecasts of every model (plus `naive` and `last_price`, always) on the same fold days.

    Args:
        frame: canonical prices, ascending dates.
        models: name -> model object (refitted per fold) or a factory of fresh ones.
        target: the column forecast.
        folds, fold_days: the last `folds` blocks of `fold_days` trading days are forecast.
        min_train: rows the first fold needs before it (a network needs its lookback + 1).

    Returns:
        One row per fold day: `fold, date, actual, naive_scale` (MASE's denominator, from the
        rows before the fold), `naive, last_price`, then a column per model.
    """
    if target not in frame.columns:
        raise DataError(
            f"Target {target!r} is not a column of the frame (its columns: {', '.join(map(str, frame.columns))})"
        )
    frame = frame.reset_index(drop=True)
    plan = make_folds(len(frame), folds, fold_days, min_train)
    everything: dict[str, ModelSource] = {"naive": Naive(target), "last_price": LastPrice(target=target), **models}
    results = {
        (fold.number, name): run_fold(frame, fold, _instance(s)) for fold in plan for name, s in everything.items()
    }
    return assemble(frame, plan, results, target)


def assemble(
    frame: pd.DataFrame, plan: list[Fold], results: Mapping[tuple[int, str], np.ndarray], target: str
) -> pd.DataFrame:
    """One table of fold forecasts (`(fold number, model) -> forecasts`, computed anywhere, in any order).

    Returns:
        One row per fold day: `fold, date, actual, naive_scale` (MASE's denominator, from the
        rows before the fold), then a column per model in the order first seen.
    """
    frame = frame.reset_index(drop=True)
    names = list(dict.fromkeys(name for _, name in results))
    parts = []
    for fold in plan:
        part = pd.DataFrame(
            {
                "fold": fold.number,
                "date": frame["date"].iloc[fold.start : fold.stop].to_numpy(),
                "actual": frame[target].iloc[fold.start : fold.stop].to_numpy(dtype="float64"),
                "naive_scale": naive_scale(frame[target].to_numpy(dtype="float64")[: fold.start]),
            }
        )
        for name in names:
            part[name] = results[(fold.number, name)]
        parts.append(part)
    return pd.concat(parts, ignore_index=True)


def cumulative_error(forecasts: pd.DataFrame) -> pd.DataFrame:
    """Each model's cumulative absolute error minus the naive forecast's, day by day (below 0: ahead of naive)."""
    models = [c for c in forecasts.columns if c not in INFO_COLUMNS]
    errors = forecasts[models].sub(forecasts["actual"], axis=0).abs().cumsum()
    return errors.sub(errors["naive"], axis=0).assign(date=forecasts["date"], fold=forecasts["fold"])


def naive_scale(train: np.ndarray) -> float:
    """MASE's denominator: the in-sample MAE of the naive forecast on the training values, `mean |y_t - y_(t-1)|`.

    Raises:
        ValueError: fewer than 2 values, or a constant series (the scale would be 0).
    """
    train = np.asarray(train, dtype="float64")
    if train.size < 2:
        raise DataError(f"{train.size} training value is too few for the naive scale (need 2)")
    scale = float(np.mean(np.abs(np.diff(train))))
    if scale == 0:
        raise DataError("The training values never change: MASE's naive scale is 0")
    return scale


def mase(actual: np.ndarray, predicted: np.ndarray, scale: float | np.ndarray) -> float:
    """Mean absolute scaled error: each absolute error divided by its (fold's) naive scale, averaged."""
    return float(
        np.mean(
            np.abs(np.asarray(predicted, dtype="float64") - np.asarray(actual, dtype="float64"))
            / np.asarray(scale, dtype="float64")
        )
    )


@dataclass(frozen=True)
class DMResult:
    """A Diebold-Mariano test: the HLN-corrected statistic (negative: the first is better), two-sided p-value."""

    statistic: float
    pvalue: float


def diebold_mariano(
    errors: np.ndarray, reference: np.ndarray, h: int = 1, loss: Literal["absolute", "squared"] = "absolute"
) -> DMResult:
    """Diebold-Mariano test of equal accuracy with the Harvey-Leybourne-Newbold (1997) correction.

    `d_t = L(errors_t) - L(reference_t)`; the variance of its mean uses autocovariances up to lag
    `h - 1` (rectangular kernel, divisor n); the statistic is multiplied by
    `sqrt((n + 1 - 2h + h(h - 1) / n) / n)` and compared with Student's t on n - 1 degrees of freedom.

    Raises:
        ValueError: mismatched lengths, fewer than 2 errors, or h out of 1 .. n - 1.
    """
    e1, e2 = np.asarray(errors, dtype="float64").ravel(), np.asarray(reference, dtype="float64").ravel()
    if e1.shape != e2.shape:
        raise DataError(f"{e1.size} errors cannot be compared with {e2.size} reference errors")
    n = e1.size
    if n < 2 or not 1 <= h < n:
        raise DataError(f"A Diebold-Mariano test needs at least 2 errors and 1 <= h < n: got n={n}, h={h}")
    if loss not in ("absolute", "squared"):
        raise DataError(f"Loss {loss!r} is not 'absolute' or 'squared'")
    d = np.abs(e1) - np.abs(e2) if loss == "absolute" else e1**2 - e2**2
    mean = d.mean()
    centred = d - mean
    variance = sum((1 if k == 0 else 2) * np.dot(centred[k:], centred[: n - k]) / n for k in range(h)) / n
    if variance <= 0:
        return DMResult(0.0, 1.0) if mean == 0 else DMResult(float(np.copysign(np.inf, mean)), 0.0)
    statistic = mean / np.sqrt(variance) * np.sqrt((n + 1 - 2 * h + h * (h - 1) / n) / n)
    return DMResult(float(statistic), float(2 * stats.t.sf(abs(statistic), df=n - 1)))


def _scores(
    actual: np.ndarray, predicted: np.ndarray, naive: np.ndarray, last: np.ndarray, scales: np.ndarray
) -> dict[str, float]:
    error = predicted - actual
    mae = float(np.mean(np.abs(error)))
    naive_mae, last_mae = float(np.mean(np.abs(naive - actual))), float(np.mean(np.abs(last - actual)))
    out = {
        "mae": mae,
        "rmse": float(np.sqrt(np.mean(error**2))),
        "mase": mase(actual, predicted, scales),
        "naive_mae": naive_mae,
        "last_price_mae": last_mae,
        "skill": 1 - mae / naive_mae if naive_mae else float("nan"),
        "skill_last_price": 1 - mae / last_mae if last_mae else float("nan"),
    }
    if actual.size >= 2:
        for ref, ref_forecast in (("naive", naive), ("last_price", last)):
            result = diebold_mariano(error, ref_forecast - actual)
            out[f"dm_{ref}_stat"], out[f"dm_{ref}_p"] = result.statistic, result.pvalue
    return out


def score(forecasts: pd.DataFrame) -> pd.DataFrame:
    """Scores of every model column of `walk_forward`'s output over all its fold days; one row per model."""
    models = [c for c in forecasts.columns if c not in INFO_COLUMNS]
    scales = forecasts["naive_scale"].to_numpy(dtype="float64")
    actual = forecasts["actual"].to_numpy(dtype="float64")
    naive, last = forecasts["naive"].to_numpy(dtype="float64"), forecasts["last_price"].to_numpy(dtype="float64")
    rows = {m: _scores(actual, forecasts[m].to_numpy(dtype="float64"), naive, last, scales) for m in models}
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("model")


def fold_scores(forecasts: pd.DataFrame) -> pd.DataFrame:
    """The same scores fold by fold (for MLflow steps): one row per (fold, model)."""
    return pd.concat(
        [score(part).assign(fold=number).reset_index() for number, part in forecasts.groupby("fold", sort=True)],
        ignore_index=True,
    )
