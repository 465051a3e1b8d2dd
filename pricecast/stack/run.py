"""`stack up|status|down`: databases created when missing, servers and workers started, and found again.

Everything a stack needs to find its processes again lives in one state folder:

    <state>/stack.json        ports, URLs, database names, pool, timings (no secret)
    <state>/pids/<name>.pid   "<pid> <start time>" of each process group this stack started
    <state>/logs/<name>.log   stdout and stderr of each
    <state>/secrets/          0700: the credentials, MLflow's auth config and the Flask key (with --auth)
    <state>/prefect-home/     PREFECT_HOME of every process: no user profile leaks in
    <state>/artifacts/        MLflow's proxied artifact store
"""

from __future__ import annotations

import itertools
import json
import os
import secrets
import subprocess
import time
import urllib.request
from collections.abc import Iterable, Mapping
from pathlib import Path

from pricecast.errors import StackError
from pricecast.stack import procs
from pricecast.stack.plan import (
    INHERITED_OUT,
    Credentials,
    StackConfig,
    client_env,
    database_names,
    mlflow_auth_ini,
    plan,
    read_credentials,
    urls,
    with_driver,
    write_private,
    zombie_automation,
)
from pricecast.urls import redact


def ensure_databases(pg_url: str, names: Iterable[str], extensions: Mapping[str, Iterable[str]] = {}) -> list[str]:
    """Create the databases that are missing, and extensions in them; returns those created.

    Raises:
        StackError: PostgreSQL cannot be reached, naming the server (never a password).
    """
    import psycopg
    from psycopg import sql

    created = []
    try:
        with psycopg.connect(with_driver(pg_url, None), autocommit=True, connect_timeout=5) as conn:
            for name in names:
                if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
                    try:
                        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
                        created.append(name)
                    except psycopg.errors.DuplicateDatabase:
                        pass  # another `up` made it meanwhile
        for name, wanted in extensions.items():
            with psycopg.connect(with_driver(pg_url, None, name), autocommit=True, connect_timeout=5) as conn:
                for ext in wanted:
                    conn.execute(sql.SQL("CREATE EXTENSION IF NOT EXISTS {}").format(sql.Identifier(ext)))
    except psycopg.OperationalError as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise StackError(f"PostgreSQL at {redact(with_driver(pg_url, None))} cannot be reached: {reason}") from None
    return created


def drop_databases(pg_url: str, names: Iterable[str]) -> None:
    """Drop databases, disconnecting their sessions (the tests clean up with this)."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(with_driver(pg_url, None), autocommit=True, connect_timeout=5) as conn:
        for name in names:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def api(url: str, path: str, headers: Mapping[str, str], body: object | None = None) -> object:
    """A JSON call to a server's API (POST when `body` is given)."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        f"{url}{path}",
        data=data,
        headers={"Content-Type": "application/json", **headers},
        method="POST" if data else "GET",
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read() or b"null")


def _credentials(config: StackConfig, secrets_dir: Path) -> Credentials | None:
    """With `--auth`: the credentials (from the environment or the owner-only file; made on first use)."""
    if not config.auth:
        return None
    cred_file = Path(config.credentials_file or secrets_dir / "credentials")
    credentials = read_credentials(cred_file)
    if credentials is None:
        credentials = Credentials("admin", secrets.token_urlsafe(18))
        write_private(cred_file, f"{credentials.user}:{credentials.password}\n")
    auth_db = with_driver(config.pg_url, "psycopg", database_names(config.prefix)["mlflow_auth"])
    write_private(secrets_dir / "mlflow_auth.ini", mlflow_auth_ini(credentials, auth_db))
    if not (secrets_dir / "flask_key").exists():
        write_private(secrets_dir / "flask_key", secrets.token_hex(32))
    return credentials


def _pool_and_automation(config: StackConfig, info: dict, env: Mapping[str, str], headers: Mapping[str, str]) -> None:
    """The process work pool (Prefect's CLI fills its job template) and the zombie-run automation, unless present."""
    prefect = info["urls"]["prefect"]
    if procs.http_status(f"{prefect}/work_pools/{config.pool}", headers) != 200:
        full_env = {k: v for k, v in os.environ.items() if k not in INHERITED_OUT} | dict(env)
        done = subprocess.run(
            [str(config.bin_dir / "prefect"), "work-pool", "create", config.pool, "--type", "process"],
            env=full_env,
            capture_output=True,
            text=True,
            timeout=180,
            stdin=subprocess.DEVNULL,
        )
        if done.returncode != 0 and procs.http_status(f"{prefect}/work_pools/{config.pool}", headers) != 200:
            raise StackError(f"work pool {config.pool!r} could not be created: {(done.stderr or done.stdout)[-300:]}")
    automation = zombie_automation(config.pool, config.heartbeat)
    found = api(prefect, "/automations/filter", headers, {})
    if not any(a["name"] == automation["name"] for a in found):
        api(prefect, "/automations/", headers, automation)


def up(config: StackConfig) -> dict:
    """Start the stack (databases created when missing); returns what `status` and `down` need.

    Raises:
        StackError: PostgreSQL unreachable, a stack already running from this state folder, a port
            taken, a server that does not come up (its log named); whatever did start is stopped again.
    """
    state = Path(config.state_dir).resolve()
    if any(alive for _, alive in procs.recorded(state).values()):
        raise StackError(f"a stack is already running from {state} (pricecast stack status / down)")
    t0 = time.monotonic()
    names = database_names(config.prefix)
    ensure_databases(config.pg_url, names.values(), {names["prefect"]: ["pg_trgm"]})
    credentials = _credentials(config, state / "secrets")
    headers = credentials.header() if credentials else {}
    state.mkdir(parents=True, exist_ok=True)
    secrets_file = str(config.credentials_file or state / "secrets" / "credentials") if credentials else None
    try:
        ports, took = _start_servers(config, state, credentials, headers)
        services = plan(config, ports, credentials)
        where = urls(config, ports)
        info = {
            "state_dir": str(state),
            "host": config.host,
            "ports": ports,
            "pool": config.pool,
            "auth": bool(credentials),
            "databases": names,
            "urls": {**where, "store": redact(where["store"])},
            "credentials_file": secrets_file,
            "services": [s.name for s in services],
            "timings": took,
        }
        _pool_and_automation(config, info, client_env(config, ports, credentials), headers)
        for service in services[2:]:
            procs.spawn(service, state)
        info["timings"]["workers-online"] = wait_workers(info, headers, config.workers, config.timeout)
    except BaseException:
        procs.stop(state)
        raise
    info["timings"]["total"] = round(time.monotonic() - t0, 1)
    (state / "stack.json").write_text(json.dumps(info, indent=2))
    return info


def _start_servers(
    config: StackConfig, state: Path, credentials: Credentials | None, headers: Mapping[str, str]
) -> tuple[dict[str, int], dict[str, float]]:
    """Start the Prefect and MLflow servers at once and wait until both answer; their ports and seconds each took.

    A port left to `up` (0) is one the OS says is free now, and another process may bind it before the server
    does (seen under the test suite's load: `[Errno 98] ... address already in use`); then both servers start
    again on new free ports, up to `procs.PORT_TRIES` times. A port given explicitly is never changed.

    Raises:
        StackError: a given port is taken, or a server did not come up (its log named).
    """
    chosen = {"prefect": config.prefect_port, "mlflow": config.mlflow_port}
    for attempt in itertools.count(1):
        ports = {name: port or procs.free_port(config.host) for name, port in chosen.items()}
        for name, port in ports.items():
            if procs.port_taken(config.host, port):
                raise StackError(f"port {port} on {config.host} for the {name} server is taken (--{name}-port)")
        servers = dict(zip(chosen, plan(config, ports, credentials)[:2], strict=True))  # prefect, mlflow
        logs = {key: state / "logs" / f"{s.name}.log" for key, s in servers.items()}
        seen = {key: log.stat().st_size if log.exists() else 0 for key, log in logs.items()}
        started = {s.name: (s.health_url, procs.spawn(s, state)) for s in servers.values()}
        try:
            return ports, procs.wait_healthy(started, state, headers, config.timeout)
        except StackError:
            raced = [key for key, log in logs.items() if not chosen[key] and procs.lost_its_port(log, seen[key])]
            if not raced or attempt == procs.PORT_TRIES:
                raise
            procs.stop(state)


def workers_online(info: Mapping, headers: Mapping[str, str]) -> list[str]:
    """Names of the pool's workers whose status is ONLINE, as the Prefect server sees them."""
    try:
        found = api(info["urls"]["prefect"], f"/work_pools/{info['pool']}/workers/filter", headers, {})
    except (OSError, ValueError):
        return []
    return sorted(w["name"] for w in found if w.get("status") == "ONLINE")


def wait_workers(info: Mapping, headers: Mapping[str, str], count: int, timeout: float) -> float:
    """Seconds until `count` workers are ONLINE in the pool (they register on their first poll)."""
    start = time.monotonic()
    while len(workers_online(info, headers)) < count:
        for name, (_, alive) in procs.recorded(Path(info["state_dir"])).items():
            if name.startswith("worker") and not alive:
                raise StackError(f"{name} exited while starting: {procs.last_line(Path(info['state_dir']), name)}")
        if time.monotonic() - start > timeout:
            raise StackError(
                f"only {len(workers_online(info, headers))} of {count} workers came online in {timeout:g} s"
            )
        time.sleep(0.5)
    return round(time.monotonic() - start, 1)


def load(state_dir: Path) -> dict:
    path = Path(state_dir) / "stack.json"
    if not path.exists():
        raise StackError(f"no stack in {state_dir} (start one with: pricecast stack up)")
    return json.loads(path.read_text())


def status(state_dir: Path, headers: Mapping[str, str] | None = None) -> dict[str, dict]:
    """Each service: pid, running (that very process), processes and memory (PSS of its group, MB), health, log."""
    info, out = load(state_dir), {}
    for name, (pid, alive) in procs.recorded(Path(state_dir)).items():
        members = procs.group_pids(pid) if alive else []
        row = {"pid": pid, "running": alive, "processes": len(members), "memory_mb": round(procs.memory_mb(members), 1)}
        server = {"prefect-server": "prefect", "mlflow-server": "mlflow"}.get(name)
        if server:
            row |= {"url": info["urls"][server], "health": procs.http_status(f"{info['urls'][server]}/health", headers)}
        row["log"] = str(Path(state_dir) / "logs" / f"{name}.log")
        out[name] = row
    return out


def down(state_dir: Path, timeout: float = 60.0) -> dict[str, str]:
    """Stop the stack's processes (only those `up` started); databases, artifacts and secrets are kept.

    A Prefect worker has taken over 20 s to stop under load, so each process gets a minute after
    SIGTERM before SIGKILL ("killed" in the result)."""
    return procs.stop(Path(state_dir), timeout)
