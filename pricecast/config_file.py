"""The config's surroundings: the offline environment, the collector's pace, the store's paths, YAML files and
merging groups of values."""

from __future__ import annotations

import gc
import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

#: Prefect, MLflow and TensorFlow must not phone home or chatter: these machines are offline.
OFFLINE_ENV = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "true",
    "TF_CPP_MIN_LOG_LEVEL": "3",
}


def go_offline(env: dict[str, str] | None = None) -> dict[str, str]:
    """Set the offline variables in `env` (default: this process's environment) unless already set; returns it.

    The CLI, the tests, the benchmarks and every server the project starts call this one function.
    """
    env = os.environ if env is None else env
    for key, value in OFFLINE_ENV.items():
        env.setdefault(key, value)
    return env


#: Python collects its youngest objects after every 700 new ones by default. Importing TensorFlow, Prefect and
#: MLflow and tracing a Keras model make millions: collecting after every 10,000 saves about 12% of a small
#: training's CPU (docs/engineering-notes.md). PRICECAST_GC_YOUNG sets another threshold (700: Python's own).
YOUNG_GENERATION = 10_000


def fewer_collections() -> None:
    """Collect the youngest objects after every `YOUNG_GENERATION` new ones (or $PRICECAST_GC_YOUNG): this process
    and what it forks. The older generations keep Python's pace.

    The CLI, the warm process, the task runner's spawned workers and the tests call it first thing.
    """
    young = int(os.environ.get("PRICECAST_GC_YOUNG") or YOUNG_GENERATION)
    gc.set_threshold(young, *gc.get_threshold()[1:])


def merged(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """Config values `base` with `overrides` laid over them, group by group."""
    out = dict(base)
    for key, value in overrides.items():
        out[key] = merged(out.get(key) or {}, value) if isinstance(value, dict) else value
    return out


def load_yaml(path: Path) -> dict[str, Any]:
    """Read a YAML config file into a nested dict (groups -> fields)."""
    try:
        loaded = yaml.safe_load(Path(path).read_text()) or {}
    except FileNotFoundError:
        raise FileNotFoundError(f"Config file {path} does not exist") from None
    except yaml.YAMLError as exc:
        raise ValueError(f"Config file {path} is not valid YAML: {exc}") from None
    if not isinstance(loaded, dict):
        raise ValueError(f"Config file {path} must hold a mapping of groups, not {type(loaded).__name__}")
    return loaded


def dump_yaml(values: dict[str, Any], path: Path) -> Path:
    """Write config groups as a YAML file `pricecast train --config` reads (paths as text); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(values, sort_keys=False))
    return path


class Paths(BaseModel):
    """Resolved store locations under one home folder."""

    root: Path

    @property
    def prices(self) -> Path:
        return self.root / "data" / "prices"

    @property
    def incoming(self) -> Path:
        return self.root / "data" / "incoming"

    @property
    def forecasts(self) -> Path:
        return self.root / "data" / "forecasts"

    @property
    def mlruns(self) -> Path:
        return self.root / "mlruns"

    def store_file(self, ticker: str) -> Path:
        return self.prices / f"{ticker}.csv"
