"""Tasks of the global network: read every ticker, fit, evaluate, calibrate its range, log and register, judge."""

from __future__ import annotations

import pandas as pd
from matplotlib.figure import Figure
from prefect import get_run_logger
from prefect.artifacts import create_markdown_artifact

from pricecast import promote, report
from pricecast.config import Config
from pricecast.errors import DataError
from pricecast.prices.stores import PriceStore
from pricecast.stages import global_eval, plot
from pricecast.stages.global_network import GlobalNetworkForecaster
from pricecast.stages.split import Split
from pricecast.tracking import global_runs, monitoring
from pricecast.tracking.runs import RunRecord
from tasks import stage


@stage("read-store", retry="io")
def read_store(store: PriceStore, tickers: list[str], rows: int) -> dict[str, pd.DataFrame]:
    """Every chosen ticker's prices; a ticker with fewer than `rows` rows is left out, with a warning naming it.

    Raises:
        DataError: no ticker has `rows` rows (or none was chosen), naming the store.
    """
    frames, short = global_eval.usable({t: store.read(t) for t in tickers}, rows)
    if short:
        get_run_logger().warning("left out, fewer than %d rows: %s", rows, ", ".join(short))
    if not frames:
        raise DataError(f"No ticker in {store.where} has the {rows} rows a global network needs to train and test")
    return frames


@stage("fit-global")
def fit_global(config: Config, splits: dict[str, Split]) -> GlobalNetworkForecaster:
    """One network on the training days of every ticker."""
    return GlobalNetworkForecaster(config).fit({t: s.train for t, s in splits.items()})


@stage("evaluate-global")
def evaluate_global(
    model: GlobalNetworkForecaster, frames: dict[str, pd.DataFrame], test_days: int, target: str
) -> global_eval.GlobalEvaluation:
    """Each ticker's test days forecast, scored beside the naive and last-price forecasts, per ticker and pooled."""
    return global_eval.evaluate_global(model.predict_rows, frames, test_days, target)


@stage("fit-global-range")
def fit_global_range(
    evaluation: global_eval.GlobalEvaluation, splits: dict[str, Split], levels: tuple[int, ...], target: str
) -> dict:
    """`conformal_ewma` calibrated on every ticker's volatility-scaled test errors."""
    return global_eval.global_range(evaluation, splits, levels, target)


@stage("plot-global")
def plot_global(history: dict[str, list[float]], tickers: int) -> dict[str, Figure]:
    """The loss per epoch."""
    return {"loss.png": plot.loss_figure(history, f"Global network on {tickers} tickers: loss per epoch")}


@stage("log-and-register-global")
def log_and_register_global(
    config: Config,
    model: GlobalNetworkForecaster,
    evaluation: global_eval.GlobalEvaluation,
    range_spec: dict,
    figures: dict[str, Figure],
    history: pd.DataFrame,
) -> RunRecord:
    """Log the scores, tables, plot and model in the active run; register it as the next GLOBAL version, last."""
    return global_runs.log_global(config, model, evaluation, range_spec, figures, history)


@stage("check-global", retry="any")
def check_global(frames: dict[str, pd.DataFrame], force: bool) -> promote.Decision | None:
    """A "skipped" decision when every ticker's rows are what the champion or the last challenger saw (never when
    a live demotion asked for a retrain)."""
    return None if force or monitoring.retrain_requested(global_runs.GLOBAL) else promote.global_unchanged(frames)


@stage("judge-global", retry="any")
def judge_global(frames: dict[str, pd.DataFrame], challenger: RunRecord, config: Config) -> promote.Decision:
    """The challenger beside the champion on every ticker's latest holdout days; decide."""
    return promote.judge_global(frames, challenger, config)


@stage("publish-global")
def publish_global(record: RunRecord, test_range: str) -> str:
    """A Prefect markdown artifact with the pooled scores and the MLflow run link."""
    markdown = report.global_markdown(record, test_range)
    create_markdown_artifact(markdown, key=report.artifact_key("train", global_runs.GLOBAL), description="global run")
    return markdown
