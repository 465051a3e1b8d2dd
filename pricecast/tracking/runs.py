"""MLflow runs: their context (params, tags, inputs), what they log, and closing runs of dead processes."""

from __future__ import annotations

import os
import socket
import subprocess
import tempfile
import time
import urllib.parse
import warnings
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from functools import partial
from importlib.metadata import version as package_version
from pathlib import Path
from signal import Signals
from typing import TYPE_CHECKING

import joblib
import mlflow
import pandas as pd
from mlflow import MlflowClient

from pricecast.config import PROJECT_ROOT, Config, Paths, TrackingConfig
from pricecast.errors import DISK_FULL, DiskFullError
from pricecast.interrupts import held_signals
from pricecast.prices.store import digest
from pricecast.stages.split import date_range
from pricecast.tracking import registry

if TYPE_CHECKING:
    from matplotlib.figure import Figure
    from mlflow.entities.model_registry import ModelVersion

    from pricecast.prices.parse import PriceFile
    from pricecast.stages.evaluate import Evaluation
    from pricecast.stages.model import Fitted
    from pricecast.stages.prepare import Prepared
    from pricecast.stages.split import Split


@dataclass(frozen=True)
class RunRecord:
    """Where a training run landed: the run, its link, its metrics and its model version."""

    run_id: str
    experiment_id: str
    url: str
    model_name: str
    version: str
    metrics: dict[str, float]


def process_tags() -> dict[str, str]:
    """Which process on which host runs a run: lets the next start close it if the process dies."""
    return {"pricecast.host": socket.gethostname(), "pricecast.pid": str(os.getpid())}


def experiment_name(config: TrackingConfig, ticker: str) -> str:
    return f"{config.experiment_prefix}-{ticker}"


def ensure_experiment(name: str, paths: Paths) -> str:
    """The experiment's id, creating it with artifacts under `<home>/mlruns/artifacts` for a local store.

    Another process may create it between the look-up and the creation: then its id is used.
    """
    found = mlflow.get_experiment_by_name(name)
    if found is not None:
        return found.experiment_id
    local = mlflow.get_tracking_uri().startswith("sqlite:")
    location = (paths.mlruns / "artifacts").as_uri() if local else None
    try:
        return mlflow.create_experiment(name, artifact_location=location)
    except mlflow.exceptions.MlflowException as exc:
        if exc.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
        return mlflow.get_experiment_by_name(name).experiment_id


def run_url(config: TrackingConfig, experiment_id: str, run_id: str) -> str:
    """Link to a run in the MLflow UI: the tracking server's, or `pricecast ui`'s."""
    uri = mlflow.get_tracking_uri()
    base = uri.rstrip("/") if uri.startswith("http") else f"http://127.0.0.1:{config.ui_port}"
    return f"{base}/#/experiments/{experiment_id}/runs/{run_id}"


def code_version() -> str:
    """The git commit of the code (with `-dirty` for local changes), or the package version."""
    try:
        commit = subprocess.run(
            ["git", "-C", str(PROJECT_ROOT), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(PROJECT_ROOT), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return f"pricecast {package_version('pricecast')}"
    return commit + ("-dirty" if dirty else "")


def model_label(config: Config) -> str:
    """A run's name: the network's cell, representation, epochs and seed, or the baseline's name."""
    if config.model.kind not in ("network", "global"):
        return f"baseline {config.model.kind}"
    m, t = config.model, config.training
    kind = " global" if m.kind == "global" else ""
    return f"{m.cell}({m.units}){kind} {config.features.representation} {t.epochs} epochs seed {t.seed}"


def training_run(
    config: Config, prices: PriceFile, split: Split, flow_run_id: str | None
) -> AbstractContextManager[mlflow.ActiveRun]:
    """Open a run in the ticker's experiment with the config as params and the data as tags and inputs."""
    describe = partial(describe_run, config, prices, split, flow_run_id)
    return tracked_run(config, prices.ticker, model_label(config), describe)


@contextmanager
def tracked_run(config: Config, ticker: str, name: str, describe: Callable[[], None]) -> Iterator[mlflow.ActiveRun]:
    """Open a run named `name` in the experiment `<prefix>-<ticker>`; `describe()` logs its params and tags.

    A failure inside the block ends the run FAILED, with the error as the `error` tag; an
    interruption (SIGTERM, Ctrl+C) ends it KILLED. The `pricecast.host` and `pricecast.pid` tags
    let the next start mark the run KILLED if this process dies without closing it.
    """
    paths = config.paths()
    # A stop held until the set-up's writes are done: cut short, they would leave a local store locked.
    with held_signals() as deliver:
        experiment_id = ensure_experiment(experiment_name(config.tracking, ticker), paths)
        with mlflow.start_run(experiment_id=experiment_id, run_name=name, tags=process_tags()) as run:
            try:
                describe()
                deliver()  # a stop that came meanwhile ends the run here, KILLED
                yield run
            except BaseException as exc:
                with held_signals():
                    signum = getattr(exc, "signal", None)  # Prefect's TerminationSignal carries the signal
                    mlflow.set_tag("error", f"{type(exc).__name__}: {Signals(signum).name if signum else exc}"[:5000])
                    if not isinstance(exc, Exception):
                        mlflow.end_run("KILLED")
                raise


def describe_run(config: Config, prices: PriceFile, split: Split, flow_run_id: str | None) -> None:
    """The active run's tags, params and inputs: the config, the data and where it came from."""
    mlflow.set_tags(
        {
            "ticker": prices.ticker,
            "target": config.data.target,
            "model.kind": config.model.kind,
            "data.source": prices.source,
            "data.train_range": date_range(split.train),
            "data.test_range": date_range(split.test),
            "data.rows": str(len(split.train) + len(split.test)),
            "data_digest": digest(pd.concat([split.train, split.test])),
            "code_version": code_version(),
            "prefect.flow_run_id": flow_run_id or "",
        }
    )
    mlflow.log_params(config.flat())
    for context, frame in (("training", split.train), ("testing", split.test)):
        with warnings.catch_warnings():  # MLflow warns that a local path "can be interpreted in multiple ways"
            warnings.simplefilter("ignore", UserWarning)
            dataset = mlflow.data.from_pandas(
                frame, source=prices.source, name=f"{prices.ticker}-{context}", targets=config.data.target
            )
        log_input(dataset, context)


def log_input(dataset: mlflow.data.Dataset, context: str) -> None:
    """`mlflow.log_input`, tried once more when another run logged the same dataset at the same moment.

    MLflow's store looks for the dataset, then inserts it: of two runs at once, the second can fail on the key
    (PostgreSQL's `dataset_pk`, SQLite's UNIQUE constraint; seen with two machines retraining one ticker on one
    team server). Tried again, it finds the dataset and links it to the run.
    """
    try:
        mlflow.log_input(dataset, context=context)
    except mlflow.MlflowException as error:
        if '"dataset_pk"' not in str(error) and "UNIQUE constraint failed: datasets." not in str(error):
            raise
        mlflow.log_input(dataset, context=context)


def log_history(history: dict[str, list[float]]) -> None:
    """Loss and validation loss of every epoch, as metric history (step = epoch)."""
    client = MlflowClient()
    run_id = mlflow.active_run().info.run_id
    now = int(time.time() * 1000)
    metrics = [
        mlflow.entities.Metric(key, value, now, step)
        for key, values in history.items()
        for step, value in enumerate(values, start=1)
    ]
    for start in range(0, len(metrics), 1000):
        client.log_batch(run_id, metrics=metrics[start : start + 1000])


def log_results(
    config: Config, ticker: str, fitted: Fitted, evaluation: Evaluation, figures: dict[str, Figure], prepared: Prepared
) -> RunRecord:
    """Log metrics, plots, predictions, scaler and model in the active run; register the model last.

    Registration is the last step, so a run that fails earlier leaves the registry untouched. A
    full disk names the file, else the experiment's artifact folder it was writing under.
    """
    run = mlflow.active_run()
    with full_disk_named():
        log_history(fitted.history)
        mlflow.log_metrics({**evaluation.metrics, "train_seconds": fitted.seconds})
        for name, figure in figures.items():
            mlflow.log_figure(figure, f"plots/{name}")
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            evaluation.predictions.to_csv(folder / "predictions.csv", index=False, date_format="%Y-%m-%d")
            mlflow.log_artifact(str(folder / "predictions.csv"))
            joblib.dump(prepared.transform, folder / "features.joblib")
            mlflow.log_artifact(str(folder / "features.joblib"))
        model_uri = registry.log_model(fitted.model, prepared.transform, prepared.split.train, fitted.range)
        tags = mlflow.get_run(run.info.run_id).data.tags
        description = (
            f"{model_label(config)} on {ticker} {config.data.target}, "
            f"trained {tags['data.train_range']}, tested {tags['data.test_range']}: "
            f"MAE {evaluation.metrics['mae']:.4g} vs naive {evaluation.metrics['naive_mae']:.4g} "
            f"(skill {evaluation.metrics['skill']:+.3f}), vs last price {evaluation.metrics['last_price_mae']:.4g} "
            f"(skill_last_price {evaluation.metrics['skill_last_price']:+.3f})"
        )
        version = registry.register(model_uri, ticker, tags["data_digest"], description)
    return run_record(config, run, version, evaluation.metrics)


@contextmanager
def full_disk_named() -> Iterator[None]:
    """A full disk while logging raises `DiskFullError` naming the file, else the experiment's artifact folder."""
    try:
        yield
    except OSError as exc:
        if exc.errno in DISK_FULL:
            raise DiskFullError(exc.filename or artifact_root(), exc.errno) from exc
        raise


def run_record(config: Config, run: mlflow.ActiveRun, version: ModelVersion, metrics: dict[str, float]) -> RunRecord:
    """Where a run landed: its ids, its link in the UI, its registered version and its metrics."""
    url = run_url(config.tracking, run.info.experiment_id, run.info.run_id)
    return RunRecord(run.info.run_id, run.info.experiment_id, url, version.name, str(version.version), metrics)


def artifact_root() -> str:
    """Where the active run's experiment keeps artifacts (runs' and models'): a folder for a local store."""
    location = mlflow.get_experiment(mlflow.active_run().info.experiment_id).artifact_location
    return urllib.parse.urlparse(location).path if location.startswith("file:") else location


def set_tags(run_id: str, tags: dict[str, str]) -> None:
    """Tags on a finished run."""
    client = MlflowClient()
    for key, value in tags.items():
        client.set_tag(run_id, key, value)


def log_metrics(run_id: str, metrics: dict[str, float]) -> None:
    """Metrics (step 0) on a finished run."""
    now = int(time.time() * 1000)
    MlflowClient().log_batch(run_id, metrics=[mlflow.entities.Metric(k, v, now, 0) for k, v in metrics.items()])


def run_data(run_id: str) -> tuple[dict[str, float], dict[str, str]]:
    """A run's metrics and tags."""
    run = mlflow.get_run(run_id)
    return run.data.metrics, run.data.tags
