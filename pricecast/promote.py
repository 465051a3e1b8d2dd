"""Champion/challenger: a challenger trained on new data is promoted only when it is better.

Pure functions decide; `record_decision` writes the decision through `pricecast.tracking`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from pricecast.config import Config, Paths, PromotionConfig, SplitConfig
from pricecast.prices.store import digest
from pricecast.stages.evaluate import Evaluation, compare
from pricecast.stages.window import windows_before
from pricecast.tracking import registry, runs

if TYPE_CHECKING:
    from mlflow.entities.model_registry import ModelVersion


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


def challenger_config(config: Config, ticker: str, paths: Paths) -> Config:
    """The training config of a challenger: the ticker's prices in the price store, its latest holdout days as test."""
    return config.model_copy(
        update={
            "home": paths.root,
            "data": config.data.model_copy(
                update={"path": None, "from_store": True, "ticker": ticker, "store": config.store_url()}
            ),
            "split": SplitConfig(test_days=config.promotion.holdout_days),
        }
    )


def evaluate_on_holdout(
    predict_prices: Callable[[np.ndarray], np.ndarray],
    lookback: int,
    frame: pd.DataFrame,
    target: str,
    holdout_days: int,
) -> Evaluation:
    """Score a price forecaster (windows in price units -> prices) on the latest `holdout_days`.

    Raises:
        DataError: too few rows for the holdout and one lookback window before it.
    """
    values = frame[target].to_numpy(dtype="float64")
    windows = windows_before(values, lookback, holdout_days)
    predicted = np.asarray(predict_prices(windows), dtype="float64")
    holdout = frame.iloc[-holdout_days:]
    return compare(
        holdout["date"], holdout[target].to_numpy(dtype="float64"), predicted, float(values[-holdout_days - 1])
    )


def decide(
    challenger: dict[str, float], champion: dict[str, float] | None, config: PromotionConfig
) -> tuple[bool, str]:
    """Promote or keep, and why. Both metric dicts come from the same holdout days."""
    mae, naive = challenger["mae"], challenger["naive_mae"]
    if config.naive_gate and not mae < naive:
        return False, f"challenger MAE {mae:.4g} does not beat the naive forecast's {naive:.4g}"
    if champion is None:
        gate = f", beating naive {naive:.4g}" if config.naive_gate else ""
        return True, f"first champion: MAE {mae:.4g}{gate}"
    bar = champion["mae"] * (1 - config.margin)
    if mae < bar:
        return (
            True,
            f"challenger MAE {mae:.4g} beats champion MAE {champion['mae']:.4g} by more than the "
            f"{config.margin:.1%} margin",
        )
    return (
        False,
        f"challenger MAE {mae:.4g} does not beat champion MAE {champion['mae']:.4g} by the {config.margin:.1%} margin",
    )


def unchanged(ticker: str, frame: pd.DataFrame, references: list[ModelVersion | None]) -> Decision | None:
    """A "skipped" decision when the store is what a reference version was trained on."""
    current = digest(frame)
    for version in references:
        if version is not None and version.tags.get("data_digest") == current:
            return Decision(
                ticker, "skipped", f"no new data: the store is what version {version.version} was trained on"
            )
    return None


def judge(ticker: str, frame: pd.DataFrame, challenger: runs.RunRecord, config: PromotionConfig) -> Decision:
    """Score the champion on the challenger's holdout days, with its own scaler, lookback and target, and decide."""
    champion = registry.champion(ticker)
    champion_metrics = None
    if champion is not None:
        forecaster = registry.forecaster_of(registry.load_forecaster(registry.model_name(ticker), champion.version))
        champion_metrics = evaluate_on_holdout(
            forecaster.next_prices, forecaster.lookback, frame, forecaster.target, config.holdout_days
        ).metrics
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


def unchanged_since_last_version(ticker: str, frame: pd.DataFrame) -> Decision | None:
    """A "skipped" decision when the store is what the champion or the last challenger was trained on."""
    return unchanged(ticker, frame, [registry.champion(ticker), registry.last_challenger(ticker)])


def record_decision(decision: Decision, challenger_run_id: str) -> None:
    """Record a retrain decision on both runs, both versions and the registered model.

    The alias moves before anything says "promoted", so a failure part-way never claims a
    promotion that did not happen. The task retries; a retry sets the same tags and alias
    again and may add a second description line.
    """
    when = pd.Timestamp.now(tz="UTC").strftime("%Y-%m-%d %H:%M UTC")
    ticker, challenger, before = decision.ticker, decision.challenger_version, decision.champion_version
    if decision.champion:
        runs.log_metrics(challenger_run_id, {f"champion_{k}": v for k, v in decision.champion.items()})
    if decision.action == "promoted":
        registry.set_champion(ticker, challenger)
    runs.set_tags(
        challenger_run_id,
        {
            "promotion.decision": decision.action,
            "promotion.reason": decision.reason,
            "promotion.champion_version": before or "none",
        },
    )
    registry.add_to_description(ticker, challenger, f"{when}: {decision.action}: {decision.reason}")
    if before:
        champion_run = registry.version(ticker, before).run_id
        runs.set_tags(
            champion_run,
            {"promotion.last_challenge": f"{when}: version {challenger} {decision.action}: {decision.reason}"},
        )
        if decision.action == "promoted":
            registry.add_to_description(ticker, before, f"{when}: replaced as champion by version {challenger}")
    registry.set_model_tags(
        ticker,
        {
            "last_decision": decision.action,
            "last_reason": decision.reason,
            "last_decision_at": when,
            "last_challenger": challenger,
        },
    )
