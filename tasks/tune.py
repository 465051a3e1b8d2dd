"""Tasks of the tune flow: open the study's MLflow run, run trials (one task per worker), write the best config."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from pricecast import tune
from pricecast.config import Config
from pricecast.config_file import dump_yaml
from pricecast.tracking import backtest_runs
from tasks import stage


@dataclass(frozen=True)
class Tuned:
    """A finished study: its MLflow parent run, its best trial, and the YAML `pricecast train --config` reads."""

    study: str
    run_id: str
    best_value: float
    best_params: dict[str, Any]
    trial_states: dict[str, int]
    path: Path


@stage("start-study", retry="any")
def start_study(config: Config, ticker: str, name: str) -> tuple[str, str]:
    """The study's MLflow parent run (its config as params): the run id and the experiment id."""
    return backtest_runs.start_study_run(config, ticker, name)


@stage("tune-trials")
def run_trials(
    config: Config, ticker: str, name: str, frame: pd.DataFrame, seed: int, hook: tune.TrialHook | None
) -> None:
    """One worker: trials of the shared study (TPE seeded with `seed`) until it holds `tune.trials` finished ones."""
    tune.optimise(config, ticker, name, frame, seed, hook)


@stage("finish-study", retry="any")
def finish_study(config: Config, ticker: str, name: str, run_id: str) -> Tuned:
    """The best trial's config written as YAML and logged on the parent run, which is closed."""
    study, best = tune.best_config(config, ticker, name)
    path = dump_yaml(tune.best_values(best), tune.output_path(config, ticker))
    backtest_runs.end_study_run(run_id, study.best_trial.params, study.best_value, path.read_text())
    states = pd.Series([t.state.name for t in study.trials]).value_counts().to_dict()
    return Tuned(name, run_id, study.best_value, study.best_trial.params, states, path)


@stage("fail-study", retry="any")
def fail_study(run_id: str) -> None:
    """Close the parent run of a study that did not finish as FAILED."""
    backtest_runs.end_run(run_id, "FAILED")
