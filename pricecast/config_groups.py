"""Config groups of forecasting quality: what the network reads, walk-forward backtests, tuning.

Part of the one config object (`pricecast.config.Config`), kept here so each module stays small.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

InputColumn = Literal["open", "high", "low", "close", "volume"]
ModelKind = Literal["network", "naive", "last_price", "drift", "arima"]
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
