"""The global retrain: one challenger network on every ticker, promoted only when it beats the champion."""

from prefect import flow, get_run_logger

from flows import quiet_expected_errors
from flows.train_global import train_on
from pricecast.config import Config, SplitConfig
from pricecast.prices.stores import open_store
from pricecast.promote import Decision
from pricecast.tracking import connect
from tasks.global_network import check_global, judge_global, read_store
from tasks.promote import record_decision


@flow(name="retrain-global")
def retrain_global(config: Config, tickers: list[str], force: bool = False) -> Decision:
    """Skip when no ticker's rows changed since the champion (or last challenger); else train a challenger on every
    ticker, tested on each one's latest `promotion.holdout_days`, and promote it when it beats the champion there."""
    quiet_expected_errors()
    trained = config.model_copy(update={"split": SplitConfig(test_days=config.promotion.holdout_days)})
    connect.connect(config.tracking, config.paths())
    # Read every ticker; stop when the rows are what the champion (or the last challenger) was trained on.
    frames = read_store(open_store(config), tickers, trained.window.lookback + 1 + trained.split.test_days)
    if skipped := check_global(frames, force):
        get_run_logger().info("GLOBAL: %s", skipped.reason)
        return skipped
    # Train a challenger on every ticker; both forecast the latest holdout days, neither trained on; decide.
    challenger = train_on(trained, frames)
    decision = judge_global(frames, challenger, trained)
    # Record the decision on both runs and versions; move the alias last.
    latest = max(frames.values(), key=lambda frame: frame["date"].iloc[-1])
    record_decision(decision, challenger.run_id, latest, trained.promotion.holdout_days)
    get_run_logger().info("GLOBAL: %s (%s)", decision.action, decision.reason)
    return decision
