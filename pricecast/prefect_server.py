"""A Prefect server on 127.0.0.1 run as a process of its own: for `pricecast serve`, or long-lived for a home.

A long-lived server (`pricecast server start`) keeps its pid, address and log under `<home>/prefect/`;
every command uses it when it answers, which saves the temporary server's start on each run. Without
one, a command that runs flows starts Prefect's temporary server itself, first thing, so that the
server starts while the command reads its input and imports Prefect, MLflow and TensorFlow.
Nothing here imports Prefect: each server is its own process.
"""

from __future__ import annotations

import atexit
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from pricecast.config import Paths, go_offline
from pricecast.errors import StackError
from pricecast.stack.procs import free_port


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

    Raises:
        RuntimeError: the server exited (is the port taken?) or did not answer within `timeout`.
    """
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
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"prefect server exited with code {server.returncode} (is port {port} taken?)")
        if answers(url, timeout=2):
            return server
        time.sleep(0.5)
    server.terminate()
    raise RuntimeError(f"prefect server did not answer at {url} within {timeout:.0f} s")


class LocalServer:
    """The long-lived Prefect server of one home: `<home>/prefect/` holds its database, pid, address and log."""

    def __init__(self, paths: Paths) -> None:
        self.folder = paths.root / "prefect"
        self.pid_file, self.url_file, self.log = (self.folder / n for n in ("server.pid", "server.url", "server.log"))

    def url(self) -> str | None:
        """The server's API address when its process is alive and answers, else None."""
        try:
            pid, url = int(self.pid_file.read_text()), self.url_file.read_text().strip()
            os.kill(pid, 0)
        except (OSError, ValueError):
            return None
        return url if answers(url) else None

    def start(self, port: int | None = None) -> str:
        """Start it in the background (unless it runs already); returns its API address."""
        running = self.url()
        if running:
            return running
        self.folder.mkdir(parents=True, exist_ok=True)
        port = port or free_port()
        env = {**os.environ, "PREFECT_HOME": str(self.folder)}
        env.pop("PREFECT_API_URL", None)
        server = start(port, env, log=self.log)
        self.pid_file.write_text(f"{server.pid}\n")
        self.url_file.write_text(f"http://127.0.0.1:{port}/api\n")
        return self.url_file.read_text().strip()

    def stop(self, timeout: float = 30) -> bool:
        """Stop it (SIGTERM to its process group, SIGKILL after `timeout`); False when none was running."""
        try:
            pid = int(self.pid_file.read_text())
            os.killpg(pid, signal.SIGTERM)
        except (OSError, ValueError):
            self.pid_file.unlink(missing_ok=True)
            return False
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.2)
        else:
            os.killpg(pid, signal.SIGKILL)
        self.pid_file.unlink(missing_ok=True)
        self.url_file.unlink(missing_ok=True)
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


def _prefect_api_set() -> bool:
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
    if _prefect_api_set():
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
