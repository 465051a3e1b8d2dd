"""MLflow calls that must see every ticker's experiment however many there are (one per ticker)."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import mlflow
from mlflow import MlflowClient

from pricecast.tracking.dead_runs import experiment_ids, reconcile_dead_runs


def test_a_dead_run_in_any_experiment_is_found_past_the_first_page(tmp_path: Path) -> None:
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    client = MlflowClient()
    made = [client.create_experiment(f"pricecast-T{i}") for i in range(5)]
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = gone.stdout.strip()  # a process that has exited
    tags = {"pricecast.host": socket.gethostname(), "pricecast.pid": dead_pid}
    dead = client.create_run(made[-1], tags=tags)  # the newest experiment: on the last page
    assert set(made) <= set(experiment_ids(client, page=2))  # 6 with Default: three pages of two
    assert reconcile_dead_runs(page=2) == [dead.info.run_id]
    assert client.get_run(dead.info.run_id).info.status == "KILLED"
