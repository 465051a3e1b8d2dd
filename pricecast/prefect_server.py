"""A Prefect server on 127.0.0.1 run as a process of its own: for `pricecast serve`, or long-lived for a home.

A long-lived server (`pricecast server start`) keeps its pid, address and log under `<home>/prefect/`;
every command uses it when it answers, which saves the temporary server's start on each run. Without
one, a command that runs flows starts Prefect's temporary server itself, first thing, so that the
server starts while the command reads its input and imports Prefect, MLflow and TensorFlow.
Nothing here imports Prefect: each server is its own process.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import itertools
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from pricecast.config import Paths
from pricecast.errors import StackError
from pricecast.process import go_offline
from pricecast.stack.procs import PORT_TRIES, free_port, lost_its_port, start_time
from pricecast.templates import default_prefect_database, new_prefect_database


def warm_socket(home: Path) -> Path:
    """The socket of a home's warm process, in a folder of this user's (a home's path may be longer than a
    socket address's 107 bytes)."""
    digest = hashlib.sha256(str(home.resolve()).encode()).hexdigest()[:20]
    return Path(tempfile.gettempdir()) / f"pricecast-{os.getuid()}" / f"{digest}.sock"


def answers(api_url: str, timeout: float = 1.0) -> bool:
    """Whether a Prefect API answers its health check within `timeout` seconds."""
    try:
        with urllib.request.urlopen(f"{api_url}/health", timeout=timeout):
            return True
    except OSError:
        return False


def start(port: int, env: dict[str, str], log: Path | None = None, timeout: float = 120) -> subprocess.Popen:
    """Start `prefect server start` on 127.0.0.1:`port` and wait until its API answers.

    With a `log`, the server writes there and runs in a session of its own (it outlives this process).
    A new default database (`$PREFECT_HOME/prefect.db`) is a copy of an empty one (`new_prefect_database`).

    Raises:
        StackError: the server exited (is the port taken?) or did not answer within `timeout`; names its log.
    """
    database = default_prefect_database(env)
    if database and not database.exists():
        database.parent.mkdir(parents=True, exist_ok=True)
        new_prefect_database(database)
    url = f"http://127.0.0.1:{port}/api"
    command = [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)]
    output = open(log, "ab") if log else None  # noqa: SIM115 - handed to the child, closed below
    try:
        server = subprocess.Popen(
            command,
            env=go_offline({**env, "PREFECT_UI_API_URL": url}),
            stdout=output,
            stderr=subprocess.STDOUT if output else None,
            start_new_session=log is not None,
        )
    finally:
        if output:
            output.close()
    deadline, where = time.monotonic() + timeout, f" (log {log})" if log else ""
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise StackError(f"the Prefect server exited with code {server.returncode}: is port {port} taken?{where}")
        if answers(url, timeout=2):
            return server
        time.sleep(0.5)
    server.terminate()
    raise StackError(f"the Prefect server did not answer at {url} within {timeout:.0f} s{where}")


class LocalServer:
    """The long-lived Prefect server of one home: `<home>/prefect/` holds its database, pid, address and log."""

    def __init__(self, paths: Paths) -> None:
        self.home, self.folder = paths.root, paths.root / "prefect"
        self.pid_file, self.url_file, self.log = (self.folder / n for n in ("server.pid", "server.url", "server.log"))
        self.warm_pid, self.warm_log = self.folder / "warm.pid", self.folder / "warm.log"

    def url(self) -> str | None:
        """The server's API address when its process is alive and answers, else None."""
        try:
            url = self.url_file.read_text().strip()
        except OSError:
            return None
        return url if _alive(self.pid_file) and answers(url) else None

    def start(self, port: int | None = None) -> str:
        """Start it and its warm process in the background (each unless it runs already); returns its API address."""
        running = self.url()
        if running:
            if not self.warm():  # it exited: a module it had loaded changed
                self._wait_warm(self._start_warm(running))
            return running
        self.folder.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "PREFECT_HOME": str(self.folder)}
        env.pop("PREFECT_API_URL", None)
        for attempt in itertools.count(1):  # a port chosen free may be bound by another process first: choose again
            chosen = port or free_port()
            url = f"http://127.0.0.1:{chosen}/api"
            _stop_group(self.warm_pid, timeout=10)
            warm = self._start_warm(url)  # its imports overlap the server's start
            seen = self.log.stat().st_size if self.log.exists() else 0
            try:
                server = start(chosen, env, log=self.log)
                break
            except StackError:
                _stop_group(self.warm_pid, timeout=10)
                if port or attempt == PORT_TRIES or not lost_its_port(self.log, seen):
                    raise
        self.pid_file.write_text(f"{server.pid}\n")
        self.url_file.write_text(f"{url}\n")
        self._wait_warm(warm)
        return url

    def _start_warm(self, url: str) -> subprocess.Popen:
        """The warm process (`pricecast.cli.warm_process`) that this home's commands hand themselves over to."""
        warm_socket(self.home).unlink(missing_ok=True)  # a killed one's: not to be waited for
        with open(self.warm_log, "ab") as log:
            command = [sys.executable, "-m", "pricecast.cli.warm_process", str(self.home), url]
            warm = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.warm_pid.write_text(f"{warm.pid}\n")
        return warm

    def _wait_warm(self, warm: subprocess.Popen, timeout: float = 120) -> None:
        """Wait until the warm process listens (or has exited: its log says why; commands then run themselves)."""
        path, deadline = warm_socket(self.home), time.monotonic() + timeout
        while warm.poll() is None and not path.exists() and time.monotonic() < deadline:
            time.sleep(0.1)

    def warm(self) -> int | None:
        """The warm process's pid while it runs."""
        return _alive(self.warm_pid)

    def stop(self, timeout: float = 30) -> bool:
        """Stop it and its warm process (SIGTERM to each process group, SIGKILL after `timeout`); False when no
        server was running."""
        _stop_group(self.warm_pid, timeout)
        stopped = _stop_group(self.pid_file, timeout)
        self.url_file.unlink(missing_ok=True)
        return stopped


def _alive(pid_file: Path) -> int | None:
    """The pid in `pid_file` while that process runs (a zombie no init has reaped yet does not)."""
    try:
        pid = int(pid_file.read_text())
    except (OSError, ValueError):
        return None
    return pid if start_time(pid) is not None else None


def _stop_group(pid_file: Path, timeout: float) -> bool:
    """SIGTERM to the process group led by the pid in `pid_file`, SIGKILL after `timeout`; False when none ran."""
    pid = _alive(pid_file)
    pid_file.unlink(missing_ok=True)
    if pid is None:
        return False
    with contextlib.suppress(ProcessLookupError):  # it may end on its own meanwhile
        os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while start_time(pid) is not None and time.monotonic() < deadline:
            time.sleep(0.1)
        if start_time(pid) is not None:
            os.killpg(pid, signal.SIGKILL)
    return True


class EarlyServer:
    """Prefect's temporary server for one command, started before the command's imports so that its start
    overlaps them; stopped when the process exits (after Prefect's own exit handlers), or at once when unused,
    and (Linux) when the process is killed.

    The same server Prefect starts by itself without an API address: uvicorn serving the API app, no UI,
    Prefect's default database, errors only on the terminal.
    """

    def __init__(self) -> None:
        port = free_port()
        self.url = f"http://127.0.0.1:{port}/api"
        command = [sys.executable, "-m", "uvicorn", "--factory", "prefect.server.api.server:create_app"]
        command += ["--host", "127.0.0.1", "--port", str(port), "--log-level", "error", "--lifespan", "on"]
        ephemeral = {"PREFECT_UI_ENABLED": "0", "PREFECT__SERVER_EPHEMERAL": "1", "PREFECT__SERVER_FINAL": "1"}
        env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
        self.process: subprocess.Popen | None = subprocess.Popen(
            command, env=go_offline({**env, **ephemeral}), preexec_fn=_die_with_parent
        )
        self.used = False
        atexit.register(self.stop)  # registered before Prefect is imported: runs after Prefect's own handlers

    def wait(self, timeout: float = 120) -> None:
        """Return once the API answers.

        Raises:
            StackError: the server exited or did not answer within `timeout` seconds.
        """
        self.used = True
        deadline = time.monotonic() + timeout
        while self.process and self.process.poll() is None and time.monotonic() < deadline:
            if answers(self.url, timeout=2):
                return
            time.sleep(0.1)
        code = self.process.poll() if self.process else None
        raise StackError(
            f"Prefect's temporary server did not answer at {self.url} within {timeout:.0f} s (exit code {code}); "
            "`pricecast server start` runs one that stays, or set PREFECT_API_URL"
        )

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


def _die_with_parent() -> None:
    """In the server's process before it runs (Linux): SIGTERM when the command's process dies, even killed."""
    if sys.platform == "linux":
        import ctypes

        ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


#: The early server of this process, if one was started.
_early: list[EarlyServer] = []


def api_url_set() -> bool:
    """Whether Prefect already has an API address: the environment, or settings loaded in this process (tests)."""
    if os.environ.get("PREFECT_API_URL"):
        return True
    if "prefect.settings" in sys.modules:
        from prefect.settings import get_current_settings

        return bool(get_current_settings().api.url)
    return False


def use_local_server(paths: Paths, start_early: bool = False) -> str | None:
    """Point Prefect at the home's long-lived server when no API address is set and it answers; else, with
    `start_early`, start Prefect's temporary server now (`wait_for_server` waits for it before a flow runs).

    Returns the address used, or None (Prefect then starts its temporary server itself, as without this).
    """
    if api_url_set():
        return None
    url = LocalServer(paths).url()
    if not url and start_early:
        _early.append(EarlyServer())
        url = _early[-1].url
    if url:
        os.environ["PREFECT_API_URL"] = url
    return url


def wait_for_server() -> None:
    """Wait for the temporary server `use_local_server` started early, if it did."""
    for server in _early:
        server.wait()


def stop_unused() -> None:
    """Stop an early server no flow waited for (the command ended before its flow: bad input, say)."""
    for server in [s for s in _early if not s.used]:
        server.stop()
        _early.remove(server)
        os.environ.pop("PREFECT_API_URL", None)
