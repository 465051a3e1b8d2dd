"""The training flow: the seed's forecaster, orchestrated by Prefect and recorded in MLflow."""

from __future__ import annotations

from prefect import flow
from prefect.runtime import flow_run

from tasks import tracking
from tasks.config import Config
from tasks.evaluate import evaluate
from tasks.ingest import ingest, store
from tasks.plot import plot
from tasks.report import publish
from tasks.scale import scale
from tasks.split import split
from tasks.train import train as fit
from tasks.window import window


@flow(name="train")
def train(config: Config = Config()) -> tracking.RunRecord:
    """Train one ticker's forecaster, evaluate it against the naive forecast, log and register it."""
    paths = config.paths()
    tracking.connect(config.tracking, paths)
    # Ingest: read and validate the prices (a user file or the embedded default).
    prices = ingest(config.data.path, config.data.ticker, config.data)
    test = ingest(config.split.test_path, prices.ticker, config.data) if config.split.test_path else None
    # Split by date (enough rows for the lookback?), scale on the training days only, cut windows.
    parts = split(prices, test, config.split, config.window.lookback)
    scaled = scale(parts, config.data.target, config.scaling)
    windows = window(scaled.train, scaled.test, config.window.lookback, prices.source)
    # The input is valid: keep it in the ticker's store.
    store(prices, test, paths.store_file(prices.ticker))
    with tracking.training_run(config, prices, parts, flow_run.id):
        # Train, evaluate in price units beside the naive forecast, plot.
        fitted = fit(windows.x_train, windows.y_train, config.model, config.training)
        evaluation = evaluate(fitted.model, windows, scaled, parts, config.data.target)
        figures = plot(fitted.history, evaluation.predictions, prices.ticker, config.data.target)
        # Log everything and register the model as a new version, last.
        record = tracking.track(config, prices.ticker, fitted, evaluation, figures, scaled.scaler, parts.train)
    # Publish the metrics table and the run link as a Prefect artifact.
    publish(prices.ticker, record, tracking.date_range(parts.test))
    return record


if __name__ == "__main__":
    from flows.cli import main

    import sys

    sys.exit(main(["train", *sys.argv[1:]]))
