"""The retrain flow: merge new prices, train a challenger, promote it only when it is better."""

from __future__ import annotations

from prefect import flow, get_run_logger

from flows import results
from flows.forecast import forecast_all
from flows.train import train
from tasks import tracking
from tasks.config import Config
from tasks.promote import Decision, challenger_config, check_store, judge, merge_incoming_task, record, store_tickers


@flow(name="retrain-ticker", flow_run_name="retrain-{ticker}")
def retrain_ticker(config: Config, ticker: str, force: bool = False) -> Decision:
    """One ticker: skip when the store has not changed, else train a challenger and decide."""
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
    record(decision, challenger.run_id, frame, config.promotion.holdout_days)
    get_run_logger().info("%s: %s (%s)", ticker, decision.action, decision.reason)
    return decision


@flow(name="retrain")
def retrain(config: Config = Config(), tickers: list[str] | None = None, force: bool = False) -> list[Decision]:
    """Merge `data/incoming/`, retrain the given tickers (default: every ticker in the store), forecast the changed ones."""
    paths = config.paths()
    tracking.connect(config.tracking, paths)
    # Merge new files into the store; bad ones go to incoming/rejected/ with the reason.
    report = merge_incoming_task(paths)
    for name, error in report.rejected.items():
        get_run_logger().error("rejected %s: %s", name, error)
    # Retrain each ticker; one ticker's failure does not stop the others, but fails the run.
    states = {t: retrain_ticker(config, t, force, return_state=True) for t in [t.upper() for t in tickers or store_tickers(paths)]}
    # Forecast from the champion of every ticker that got new data.
    changed = [t for t, state in states.items() if state.is_completed() and state.result().action != "skipped"]
    if config.forecast.after_retrain and changed:
        forecast_all(config, changed)
    return results(states, "retrain")


if __name__ == "__main__":
    import sys

    from flows.cli import main

    sys.exit(main(["retrain", *sys.argv[1:]]))
