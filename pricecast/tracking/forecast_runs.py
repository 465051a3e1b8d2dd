"""MLflow runs of forecasts: in `<prefix>-<TICKER>-forecasts`, apart from the training runs, tagged with their model."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import mlflow
import pandas as pd

from pricecast.config import Config
from pricecast.tracking import registry
from pricecast.tracking.runs import ensure_experiment, experiment_name, process_tags

if TYPE_CHECKING:
    from matplotlib.figure import Figure


@contextmanager
def forecast_run(
    config: Config, ticker: str, ref: registry.ModelRef, title: str, flow_run_id: str | None
) -> Iterator[mlflow.ActiveRun]:
    """A run in `<prefix>-<TICKER>-forecasts` (apart from the training runs), tagged with the model it used."""
    experiment_id = ensure_experiment(f"{experiment_name(config.tracking, ticker)}-forecasts", config.paths())
    with mlflow.start_run(experiment_id=experiment_id, run_name=title, tags=process_tags()) as run:
        mlflow.set_tags(
            {
                "ticker": ticker,
                "model": ref.name,
                "model_version": ref.version,
                "model_alias": ref.alias or "latest",
                "model_run_id": ref.run_id,
                "model_kind": f"baseline:{ref.baseline}" if ref.baseline else "registered",
                "fallback": ref.baseline or "",
                "model_note": ref.note[:5000],
                "prefect.flow_run_id": flow_run_id or "",
            }
        )
        mlflow.log_params({"horizon": config.forecast.horizon, "model_uri": ref.uri})
        yield run


def log_forecasts(rows: pd.DataFrame, figure: Figure, summary: dict[str, float]) -> None:
    """The forecasts table, its plot and, for past days, the error against naive, in the active run."""
    if summary:
        mlflow.log_metrics(summary)
    mlflow.log_figure(figure, "plots/forecast.png")
    mlflow.log_text(rows.to_csv(index=False), "forecasts.csv")
