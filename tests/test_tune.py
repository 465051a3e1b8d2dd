"""Tuning: a three-trial study on a small slice writes nested runs and a YAML `pricecast train --config` accepts;
its trial workers run as tasks on the configured task runner (here two spawned processes)."""

from __future__ import annotations

import os
from pathlib import Path

import mlflow
import pytest
from mlflow import MlflowClient

from pricecast.cli import build_config, main, parser
from pricecast.prices.sources import load_prices
from pricecast.stages.prepare import check_inputs

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_harness")]


def trial_runs(home: Path) -> tuple[object, list]:
    """The study's parent run and its nested trial runs, from the home's MLflow database."""
    uri = f"sqlite:///{home / 'mlruns' / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("pricecast-FB").experiment_id
    [parent] = client.search_runs([experiment], filter_string="tags.run_type = 'tune'")
    trials = client.search_runs([experiment], filter_string=f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
    return parent, trials


@pytest.mark.parametrize(
    "runner", [["--task-runner", "threads"], ["--task-runner", "processes", "--max-workers", "2"]], ids=lambda r: r[1]
)
def test_a_three_trial_tune_writes_nested_runs_and_a_yaml_train_accepts(
    runner: list[str],
    tmp_path: Path,
    capsys,
    monkeypatch: pytest.MonkeyPatch,  # noqa: ANN001
) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    data = tmp_path / "fb.csv"
    load_prices(None, "FB").frame.tail(130).to_csv(data, index=False)
    output = tmp_path / "best.yaml"
    argv = ["--data", str(data), "--ticker", "FB", "--home", str(tmp_path), "--tune-output", str(output), *runner]
    workers = "2" if runner[1] == "processes" else "1"
    argv += [
        "--trials",
        "3",
        "--max-epochs",
        "5",
        "--parallel",
        workers,
        "--folds",
        "1",
        "--fold-days",
        "5",
        "--validation-folds",
        "1",
    ]
    assert main(["tune", *argv]) == 0
    assert "Best config written to" in capsys.readouterr().out

    # The YAML is a config `train` reads, and its inputs pass the train command's own checks.
    config = build_config(parser().parse_args(["train", "--config", str(output), "--data", str(data), "--epochs", "1"]))
    check_inputs(config)
    assert config.model.kind == "network" and config.window.lookback in (10, 20, 40, 60)

    parent, trials = trial_runs(tmp_path)
    assert len(trials) >= 3 and all("trial.representation" in t.data.params for t in trials)
    assert parent.info.status == "FINISHED" and "best_validation_mae" in parent.data.metrics
    assert {a.path for a in MlflowClient().list_artifacts(parent.info.run_id)} == {"best.yaml"}
    assert (tmp_path / "tune" / "FB.journal").exists()  # Optuna's journal file: safe for parallel processes
    pids = {t.data.tags["pricecast.pid"] for t in trials}
    if runner[1] == "processes":  # each worker is a task in a spawned process of the runner: two pids, not ours
        assert len(pids) == 2 and str(os.getpid()) not in pids
    else:
        assert pids == {str(os.getpid())}
