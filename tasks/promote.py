"""Champion/challenger: new data in, a challenger trained, promoted only when it is better.

Pure functions decide; `tasks.tracking` records the decision in MLflow.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from prefect import task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from tasks import tracking
from tasks.config import Config, Paths, PromotionConfig, SplitConfig
from tasks.evaluate import Evaluation, compare
from tasks.errors import DataError
from tasks.ingest import PriceFile, digest, merged_store, read_prices, retry_on_io_error, store_lock, write_atomic
from tasks.report import artifact_key

if TYPE_CHECKING:
    from mlflow.entities.model_registry import ModelVersion


@dataclass
class MergeReport:
    """What a pass over `data/incoming/` did: files merged, files rejected (with why), tickers changed."""

    merged: list[str] = field(default_factory=list)
    rejected: dict[str, str] = field(default_factory=dict)
    tickers: set[str] = field(default_factory=set)


@dataclass(frozen=True)
class Decision:
    """The outcome of one ticker's retrain."""

    ticker: str
    action: str  # "skipped", "promoted" or "kept"
    reason: str
    challenger: dict[str, float] | None = None
    champion: dict[str, float] | None = None
    challenger_version: str | None = None
    champion_version: str | None = None


def incoming_ticker(path: Path) -> str:
    """Ticker of an incoming file without a Ticker column: its name up to the first `_` (`GOOG_2013-03.csv` -> GOOG)."""
    return path.stem.split("_", 1)[0].upper()


def _move(path: Path, folder: Path) -> Path:
    """Move a file into a folder, never over an earlier file of the same name."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / path.name
    if target.exists():
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
        target = folder / f"{path.stem}.{stamp}{path.suffix}"
    return Path(shutil.move(path, target))


def add_incoming(source: Path, paths: Paths, ticker: str | None) -> Path:
    """Copy a checked price file into `data/incoming/` for the next retrain.

    With a ticker, the copy is named `<TICKER>_<name>` so the merge files it under that ticker
    (a Ticker column in the file still wins). Bad files are refused here, before they land.
    """
    read_prices(source)
    name = f"{ticker.upper()}_{source.name}" if ticker else source.name
    paths.incoming.mkdir(parents=True, exist_ok=True)
    target = paths.incoming / name
    write_atomic(target, Path(source).read_bytes())
    return target


def merge_file(path: Path, paths: Paths) -> set[str]:
    """Validate one incoming file and merge it into the store; returns the tickers it changed.

    Every ticker in the file is checked against the store before any store file is written,
    and each store file is replaced atomically, so a bad file changes nothing.
    """
    updates = {}
    for ticker, frame in read_prices(path).items():
        ticker = ticker or incoming_ticker(path)
        store_file = paths.store_file(ticker)
        updates[store_file] = merged_store(store_file, PriceFile(ticker, frame, str(path)))
    for store_file, content in updates.items():
        if content is not None:
            write_atomic(store_file, content)
    return {f.stem for f, content in updates.items() if content is not None}


def merge_incoming(paths: Paths) -> MergeReport:
    """Merge every file in `data/incoming/` (name order) into the store.

    A merged file moves to `incoming/processed/`; a rejected one to `incoming/rejected/` with
    `<name>.error.txt` beside it saying why. I/O errors propagate (the task retries them).
    """
    report = MergeReport()
    if not paths.incoming.is_dir():
        return report
    with store_lock(paths.prices):
        for path in sorted(p for p in paths.incoming.iterdir() if p.is_file() and not p.name.startswith(".")):
            try:
                report.tickers |= merge_file(path, paths)
            except DataError as exc:
                moved = _move(path, paths.incoming / "rejected")
                moved.with_name(moved.name + ".error.txt").write_text(f"{exc}\n")
                report.rejected[path.name] = str(exc)
                continue
            _move(path, paths.incoming / "processed")
            report.merged.append(path.name)
    return report


def store_tickers(paths: Paths) -> list[str]:
    """Every ticker with a store file."""
    return sorted(p.stem for p in paths.prices.glob("*.csv")) if paths.prices.is_dir() else []


def challenger_config(config: Config, ticker: str, paths: Paths) -> Config:
    """The training config of a challenger: the ticker's store, its latest holdout days as test."""
    return config.model_copy(
        update={
            "home": paths.root,
            "data": config.data.model_copy(update={"path": paths.store_file(ticker), "ticker": ticker}),
            "split": SplitConfig(test_days=config.promotion.holdout_days),
        }
    )


def evaluate_on_holdout(
    predict_prices: Callable[[np.ndarray], np.ndarray], lookback: int, frame: pd.DataFrame, target: str, holdout_days: int
) -> Evaluation:
    """Score a price forecaster (windows in price units -> prices) on the latest `holdout_days`.

    Raises:
        DataError: too few rows for the holdout and one lookback window before it.
    """
    values = frame[target].to_numpy(dtype="float64")
    if len(values) < holdout_days + lookback:
        raise DataError(f"{len(values)} rows are fewer than a holdout of {holdout_days} days plus a lookback of {lookback}")
    windows = np.lib.stride_tricks.sliding_window_view(values[:-1], lookback)[-holdout_days:]
    predicted = np.asarray(predict_prices(windows), dtype="float64")
    holdout = frame.iloc[-holdout_days:]
    return compare(holdout["date"], holdout[target].to_numpy(dtype="float64"), predicted, float(values[-holdout_days - 1]))


def decide(challenger: dict[str, float], champion: dict[str, float] | None, config: PromotionConfig) -> tuple[bool, str]:
    """Promote or keep, and why. Both metric dicts come from the same holdout days."""
    mae, naive = challenger["mae"], challenger["naive_mae"]
    if config.naive_gate and not mae < naive:
        return False, f"challenger MAE {mae:.4g} does not beat the naive forecast's {naive:.4g}"
    if champion is None:
        gate = f", beating naive {naive:.4g}" if config.naive_gate else ""
        return True, f"first champion: MAE {mae:.4g}{gate}"
    bar = champion["mae"] * (1 - config.margin)
    if mae < bar:
        return True, f"challenger MAE {mae:.4g} beats champion MAE {champion['mae']:.4g} by more than the {config.margin:.1%} margin"
    return False, f"challenger MAE {mae:.4g} does not beat champion MAE {champion['mae']:.4g} by the {config.margin:.1%} margin"


def comparison_markdown(decision: Decision, holdout: str) -> str:
    """The Prefect artifact of a retrain: challenger against champion and naive on the same days."""
    lines = [f"# {decision.ticker}: {decision.action}", "", decision.reason, ""]
    if decision.challenger:
        lines += [f"Holdout {holdout}.", "", "| metric | challenger | champion | naive |", "| --- | ---: | ---: | ---: |"]
        for key in ("mse", "mae", "rmse", "mape"):
            champ = f"{decision.champion[key]:.4f}" if decision.champion else "none"
            lines.append(f"| {key.upper()} | {decision.challenger[key]:.4f} | {champ} | {decision.challenger[f'naive_{key}']:.4f} |")
        lines += ["", f"Challenger version {decision.challenger_version}; champion before: {decision.champion_version or 'none'}."]
    return "\n".join(lines) + "\n"


def unchanged(ticker: str, frame: pd.DataFrame, references: list[ModelVersion | None]) -> Decision | None:
    """A "skipped" decision when the store is what a reference version was trained on."""
    current = digest(frame)
    for version in references:
        if version is not None and version.tags.get("data_digest") == current:
            return Decision(ticker, "skipped", f"no new data: the store is what version {version.version} was trained on")
    return None


@task(name="merge-incoming", retries=2, retry_delay_seconds=2, retry_condition_fn=retry_on_io_error, cache_policy=NO_CACHE)
def merge_incoming_task(paths: Paths) -> MergeReport:
    return merge_incoming(paths)


@task(name="check-store", cache_policy=NO_CACHE)
def check_store(paths: Paths, ticker: str, force: bool) -> tuple[pd.DataFrame, Decision | None]:
    """The ticker's store, and a "skipped" decision when it is what the champion or the last challenger saw."""
    store_file = paths.store_file(ticker)
    if not store_file.exists():
        raise DataError(f"No prices for ticker {ticker!r}: {store_file} does not exist (drop a file in {paths.incoming})")
    frame = read_prices(store_file)[""]
    return frame, None if force else unchanged(ticker, frame, [tracking.champion(ticker), tracking.last_challenger(ticker)])


@task(name="judge", cache_policy=NO_CACHE)
def judge(ticker: str, frame: pd.DataFrame, challenger: tracking.RunRecord, config: PromotionConfig) -> Decision:
    """Score the champion on the challenger's holdout days, with its own scaler, lookback and target, and decide."""
    champion = tracking.champion(ticker)
    champion_metrics = None
    if champion is not None:
        forecaster = tracking.forecaster_of(tracking.load_forecaster(tracking.model_name(ticker), champion.version))
        champion_metrics = evaluate_on_holdout(forecaster.next_prices, forecaster.lookback, frame, forecaster.target, config.holdout_days).metrics
    promote, reason = decide(challenger.metrics, champion_metrics, config)
    return Decision(
        ticker,
        "promoted" if promote else "kept",
        reason,
        challenger.metrics,
        champion_metrics,
        challenger.version,
        str(champion.version) if champion else None,
    )


@task(name="record-decision", retries=2, retry_delay_seconds=2, cache_policy=NO_CACHE)
def record(decision: Decision, run_id: str, frame: pd.DataFrame, holdout_days: int) -> None:
    """Record the decision in MLflow (the alias moves last) and as a Prefect artifact."""
    tracking.record_decision(decision, run_id)
    holdout = tracking.date_range(frame.iloc[-holdout_days:])
    create_markdown_artifact(comparison_markdown(decision, holdout), key=artifact_key("retrain", decision.ticker), description=f"{decision.ticker} retrain decision")
