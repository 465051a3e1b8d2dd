"""Runs whose process died without closing them (killed with SIGKILL, say): found and marked KILLED at the next
start (`connect.connect`, once per store and process), by the `pricecast.host` and `pricecast.pid` tags every run
carries from its start (`runs.process_tags`)."""

from __future__ import annotations

import os
import socket

import pandas as pd
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def experiment_ids(client: MlflowClient, page: int = 1000) -> list[str]:
    """Every experiment's id, page after page (one experiment a ticker: a thousand tickers fill MLflow's first
    page, and an experiment past it would be missed)."""
    ids, token = [], None
    while True:
        found = client.search_experiments(max_results=page, page_token=token)
        ids += [e.experiment_id for e in found]
        if not (token := found.token):
            return ids


def reconcile_dead_runs(page: int = 1000) -> list[str]:
    """Mark KILLED the RUNNING runs started on this host by a process that is gone (say, killed with SIGKILL).

    Runs carry `pricecast.host` and `pricecast.pid` tags from the start; the reason goes in the
    `error` tag. Returns the run ids marked. `page`: experiments per MLflow request.
    """
    client = MlflowClient()
    host = socket.gethostname()
    experiments = experiment_ids(client, page)
    if not experiments:
        return []
    found = client.search_runs(
        experiments,
        filter_string=f"attributes.status = 'RUNNING' and tags.`pricecast.host` = '{host}'",
        max_results=1000,
    )
    marked = []
    for run in found:
        pid = int(run.data.tags.get("pricecast.pid", "0"))
        if pid and not _alive(pid):
            when = pd.Timestamp.now(tz="UTC").strftime("%Y-%m-%d %H:%M:%S UTC")
            why = f"process {pid} on {host} ended without closing the run (killed?); marked KILLED at {when}"
            try:
                client.set_tag(run.info.run_id, "error", why)
                client.set_terminated(run.info.run_id, "KILLED")
            except MlflowException:  # another process starting now marked it first (PostgreSQL: a duplicate tag)
                continue
            marked.append(run.info.run_id)
    return marked
