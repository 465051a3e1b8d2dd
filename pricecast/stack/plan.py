"""What a team stack runs: URLs, database names, credentials and the command lines of its processes.

Pure functions (but the two that read and write owner-only files): nothing here starts anything.
Prefect and MLflow run as the subprocesses they are in production (their own CLIs), so what is
tested is what a team runs. A command line never holds a secret: it shows in `ps`.
"""

from __future__ import annotations

import base64
import os
import stat
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from pricecast.config import PROJECT_ROOT
from pricecast.errors import StackError
from pricecast.process import go_offline
from pricecast.urls import redact

#: Variables of the user's shell that would point a stack process at another server or profile.
INHERITED_OUT = (
    "PREFECT_API_URL",
    "PREFECT_API_KEY",
    "PREFECT_API_AUTH_STRING",
    "PREFECT_PROFILE",
    "PREFECT_HOME",
    "MLFLOW_TRACKING_URI",
    "MLFLOW_TRACKING_USERNAME",
    "MLFLOW_TRACKING_PASSWORD",
    "PREFECT_API_DATABASE_CONNECTION_URL",
    "PRICECAST_STORE",
)

#: Credentials for `--auth` come from these variables, or from a file readable only by its owner.
USER_ENV, PASSWORD_ENV = "PRICECAST_STACK_USER", "PRICECAST_STACK_PASSWORD"


def with_driver(url: str, driver: str | None, database: str | None = None) -> str:
    """A PostgreSQL URL with the SQLAlchemy driver and the database swapped.

    `asyncpg` for Prefect, `psycopg` for MLflow (plain `postgresql://` means psycopg2 to SQLAlchemy,
    which is not installed); `None` gives the libpq form psycopg connects with.
    """
    parts = urlsplit(url)
    if parts.scheme.split("+")[0] not in ("postgresql", "postgres"):
        raise StackError(f"{redact(url)} is not a PostgreSQL URL (expected postgresql://user@host:port/database)")
    path = f"/{database}" if database is not None else parts.path
    return urlunsplit((f"postgresql+{driver}" if driver else "postgresql", parts.netloc, path, parts.query, ""))


def database_names(prefix: str) -> dict[str, str]:
    """The databases a stack uses, by role."""
    return {role: f"{prefix}_{role}" for role in ("prefect", "mlflow", "mlflow_auth", "store")}


def basic_auth_header(user: str, password: str) -> str:
    """`Authorization` header value for HTTP basic auth (MLflow, and Prefect's auth string)."""
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@dataclass(frozen=True)
class Credentials:
    user: str
    password: str

    def __repr__(self) -> str:  # never in a log or a traceback
        return f"Credentials(user={self.user!r}, password=***)"

    def header(self) -> dict[str, str]:
        return {"Authorization": basic_auth_header(self.user, self.password)}


def read_credentials(path: Path | None, env: Mapping[str, str] = os.environ) -> Credentials | None:
    """Credentials for `--auth`: PRICECAST_STACK_USER/PASSWORD, else a file holding `user:password`.

    Raises:
        StackError: the file can be read by others than its owner, or holds no `user:password`.
    """
    if env.get(PASSWORD_ENV):
        return Credentials(env.get(USER_ENV) or "admin", env[PASSWORD_ENV])
    if path is None or not Path(path).exists():
        return None
    mode = Path(path).stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise StackError(f"{path} is readable by others (mode {stat.S_IMODE(mode):o}); run: chmod 600 {path}")
    user, sep, password = Path(path).read_text().strip().partition(":")
    if not sep or not user or not password:
        raise StackError(f"{path} should hold one line 'user:password'")
    return Credentials(user, password)


def write_private(path: Path, text: str) -> None:
    """A file only its owner can read, created so (no moment where it is world-readable)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.chmod(path, 0o600)


@dataclass
class StackConfig:
    """What `stack up` starts. Every field has a flag and an environment variable in the CLI."""

    state_dir: Path
    pg_url: str = "postgresql://postgres@127.0.0.1:5432/postgres"
    prefix: str = "pricecast"
    host: str = "127.0.0.1"
    prefect_port: int = 4200  # 0: a free port
    mlflow_port: int = 5000
    workers: int = 2
    pool: str = "pricecast"
    auth: bool = False
    credentials_file: Path | None = None  # default <state>/secrets/credentials (made when missing)
    heartbeat: int = 30  # seconds between flow-run heartbeats; 2.5 of them missed = Crashed
    workdir: Path = PROJECT_ROOT  # the workers' current folder: where flow entrypoints resolve
    bin_dir: Path = field(default_factory=lambda: Path(sys.executable).parent)
    timeout: float = 180.0


@dataclass
class Service:
    """One process group to start."""

    name: str
    argv: list[str]
    env: dict[str, str]
    health_url: str | None = None
    cwd: str | None = None


def urls(config: StackConfig, ports: Mapping[str, int]) -> dict[str, str]:
    """The addresses clients use: Prefect's API, MLflow, and the shared price store."""
    return {
        "prefect": f"http://{config.host}:{ports['prefect']}/api",
        "mlflow": f"http://{config.host}:{ports['mlflow']}",
        "store": with_driver(config.pg_url, None, database_names(config.prefix)["store"]),
    }


def client_env(config: StackConfig, ports: Mapping[str, int], credentials: Credentials | None) -> dict[str, str]:
    """What a worker (and `pricecast deploy` / `trigger`) needs to use the stack."""
    where = urls(config, ports)
    env = go_offline({"PREFECT_HOME": str(Path(config.state_dir) / "prefect-home")})
    env |= {
        "PREFECT_API_URL": where["prefect"],
        "MLFLOW_TRACKING_URI": where["mlflow"],
        "PRICECAST_STORE": where["store"],
    }
    env["PREFECT_FLOWS_HEARTBEAT_FREQUENCY"] = str(config.heartbeat)
    if credentials:
        env |= {
            "PREFECT_API_AUTH_STRING": f"{credentials.user}:{credentials.password}",
            "MLFLOW_TRACKING_USERNAME": credentials.user,
            "MLFLOW_TRACKING_PASSWORD": credentials.password,
        }
    return env


def plan(config: StackConfig, ports: Mapping[str, int], credentials: Credentials | None) -> list[Service]:
    """The processes of a stack, in start order, with their environments."""
    names, state, where = database_names(config.prefix), Path(config.state_dir), urls(config, ports)
    base = go_offline({"PREFECT_HOME": str(state / "prefect-home")})
    server_env = base | {
        "PREFECT_API_DATABASE_CONNECTION_URL": with_driver(config.pg_url, "asyncpg", names["prefect"]),
        "PREFECT_UI_API_URL": where["prefect"],  # the browser's API address; else the UI calls port 4200
        "PREFECT_SERVER_UI_SHOW_PROMOTIONAL_CONTENT": "false",
    }
    mlflow_env = base | {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}  # its GenAI job runner: not needed
    mlflow_argv = [str(config.bin_dir / "mlflow"), "server", "--host", config.host, "--port", str(ports["mlflow"])]
    mlflow_argv += ["--backend-store-uri", with_driver(config.pg_url, "psycopg", names["mlflow"])]
    mlflow_argv += ["--artifacts-destination", str((state / "artifacts").resolve()), "--serve-artifacts"]
    mlflow_argv += ["--workers", "1"]  # MLflow's default, 4 uvicorn workers, is about 4 x 190 MB
    if credentials:
        server_env["PREFECT_SERVER_API_AUTH_STRING"] = f"{credentials.user}:{credentials.password}"
        mlflow_argv += ["--app-name", "basic-auth"]
        mlflow_env |= {
            "MLFLOW_AUTH_CONFIG_PATH": str(state / "secrets" / "mlflow_auth.ini"),
            "MLFLOW_FLASK_SERVER_SECRET_KEY_FILE": str(state / "secrets" / "flask_key"),  # read by spawn()
        }
    prefect = [str(config.bin_dir / "prefect")]
    services = [
        Service(
            "prefect-server",
            [*prefect, "server", "start", "--host", config.host, "--port", str(ports["prefect"]), "--analytics-off"],
            server_env,
            f"{where['prefect']}/health",
        ),
        Service("mlflow-server", mlflow_argv, mlflow_env, f"{where['mlflow']}/health"),
    ]
    worker_env = client_env(config, ports, credentials)
    for i in range(1, config.workers + 1):
        argv = [*prefect, "worker", "start", "--pool", config.pool, "--type", "process"]
        argv += ["--name", f"{config.prefix}-worker-{i}", "--install-policy", "never"]
        services.append(Service(f"worker-{i}", argv, worker_env, cwd=str(config.workdir)))
    return services


#: How long the MLflow server trusts a checked user and password (MLflow's `auth_cache_ttl_seconds`, off by
#: default). Without it every request pays PBKDF2 two or three times over (authentication, admin check):
#: half of the team MLflow server's CPU in the test suite's profile. One server worker, so a password
#: changed through MLflow's API takes effect at once; one changed in its database directly within this time.
AUTH_CACHE_SECONDS = 60


def mlflow_auth_ini(credentials: Credentials, database_uri: str) -> str:
    """MLflow's basic-auth config (MLFLOW_AUTH_CONFIG_PATH): the admin's credentials live here, not in argv."""
    return (
        f"[mlflow]\ndefault_permission = READ\ndatabase_uri = {database_uri}\n"
        f"admin_username = {credentials.user}\nadmin_password = {credentials.password}\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
        f"auth_cache_ttl_seconds = {AUTH_CACHE_SECONDS}\n"
    )


def zombie_automation(pool: str, heartbeat: int) -> dict:
    """A Prefect automation that marks a flow run Crashed when its heartbeats stop (its machine or worker died).

    Prefect's own recipe: flow runs beat every `heartbeat` seconds (PREFECT_FLOWS_HEARTBEAT_FREQUENCY);
    two and a half beats missed, with no final state meanwhile, and the run is Crashed.
    """
    ends = ["Completed", "Failed", "Cancelled", "Crashed"]
    return {
        "name": f"crash-zombie-flow-runs-{pool}",
        "description": "A flow run whose heartbeats stop is Crashed (its worker or machine died).",
        "trigger": {
            "type": "event",
            "posture": "Proactive",
            "after": ["prefect.flow-run.heartbeat"],
            "expect": ["prefect.flow-run.heartbeat", *(f"prefect.flow-run.{s}" for s in ends)],
            "match": {"prefect.resource.id": ["prefect.flow-run.*"]},
            "for_each": ["prefect.resource.id"],
            "within": int(heartbeat * 2.5),
            "threshold": 1,
        },
        "actions": [{"type": "change-flow-run-state", "state": "CRASHED", "message": "no heartbeat: its worker died"}],
    }
