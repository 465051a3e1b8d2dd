"""Config groups: what the network reads, walk-forward backtests, tuning, and how runs are scheduled and fanned out.

Part of the one config object (`pricecast.config.Config`), apart from `pricecast/config.py` only to keep each
module under 300 lines; import them from `pricecast.config`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

InputColumn = Literal["open", "high", "low", "close", "volume"]
ModelKind = Literal["network", "naive", "last_price", "drift", "arima"]
TrainKind = Literal["network", "global", "naive", "last_price", "drift", "arima"]
RangeMethod = Literal["conformal", "aci", "conformal_ewma", "const_vol", "ewma", "garch"]


class _Group(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class FeaturesConfig(_Group):
    """What the network reads and how: the seed's scaled levels, or scale-free log returns."""

    representation: Literal["level", "return"] = Field(
        "return",
        description="'level': MinMax-scaled prices of the target alone (the seed's); 'return': log ratios to the "
        "latest known price, standardised on the training days; forecasts are always prices.",
    )
    inputs: tuple[InputColumn, ...] = Field(
        ("open", "high", "low", "close"),
        description="Columns read per past day, comma-separated ('level' reads the target alone).",
    )

    @field_validator("inputs", mode="before")
    @classmethod
    def _comma_separated(cls, v: Any) -> Any:
        return tuple(c.strip().lower() for c in v.split(",") if c.strip()) if isinstance(v, str) else v


class ModelConfig(_Group):
    """The model: a recurrent network (one recurrent layer then Dense(1), linear output), or a baseline."""

    kind: TrainKind = Field(
        "network",
        description="'network' (one per ticker), 'global' (one network for every ticker in the store, "
        "registered as GLOBAL), or a baseline: 'naive' (tomorrow = today's target), 'last_price' (today's close), "
        "'drift', 'arima' (statsmodels ARIMA(1,1,1) on log prices).",
    )
    cell: Literal["SimpleRNN", "LSTM", "GRU"] = Field("GRU", description="The recurrent layer.")
    units: int = Field(8, ge=1, description="Units of the recurrent layer.")
    zero_output: bool = Field(
        True, description="Start the output layer at zero: the untrained 'return' network forecasts the last price."
    )
    global_above: int = Field(
        100,
        ge=0,
        description="A retrain or forecast over a store of more tickers than this uses one global network instead "
        "of one per ticker (the same quality within noise, 1/15 of the night at 1,000 tickers: "
        "docs/results/scale.md); 0: only with --kind global.",
    )


class BacktestConfig(_Group):
    """Walk-forward backtests: the last `folds` blocks of `fold_days` trading days, every model refitted per fold."""

    folds: int = Field(8, ge=1, description="Test folds of the walk-forward backtest (the latest ones).")
    fold_days: int = Field(16, ge=1, description="Trading days per fold.")
    models: tuple[ModelKind, ...] = Field(
        ("network", "naive", "last_price", "drift", "arima"),
        description="Models compared, comma-separated ('network' is this config's network).",
    )
    range_methods: tuple[RangeMethod, ...] = Field(
        ("const_vol", "ewma", "garch", "conformal", "aci", "conformal_ewma"),
        description="Range methods scored around every model, comma-separated (const_vol, the reference, always).",
    )

    @field_validator("models", "range_methods", mode="before")
    @classmethod
    def _comma_separated(cls, v: Any) -> Any:
        return tuple(c.strip().lower() for c in v.split(",") if c.strip()) if isinstance(v, str) else v


class TuneConfig(_Group):
    """Optuna search over cell, units, lookback, learning rate, epochs and representation (`pricecast tune`)."""

    trials: int = Field(20, ge=1, description="Trials of the study.")
    max_epochs: int = Field(60, ge=5, description="Upper bound of the epochs searched (from 5).")
    parallel: int = Field(
        1,
        ge=1,
        description="Trial workers: tasks of the tune flow on the task runner (at once with processes or dask; "
        "with threads their fits take turns). They share the study's storage.",
    )
    validation_folds: int = Field(
        4, ge=1, description="Folds (of backtest fold_days) just before the backtest's test folds: the objective."
    )
    storage: str | None = Field(
        None,
        description="Optuna storage URL (a database server); empty = a journal file in <home>/tune/.",
    )
    output: Path | None = Field(None, description="Best config YAML; empty = <home>/tune/<TICKER>-best.yaml.")


class ScheduleConfig(_Group):
    """When `pricecast serve` runs the retrain deployment."""

    cron: str = Field(
        "30 17 * * 1-5", description="Retrain schedule; left default (timezone too): fetch.default_calendar's close."
    )
    timezone: str = Field("America/New_York", description="Time zone of the cron schedule.")
    pause_on_shutdown: bool = Field(False, description="Pause the schedules when `pricecast serve` stops.")
    prefect_port: int = Field(
        4200,
        ge=1,
        le=65535,
        description="Port of the Prefect server `pricecast serve` starts when PREFECT_API_URL is not set.",
    )


class ParallelConfig(_Group):
    """How retrain (tickers) and backtest (folds x models) fan out: a Prefect task runner; processes or Dask put
    each training in a process of its own."""

    task_runner: Literal["threads", "processes", "dask"] = Field(
        "threads", description="threads (in the flow's process), processes (spawned), dask (prefect-dask)."
    )
    max_workers: int | None = Field(
        None,
        ge=1,
        description="Tasks at once; empty = the CPUs, or with threads 1 for retrain (seeds are per "
        "process) and all for backtest and tune (their networks take turns).",
    )
    dask_address: str | None = Field(
        None, description="Scheduler of an existing Dask cluster (tcp://host:8786); empty = a LocalCluster here."
    )


class MonitoringConfig(_Group):
    """Live scoring: forecasts scored when their days arrive, rolling live metrics, demotion of a live loser."""

    windows: tuple[int, ...] = Field(
        (20, 60), description="Rolling windows of live metrics, in scored days, comma-separated (live_mae_20, ...)."
    )
    demotion_window: int = Field(
        20,
        ge=1,
        description="Scored days over which a served version must not lose live: its MAE no worse than the last "
        "price's, its 80% range holding within coverage_low..coverage_high. Fewer days: no verdict yet.",
    )
    coverage_low: float = Field(0.65, ge=0.0, le=1.0, description="Lowest live 80% coverage before demotion.")
    coverage_high: float = Field(0.95, ge=0.0, le=1.0, description="Highest live 80% coverage before demotion.")
    demote: bool = Field(True, description="Demote a served version that loses live (else only report it).")
    notify_url: str | None = Field(
        None, description="URL that gets a JSON POST when a version is demoted (http or https); empty = none."
    )
    notify_block: str | None = Field(
        None,
        description="A saved Prefect notification block to notify on demotion, as <block-type>/<name> "
        "(slack-webhook/alerts, custom-webhook/ops, ...); empty = none (a `pricecast.model.demoted` Prefect event "
        "is emitted either way, for automations).",
    )
    notify_timeout: float = Field(10.0, gt=0, description="Seconds to wait for the notify_url's answer.")

    @field_validator("windows", mode="before")
    @classmethod
    def _comma_separated(cls, v: Any) -> Any:
        return tuple(int(c) for c in v.split(",") if c.strip()) if isinstance(v, str) else v

    @field_validator("windows")
    @classmethod
    def _positive(cls, v: tuple[int, ...]) -> tuple[int, ...]:
        if not v or min(v) < 1:
            raise ValueError(f"windows {','.join(map(str, v))} must be one or more positive numbers of days")
        return v

    @model_validator(mode="after")
    def _band(self) -> MonitoringConfig:
        if self.coverage_low > self.coverage_high:
            raise ValueError(f"coverage_low {self.coverage_low} is above coverage_high {self.coverage_high}")
        return self

    @field_validator("notify_url")
    @classmethod
    def _http(cls, v: str | None) -> str | None:
        if v and not v.startswith(("http://", "https://")):
            raise ValueError(f"notify_url {v!r} is not an http:// or https:// URL")
        return v or None


#: Exchange calendar of a ticker by its suffix (Yahoo's spelling); a ticker without one trades on `default_calendar`.
SUFFIX_CALENDARS = {
    ".NS": "XNSE",
    ".BO": "XBOM",
    ".L": "XLON",
    ".TO": "XTSE",
    ".DE": "XFRA",
    ".PA": "XPAR",
    ".T": "XTKS",
}


def _pairs(v: Any) -> Any:
    """`A=XNSE,B=XNYS` (a flag) as a dict; a dict (YAML) as it is."""
    if isinstance(v, str):
        pairs = [p.split("=", 1) for p in v.split(",") if p.strip()]
        if any(len(p) != 2 for p in pairs):
            raise ValueError(f"{v!r} is not a list of KEY=CALENDAR pairs (e.g. TATA=XNSE,GOOG=XNYS)")
        return {k.strip(): c.strip() for k, c in pairs}
    return v


class FetchConfig(_Group):
    """`pricecast fetch` and the retrain flow's first step: daily bars from a source, on the exchange calendar."""

    source: str | None = Field(
        None,
        description="Where bars come from: 'yahoo' (yfinance), 'stooq', a name registered under the "
        "'pricecast.sources' entry point group, or an http(s):// or file:// URL of a CSV; empty = no fetching "
        "(retrain merges data/incoming/ alone).",
    )
    calendars: dict[str, str] = Field(
        {}, description="Exchange calendar per ticker, TICKER=CODE,... (e.g. TATA=XNSE); others go by suffix."
    )
    suffix_calendars: dict[str, str] = Field(
        SUFFIX_CALENDARS, description="Exchange calendar by ticker suffix, .SUFFIX=CODE,... (.NS=XNSE)."
    )
    default_calendar: str = Field("XNYS", description="Exchange calendar of a ticker without a suffix or entry.")
    bar_delay_hours: float = Field(
        1.5,
        ge=0,
        description="Hours after a session's close before its bar is expected from the source (later it is missing); "
        "with the schedule's cron and timezone left at their defaults, the retrain runs then, on weekdays.",
    )
    missing_sessions: int = Field(
        3, ge=1, description="Sessions without a bar (after the delay) that fail the check; fewer are a warning."
    )
    fetch_retries: int = Field(
        3, ge=0, le=10, description="Retries of a request answered 429 or 5xx, or timed out (never refused/DNS)."
    )
    fetch_timeout: float = Field(10.0, gt=0, description="Seconds to wait for a source's connection and answer.")
    max_retry_wait: float = Field(
        30.0, ge=0, description="Longest wait between retries in seconds, Retry-After included (a longer one fails)."
    )
    stooq_url: str = Field("https://stooq.com", description="Base URL of Stooq's daily CSV download (/q/d/l/).")
    stooq_apikey: str | None = Field(
        None,
        description="Stooq's API key, sent as its apikey parameter (Stooq's download asks for one since 2026); "
        "empty = PRICECAST_STOOQ_APIKEY, else none.",
    )
    yahoo_url: str | None = Field(
        None, description="Send yfinance's requests to this base URL instead of Yahoo's hosts (tests, a proxy)."
    )

    @field_validator("calendars", "suffix_calendars", mode="before")
    @classmethod
    def _key_value_pairs(cls, v: Any) -> Any:
        return _pairs(v)

    @field_validator("calendars")
    @classmethod
    def _upper_tickers(cls, v: dict[str, str]) -> dict[str, str]:
        return {k.upper(): c.upper() for k, c in v.items()}
