"""Per-ticker work mapped over the task runner the config chooses: threads, processes, or Dask.

`threads` keeps the work in the flow's process (one ticker at a time by default: Keras seeds are
per process); `processes` is Prefect's ProcessPoolTaskRunner (spawned processes, so each training
has a process of its own); `dask` is prefect-dask's DaskTaskRunner on a LocalCluster of one-thread
worker processes here, or on an existing cluster (`dask_address`) whose workers may be other machines.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from prefect import Task
from prefect.futures import wait
from prefect.states import State
from prefect.task_runners import ProcessPoolTaskRunner, TaskRunner, ThreadPoolTaskRunner

from pricecast.config import ParallelConfig
from pricecast.process import fewer_collections


def workers(config: ParallelConfig, threads: int = 1) -> int:
    """Tasks at once: `max_workers`, else `threads` with threads (Keras seeds are per process), else the CPUs."""
    return config.max_workers or (threads if config.task_runner == "threads" else os.cpu_count() or 1)


def task_runner(config: ParallelConfig, threads: int = 1) -> TaskRunner:
    """The task runner `config` names, sized by `workers(config, threads)`."""
    count = workers(config, threads)
    if config.task_runner == "threads":
        return ThreadPoolTaskRunner(max_workers=count)
    if config.task_runner == "processes":
        return ProcessPoolTaskRunner(max_workers=count, initializer=fewer_collections)
    from prefect_dask import DaskTaskRunner

    if config.dask_address:
        return DaskTaskRunner(address=config.dask_address)
    return DaskTaskRunner(
        cluster_class="distributed.LocalCluster",
        cluster_kwargs={"n_workers": count, "threads_per_worker": 1, "processes": True, "dashboard_address": None},
    )


def fan_out(
    task: Task, calls: Mapping[str, dict[str, Any]], config: ParallelConfig, threads: int = 1
) -> dict[str, State]:
    """Run `task` once per key with its parameters on the configured runner; each key's final state.

    `threads`: how many at once on the default thread runner (1 unless the task keeps its trainings
    apart itself). One key's failure does not stop the others: the caller decides what failed states mean.
    """
    with task_runner(config, threads) as runner:
        futures = {key: runner.submit(task, parameters) for key, parameters in calls.items()}
        wait(list(futures.values()))
        return {key: future.state for key, future in futures.items()}
