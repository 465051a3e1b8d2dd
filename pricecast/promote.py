"""Champion/challenger: a challenger trained on new data is promoted only when it is better.

Pure functions decide; `record_decision` writes the decision through `pricecast.tracking`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import pandas as pd

from pricecast.config import Config, Paths, PromotionConfig, SplitConfig
from pricecast.prices.store import digest
from pricecast.stages.backtest import score, walk_forward
from pricecast.stages.global_eval import evaluate_global, pooled_evaluation, served_rows
from pricecast.stages.network import backtest_model, min_train
from pricecast.tracking import registry, runs
from pricecast.tracking.global_runs import GLOBAL, data_digest

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


def config_of_run(params: dict[str, str], base: Config) -> Config:
    """A registered version's training config from its run's params (`group.field` text), laid over `base`
    (whose data, store and everything else but the model's settings and target are kept).

    Runs from before representations existed trained `level` networks of the target alone.
    """
    values = base.model_dump()
    for key, value in params.items():
        group, _, name = key.partition(".")
        if (group in ("scaling", "features", "window", "model", "training") and name in values[group]) or (
            key == "data.target"
        ):
            values[group][name] = None if value == "" else value
    if "features.representation" not in params:
        values["features"] = {"representation": "level", "inputs": [values["data"]["target"]]}
        values["model"] |= {"zero_output": False, "kind": "network"}
    return Config.model_validate(values)


def walk_forward_scores(frame: pd.DataFrame, models: dict[str, Config], config: PromotionConfig) -> pd.DataFrame:
    """Every model refitted before each of the latest `folds` folds of `holdout_days` days; scored on them.

    Raises:
        DataError: too few rows for the folds and the models' lookbacks before them.
    """
    names = {name: cfg.model.kind for name, cfg in models.items()}
    need = max(min_train([kind], cfg) for kind, cfg in zip(names.values(), models.values(), strict=True))
    target = next(iter(models.values())).data.target
    sources = {name: (lambda c=cfg: backtest_model(c.model.kind, c)) for name, cfg in models.items()}
    forecasts = walk_forward(frame, sources, target, config.folds, config.holdout_days, need)
    return score(forecasts)


def metrics_of(row: pd.Series) -> dict[str, float]:
    """The walk-forward numbers a decision keeps (and the versions' `eval.*` tags record)."""
    keys = ("mae", "rmse", "mase", "naive_mae", "last_price_mae", "skill", "skill_last_price")
    return {k: float(row[k]) for k in keys}


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


def unchanged(ticker: str, current: str, references: list[ModelVersion | None]) -> Decision | None:
    """A "skipped" decision when the store's digest `current` is what a reference version was trained on."""
    for version in references:
        if version is not None and version.tags.get("data_digest") == current:
            return Decision(
                ticker, "skipped", f"no new data: the store is what version {version.version} was trained on"
            )
    return None


def judge(ticker: str, frame: pd.DataFrame, challenger: runs.RunRecord, config: Config) -> Decision:
    """Walk-forward over the latest folds: the challenger's config and the champion's (from its run), each
    refitted before each fold, on the same days; then decide."""
    champion = registry.champion(ticker)
    models = {"challenger": config}
    if champion is not None:
        params = mlflow_params(champion.run_id)
        models["champion"] = config_of_run(params, config)
    scores = walk_forward_scores(frame, models, config.promotion)
    challenger_metrics = metrics_of(scores.loc["challenger"])
    champion_metrics = metrics_of(scores.loc["champion"]) if champion is not None else None
    promote, reason = decide(challenger_metrics, champion_metrics, config.promotion)
    return Decision(
        ticker,
        "promoted" if promote else "kept",
        reason + f" (walk-forward, {config.promotion.folds} folds x {config.promotion.holdout_days} days)",
        challenger_metrics,
        champion_metrics,
        challenger.version,
        str(champion.version) if champion else None,
    )


def global_unchanged(frames: dict[str, pd.DataFrame]) -> Decision | None:
    """A "skipped" decision when every ticker's rows are what the global champion or last challenger saw."""
    return unchanged(GLOBAL, data_digest(frames), [registry.champion(GLOBAL), registry.last_challenger(GLOBAL)])


def judge_global(frames: dict[str, pd.DataFrame], challenger: runs.RunRecord, config: Config) -> Decision:
    """A global challenger beside the champion on the same days, every ticker's latest `holdout_days`, which
    neither was trained on (the champion's training days ended before its own, earlier, holdout): the champion
    forecasts them as it is served; both are scored by their log MAE pooled over the tickers; then decide."""
    days, target = config.promotion.holdout_days, config.data.target
    version, champion = registry.champion(GLOBAL), None
    if version is not None:
        forecaster = registry.forecaster_of(registry.load_forecaster(version.name, version.version))
        champion = pooled_evaluation(evaluate_global(served_rows(forecaster), frames, days, target).metrics)
    scores = pooled_evaluation(challenger.metrics)
    promote, reason = decide(scores, champion, config.promotion)
    return Decision(
        GLOBAL,
        "promoted" if promote else "kept",
        reason + f" (log MAE pooled over {len(frames)} tickers' last {days} days)",
        scores,
        champion,
        challenger.version,
        str(version.version) if version else None,
    )


def mlflow_params(run_id: str) -> dict[str, str]:
    """A run's params."""
    import mlflow

    return dict(mlflow.get_run(run_id).data.params)


def unchanged_since_last_version(ticker: str, frame: pd.DataFrame) -> Decision | None:
    """A "skipped" decision when the store is what the champion or the last challenger was trained on."""
    return unchanged(ticker, digest(frame), [registry.champion(ticker), registry.last_challenger(ticker)])


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
    evaluated = {"eval.at": when, "eval.kind": "walk-forward"}
    for number, metrics in ((challenger, decision.challenger), (before, decision.champion)):
        if number and metrics:
            registry.set_version_tags(ticker, number, evaluated | {f"eval.{k}": str(v) for k, v in metrics.items()})
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
