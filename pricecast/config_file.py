"""The config outside its object: YAML files (read, written), merging groups of values, and the paths under a home.

Apart from `pricecast/config.py` only to keep each module under 300 lines; import these from `pricecast.config`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel


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
