"""Figures of a run. They are returned, never saved: the tracking module logs them."""

from __future__ import annotations

import pandas as pd
from matplotlib.figure import Figure


def loss_figure(history: dict[str, list[float]], title: str) -> Figure:
    """Training and validation loss per epoch (scaled MSE, log axis)."""
    fig = Figure(figsize=(8, 4.5), layout="constrained")
    ax = fig.add_subplot()
    for key, colour, label in (("loss", "tab:blue", "training"), ("val_loss", "tab:red", "validation")):
        if history.get(key):
            ax.plot(range(1, len(history[key]) + 1), history[key], color=colour, label=label)
    ax.set(title=title, xlabel="epoch", ylabel="loss (MSE, scaled)")
    if any(history.values()):
        ax.set_yscale("log")
        ax.legend()
    return fig


def predictions_figure(predictions: pd.DataFrame, title: str, unit: str) -> Figure:
    """Real against predicted price, with the naive forecast beside them."""
    fig = Figure(figsize=(9, 4.5), layout="constrained")
    ax = fig.add_subplot()
    ax.plot(predictions["date"], predictions["actual"], color="tab:red", marker="o", label="real")
    ax.plot(predictions["date"], predictions["predicted"], color="tab:blue", marker="o", label="predicted (model)")
    ax.plot(
        predictions["date"], predictions["naive"], color="tab:gray", linestyle="--", label="naive (yesterday's value)"
    )
    ax.set(title=title, xlabel="date", ylabel=unit)
    ax.legend()
    fig.autofmt_xdate()
    return fig


def forecast_figure(frame: pd.DataFrame, rows: pd.DataFrame, title: str, target: str, days: int) -> Figure:
    """A fan chart: recent history, then the forecasts inside their shaded ranges (widest palest), and, for
    passed days, what happened and the naive forecast. A backfill's fan joins its one-day-ahead ranges."""
    first = frame.loc[frame["date"] <= pd.to_datetime(rows["as_of"]).min(), "date"].tail(days).iloc[0]
    shown = frame[frame["date"] >= first]
    dates = pd.to_datetime(rows["date"])
    fig = Figure(figsize=(9, 4.5), layout="constrained")
    ax = fig.add_subplot()
    ax.plot(shown["date"], shown[target], color="tab:red", label="real")
    fan = rows[rows["step"] == 1] if rows["as_of"].nunique() > 1 else rows
    levels = sorted((int(c.removeprefix("lower_")) for c in rows.columns if c.startswith("lower_")), reverse=True)
    for k, level in enumerate(levels):
        lower, upper = fan[f"lower_{level}"].astype(float), fan[f"upper_{level}"].astype(float)
        if lower.notna().any():
            alpha = 0.15 + 0.2 * k / max(len(levels) - 1, 1)
            ax.fill_between(pd.to_datetime(fan["date"]), lower, upper, color="tab:blue", alpha=alpha, label=f"{level}%")
    ax.plot(dates, rows["forecast"], color="tab:blue", marker="o", linestyle="none", label="forecast (model)")
    ax.plot(dates, rows["naive"], color="tab:gray", marker="x", linestyle="none", label="naive (last known value)")
    ax.set(title=title, xlabel="date", ylabel=f"{target} price")
    ax.legend()
    fig.autofmt_xdate()
    return fig


def run_figures(
    history: dict[str, list[float]], predictions: pd.DataFrame, ticker: str, target: str
) -> dict[str, Figure]:
    """A training run's figures by artifact name: the loss per epoch and the test days' predictions."""
    return {
        "loss.png": loss_figure(history, f"{ticker}: loss per epoch"),
        "forecast.png": predictions_figure(predictions, f"{ticker}: real and predicted {target}", f"{target} price"),
    }


def cumulative_error_figure(cumulative: pd.DataFrame, title: str) -> Figure:
    """Each model's cumulative absolute error minus naive's over the backtest's days; folds shaded in turn."""
    fig = Figure(figsize=(10, 4.8), layout="constrained")
    ax = fig.add_subplot()
    dates = pd.to_datetime(cumulative["date"])
    for fold, days in dates.groupby(cumulative["fold"].to_numpy()):
        if fold % 2:
            ax.axvspan(days.iloc[0], days.iloc[-1], color="0.93")
    for name in [c for c in cumulative.columns if c not in ("date", "fold")]:
        style = {"color": "black", "linestyle": "--"} if name == "naive" else {}
        ax.plot(dates, cumulative[name], label=name, **style)
    ax.set(title=title, xlabel="date", ylabel="cumulative |error| minus naive's (price units)")
    ax.legend(fontsize=8)
    fig.autofmt_xdate()
    return fig
