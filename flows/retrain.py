"""The retrain flow: merge new prices, train a challenger, promote it only when it is better."""

from __future__ import annotations

from prefect import flow, get_run_logger

from flows import quiet_expected_errors, results
from flows.forecast import forecast
from flows.train import train
from pricecast.config import Config
from pricecast.prices.store import CsvStore
from pricecast.promote import Decision, challenger_config
from pricecast.tracking import connect
from tasks.prices import merge_incoming_files
from tasks.promote import check_store, judge, record_decision


@flow(name="retrain-ticker", flow_run_name="retrain-{ticker}")
def retrain_ticker(config: Config, ticker: str, force: bool = False) -> Decision:
    """One ticker: skip when the store has not changed, else train a challenger and decide."""
    quiet_expected_errors()
    paths = config.paths()
    # Read the store; stop when it is what the champion (or the last challenger) was trained on.
    frame, skipped = check_store(paths, ticker, force)
    if skipped:
        get_run_logger().info("%s: %s", ticker, skipped.reason)
        return skipped
    # Train a challenger on the store, tested on the latest holdout days.
    challenger = train(challenger_config(config, ticker, paths))
    # Score the champion on the same days and decide.
    decision = judge(ticker, frame, challenger, config.promotion)
    # Record the decision on both runs, the versions, the model; move the alias if promoted.
    record_decision(decision, challenger.run_id, frame, config.promotion.holdout_days)
    get_run_logger().info("%s: %s (%s)", ticker, decision.action, decision.reason)
    return decision


@flow(name="retrain")
def retrain(config: Config = Config(), tickers: list[str] | None = None, force: bool = False) -> list[Decision]:
    """Merge `data/incoming/`, retrain the given tickers (default: all in the store), forecast the changed ones."""
    quiet_expected_errors()
    paths = config.paths()
    connect.connect(config.tracking, paths)
    # Merge new files into the store; bad ones go to incoming/rejected/ with the reason.
    merge_incoming_files(paths, config.window.lookback + 1 + config.promotion.holdout_days)
    # Retrain each ticker; one ticker's failure does not stop the others, but fails the run.
    chosen = [t.upper() for t in tickers or CsvStore(paths).tickers()]
    states = {t: retrain_ticker(config, t, force, return_state=True) for t in chosen}
    # Forecast from the champion of every ticker that got new data.
    changed = [t for t, state in states.items() if state.is_completed() and state.result().action != "skipped"]
    if config.forecast.after_retrain and changed:
        forecast(config, changed)
    return results(states, "retrain")
