"""The retrain flow: merge new prices, train a challenger, promote it only when it is better."""

from __future__ import annotations

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from flows.train import train
from tasks import tracking
from tasks.config import Config
from tasks.ingest import digest, read_prices
from tasks.promote import Decision, challenger_config, comparison_markdown, decide, evaluate_on_holdout, merge_incoming_task, store_tickers
from tasks.report import artifact_key


@task(name="evaluate-champion", cache_policy=NO_CACHE)
def evaluate_champion(ticker: str, version: str, frame, config: Config) -> dict[str, float]:  # noqa: ANN001
    """The champion's metrics on the latest holdout days, with its own scaler and lookback."""
    model = tracking.load_forecaster(tracking.model_name(ticker), version)
    predict = lambda windows: model.predict(tracking.windows_frame(windows))  # noqa: E731
    return evaluate_on_holdout(predict, tracking.lookback_of(model), frame, config.data.target, config.promotion.holdout_days).metrics


@task(name="record-decision", cache_policy=NO_CACHE)
def record(decision: Decision, run_id: str, champion_before, holdout: str) -> None:  # noqa: ANN001
    tracking.record_decision(decision, run_id, champion_before)
    create_markdown_artifact(comparison_markdown(decision, holdout), key=artifact_key("retrain", decision.ticker), description=f"{decision.ticker} retrain decision")


@flow(name="retrain-ticker", flow_run_name="retrain-{ticker}")
def retrain_ticker(config: Config, ticker: str, force: bool = False) -> Decision:
    """One ticker: skip when the store has not changed, else train a challenger and decide."""
    logger = get_run_logger()
    store_file = config.paths().store_file(ticker)
    frame = read_prices(store_file)[""]
    # The store unchanged since the last version was trained: nothing to learn, nothing to log.
    reference = tracking.champion(ticker) or tracking.latest_version(ticker)
    if not force and reference is not None and reference.tags.get("data_digest") == digest(frame):
        decision = Decision(ticker, "skipped", f"no new data: the store is what version {reference.version} was trained on")
        logger.info("%s: %s", ticker, decision.reason)
        return decision
    # Train a challenger on the store, tested on the latest holdout days.
    record_ = train(challenger_config(config, ticker, config.paths()))
    # Score the champion on the same days, decide, record, move the alias if promoted.
    before = tracking.champion(ticker)
    champion_metrics = evaluate_champion(ticker, before.version, frame, config) if before else None
    promote, reason = decide(record_.metrics, champion_metrics, config.promotion)
    decision = Decision(
        ticker, "promoted" if promote else "kept", reason, record_.metrics, champion_metrics, record_.version, str(before.version) if before else None
    )
    record(decision, record_.run_id, before, tracking.date_range(frame.iloc[-config.promotion.holdout_days :]))
    logger.info("%s: %s (%s)", ticker, decision.action, decision.reason)
    return decision


@flow(name="retrain")
def retrain(config: Config = Config(), tickers: list[str] | None = None, force: bool = False) -> list[Decision]:
    """Merge `data/incoming/`, then retrain the given tickers (default: every ticker in the store)."""
    logger = get_run_logger()
    paths = config.paths()
    tracking.connect(config.tracking, paths)
    # Merge new files into the store; bad ones go to incoming/rejected/ with the reason.
    report = merge_incoming_task(paths)
    for name, error in report.rejected.items():
        logger.error("rejected %s: %s", name, error)
    # Retrain each ticker; one ticker's failure does not stop the others, but fails the run.
    states = {t.upper(): retrain_ticker(config, t.upper(), force, return_state=True) for t in tickers or store_tickers(paths)}
    failed = [t for t, state in states.items() if not state.is_completed()]
    if failed:
        raise RuntimeError(f"retrain failed for {', '.join(failed)}: {'; '.join(str(states[t].result(raise_on_failure=False)) for t in failed)}")
    return [state.result() for state in states.values()]


if __name__ == "__main__":
    import sys

    from flows.cli import main

    sys.exit(main(["retrain", *sys.argv[1:]]))
