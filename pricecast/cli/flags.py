"""Config flags: every field of the config object is a flag named after it; a YAML file fills any of them."""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

from pydantic import BaseModel

from pricecast.config import Config, load_yaml

# Flags whose names read better than their field names.
FLAG_NAMES = {
    ("data", "path"): "data",
    ("split", "test_path"): "test-data",
    ("promotion", "folds"): "promotion-folds",
    ("tune", "output"): "tune-output",
    ("fetch", "source"): "fetch-source",  # `pricecast fetch --source` too; `deploy --source` is a checkout
}


#: The config each command reads, as groups ("training") or single fields ("data.ticker"): its `--help` offers
#: these flags only. ALL: the commands that hand the whole config on (`serve` and `deploy` pin it into
#: deployments, `trigger` lays its flags over a served deployment's). A new command or config group needs a line.
ALL = ("*",)
_NETWORK = ("scaling", "features", "window", "model", "training", "tracking")
_STORE_DATA = ("data.ticker", "data.target", "data.max_jump", "data.on_jump", "data.store")
_RANGES = ("forecast.levels", "forecast.range_method")  # a version's range is fitted when it is trained
READS: dict[str, tuple[str, ...]] = {
    "train": ("data", "split", *_NETWORK, *_RANGES, "backtest", "parallel", "monitoring"),  # `--backtest`; scoring
    "backtest": ("data", *_NETWORK, *_RANGES, "backtest", "parallel"),
    "tune": ("data", *_NETWORK, "backtest", "tune", "parallel"),
    "add": ("data.ticker",),
    "retrain": (*_STORE_DATA, *_NETWORK, "promotion", "forecast", "parallel", "monitoring", "fetch"),
    "fetch": ("data.ticker", "data.store", "fetch"),
    "status": ("data.ticker", "data.store", "tracking", "monitoring.windows"),
    "score": ("data.ticker", "data.target", "data.store", "tracking", "monitoring"),
    "forecast": (
        *("data.ticker", "data.store", "tracking", "model.kind", "model.global_above"),
        *("forecast.horizon", "forecast.version", "forecast.levels", "forecast.plot_days"),
    ),
    "serve-model": ("data.ticker", "tracking", "model.kind", *_RANGES, "forecast.version", "forecast.model_port"),
    "serve": ALL,
    "trigger": ALL,
    "server": (),
    "ui": ("tracking.tracking_uri", "tracking.ui_port"),
    "stack": ("schedule.prefect_port",),
    "deploy": ALL,
    "store": ("data.store", "window", "promotion.holdout_days", "promotion.folds"),  # merge: a new ticker's rows
}


def reads(reads: tuple[str, ...], group: str, name: str) -> bool:
    """Whether a command that reads `reads` (a READS entry) reads the field `group.name`."""
    return reads == ALL or group in reads or f"{group}.{name}" in reads


def config_fields() -> Iterator[tuple[str, str, Any]]:
    """(group, field, FieldInfo) for every field of every config group."""
    for group, info in Config.model_fields.items():
        if isinstance(info.default, BaseModel):
            for name, field in type(info.default).model_fields.items():
                yield group, name, field


def flag_name(group: str, name: str) -> str:
    return FLAG_NAMES.get((group, name), name.replace("_", "-"))


def _help(field: Any) -> str:
    default = "" if field.default is None else f" (default: {field.default})"
    return ((field.description or "") + default).replace("%", "%%")


def add_config_flags(parser: argparse.ArgumentParser, fields: tuple[str, ...] = ALL) -> None:
    """`--home DIR`, then `--config FILE` and one flag per config field the command reads (`fields`, see READS)."""
    parser.set_defaults(config=None)
    if fields:
        parser.add_argument("--config", metavar="FILE", help="YAML file with config groups; flags override it")
    parser.add_argument(
        "--home",
        metavar="DIR",
        default=argparse.SUPPRESS,
        help="folder for data/ and mlruns/ (default: $PRICECAST_HOME, else the project root)",
    )
    groups: dict[str, argparse._ArgumentGroup] = {}
    for group, name, field in config_fields():
        if not reads(fields, group, name):
            continue
        if group not in groups:
            groups[group] = parser.add_argument_group(f"{group} config")
        section = groups[group]
        options: dict[str, Any] = {"dest": f"{group}.{name}", "default": argparse.SUPPRESS, "help": _help(field)}
        if field.annotation is bool:
            options["action"] = argparse.BooleanOptionalAction
        else:
            choices = get_args(field.annotation) if get_origin(field.annotation) is Literal else None
            options.update(metavar=name.upper(), choices=choices or None)
        section.add_argument(f"--{flag_name(group, name)}", **options)


def given_values(args: argparse.Namespace) -> dict[str, Any]:
    """The YAML file's values (if any), overridden by the flags given, as nested groups.

    Paths are anchored here, against the directory the command runs in, so they mean the same
    thing in a served deployment's process.
    """
    values: dict[str, Any] = load_yaml(args.config) if args.config else {}
    for key, value in vars(args).items():
        if key == "home":
            values["home"] = value
        elif "." in key:
            group, name = key.split(".", 1)
            values.setdefault(group, {})[name] = value
    for group, name in (("data", "path"), ("split", "test_path"), ("tune", "output")):
        if values.get(group, {}).get(name):
            values[group][name] = str(Path(values[group][name]).expanduser().resolve())
    if values.get("home"):
        values["home"] = str(Path(values["home"]).expanduser().resolve())
    return values


def build_config(args: argparse.Namespace) -> Config:
    """The config: defaults, then the YAML file, then MLFLOW_TRACKING_URI, then the flags."""
    values = given_values(args)
    if os.environ.get("MLFLOW_TRACKING_URI"):
        values.setdefault("tracking", {}).setdefault("tracking_uri", os.environ["MLFLOW_TRACKING_URI"])
    return Config.model_validate(values)


def tickers_of(config: Config, args: argparse.Namespace) -> list[str] | None:
    """`--tickers A,B`, else `--ticker A`; neither means every ticker in the store."""
    if args.tickers:
        return [t.strip().upper() for t in args.tickers.split(",") if t.strip()]
    return [config.data.ticker] if config.data.ticker else None
