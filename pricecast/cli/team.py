"""Team-mode commands: `stack up|status|down`, `deploy` (deployments on the work pool), `store copy|merge`.

Every stack setting is a flag with an environment variable beside it; credentials never are flags
(a flag shows in `ps`): PRICECAST_STACK_USER / PRICECAST_STACK_PASSWORD or an owner-only file.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

from pricecast.config import Config, Paths

if TYPE_CHECKING:
    from pricecast.prices.stores import PriceStore

PG_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def _env_flag(p: argparse.ArgumentParser, flag: str, env: str, default: object, help_text: str, kind=str) -> None:  # noqa: ANN001
    """A flag whose default comes from an environment variable, else `default`."""
    value = os.environ.get(env, default)
    p.add_argument(flag, type=kind, default=None if value is None else kind(value), help=f"{help_text} (env {env})")


def stack_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=["up", "status", "down"], help="start, inspect or stop the stack")
    _env_flag(p, "--state-dir", "PRICECAST_STACK_DIR", None, "pid files, logs, secrets (default: <home>/stack)", Path)
    _env_flag(p, "--pg-url", "PRICECAST_PG_URL", PG_URL, "PostgreSQL server the stack's databases live on")
    _env_flag(p, "--prefix", "PRICECAST_STACK_PREFIX", "pricecast", "database name prefix: <prefix>_prefect, …")
    _env_flag(p, "--host", "PRICECAST_STACK_HOST", "127.0.0.1", "address the servers bind and clients use")
    _env_flag(p, "--mlflow-port", "PRICECAST_MLFLOW_PORT", 5000, "MLflow tracking server port (0: a free one)", int)
    _env_flag(p, "--workers", "PRICECAST_STACK_WORKERS", 2, "Prefect process workers started on the pool", int)
    _env_flag(p, "--pool", "PRICECAST_POOL", "pricecast", "Prefect work pool")
    _env_flag(p, "--heartbeat", "PRICECAST_HEARTBEAT", 30, "seconds between flow-run heartbeats (>= 30)", int)
    _env_flag(p, "--credentials-file", "PRICECAST_STACK_CREDENTIALS", None, "owner-only 'user:password' file", Path)
    p.add_argument(
        "--auth",
        action=argparse.BooleanOptionalAction,
        default=os.environ.get("PRICECAST_STACK_AUTH", "") not in ("", "0", "false"),
        help="MLflow basic-auth and a Prefect API auth string (env PRICECAST_STACK_AUTH=1)",
    )


def _stack_config(config: Config, args: argparse.Namespace):  # noqa: ANN202
    from pricecast.stack.plan import StackConfig

    given = "schedule.prefect_port" in vars(args)  # the config's --prefect-port, as `serve` takes it
    port = config.schedule.prefect_port if given else int(os.environ.get("PRICECAST_PREFECT_PORT", 4200))
    return StackConfig(
        state_dir=Path(args.state_dir or config.paths().root / "stack").expanduser().resolve(),
        pg_url=args.pg_url,
        prefix=args.prefix,
        host=args.host,
        prefect_port=port,
        mlflow_port=args.mlflow_port,
        workers=args.workers,
        pool=args.pool,
        auth=args.auth,
        credentials_file=args.credentials_file,
        heartbeat=args.heartbeat,
    )


def cmd_stack(config: Config, args: argparse.Namespace) -> int:
    from pricecast.stack import run
    from pricecast.stack.plan import read_credentials

    stack = _stack_config(config, args)
    if args.action == "up":
        info = run.up(stack)
        print(f"Stack up in {info['timings']['total']:.0f} s (state in {info['state_dir']}). Export, for clients:")
        for key, url in (
            ("PREFECT_API_URL", "prefect"),
            ("MLFLOW_TRACKING_URI", "mlflow"),
            ("PRICECAST_STORE", "store"),
        ):
            print(f"  export {key}={info['urls'][url]}")
        if info["auth"]:
            where = info["credentials_file"]
            print(f"  # and PREFECT_API_AUTH_STRING=user:password, MLFLOW_TRACKING_USERNAME, _PASSWORD from {where}")
        print("Logs:")
        for name in info["services"]:
            print(f"  {name}: {Path(info['state_dir']) / 'logs' / f'{name}.log'}")
        print("Next: pricecast deploy, then pricecast trigger retrain")
        return 0
    if args.action == "status":
        info = run.load(stack.state_dir)
        credentials = read_credentials(info.get("credentials_file") and Path(info["credentials_file"]))
        rows = run.status(stack.state_dir, credentials.header() if credentials else {})
        print(json.dumps({"urls": info["urls"], "services": rows}, indent=2))
        return 0 if rows and all(r["running"] for r in rows.values()) else 1
    print(json.dumps(run.down(stack.state_dir), indent=2))
    return 0


def deploy_args(p: argparse.ArgumentParser) -> None:
    _env_flag(p, "--pool", "PRICECAST_POOL", "pricecast", "Prefect work pool the deployments run on")
    _env_flag(
        p, "--source", "PRICECAST_SOURCE", None, "folder (checkout) workers run the flows from (default: this one)"
    )


def cmd_deploy(config: Config, args: argparse.Namespace) -> int:
    from pricecast.deploy import DEPLOYMENT, deploy_to_pool, retrain_schedule

    ids = deploy_to_pool(config, args.pool, args.source)
    for name, deployment_id in ids.items():
        extra = " (cron {}, {})".format(*retrain_schedule(config)) if name == "retrain" else ""
        print(f"{name}/{DEPLOYMENT} on work pool {args.pool}: {deployment_id}{extra}")
    print("Run one: pricecast trigger retrain [--tickers A,B] [--wait]")
    return 0


def store_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "action",
        choices=["copy", "merge"],
        help="copy: merge every ticker of one store into another; merge: merge data/incoming/ into this home's store "
        "now (what a retrain does first)",
    )
    p.add_argument("--from", dest="source", metavar="DIR|URL", help="copy: a home folder (its data/prices)")
    p.add_argument("--to", dest="target", metavar="URL", help="copy: postgresql://user@host:port/db")


def cmd_store(config: Config, args: argparse.Namespace) -> int:
    from pricecast.errors import DataError
    from pricecast.prices.stores import copy_store, open_store, store_at
    from pricecast.urls import redact

    if args.action == "merge":
        return _merge(config, open_store(config))
    if not args.source or not args.target:
        raise DataError("store copy needs --from DIR|URL and --to URL")
    is_url = "://" in args.source
    paths = Paths(root=Path(args.source).expanduser().resolve()) if not is_url else config.paths()
    if not is_url and not paths.prices.is_dir():
        raise DataError(f"{args.source} is not a home folder: {paths.prices} does not exist")
    source, target = store_at(args.source if is_url else None, paths), store_at(args.target, config.paths())
    copied = copy_store(source, target)
    for ticker, rows in copied.items():
        print(f"{ticker}: {rows} rows merged into {target.where}")
    print(
        f"{len(copied)} tickers copied from {redact(source.where)} (identical rows already there are left as they are)"
    )
    return 0


def _merge(config: Config, store: PriceStore) -> int:
    """`store merge`: data/incoming/ into the store, as a retrain's first step does; 2 when a file was rejected."""
    from pricecast.prices.incoming import merge_incoming

    report = merge_incoming(store, config.paths().incoming, config.min_history_rows())
    for name, error in report.rejected.items():
        print(f"rejected {name}: {error}")
    print(f"{len(report.merged)} files merged into {store.where} ({len(report.tickers)} tickers changed)")
    return 2 if report.rejected else 0
