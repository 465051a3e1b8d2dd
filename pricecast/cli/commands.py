"""The `pricecast` commands: each fills nothing itself, it runs a flow or a server with the config it is given.

Heavy modules (TensorFlow, Prefect, MLflow) are imported only by the command that needs them.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import date
from pathlib import Path
from typing import Any

from pricecast.cli.fetching import cmd_fetch, fetch_args
from pricecast.cli.flags import given_values
from pricecast.cli.flags import tickers_of as _tickers
from pricecast.cli.live import cmd_score
from pricecast.cli.servers import cmd_server, server_args, servers_ready
from pricecast.cli.show import status_lines
from pricecast.cli.team import cmd_deploy, cmd_stack, cmd_store, deploy_args, stack_args, store_args
from pricecast.cli.training import backtest_flags, cmd_backtest, cmd_train, cmd_tune, train_flags
from pricecast.config import Config


def cmd_ui(config: Config, args: argparse.Namespace) -> int:
    from pricecast.tracking.connect import tracking_uri

    uri = tracking_uri(config.tracking, config.paths())
    if uri.startswith("sqlite:///"):
        config.paths().mlruns.mkdir(parents=True, exist_ok=True)
    # MLflow's GenAI job runner starts worker processes that outlive the UI; runs and models need none.
    os.environ.setdefault("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")
    command = [
        sys.executable,
        "-m",
        "mlflow",
        "ui",
        "--backend-store-uri",
        uri,
        "--host",
        "127.0.0.1",
        "--port",
        str(config.tracking.ui_port),
        "--workers",  # one user on 127.0.0.1: MLflow's default of 4 starts 4 server processes of ~190 MB
        "1",
    ]
    print(f"MLflow UI on http://127.0.0.1:{config.tracking.ui_port} for {uri} (Ctrl+C stops it)", flush=True)
    os.execv(sys.executable, command)
    return 0  # not reached


def cmd_retrain(config: Config, args: argparse.Namespace) -> int:
    from flows.retrain import retrain

    with servers_ready(config):
        decisions = retrain(config, _tickers(config, args), args.force)
    for d in decisions:
        print(f"{d.ticker}: {d.action}: {d.reason}")
    if not decisions:
        from pricecast.prices.stores import open_store

        print(
            f"No tickers in {open_store(config).where}: run `pricecast train` or drop price files in "
            f"{config.paths().incoming}"
        )
    return 0


def cmd_add(config: Config, args: argparse.Namespace) -> int:
    from pricecast.prices.incoming import add_incoming

    for source in args.files:
        print(f"{source} -> {add_incoming(Path(source), config.paths().incoming, config.data.ticker)}")
    print("`pricecast retrain` (or the schedule of `pricecast serve`) merges them into the store.")
    return 0


def cmd_status(config: Config, args: argparse.Namespace) -> int:
    from pricecast.prices.stores import open_store
    from pricecast.tracking.connect import connect

    connect(config.tracking, config.paths())
    store = open_store(config)
    tickers = _tickers(config, args) or store.tickers()
    if not tickers:
        print(f"No tickers in {store.where} yet.")
    for ticker in tickers:
        print("\n".join(status_lines(ticker, config)))
    return 0


def cmd_forecast(config: Config, args: argparse.Namespace) -> int:
    from pricecast.prices.stores import open_store

    tickers = _tickers(config, args)
    for ticker in tickers or []:
        open_store(config).read(ticker)  # an unknown ticker fails here, one line, before any server starts
    from flows.forecast import forecast

    with servers_ready(config):
        results = forecast(config, tickers, args.start, args.end, args.plot)
    for result in results:
        print(f"\n{result.ticker}: forecasts from {result.model} (MLflow run {result.run_id})")
        bounds = [c for c in result.rows.columns if c.startswith(("lower_", "upper_"))]
        columns = ["as_of", "date", "forecast", *bounds, "naive", "actual", "error"]
        shown = result.rows[columns].dropna(axis="columns", how="all")
        print(shown.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
        print(f"Ranges: {result.rows['range_method'].iloc[0]}, central {', '.join(b[6:] for b in bounds[::2])}%")
        if result.scores:
            s = result.scores
            print(
                f"{s['forecasts_scored']:.0f} forecasts of past days: MAE {s['mae']:.4f} vs naive "
                f"{s['naive_mae']:.4f} (skill {s['skill']:+.3f})"
            )
        print(f"Appended to {result.path}")
        if result.plot:
            print(f"Fan chart: {result.plot}")
    return 0


def cmd_serve_model(config: Config, args: argparse.Namespace) -> int:
    from pricecast.errors import DataError
    from pricecast.forecaster import SERVED_AS, SERVED_LOG
    from pricecast.serving import choose_model
    from pricecast.tracking.connect import connect

    if not config.data.ticker:
        raise DataError("serve-model serves one ticker's model: give --ticker X")
    uri = connect(config.tracking, config.paths())
    ref = choose_model(config.data.ticker, config.forecast.version, config.model.kind)
    model_uri = ref.uri if not ref.baseline else _baseline_uri(config, ref)
    port = config.forecast.model_port
    if ref.note:
        print(f"pricecast: warning: {ref.note}", file=sys.stderr, flush=True)
    print(f"Serving {ref.label} ({model_uri}) on http://127.0.0.1:{port}/invocations (Ctrl+C stops it)", flush=True)
    os.environ["MLFLOW_TRACKING_URI"] = uri
    # Every served forecast is kept, for scoring when its day arrives (pricecast.monitoring.collect_served).
    served = config.paths().forecasts / "served"
    served.mkdir(parents=True, exist_ok=True)
    os.environ[SERVED_LOG] = str(served / f"{config.data.ticker}.csv")
    who = {"ticker": config.data.ticker, "model": ref.model_column, "version": ref.version, "run_id": ref.run_id}
    os.environ[SERVED_AS] = json.dumps(who | {"model_alias": ref.alias or "latest"})
    # MLflow starts `uvicorn` by name: the one beside this Python, even when the venv is not activated.
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    command = [
        sys.executable,
        "-m",
        "mlflow",
        "models",
        "serve",
        "-m",
        model_uri,
        "--env-manager",
        "local",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    os.execv(sys.executable, command)
    return 0  # not reached


def _baseline_uri(config: Config, ref: Any) -> str:
    """A served fallback: the baseline logged as a model in a run of the ticker's forecasts experiment."""
    import mlflow

    from pricecast.prices.store import CsvStore
    from pricecast.tracking import forecast_runs, registry

    history = CsvStore(config.paths()).read(config.data.ticker)
    with forecast_runs.forecast_run(config, config.data.ticker, ref, f"served {ref.baseline} baseline", None):
        uri = registry.log_baseline(
            ref.baseline, ref.target, history, config.forecast.range_method, config.forecast.levels
        )
        mlflow.set_tag("served", "true")
    return uri


def _dates(p: argparse.ArgumentParser) -> None:
    day = date.fromisoformat
    p.add_argument(
        "--start",
        type=day,
        metavar="YYYY-MM-DD",
        help="backfill: forecast from every store day from this one (default: only the last day)",
    )
    p.add_argument("--end", type=day, metavar="YYYY-MM-DD", help="backfill: up to this day (default: the store's last)")
    _several(p)


def _forecast_args(p: argparse.ArgumentParser) -> None:
    _dates(p)
    p.add_argument(
        "--plot",
        type=Path,
        metavar="FILE.png",
        help="write the fan chart (history, forecasts, shaded ranges) here; FILE-TICKER.png for several tickers",
    )


def cmd_serve(config: Config, args: argparse.Namespace) -> int:
    from pricecast.deploy import serve

    serve(config)
    return 0


def cmd_trigger(config: Config, args: argparse.Namespace) -> int:
    from pricecast.deploy import trigger

    extra = {
        "train": {},
        "backtest": {},
        "retrain": {"tickers": _tickers(config, args), "force": args.force},
        "forecast": {
            "tickers": _tickers(config, args),
            "start": args.start and str(args.start),
            "end": args.end and str(args.end),
        },
    }[args.flow]
    run = trigger(config, args.flow, given_values(args), extra, args.wait)
    print(f"Flow run {run.name} ({run.id}) of {args.flow}: {run.state.name if run.state else 'scheduled'}")
    return 0 if not args.wait or (run.state and run.state.is_completed()) else 1


def _several(p: argparse.ArgumentParser) -> None:
    p.add_argument("--tickers", metavar="A,B", help="comma-separated tickers (default: every ticker in the store)")


def _force(p: argparse.ArgumentParser) -> None:
    p.add_argument("--force", action="store_true", help="retrain even when the store has not changed")
    _several(p)


def _files(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "files",
        nargs="+",
        metavar="FILE",
        help="price files (the ticker from a Ticker column, else --ticker, else the file name)",
    )


def _trigger_args(p: argparse.ArgumentParser) -> None:
    from pricecast.deploy import FLOWS

    p.add_argument("flow", choices=FLOWS, help="which deployment (served, or on the work pool) to run")
    p.add_argument("--wait", action="store_true", help="wait for the run to finish")
    p.add_argument("--force", action="store_true", help="retrain: even when the store has not changed")
    _dates(p)


COMMANDS = {
    "train": (cmd_train, "train, evaluate, log and register one ticker's forecaster (or a baseline)", train_flags),
    "backtest": (cmd_backtest, "walk-forward backtest of the network and the baselines on one ticker", backtest_flags),
    "tune": (cmd_tune, "search network settings with Optuna on validation folds; write the best config", None),
    "fetch": (cmd_fetch, "fetch new daily bars from a source (yahoo, stooq, a URL) into the store", fetch_args),
    "add": (cmd_add, "check price files and put them in data/incoming/ for the next retrain", _files),
    "retrain": (cmd_retrain, "merge data/incoming/, retrain, promote better challengers (here and now)", _force),
    "status": (
        cmd_status,
        "each ticker's champion, its metrics against naive, the last retrain decision, live metrics and demotions",
        _several,
    ),
    "score": (cmd_score, "score past forecasts against the store, log live metrics, demote a live loser", _several),
    "forecast": (
        cmd_forecast,
        "forecast each ticker's next trading days and their ranges from its champion, or backfill a past range",
        _forecast_args,
    ),
    "serve-model": (
        cmd_serve_model,
        "serve a ticker's champion over HTTP with MLflow's model server on 127.0.0.1",
        None,
    ),
    "serve": (cmd_serve, "serve the train, forecast and (scheduled) retrain deployments until stopped", None),
    "trigger": (cmd_trigger, "run a served deployment now", _trigger_args),
    "server": (cmd_server, "start, stop or check this home's long-lived Prefect server (faster runs)", server_args),
    "ui": (cmd_ui, "open the MLflow UI on 127.0.0.1 against this store", None),
    "stack": (
        cmd_stack,
        "team mode: Prefect and MLflow servers on PostgreSQL and pool workers (up|status|down)",
        stack_args,
    ),
    "deploy": (
        cmd_deploy,
        "team mode: register train, retrain (scheduled), forecast and backtest on the work pool",
        deploy_args,
    ),
    "store": (cmd_store, "merge data/incoming/ into the store now, or copy a store into a team one", store_args),
}
