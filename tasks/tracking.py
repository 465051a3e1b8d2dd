"""Every MLflow call of the project: runs, params, metrics, artifacts, registry and aliases.

Stages return values (metrics, figures, a fitted scaler); this module records them.
"""

from __future__ import annotations

import math
import os
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import warnings
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from importlib.metadata import version as package_version
from pathlib import Path
from signal import Signals
from typing import TYPE_CHECKING

import joblib
import mlflow
import pandas as pd
from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion
from mlflow.models import infer_signature
from prefect import task
from prefect.cache_policies import NO_CACHE

from tasks.config import PROJECT_ROOT, Config, Paths, TrackingConfig
from tasks.errors import DISK_FULL, DiskFullError, TrackingError
from tasks.forecaster import PriceForecaster, model_input
from tasks.ingest import digest, store_lock

if TYPE_CHECKING:
    from matplotlib.figure import Figure
    from sklearn.preprocessing import MinMaxScaler

    from tasks.evaluate import Evaluation
    from tasks.ingest import PriceFile
    from tasks.promote import Decision
    from tasks.split import Split
    from tasks.train import Fitted

CHAMPION = "champion"
FORECASTER_CODE = Path(__file__).with_name("forecaster.py")
#: What a registered version needs to load and predict (tasks/forecaster.py's imports).
MODEL_REQUIREMENTS = ("mlflow", "tensorflow", "scikit-learn", "pandas", "joblib")


@dataclass(frozen=True)
class RunRecord:
    """Where a training run landed: the run, its link, its metrics and its model version."""

    run_id: str
    experiment_id: str
    url: str
    model_name: str
    version: str
    metrics: dict[str, float]


def tracking_uri(config: TrackingConfig, paths: Paths) -> str:
    """The config's URI, else SQLite inside `<home>/mlruns`.

    MLFLOW_TRACKING_URI is read by the CLI into the config, not here: MLflow itself sets that
    variable whenever a URI is set, so reading it here would carry one store into the next.
    """
    return config.tracking_uri or f"sqlite:///{paths.mlruns / 'mlflow.db'}"


def connect(config: TrackingConfig, paths: Paths) -> str:
    """Point MLflow's tracking and registry at the store; returns the URI.

    A tracking server is checked first and MLflow's own HTTP timeout and retries are bounded
    from the config, so an unreachable server fails in seconds, not minutes. Runs left RUNNING
    by dead processes of this host are then marked KILLED.

    Raises:
        TrackingError: the tracking server does not answer; names the URI.
    """
    uri = tracking_uri(config, paths)
    local = uri.startswith("sqlite:///")
    if local:
        paths.mlruns.mkdir(parents=True, exist_ok=True)
    elif uri.startswith(("http://", "https://")):
        os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] = str(math.ceil(config.timeout_seconds))
        os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = str(config.http_retries)
        check_server(uri, config.timeout_seconds)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    # The first use of a SQLite store creates its tables; two processes doing it at once collide.
    with store_lock(paths.mlruns) if local else nullcontext():
        reconcile_dead_runs()
    return uri


def preflight(config: TrackingConfig, paths: Paths) -> None:
    """Fail in seconds, before a flow starts, when the tracking server does not answer (`connect` does the rest)."""
    uri = tracking_uri(config, paths)
    if uri.startswith(("http://", "https://")):
        check_server(uri, config.timeout_seconds)


def check_server(uri: str, timeout: float) -> None:
    """Raise TrackingError unless the tracking server at `uri` answers `/health` within `timeout` seconds."""
    try:
        with urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=timeout):
            return
    except urllib.error.HTTPError as exc:
        if exc.code < 500:  # it answered: authentication or routing is MLflow's business
            return
        reason = f"HTTP {exc.code} {exc.reason}"
    except (urllib.error.URLError, OSError) as exc:
        cause = getattr(exc, "reason", exc)
        reason = f"no answer within {timeout:g} s" if isinstance(cause, TimeoutError) else str(cause)
    raise TrackingError(f"MLflow tracking server {uri} is unreachable ({reason}): start it, or fix --tracking-uri / MLFLOW_TRACKING_URI")


def process_tags() -> dict[str, str]:
    """Which process on which host runs a run: lets the next start close it if the process dies."""
    return {"pricecast.host": socket.gethostname(), "pricecast.pid": str(os.getpid())}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def reconcile_dead_runs() -> list[str]:
    """Mark KILLED the RUNNING runs started on this host by a process that is gone (say, killed with SIGKILL).

    Runs carry `pricecast.host` and `pricecast.pid` tags from the start; the reason goes in the
    `error` tag. Returns the run ids marked.
    """
    client = MlflowClient()
    host = socket.gethostname()
    experiments = [e.experiment_id for e in client.search_experiments()]
    if not experiments:
        return []
    found = client.search_runs(experiments, filter_string=f"attributes.status = 'RUNNING' and tags.`pricecast.host` = '{host}'", max_results=1000)
    marked = []
    for run in found:
        pid = int(run.data.tags.get("pricecast.pid", "0"))
        if pid and not _alive(pid):
            when = pd.Timestamp.now(tz="UTC").strftime("%Y-%m-%d %H:%M:%S UTC")
            client.set_tag(run.info.run_id, "error", f"process {pid} on {host} ended without closing the run (killed?); marked KILLED at {when}")
            client.set_terminated(run.info.run_id, "KILLED")
            marked.append(run.info.run_id)
    return marked


def experiment_name(config: TrackingConfig, ticker: str) -> str:
    return f"{config.experiment_prefix}-{ticker}"


def model_name(ticker: str) -> str:
    return f"pricecast-{ticker}"


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
        commit = subprocess.run(["git", "-C", str(PROJECT_ROOT), "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(PROJECT_ROOT), "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return f"pricecast {package_version('pricecast')}"
    return commit + ("-dirty" if dirty else "")


def date_range(frame: pd.DataFrame) -> str:
    return f"{frame['date'].iloc[0]:%Y-%m-%d}..{frame['date'].iloc[-1]:%Y-%m-%d}"


@contextmanager
def training_run(config: Config, prices: PriceFile, split: Split, flow_run_id: str | None) -> Iterator[mlflow.ActiveRun]:
    """Open a run with the config as params and the data as tags and inputs.

    A failure inside the block ends the run FAILED, with the error as the `error` tag; an
    interruption (SIGTERM, Ctrl+C) ends it KILLED. The `pricecast.host` and `pricecast.pid` tags
    let the next start mark the run KILLED if this process dies without closing it.
    """
    paths = config.paths()
    experiment_id = ensure_experiment(experiment_name(config.tracking, prices.ticker), paths)
    name = f"{config.model.cell}({config.model.units}) {config.training.epochs} epochs seed {config.training.seed}"
    with mlflow.start_run(experiment_id=experiment_id, run_name=name, tags=process_tags()) as run:
        try:
            mlflow.set_tags(
                {
                    "ticker": prices.ticker,
                    "target": config.data.target,
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
                    dataset = mlflow.data.from_pandas(frame, source=prices.source, name=f"{prices.ticker}-{context}", targets=config.data.target)
                mlflow.log_input(dataset, context=context)
            yield run
        except BaseException as exc:
            signum = getattr(exc, "signal", None)  # Prefect's TerminationSignal carries the signal
            mlflow.set_tag("error", f"{type(exc).__name__}: {Signals(signum).name if signum else exc}"[:5000])
            if not isinstance(exc, Exception):
                mlflow.end_run("KILLED")
            raise


def log_history(history: dict[str, list[float]]) -> None:
    """Loss and validation loss of every epoch, as metric history (step = epoch)."""
    client = MlflowClient()
    run_id = mlflow.active_run().info.run_id
    now = int(time.time() * 1000)
    metrics = [
        mlflow.entities.Metric(key, value, now, step) for key, values in history.items() for step, value in enumerate(values, start=1)
    ]
    for start in range(0, len(metrics), 1000):
        client.log_batch(run_id, metrics=metrics[start : start + 1000])


def log_results(
    config: Config,
    ticker: str,
    fitted: Fitted,
    evaluation: Evaluation,
    figures: dict[str, Figure],
    scaler: MinMaxScaler,
    history: pd.DataFrame,
) -> RunRecord:
    """Log metrics, plots, predictions, scaler and model; register the model as a new version last.

    Registration is the last step, so a run that fails earlier leaves the registry untouched.
    """
    run = mlflow.active_run()
    log_history(fitted.history)
    mlflow.log_metrics({**evaluation.metrics, "train_seconds": fitted.seconds})
    for name, figure in figures.items():
        mlflow.log_figure(figure, f"plots/{name}")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        evaluation.predictions.to_csv(folder / "predictions.csv", index=False, date_format="%Y-%m-%d")
        mlflow.log_artifact(str(folder / "predictions.csv"))
        joblib.dump(scaler, folder / "scaler.joblib")
        mlflow.log_artifact(str(folder / "scaler.joblib"))
        fitted.model.save(folder / "network.keras")
        lookback, target = config.window.lookback, config.data.target
        example = model_input(history, target, lookback)
        forecast = PriceForecaster.from_parts(fitted.model, scaler, lookback, target).predict(None, example)
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=FORECASTER_CODE,
            model_config={"lookback": lookback, "target": target},
            artifacts={"network": str(folder / "network.keras"), "scaler": str(folder / "scaler.joblib")},
            signature=infer_signature(example, forecast, params={"horizon": 1}),
            input_example=(example, {"horizon": 1}),
            pip_requirements=[f"{p}=={package_version(p)}" for p in MODEL_REQUIREMENTS],
        )
    name = model_name(ticker)
    version = register(info.model_uri, name, run.info.run_id, config, evaluation.metrics)
    url = run_url(config.tracking, run.info.experiment_id, run.info.run_id)
    return RunRecord(run.info.run_id, run.info.experiment_id, url, name, str(version.version), evaluation.metrics)


def register(model_uri: str, name: str, run_id: str, config: Config, metrics: dict[str, float]) -> ModelVersion:
    """A new version of `name`, described and tagged with what it was trained on."""
    run = mlflow.get_run(run_id)
    version = mlflow.register_model(model_uri, name, tags={"data_digest": run.data.tags["data_digest"], "ticker": run.data.tags["ticker"]})
    description = (
        f"{config.model.cell}({config.model.units}) on {run.data.tags['ticker']} {config.data.target}, "
        f"trained {run.data.tags['data.train_range']}, tested {run.data.tags['data.test_range']}: "
        f"MAE {metrics['mae']:.4g} vs naive {metrics['naive_mae']:.4g} (skill {metrics['skill']:+.3f})"
    )
    MlflowClient().update_model_version(name, version.version, description=description)
    return version


@task(name="log-and-register", cache_policy=NO_CACHE)
def track(
    config: Config, ticker: str, fitted: Fitted, evaluation: Evaluation, figures: dict[str, Figure], scaler: MinMaxScaler, history: pd.DataFrame
) -> RunRecord:
    """Log and register; a full disk names the file, else the experiment's artifact folder it was writing under."""
    try:
        return log_results(config, ticker, fitted, evaluation, figures, scaler, history)
    except OSError as exc:
        if exc.errno in DISK_FULL:
            raise DiskFullError(exc.filename or artifact_root(), exc.errno) from exc
        raise


def artifact_root() -> str:
    """Where the active run's experiment keeps artifacts (runs' and models'): a folder for a local store."""
    location = mlflow.get_experiment(mlflow.active_run().info.experiment_id).artifact_location
    return urllib.parse.urlparse(location).path if location.startswith("file:") else location


def load_forecaster(name: str, version: str | int) -> mlflow.pyfunc.PyFuncModel:
    """A registered version as a pyfunc model."""
    return mlflow.pyfunc.load_model(f"models:/{name}/{version}")


def _registered(name: str) -> mlflow.entities.model_registry.RegisteredModel | None:
    try:
        return MlflowClient().get_registered_model(name)
    except mlflow.exceptions.MlflowException as exc:
        if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
            return None
        raise


def champion(ticker: str) -> ModelVersion | None:
    """The version holding the `champion` alias, if any."""
    model = _registered(model_name(ticker))
    if model is None or CHAMPION not in model.aliases:
        return None
    return MlflowClient().get_model_version(model.name, model.aliases[CHAMPION])


def last_challenger(ticker: str) -> ModelVersion | None:
    """The version the last retrain decided on (promoted or kept), if any."""
    model = _registered(model_name(ticker))
    if model is None or "last_challenger" not in model.tags:
        return None
    return MlflowClient().get_model_version(model.name, model.tags["last_challenger"])


def forecaster_of(model: mlflow.pyfunc.PyFuncModel) -> PriceForecaster:
    """The forecaster inside a loaded version: its lookback, target and one-step `next_prices`."""
    return model.unwrap_python_model()


def record_decision(decision: Decision, challenger_run_id: str) -> None:
    """Record a retrain decision on both runs, both versions and the registered model.

    The alias moves before anything says "promoted", so a failure part-way never claims a
    promotion that did not happen. The task retries; a retry sets the same tags and alias
    again and may add a second description line.
    """
    client = MlflowClient()
    name = model_name(decision.ticker)
    when = pd.Timestamp.now(tz="UTC").strftime("%Y-%m-%d %H:%M UTC")
    if decision.champion:
        now = int(time.time() * 1000)
        client.log_batch(challenger_run_id, metrics=[mlflow.entities.Metric(f"champion_{k}", v, now, 0) for k, v in decision.champion.items()])
    if decision.action == "promoted":
        client.set_registered_model_alias(name, CHAMPION, decision.challenger_version)
    tags = {"promotion.decision": decision.action, "promotion.reason": decision.reason, "promotion.champion_version": decision.champion_version or "none"}
    for key, value in tags.items():
        client.set_tag(challenger_run_id, key, value)
    version = client.get_model_version(name, decision.challenger_version)
    client.update_model_version(name, version.version, description=f"{version.description}\n\n{when}: {decision.action}: {decision.reason}")
    if decision.champion_version:
        before = client.get_model_version(name, decision.champion_version)
        client.set_tag(before.run_id, "promotion.last_challenge", f"{when}: version {decision.challenger_version} {decision.action}: {decision.reason}")
        if decision.action == "promoted":
            client.update_model_version(name, before.version, description=f"{before.description}\n\n{when}: replaced as champion by version {version.version}")
    for key, value in (("last_decision", decision.action), ("last_reason", decision.reason), ("last_decision_at", when), ("last_challenger", decision.challenger_version)):
        client.set_registered_model_tag(name, key, value)


def status(ticker: str) -> dict[str, str]:
    """One ticker's champion, its metrics against naive, its training range and the last retrain decision."""
    name = model_name(ticker)
    row = {"ticker": ticker, "champion": "none", "mae": "", "naive_mae": "", "trained_on": "", "last_decision": "none yet"}
    best = champion(ticker)
    if best is not None:
        run = mlflow.get_run(best.run_id)
        metrics = run.data.metrics
        row.update(
            champion=f"v{best.version}",
            mae=f"{metrics['mae']:.4g}",
            naive_mae=f"{metrics['naive_mae']:.4g}",
            trained_on=run.data.tags.get("data.train_range", ""),
        )
    model = _registered(name)
    tags = model.tags if model else {}
    if "last_decision" in tags:
        row["last_decision"] = f"{tags['last_decision_at']}: {tags['last_decision']} v{tags['last_challenger']}: {tags['last_reason']}"
    return row


@dataclass(frozen=True)
class ModelRef:
    """The version a forecast comes from: the champion, or the latest version while there is none."""

    name: str
    version: str
    run_id: str
    alias: str | None

    @property
    def uri(self) -> str:
        return f"models:/{self.name}@{self.alias}" if self.alias else f"models:/{self.name}/{self.version}"

    @property
    def label(self) -> str:
        return f"{self.name} v{self.version} ({self.alias or 'latest version: no champion yet'})"


def forecast_model(ticker: str) -> ModelRef:
    """The ticker's champion, else its latest version.

    Raises:
        LookupError: the ticker has no registered version at all.
    """
    best = champion(ticker)
    if best is not None:
        return ModelRef(best.name, str(best.version), best.run_id, CHAMPION)
    name = model_name(ticker)
    versions = MlflowClient().search_model_versions(f"name = '{name}'") if _registered(name) else []
    if not versions:
        raise LookupError(f"No registered model {name}: train one first (`pricecast train --ticker {ticker}`)")
    latest = max(versions, key=lambda v: int(v.version))
    return ModelRef(name, str(latest.version), latest.run_id, None)


@contextmanager
def forecast_run(config: Config, ticker: str, ref: ModelRef, title: str, flow_run_id: str | None) -> Iterator[mlflow.ActiveRun]:
    """A run in `<prefix>-<TICKER>-forecasts` (apart from the training runs), tagged with the model it used."""
    experiment_id = ensure_experiment(f"{experiment_name(config.tracking, ticker)}-forecasts", config.paths())
    with mlflow.start_run(experiment_id=experiment_id, run_name=title, tags=process_tags()) as run:
        mlflow.set_tags({"ticker": ticker, "model": ref.name, "model_version": ref.version, "model_alias": ref.alias or "latest", "model_run_id": ref.run_id, "prefect.flow_run_id": flow_run_id or ""})
        mlflow.log_params({"horizon": config.forecast.horizon, "model_uri": ref.uri})
        yield run


def log_forecasts(rows: pd.DataFrame, figure: Figure, summary: dict[str, float]) -> None:
    """The forecasts table, its plot and, for past days, the error against naive, in the active run."""
    if summary:
        mlflow.log_metrics(summary)
    mlflow.log_figure(figure, "plots/forecast.png")
    mlflow.log_text(rows.to_csv(index=False), "forecasts.csv")
