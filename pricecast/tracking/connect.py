"""Where MLflow records: the store's URI, a bounded check of a tracking server, and connecting to it."""

from __future__ import annotations

import math
import os
import sqlite3
import urllib.error
import urllib.request
from contextlib import closing, nullcontext
from pathlib import Path

import mlflow
from mlflow import MlflowClient

from pricecast.config import Paths, TrackingConfig
from pricecast.errors import TrackingError
from pricecast.interrupts import held_signals
from pricecast.prices.store import folder_lock
from pricecast.templates import copy_template
from pricecast.tracking.dead_runs import reconcile_dead_runs

#: Stores this process has connected to and reconciled.
_RECONCILED: set[str] = set()


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
    by dead processes of this host are then marked KILLED, once per store and process.

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
    if uri in _RECONCILED:  # a subflow (each ticker's training in a retrain) connects again: once is enough
        return uri
    # The first use of a SQLite store creates its tables; two processes doing it at once collide.
    with folder_lock(paths.mlruns) if local else nullcontext(), held_signals():  # a stop waits for the writes
        database = paths.mlruns / "mlflow.db"
        if uri == f"sqlite:///{database}" and not database.exists():
            new_database(database, (paths.mlruns / "artifacts" / "0").as_uri())
        reconcile_dead_runs()
    _RECONCILED.add(uri)
    return uri


def new_database(database: Path, default_artifacts: str) -> None:
    """A new home's MLflow database, copied from an empty one made once per MLflow version.

    Creating the tables runs MLflow's migrations, 3-9 s on 2 cores; a copy takes milliseconds.
    The copy's Default experiment is pointed at this home's artifact folder.
    """

    def migrate(path: Path) -> None:
        MlflowClient(tracking_uri=f"sqlite:///{path}").search_experiments()  # runs the migrations

    copy_template(f"mlflow-{mlflow.__version__}-empty.db", migrate, database)
    with closing(sqlite3.connect(database)) as db, db:
        db.execute("UPDATE experiments SET artifact_location = ? WHERE experiment_id = 0", (default_artifacts,))


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
    raise TrackingError(
        f"MLflow tracking server {uri} is unreachable ({reason}): start it, or fix --tracking-uri / MLFLOW_TRACKING_URI"
    )
