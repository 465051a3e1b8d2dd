"""Hyper-parameter search with Optuna (TPE sampler, median pruning) on walk-forward validation folds.

The objective is the network's walk-forward MAE on `tune.validation_folds` folds of
`backtest.fold_days` days that end where the backtest's test folds begin: the test days are
never seen by the search. Each fold is one pruning step (the MAE so far). Trials in several
workers (`tune.parallel` tasks of the `tune` flow, on the configured task runner) share one storage:
Optuna's journal file by default (safe for concurrent writers on one machine), or a database URL
from `tune.storage` (for workers on several machines).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pricecast.config import Config
from pricecast.errors import DataError
from pricecast.stages.backtest import make_folds, run_fold
from pricecast.stages.network import NetworkForecaster

#: The search space: cell, units, lookback, learning rate, epochs, representation.
SPACE = {
    "cell": ("SimpleRNN", "LSTM", "GRU"),
    "units": (4, 32),
    "lookback": (10, 20, 40, 60),
    "learning_rate": (1e-4, 3e-3),
    "epochs": (5, 60),  # the upper bound is `tune.max_epochs`
    "representation": ("level", "return"),
}

TrialHook = Callable[[Any, Config, float | None], None]


def trial_config(trial: Any, base: Config) -> Config:
    """The base config with the trial's choices; `level` reads the target alone, `return` the base's inputs
    (open, high, low, close when the base is a `level` config)."""
    representation = trial.suggest_categorical("representation", SPACE["representation"])
    target = base.data.target
    inputs = (target,) if representation == "level" else base.features.inputs
    if representation == "return" and tuple(inputs) == (target,):
        inputs = ("open", "high", "low", "close")
    values = base.model_dump()
    values["features"] |= {"representation": representation, "inputs": list(inputs)}
    values["window"]["lookback"] = trial.suggest_categorical("lookback", SPACE["lookback"])
    values["model"] |= {
        "kind": "network",
        "cell": trial.suggest_categorical("cell", SPACE["cell"]),
        "units": trial.suggest_int("units", *SPACE["units"], log=True),
    }
    values["training"] |= {
        "learning_rate": trial.suggest_float("learning_rate", *SPACE["learning_rate"], log=True),
        "epochs": trial.suggest_int("epochs", SPACE["epochs"][0], base.tune.max_epochs),
    }
    return Config.model_validate(values)


def validation_part(frame: pd.DataFrame, config: Config) -> pd.DataFrame:
    """The rows before the backtest's test folds: the search never sees a test day.

    Raises:
        DataError: too few rows for the test folds, the validation folds and a lookback before them.
    """
    test_days = config.backtest.folds * config.backtest.fold_days
    part = frame.iloc[: len(frame) - test_days].reset_index(drop=True)
    needed = config.tune.validation_folds * config.backtest.fold_days + max(SPACE["lookback"]) + 1
    if len(part) < needed:
        raise DataError(
            f"{len(frame)} rows are too few to tune: {test_days} test days + {config.tune.validation_folds} "
            f"validation folds of {config.backtest.fold_days} days + a lookback of up to {max(SPACE['lookback'])} "
            f"need {test_days + needed}"
        )
    return part


def objective(trial: Any, frame: pd.DataFrame, base: Config) -> float:
    """Walk-forward MAE of the trial's network on the validation folds; reported fold by fold for pruning."""
    import optuna

    config = trial_config(trial, base)
    folds = make_folds(len(frame), config.tune.validation_folds, config.backtest.fold_days, config.window.lookback + 1)
    errors: list[np.ndarray] = []
    for step, fold in enumerate(folds):
        forecasts = run_fold(frame, fold, NetworkForecaster(config))
        actual = frame[config.data.target].to_numpy(dtype="float64")[fold.start : fold.stop]
        errors.append(np.abs(forecasts - actual))
        mae = float(np.mean(np.concatenate(errors)))
        if not np.isfinite(mae):
            raise optuna.TrialPruned(f"non-finite forecasts at fold {step}")
        trial.report(mae, step)
        if trial.should_prune():
            raise optuna.TrialPruned(f"MAE {mae:.4g} after fold {step + 1} of {len(folds)}")
    return mae


def storage_for(config: Config, ticker: str) -> Any:
    """`tune.storage` when set (a database URL), else a journal file `<home>/tune/<TICKER>.journal`."""
    import optuna
    from optuna.storages.journal import JournalFileBackend

    if config.tune.storage:
        return config.tune.storage
    folder = config.paths().root / "tune"
    folder.mkdir(parents=True, exist_ok=True)
    return optuna.storages.JournalStorage(JournalFileBackend(str(folder / f"{ticker}.journal")))


def load_study(config: Config, ticker: str, name: str, seed: int) -> Any:
    """The study `name` in the configured storage (created when new): TPE seeded with `seed`, median pruning."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.create_study(
        study_name=name,
        storage=storage_for(config, ticker),
        load_if_exists=True,
        direction="minimize",
        sampler=optuna.samplers.TPESampler(seed=seed),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=0),
    )


def optimise(config: Config, ticker: str, name: str, frame: pd.DataFrame, seed: int, hook: TrialHook | None) -> None:
    """Run trials of the shared study until it holds `tune.trials` finished (complete or pruned) ones."""
    import optuna

    study = load_study(config, ticker, name, seed)
    states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    stop = optuna.study.MaxTrialsCallback(config.tune.trials, states=states)

    def after(study: Any, trial: Any) -> None:
        if hook is not None:
            trial_cfg = trial_config(optuna.trial.FixedTrial(trial.params), config) if trial.params else config
            hook(trial, trial_cfg, trial.value)

    study.optimize(
        lambda trial: objective(trial, frame, config),
        n_trials=config.tune.trials,
        callbacks=[stop, after],
        catch=(DataError,),
    )


def best_config(config: Config, ticker: str, name: str) -> tuple[Any, Config]:
    """The finished study `name` and the config of its best trial."""
    import optuna

    study = load_study(config, ticker, name, config.training.seed)
    return study, trial_config(optuna.trial.FixedTrial(study.best_trial.params), config)


def run_study(
    config: Config, ticker: str, name: str, frame: pd.DataFrame, hook: TrialHook | None = None
) -> tuple[Any, Config]:
    """The whole search in this process (the `tune` flow spreads it over the task runner), then the best config."""
    optimise(config, ticker, name, validation_part(frame, config), config.training.seed, hook)
    return best_config(config, ticker, name)


def best_values(best: Config) -> dict[str, Any]:
    """The groups of a tuned config that `pricecast train --config` reads (not the data or the stores)."""
    dumped = best.model_dump(mode="json", include={"features", "window", "model", "training"})
    dumped["data"] = {"target": best.data.target}
    return dumped


def output_path(config: Config, ticker: str) -> Path:
    """Where the best config goes: `tune.output`, else `<home>/tune/<TICKER>-best.yaml`."""
    return Path(config.tune.output) if config.tune.output else config.paths().root / "tune" / f"{ticker}-best.yaml"
