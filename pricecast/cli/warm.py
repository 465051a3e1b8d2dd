"""A warm process beside a home's long-lived Prefect server: Prefect, MLflow and the flows imported once, and a
child forked for each command that runs flows.

`pricecast server start` starts it; a command of that home (train, retrain, forecast, backtest, tune) hands
itself over: it sends its arguments, working directory and environment, and its standard input, output and
error as file descriptors, over a Unix socket only its user can open. The warm process forks; the child runs
the command on the caller's terminal and sends back its exit code, and the caller passes its signals on to
the child (Ctrl+C, SIGTERM). The warm process declines, and the command runs itself as it would without it,
when the command's environment differs from its own in anything read at import (`SETTINGS`) or its
interpreter is another (another virtual environment), when the
command finds another server address (then it ends), or when a module it has loaded changed on disk since it
started (an upgrade, an edit): then it starts again in place, importing the new code, in a few seconds.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
from pathlib import Path

from pricecast.config import Paths
from pricecast.prefect_server import LocalServer, api_url_set, warm_socket

#: Environment read when Prefect, MLflow, TensorFlow or Python start: a command whose values differ runs itself.
SETTINGS = ("PREFECT_", "MLFLOW_", "PRICECAST_", "TF_", "KERAS_", "OMP_", "MPL", "PYTHON", "PATH", "VIRTUAL_ENV")


def private_folder(folder: Path) -> bool:
    """Create `folder` for this user only; False when it exists and is not (another user's, or open to others)."""
    folder.mkdir(mode=0o700, exist_ok=True)
    info = folder.stat()
    return info.st_uid == os.getuid() and info.st_mode & 0o077 == 0


def settings(env: dict[str, str]) -> dict[str, str]:
    """What of `env` the warm process's imports have read (the server address is the caller's to say)."""
    return {k: v for k, v in env.items() if k.startswith(SETTINGS) and k != "PREFECT_API_URL"}


def hand_over(paths: Paths, argv: list[str]) -> int | None:
    """Run `pricecast <argv>` in the home's warm process; its exit code, or None when there is none to use
    (no long-lived server, PREFECT_API_URL set, PRICECAST_WARM=0) or it declines: the command then runs here."""
    path = warm_socket(paths.root)
    if os.environ.get("PRICECAST_WARM") == "0" or api_url_set() or not path.exists():
        return None
    url = LocalServer(paths).url()
    if not url or not private_folder(path.parent):
        return None
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        conn.connect(str(path))
        request = {"argv": argv, "cwd": os.getcwd(), "env": dict(os.environ), "url": url, "python": sys.executable}
        request = json.dumps(request).encode()
        socket.send_fds(conn, [f"{len(request)}\n".encode()], [0, 1, 2])
        conn.sendall(request)
        replies = conn.makefile("r")
        first = replies.readline().split()
    except OSError:
        conn.close()
        return None
    if first[:1] != ["pid"]:
        conn.close()
        return None
    child = int(first[1])
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(sig) is not signal.SIG_IGN:  # a background job ignores SIGINT: so does its command
            signal.signal(sig, lambda signum, frame: _signal(child, signum))
    for line in replies:
        if line.startswith("exit "):
            return int(line.split()[1])
    print(f"pricecast: the command's process ({child}) ended without an exit code; killed?", file=sys.stderr)
    return 1


def _signal(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass
