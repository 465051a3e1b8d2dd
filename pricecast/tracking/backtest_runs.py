"""MLflow runs of backtests and tuning studies: one parent run, a nested run per model (or trial)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import mlflow
import numpy as np
import pandas as pd
from mlflow import MlflowClient

from pricecast.config import Config
from pricecast.tracking.runs import code_version, ensure_experiment, experiment_name, process_tags, run_url

if TYPE_CHECKING:
    from matplotlib.figure import Figure

#: Metrics of a backtest's nested run per model, over all its fold days (and per fold, as steps).
SCORES = (
    "mae",
    "rmse",
    "mase",
    "naive_mae",
    "last_price_mae",
    "skill",
    "skill_last_price",
    "dm_naive_stat",
    "dm_naive_p",
    "dm_last_price_stat",
    "dm_last_price_p",
)


@dataclass(frozen=True)
class BacktestRecord:
    """Where a backtest landed: the parent run, its link, and the nested run of each model."""

    run_id: str
    url: str
    model_runs: dict[str, str]


def _model_params(name: str, config: Config) -> dict[str, Any]:
    if name == "network":
        return {**config.flat(), "model.kind": "network"}
    return {"model.kind": name, "data.target": config.data.target}


def log_backtest(
    config: Config,
    ticker: str,
    source: str,
    forecasts: pd.DataFrame,
    table: pd.DataFrame,
    per_fold: pd.DataFrame,
    figure: Figure,
    ranges: pd.DataFrame,
    flow_run_id: str | None,
) -> BacktestRecord:
    """A parent run (config, forecasts and scores CSVs, cumulative-error plot) with a nested run per model.

    A model's run has its point scores and the range scores of the configured range method under
    plain names (`coverage_80`, `interval_score_80`, `pinball`, `dm_interval_const_p`, ...), so the
    compare view puts them side by side; every other method's as `<method>.<score>`.
    """
    experiment_id = ensure_experiment(experiment_name(config.tracking, ticker), config.paths())
    b = config.backtest
    first, last = pd.to_datetime(forecasts["date"]).min(), pd.to_datetime(forecasts["date"]).max()
    tags = {
        **process_tags(),
        "ticker": ticker,
        "run_type": "backtest",
        "data.source": source,
        "backtest.range": f"{first:%Y-%m-%d}..{last:%Y-%m-%d}",
        "code_version": code_version(),
        "prefect.flow_run_id": flow_run_id or "",
    }
    model_runs = {}
    with mlflow.start_run(experiment_id=experiment_id, run_name=f"backtest {b.folds}x{b.fold_days}", tags=tags) as run:
        mlflow.log_params(config.flat())
        mlflow.log_text(forecasts.to_csv(index=False, date_format="%Y-%m-%d"), "forecasts.csv")
        mlflow.log_text(table.to_csv(), "scores.csv")
        mlflow.log_text(ranges.to_csv(), "range_scores.csv")
        mlflow.log_figure(figure, "plots/cumulative_error.png")
        for name, row in table.iterrows():
            nested = {**tags, "model.kind": str(name), "run_type": "backtest-model"}
            with mlflow.start_run(
                experiment_id=experiment_id, run_name=f"backtest {name}", nested=True, tags=nested
            ) as child:
                mlflow.log_params(_model_params(str(name), config))
                mlflow.log_metrics({k: float(row[k]) for k in SCORES if k in row and pd.notna(row[k])})
                mlflow.log_metrics(range_metrics(ranges, str(name), config.forecast.range_method))
                folds = per_fold[per_fold["model"] == name]
                now = int(time.time() * 1000)
                metrics = [
                    mlflow.entities.Metric(f"fold_{k}", float(r[k]), now, int(r["fold"]))
                    for _, r in folds.iterrows()
                    for k in ("mae", "skill", "skill_last_price")
                    if pd.notna(r[k])
                ]
                MlflowClient().log_batch(child.info.run_id, metrics=metrics)
                model_runs[str(name)] = child.info.run_id
    return BacktestRecord(run.info.run_id, run_url(config.tracking, experiment_id, run.info.run_id), model_runs)


def range_metrics(ranges: pd.DataFrame, model: str, default: str) -> dict[str, float]:
    """One model's range scores: the default method's under plain names, the others' prefixed with their name."""
    out = {}
    if model not in ranges.index.get_level_values("model"):
        return out
    for method, row in ranges.loc[model].iterrows():
        prefix = "" if method == default else f"{method}."
        out |= {f"{prefix}{k}": float(v) for k, v in row.items() if k != "days" and pd.notna(v) and np.isfinite(v)}
    return out


def start_study_run(config: Config, ticker: str, study: str) -> tuple[str, str]:
    """A parent run for a tuning study (its config as params); returns its id and the experiment id."""
    experiment_id = ensure_experiment(experiment_name(config.tracking, ticker), config.paths())
    tags = {**process_tags(), "ticker": ticker, "run_type": "tune", "optuna.study": study}
    run = MlflowClient().create_run(experiment_id, run_name=f"tune {study}", tags=tags)
    client = MlflowClient()
    flat = config.flat()
    client.log_batch(run.info.run_id, params=[mlflow.entities.Param(k, str(v)) for k, v in flat.items()])
    return run.info.run_id, experiment_id


def log_trial(tracking_uri: str, experiment_id: str, parent_id: str, trial: Any, config: Config, value: Any) -> None:
    """A nested run of one trial: its choices as params, its validation MAE (per fold as steps), its state.

    Module-level and picklable: trials in other processes log through it too (each run names its process).
    """
    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    tags = {
        **process_tags(),
        "mlflow.parentRunId": parent_id,
        "run_type": "tune-trial",
        "optuna.state": trial.state.name,
    }
    run = client.create_run(experiment_id, run_name=f"trial {trial.number}", tags=tags)
    now = int(time.time() * 1000)
    params = [mlflow.entities.Param(f"trial.{k}", str(v)) for k, v in trial.params.items()]
    metrics = [
        mlflow.entities.Metric("validation_mae", float(v), now, int(s)) for s, v in trial.intermediate_values.items()
    ]
    if value is not None:
        metrics.append(mlflow.entities.Metric("validation_mae", float(value), now, len(trial.intermediate_values)))
    client.log_batch(run.info.run_id, metrics=metrics, params=params)
    client.set_terminated(run.info.run_id, "FINISHED")


def end_study_run(run_id: str, best: dict[str, Any], value: float, yaml_text: str) -> None:
    """The study's best trial on its parent run, the best config as an artifact, and the run closed."""
    client = MlflowClient()
    now = int(time.time() * 1000)
    client.log_batch(
        run_id,
        metrics=[mlflow.entities.Metric("best_validation_mae", float(value), now, 0)],
        params=[mlflow.entities.Param(f"best.{k}", str(v)) for k, v in best.items()],
    )
    client.log_text(run_id, yaml_text, "best.yaml")
    client.set_terminated(run_id, "FINISHED")


def end_run(run_id: str, status: str) -> None:
    """Close a run that was created without `mlflow.start_run` (FINISHED, FAILED, KILLED)."""
    MlflowClient().set_terminated(run_id, status)
