"""A Prefect server on 127.0.0.1 run as a process of its own: for `pricecast serve`, or long-lived for a home.

A long-lived server (`pricecast server start`) keeps its pid, address and log under `<home>/prefect/`;
every command uses it when it answers, which saves the temporary server's start on each run.
Nothing here imports Prefect: the server is its own process (`python -m prefect server start`).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from pricecast.config import Paths, go_offline
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


def use_local_server(paths: Paths) -> str | None:
    """Point Prefect at the home's long-lived server when no PREFECT_API_URL is set and it answers.

    Returns the address used, or None (Prefect then starts its temporary server, as without this).
    """
    if os.environ.get("PREFECT_API_URL"):
        return None
    url = LocalServer(paths).url()
    if url:
        os.environ["PREFECT_API_URL"] = url
    return url
