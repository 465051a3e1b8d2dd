"""The one config object: a pydantic model with one group per pipeline stage.

It is the flows' parameter, so Prefect validates it and shows it in its UI. The CLI and an
optional YAML file fill it (`pricecast.cli`); each task receives only its own group.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from pricecast.config_file import Paths, load_yaml, merged
from pricecast.config_groups import (
    BacktestConfig,
    FeaturesConfig,
    FetchConfig,
    ModelConfig,
    MonitoringConfig,
    ParallelConfig,
    RangeMethod,
    ScheduleConfig,
    TuneConfig,
)
from pricecast.urls import is_postgres_url, redact

__all__ = [
    "BacktestConfig",
    "Config",
    "FeaturesConfig",
    "ModelConfig",
    "ParallelConfig",
    "Paths",
    "ScheduleConfig",
    "TuneConfig",
    "load_yaml",
    "merged",
]

#: The repository root (the package is installed in editable mode by the Makefile).
PROJECT_ROOT = Path(__file__).resolve().parents[1]

Column = Literal["open", "high", "low", "close"]


class _Group(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class DataConfig(_Group):
    """Where prices come from."""

    path: Path | None = Field(
        None, description="Price file to train on; empty = the embedded default (bokeh_sampledata stocks)."
    )
    ticker: str | None = Field(
        None, description="Ticker: picks one from a multi-ticker file; names the store file and the experiment."
    )
    target: Column = Field("open", description="Price column to forecast.")
    max_jump: float = Field(
        0.5,
        gt=0.0,
        description="Largest expected one-day move of the target, relative to the lower of the two prices "
        "(a 2:1 stock split is 1.0, a rise from 100 to 150 is 0.5); bigger moves are reported as on_jump says.",
    )
    on_jump: Literal["warn", "error"] = Field(
        "warn", description="A move above max_jump: 'warn' logs it and trains on, 'error' refuses the file."
    )
    store: str | None = Field(
        None, description="Price store: postgresql://user@host:port/db; empty = PRICECAST_STORE, else the CSV folder."
    )
    from_store: bool = Field(
        False, description="Train on the ticker's prices in the price store instead of a file (what retrain does)."
    )

    @field_validator("ticker")
    @classmethod
    def _one_ticker(cls, v: str | None) -> str | None:
        if v and "," in v:
            raise ValueError(f"ticker {v!r} is one ticker, not a list: commands that take several have --tickers {v}")
        return v.strip().upper() if v else v

    @field_validator("store")
    @classmethod
    def _store_url(cls, v: str | None) -> str | None:
        if v and not is_postgres_url(v):
            raise ValueError("a price store is empty (the CSV folder) or postgresql://user@host:port/database")
        return v or None


class SplitConfig(_Group):
    """How the test days are chosen: a separate file (the seed's way) or the last N trading days."""

    test_path: Path | None = Field(
        None, description="Separate test file; when empty the last test_days of the data are held out."
    )
    test_days: int = Field(16, ge=1, description="Trading days held out for testing when there is no test file.")


class ScalingConfig(_Group):
    """MinMax scaling, fitted on the training part only."""

    feature_min: float = Field(0.0, description="Lower end of the scaled range ('level' representation).")
    feature_max: float = Field(1.0, description="Upper end of the scaled range ('level' representation).")

    @model_validator(mode="after")
    def _increasing(self) -> ScalingConfig:
        if self.feature_min >= self.feature_max:
            raise ValueError(f"the range ({self.feature_min}, {self.feature_max}) is not increasing")
        return self


class WindowConfig(_Group):
    """Many-to-one windows: `lookback` past days -> the next day."""

    lookback: int = Field(20, ge=1, description="Past trading days fed to the network per prediction.")


class TrainingConfig(_Group):
    """Adam on mean squared error, as in the seed."""

    epochs: int = Field(10, ge=0, description="Passes over the training windows.")
    batch_size: int = Field(100, ge=1, description="Windows per gradient step.")
    validation_split: float = Field(
        0.1, ge=0.0, lt=1.0, description="Share of the latest training windows kept for the validation loss."
    )
    learning_rate: float = Field(0.0003, gt=0.0, description="Adam's learning rate.")
    seed: int = Field(42, description="Seeds Python, NumPy and TensorFlow; the same seed gives the same numbers.")
    threads: int = Field(
        1,
        ge=0,
        description="TensorFlow's threads within an op (0 = its default, one per core). One is faster for these "
        "small networks and leaves the other core to the rest; the numbers do not change.",
    )


class TrackingConfig(_Group):
    """MLflow: where runs and models go."""

    tracking_uri: str | None = Field(
        None, description="Empty: SQLite in <home>/mlruns/mlflow.db. The CLI takes MLFLOW_TRACKING_URI when it is set."
    )
    experiment_prefix: str = Field("pricecast", description="Experiments are named '<prefix>-<TICKER>'.")
    ui_port: int = Field(5000, ge=1, le=65535, description="Port of the MLflow UI, used in run links.")
    timeout_seconds: float = Field(
        10.0,
        gt=0,
        description="Seconds to wait for an http(s) tracking server: its health check at start and each request.",
    )
    http_retries: int = Field(
        2,
        ge=0,
        le=10,
        description="Retries of a failed request to an http(s) tracking server (MLflow's default, 7, takes minutes).",
    )


class PromotionConfig(_Group):
    """Champion/challenger: when a retrained model takes the 'champion' alias."""

    holdout_days: int = Field(
        16, ge=1, description="Latest trading days on which champion and challenger are compared."
    )
    margin: float = Field(
        0.0, ge=0.0, description="Relative MAE improvement the challenger needs over the champion (0.02 = 2%)."
    )
    naive_gate: bool = Field(
        True, description="A challenger must beat the naive forecast (tomorrow = today) to be promoted."
    )
    folds: int = Field(
        2,
        ge=1,
        description="Latest folds of holdout_days trading days, walk-forward (each model refitted before each fold), "
        "on which champion and challenger are compared.",
    )


class ForecastConfig(_Group):
    """Forecasts from each ticker's champion: the forecast flow and the served model."""

    @field_validator("levels", mode="before")
    @classmethod
    def _comma_separated(cls, v: Any) -> Any:
        return tuple(int(c) for c in v.split(",") if c.strip()) if isinstance(v, str) else v

    @field_validator("levels")
    @classmethod
    def _percentages(cls, v: tuple[int, ...]) -> tuple[int, ...]:
        if not v or not all(0 < level < 100 for level in v):
            raise ValueError(f"levels {','.join(map(str, v))} must be percentages strictly between 0 and 100")
        return tuple(sorted(set(v)))

    horizon: int = Field(
        1, ge=1, le=260, description="Trading days to forecast: the first direct, later ones recursive."
    )
    version: str | None = Field(
        None,
        description="Registered version to forecast with or serve, even one that loses to a baseline (with a "
        "warning); empty = the champion, unless no version beats naive and last price (then the best baseline).",
    )
    after_retrain: bool = Field(
        True, description="The retrain flow forecasts each ticker with a champion when it is done."
    )
    levels: tuple[int, ...] = Field(
        (80, 95),
        description="Central range levels in percent, comma-separated: each forecast row gets lower_L and upper_L.",
    )
    range_method: RangeMethod = Field(
        "aci",
        description="How ranges are made (chosen by bench/ranges.py): aci, adaptive conformal on the model's own "
        "out-of-sample errors; conformal, conformal_ewma, const_vol, ewma or garch.",
    )
    plot_days: int = Field(90, ge=1, description="Days of history drawn before the forecast in its plot.")
    model_port: int = Field(
        5001, ge=1, le=65535, description="Port of `pricecast serve-model` (MLflow's model server)."
    )


class Config(BaseModel):
    """Everything a run depends on. Defaults: the configuration chosen by `bench/quality.py`;
    `configs/seed.yaml` holds the seed's."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="after")
    def _level_reads_the_target(self) -> Config:
        if self.features.representation == "level" and tuple(self.features.inputs) != (self.data.target,):
            raise ValueError(
                f"representation 'level' reads the target alone: inputs {','.join(self.features.inputs)} must be "
                f"{self.data.target} (give --inputs {self.data.target})"
            )
        return self

    home: Path | None = Field(
        None, description="Folder holding data/ and mlruns/; empty = PRICECAST_HOME, else the project root."
    )
    data: DataConfig = DataConfig()
    split: SplitConfig = SplitConfig()
    scaling: ScalingConfig = ScalingConfig()
    features: FeaturesConfig = FeaturesConfig()
    window: WindowConfig = WindowConfig()
    model: ModelConfig = ModelConfig()
    training: TrainingConfig = TrainingConfig()
    tracking: TrackingConfig = TrackingConfig()
    promotion: PromotionConfig = PromotionConfig()
    backtest: BacktestConfig = BacktestConfig()
    tune: TuneConfig = TuneConfig()
    forecast: ForecastConfig = ForecastConfig()
    fetch: FetchConfig = FetchConfig()
    schedule: ScheduleConfig = ScheduleConfig()
    parallel: ParallelConfig = ParallelConfig()
    monitoring: MonitoringConfig = MonitoringConfig()

    def store_url(self) -> str | None:
        """The price store's URL (`--store`, else PRICECAST_STORE); None is the CSV folder of the home."""
        return self.data.store or os.environ.get("PRICECAST_STORE") or None

    def min_history_rows(self) -> int:
        """Rows a new ticker needs before a retrain takes it: a lookback + 1 to train, then the promotion's folds."""
        return self.window.lookback + 1 + self.promotion.folds * self.promotion.holdout_days

    def for_store(self, tickers: int) -> Config:
        """This config for a store of `tickers` tickers: kind `network` becomes `global` above `model.global_above`."""
        if self.model.kind != "network" or not 0 < self.model.global_above < tickers:
            return self
        return self.model_copy(update={"model": self.model.model_copy(update={"kind": "global"})})

    def paths(self) -> Paths:
        """The store locations, anchored once at the home folder."""
        home = self.home or os.environ.get("PRICECAST_HOME") or PROJECT_ROOT
        return Paths(root=Path(home).expanduser().resolve())

    def flat(self) -> dict[str, Any]:
        """The whole config as `group.field -> value`, for MLflow params."""
        out: dict[str, Any] = {"home": str(self.paths().root)}
        for group, values in self.model_dump(exclude={"home"}).items():
            for key, value in values.items():
                if isinstance(value, list | tuple):
                    value = ",".join(map(str, value))
                out[f"{group}.{key}"] = "" if value is None else value
        out["data.store"] = redact(self.store_url() or "")
        out["fetch.stooq_apikey"] = "***" if self.fetch.stooq_apikey else ""  # never a secret in MLflow
        return out
