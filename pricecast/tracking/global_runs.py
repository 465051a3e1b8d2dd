"""The global network's runs and its one registered model (`pricecast-GLOBAL`, experiment `<prefix>-GLOBAL`).

A run logs the config, the tickers it was trained on (a tag and `tickers.csv`), the pooled scores, every
ticker's scores (`evaluation_by_ticker.csv`: what serving reads to decide per ticker), the test days'
forecasts and the loss curve; the model is logged with its range and registered last, as a ticker's is.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Iterable, Mapping
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import mlflow
import pandas as pd

from pricecast.config import Config
from pricecast.prices.store import digest
from pricecast.stages.split import date_range
from pricecast.tracking import registry, runs

if TYPE_CHECKING:
    from contextlib import AbstractContextManager

    from matplotlib.figure import Figure

    from pricecast.stages.global_eval import GlobalEvaluation
    from pricecast.stages.global_network import GlobalNetworkForecaster
    from pricecast.stages.split import Split

#: The pseudo-ticker of the global network: its experiment, its registered model, its ledger `model` column.
GLOBAL = "GLOBAL"
BY_TICKER_FILE = "evaluation_by_ticker.csv"


def data_digest(frames: Mapping[str, pd.DataFrame]) -> str:
    """One digest of every ticker's rows (and the tickers' names): what a retrain compares to skip."""
    text = "\n".join(f"{ticker} {digest(frame)}" for ticker, frame in sorted(frames.items()))
    return hashlib.sha256(text.encode()).hexdigest()


def global_run(
    config: Config, splits: Mapping[str, Split], frames: Mapping[str, pd.DataFrame], flow_run_id: str | None
) -> AbstractContextManager[mlflow.ActiveRun]:
    """Open a run in `<prefix>-GLOBAL` with the config as params and the data as tags."""

    def describe() -> None:
        mlflow.set_tags(
            {
                "ticker": GLOBAL,
                "target": config.data.target,
                "model.kind": "global",
                "tickers": str(len(splits)),
                "data.train_range": span(s.train for s in splits.values()),
                "data.test_range": span(s.test for s in splits.values()),
                "data.rows": str(sum(len(f) for f in frames.values())),
                "data_digest": data_digest(frames),
                "code_version": runs.code_version(),
                "prefect.flow_run_id": flow_run_id or "",
            }
        )
        mlflow.log_params(config.flat())

    return runs.tracked_run(config, GLOBAL, runs.model_label(config), describe)


def log_global(
    config: Config,
    model: GlobalNetworkForecaster,
    evaluation: GlobalEvaluation,
    range_spec: dict,
    figures: dict[str, Figure],
    history: pd.DataFrame,
) -> runs.RunRecord:
    """Log the global network's scores, tables, plots and model in the active run; register it last.

    `history`: one ticker's training rows, for the model's input example.
    """
    metrics = {**evaluation.metrics, "train_seconds": model.seconds, "windows": float(model.windows)}
    run = mlflow.active_run()
    with runs.full_disk_named():
        runs.log_history(model.history)
        mlflow.log_metrics(metrics)
        for name, figure in figures.items():
            mlflow.log_figure(figure, f"plots/{name}")
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            evaluation.by_ticker.to_csv(folder / BY_TICKER_FILE, index=False)
            evaluation.predictions.to_csv(folder / "predictions.csv", index=False, date_format="%Y-%m-%d")
            pd.Series(model.tickers, name="ticker").to_csv(folder / "tickers.csv", index=False)
            for name in (BY_TICKER_FILE, "predictions.csv", "tickers.csv"):
                mlflow.log_artifact(str(folder / name))
        model_uri = registry.log_model(model.model, model.transform(), history, range_spec, model.served_config())
        tags = mlflow.get_run(run.info.run_id).data.tags
        m = evaluation.metrics
        description = (
            f"{runs.model_label(config)} on {len(model.tickers)} tickers' {config.data.target}, "
            f"trained {tags['data.train_range']}, tested on each one's last {config.split.test_days} days: "
            f"log MAE {m['log_mae']:.4g} vs naive {m['naive_log_mae']:.4g} (skill {m['skill']:+.3f}), "
            f"vs last price {m['last_price_log_mae']:.4g} (skill_last_price {m['skill_last_price']:+.3f}); "
            f"beats both on {m['beats_share']:.0%} of the tickers"
        )
        version = registry.register(model_uri, GLOBAL, tags["data_digest"], description)
    return runs.run_record(config, run, version, metrics)


@lru_cache(maxsize=16)
def evaluation_by_ticker(run_id: str) -> pd.DataFrame:
    """A global run's per-ticker scores, indexed by ticker (read once per run and process)."""
    path = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=BY_TICKER_FILE)
    return pd.read_csv(path, dtype={"ticker": str}).set_index("ticker")


def span(frames: Iterable[pd.DataFrame]) -> str:
    """`first..last` date over several frames."""
    return date_range(pd.concat([f[["date"]] for f in frames]).sort_values("date"))
