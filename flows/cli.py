"""The `pricecast` command line. It fills the one config object from a YAML file and flags.

Every config field is a flag named after it (`--epochs 2 --seed 3 --units 8`); heavy modules
(TensorFlow, Prefect, MLflow) are imported only by the command that needs them.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Iterator, Sequence
from datetime import date
from pathlib import Path
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
    parser.add_argument("--config", metavar="FILE", default=None, help="YAML file with config groups; flags override it")
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
    for group, name in (("data", "path"), ("split", "test_path")):
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


def _print_record(record: Any) -> None:
    from tasks.report import metrics_table

    print(f"\nMLflow run {record.run_id} ({record.url})")
    print(metrics_table(record.metrics))
    verdict = "better" if record.metrics["skill"] > 0 else "no better"
    print(f"On these days the model is {verdict} than the naive forecast (tomorrow = today): skill {record.metrics['skill']:+.3f}.")
    print(f"Registered model {record.model_name} version {record.version} (`pricecast retrain` decides whether it becomes champion).")
    print("Open the MLflow UI with `make ui` (or `pricecast ui`), then follow the run link above.")


def cmd_train(config: Config, args: argparse.Namespace) -> int:
    from flows.train import train
    from tasks import tracking

    tracking.preflight(config.tracking, config.paths())
    _print_record(train(config))
    return 0


def cmd_ui(config: Config, args: argparse.Namespace) -> int:
    from tasks.tracking import tracking_uri

    uri = tracking_uri(config.tracking, config.paths())
    if uri.startswith("sqlite:///"):
        config.paths().mlruns.mkdir(parents=True, exist_ok=True)
    # MLflow's GenAI job runner starts worker processes that outlive the UI; runs and models need none.
    os.environ.setdefault("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")
    command = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri, "--host", "127.0.0.1", "--port", str(config.tracking.ui_port)]
    print(f"MLflow UI on http://127.0.0.1:{config.tracking.ui_port} for {uri} (Ctrl+C stops it)", flush=True)
    os.execv(sys.executable, command)
    return 0  # not reached


def _tickers(config: Config) -> list[str] | None:
    """`--ticker A` or `--ticker A,B` for the retrain flow; none means every ticker in the store."""
    return [t.strip() for t in config.data.ticker.split(",") if t.strip()] if config.data.ticker else None


def cmd_retrain(config: Config, args: argparse.Namespace) -> int:
    from flows.retrain import retrain
    from tasks import tracking

    tracking.preflight(config.tracking, config.paths())
    decisions = retrain(config, _tickers(config), args.force)
    for d in decisions:
        print(f"{d.ticker}: {d.action}: {d.reason}")
    if not decisions:
        print(f"No tickers in {config.paths().prices}: run `pricecast train` or drop price files in {config.paths().incoming}")
    return 0


def cmd_add(config: Config, args: argparse.Namespace) -> int:
    from tasks.promote import add_incoming

    for source in args.files:
        print(f"{source} -> {add_incoming(Path(source), config.paths(), config.data.ticker)}")
    print("`pricecast retrain` (or the schedule of `pricecast serve`) merges them into the store.")
    return 0


def cmd_status(config: Config, args: argparse.Namespace) -> int:
    from tasks import tracking
    from tasks.promote import store_tickers

    tracking.connect(config.tracking, config.paths())
    tickers = _tickers(config) or store_tickers(config.paths())
    rows = [tracking.status(t) for t in tickers]
    if not rows:
        print(f"No tickers in {config.paths().prices} yet.")
    for row in rows:
        print(f"{row['ticker']}: champion {row['champion']}", end="")
        if row["mae"]:
            print(f" (MAE {row['mae']} vs naive {row['naive_mae']}; trained on {row['trained_on']})", end="")
        print(f"\n  last retrain decision: {row['last_decision']}")
    return 0


def cmd_forecast(config: Config, args: argparse.Namespace) -> int:
    from flows.forecast import forecast_all
    from tasks import tracking

    tracking.preflight(config.tracking, config.paths())
    for result in forecast_all(config, _tickers(config), args.start, args.end):
        print(f"\n{result.ticker}: forecasts from {result.model} (MLflow run {result.run_id})")
        shown = result.rows[["as_of", "date", "forecast", "naive", "actual", "error"]].dropna(axis="columns", how="all")
        print(shown.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
        if result.scores:
            s = result.scores
            print(f"{s['forecasts_scored']:.0f} forecasts of past days: MAE {s['mae']:.4f} vs naive {s['naive_mae']:.4f} (skill {s['skill']:+.3f})")
    print(f"\nAppended to {config.paths().forecasts}/<TICKER>.csv")
    return 0


def cmd_serve_model(config: Config, args: argparse.Namespace) -> int:
    from tasks import tracking
    from tasks.errors import DataError

    if not config.data.ticker or "," in config.data.ticker:
        raise DataError("serve-model serves one ticker's model: give --ticker X")
    uri = tracking.connect(config.tracking, config.paths())
    ref = tracking.forecast_model(config.data.ticker)
    port = config.forecast.model_port
    print(f"Serving {ref.label} ({ref.uri}) on http://127.0.0.1:{port}/invocations (Ctrl+C stops it)", flush=True)
    os.environ["MLFLOW_TRACKING_URI"] = uri
    # MLflow starts `uvicorn` by name: the one beside this Python, even when the venv is not activated.
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    command = [sys.executable, "-m", "mlflow", "models", "serve", "-m", ref.uri, "--env-manager", "local", "--host", "127.0.0.1", "--port", str(port)]
    os.execv(sys.executable, command)
    return 0  # not reached


def _dates(p: argparse.ArgumentParser) -> None:
    day = date.fromisoformat
    p.add_argument("--start", type=day, metavar="YYYY-MM-DD", help="backfill: forecast from every store day from this one (default: only the last day)")
    p.add_argument("--end", type=day, metavar="YYYY-MM-DD", help="backfill: up to this day (default: the store's last)")


def cmd_serve(config: Config, args: argparse.Namespace) -> int:
    from flows.serve import serve

    serve(config)
    return 0


def cmd_trigger(config: Config, args: argparse.Namespace) -> int:
    from flows.serve import trigger

    extra = {
        "train": {},
        "retrain": {"tickers": _tickers(config), "force": args.force},
        "forecast": {"tickers": _tickers(config), "start": args.start and str(args.start), "end": args.end and str(args.end)},
    }[args.flow]
    run = trigger(config, args.flow, given_values(args), extra, args.wait)
    print(f"Flow run {run.name} ({run.id}) of {args.flow}: {run.state.name if run.state else 'scheduled'}")
    return 0 if not args.wait or (run.state and run.state.is_completed()) else 1


def _force(p: argparse.ArgumentParser) -> None:
    p.add_argument("--force", action="store_true", help="retrain even when the store has not changed")


def _files(p: argparse.ArgumentParser) -> None:
    p.add_argument("files", nargs="+", metavar="FILE", help="price files (the ticker from a Ticker column, else --ticker, else the file name)")


def _trigger_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("flow", choices=["train", "retrain", "forecast"], help="which served deployment to run")
    p.add_argument("--wait", action="store_true", help="wait for the run to finish")
    _force(p)
    _dates(p)


COMMANDS = {
    "train": (cmd_train, "train, evaluate, log and register one ticker's forecaster", None),
    "add": (cmd_add, "check price files and put them in data/incoming/ for the next retrain", _files),
    "retrain": (cmd_retrain, "merge data/incoming/, retrain, promote better challengers (here and now)", _force),
    "status": (cmd_status, "each ticker's champion, its metrics against naive, and the last retrain decision", None),
    "forecast": (cmd_forecast, "forecast each ticker's next trading days from its champion, or backfill a past range", _dates),
    "serve-model": (cmd_serve_model, "serve a ticker's champion over HTTP with MLflow's model server on 127.0.0.1", None),
    "serve": (cmd_serve, "serve the train (manual) and retrain (scheduled) deployments until stopped", None),
    "trigger": (cmd_trigger, "run a served deployment now", _trigger_args),
    "ui": (cmd_ui, "open the MLflow UI on 127.0.0.1 against this store", None),
}


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="pricecast", description=__doc__.splitlines()[0])
    sub = top.add_subparsers(dest="command", required=True)
    for name, (_, help_text, extra) in COMMANDS.items():
        command = sub.add_parser(name, help=help_text, description=help_text)
        if extra:
            extra(command)
        add_config_flags(command)
    return top


class Stopped(BaseException):
    """SIGTERM as an exception: the MLflow run ends KILLED and Prefect's temporary server stops.

    A BaseException, like KeyboardInterrupt, so no `except Exception` swallows it.
    """


def _stop(signum: int, frame: object) -> None:
    raise Stopped(f"stopped by {signal.Signals(signum).name}")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `pricecast` console script.

    Exit codes: 0 done, 1 the environment failed (tracking server, full disk), 2 bad input or
    config, 143 stopped by SIGTERM.
    """
    args = parser().parse_args(argv)
    for key, value in OFFLINE_ENV.items():
        os.environ.setdefault(key, value)
    from tasks.errors import DataError, DiskFullError, TrackingError

    # During a flow Prefect's own handler turns SIGTERM into a crash of the flow run, then
    # hands the signal on to this one.
    previous = signal.signal(signal.SIGTERM, _stop)
    try:
        config = build_config(args)
        return COMMANDS[args.command][0](config, args)
    except ValidationError as exc:
        print(f"pricecast: invalid config:\n{exc}", file=sys.stderr)
    except (DataError, FileNotFoundError, LookupError) as exc:
        print(f"pricecast: {exc}", file=sys.stderr)
    except (TrackingError, DiskFullError) as exc:
        print(f"pricecast: {exc}", file=sys.stderr)
        return 1
    except Stopped as exc:
        print(f"pricecast: {exc}", file=sys.stderr)
        return 128 + signal.SIGTERM
    finally:
        signal.signal(signal.SIGTERM, previous)
    return 2


if __name__ == "__main__":
    sys.exit(main())
