"""One ticker's retrain as a flow, and the task that runs it on the fan-out's runner (thread, process, Dask worker).

No `from __future__ import annotations`: a process or Dask worker gets this flow by value (cloudpickle), and
Prefect validates its parameters against real types, not their names.
"""

from prefect import flow, get_run_logger

from flows import quiet_expected_errors
from flows.train import train
from pricecast.config import Config
from pricecast.prices.stores import open_store
from pricecast.promote import Decision, challenger_config
from pricecast.tracking import connect
from tasks import stage
from tasks.promote import check_store, judge, record_decision


@flow(name="retrain-ticker", flow_run_name="retrain-{ticker}")
def retrain_ticker(config: Config, ticker: str, force: bool = False) -> Decision:
    """One ticker: skip when the store has not changed, else train a challenger and decide."""
    quiet_expected_errors()
    paths = config.paths()
    connect.connect(config.tracking, paths)  # in a process or Dask worker of its own, MLflow is not set up yet
    # Read the store; stop when it is what the champion (or the last challenger) was trained on.
    frame, skipped = check_store(open_store(config), ticker, force)
    if skipped:
        get_run_logger().info("%s: %s", ticker, skipped.reason)
        return skipped
    # Train a challenger on the store, tested on the latest holdout days.
    trained = challenger_config(config, ticker, paths)
    challenger = train(trained)
    # Walk-forward over the latest folds: challenger and champion refitted before each, on the same days; decide.
    decision = judge(ticker, frame, challenger, trained)
    # Record the decision on both runs, the versions (their latest evaluation), the model; move the alias last.
    record_decision(decision, challenger.run_id, frame, config.promotion.folds * config.promotion.holdout_days)
    get_run_logger().info("%s: %s (%s)", ticker, decision.action, decision.reason)
    return decision


@stage("retrain-one")
def retrain_one(config: Config, ticker: str, force: bool = False) -> Decision:
    """`retrain_ticker` as a task, so the fan-out can place it on a thread, a process or a Dask worker."""
    return retrain_ticker(config, ticker, force)
