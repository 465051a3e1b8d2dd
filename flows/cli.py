"""The `pricecast` command line. It fills the one config object from a YAML file and flags.

Every config field is a flag named after it (`--epochs 2 --seed 3 --units 8`); heavy modules
(TensorFlow, Prefect, MLflow) are imported only by the command that needs them.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator, Sequence
from typing import Any, get_args

from pydantic import BaseModel, ValidationError

from tasks.config import Config, load_yaml

# Flags whose names read better than their field names.
FLAG_NAMES = {("data", "path"): "data", ("split", "test_path"): "test-data"}

# Prefect and MLflow must not phone home: these machines are offline.
OFFLINE_ENV = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "true",
    "TF_CPP_MIN_LOG_LEVEL": "2",
}


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


def add_config_flags(parser: argparse.ArgumentParser) -> None:
    """`--config FILE`, `--home DIR` and one flag per config field."""
    parser.add_argument("--config", metavar="FILE", help="YAML file with config groups; flags override it")
    parser.add_argument("--home", metavar="DIR", default=argparse.SUPPRESS, help="folder for data/ and mlruns/ (default: $PRICECAST_HOME, else the project root)")
    groups: dict[str, argparse._ArgumentGroup] = {}
    for group, name, field in config_fields():
        section = groups.setdefault(group, parser.add_argument_group(f"{group} config"))
        options: dict[str, Any] = {"dest": f"{group}.{name}", "default": argparse.SUPPRESS, "help": _help(field)}
        if field.annotation is bool:
            options["action"] = argparse.BooleanOptionalAction
        else:
            choices = get_args(field.annotation) if "Literal" in str(field.annotation) else None
            options.update(metavar=name.upper(), choices=choices or None)
        section.add_argument(f"--{flag_name(group, name)}", **options)


def build_config(args: argparse.Namespace) -> Config:
    """The config from the YAML file (if any), overridden by the flags given."""
    values: dict[str, Any] = load_yaml(args.config) if args.config else {}
    for key, value in vars(args).items():
        if key == "home":
            values["home"] = value
        elif "." in key:
            group, name = key.split(".", 1)
            values.setdefault(group, {})[name] = value
    if os.environ.get("MLFLOW_TRACKING_URI"):
        values.setdefault("tracking", {}).setdefault("tracking_uri", os.environ["MLFLOW_TRACKING_URI"])
    return Config.model_validate(values)


def _print_record(record: Any) -> None:
    from tasks.report import metrics_table

    print(f"\nMLflow run {record.run_id} ({record.url})")
    print(metrics_table(record.metrics))
    print(f"Registered model {record.model_name} version {record.version}.")
    print("Open the MLflow UI with `make ui` (or `pricecast ui`), then follow the run link above.")


def cmd_train(config: Config, args: argparse.Namespace) -> int:
    from flows.train import train

    _print_record(train(config))
    return 0


def cmd_ui(config: Config, args: argparse.Namespace) -> int:
    from tasks.tracking import tracking_uri

    uri = tracking_uri(config.tracking, config.paths())
    if uri.startswith("sqlite:///"):
        config.paths().mlruns.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri, "--host", "127.0.0.1", "--port", str(config.tracking.ui_port)]
    print(f"MLflow UI on http://127.0.0.1:{config.tracking.ui_port} for {uri} (Ctrl+C stops it)", flush=True)
    os.execv(sys.executable, command)
    return 0  # not reached


COMMANDS = {
    "train": (cmd_train, "train, evaluate, log and register one ticker's forecaster"),
    "ui": (cmd_ui, "open the MLflow UI on 127.0.0.1 against this store"),
}


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="pricecast", description=__doc__.splitlines()[0])
    sub = top.add_subparsers(dest="command", required=True)
    for name, (_, help_text) in COMMANDS.items():
        add_config_flags(sub.add_parser(name, help=help_text, description=help_text))
    return top


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `pricecast` console script."""
    args = parser().parse_args(argv)
    for key, value in OFFLINE_ENV.items():
        os.environ.setdefault(key, value)
    from tasks.ingest import DataError

    try:
        config = build_config(args)
        return COMMANDS[args.command][0](config, args)
    except ValidationError as exc:
        print(f"pricecast: invalid config:\n{exc}", file=sys.stderr)
    except (DataError, FileNotFoundError) as exc:
        print(f"pricecast: {exc}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
