"""The warm process (see `pricecast.cli.warm`): `python -m pricecast.cli.warm_process <home> <api url>`, started
by `pricecast server start` beside the home's Prefect server and stopped with it."""

from __future__ import annotations

import atexit
import json
import os
import signal
import socket
import sys
import threading
import time
import traceback
from pathlib import Path

from pricecast.cli import main
from pricecast.cli.warm import private_folder, settings
from pricecast.prefect_server import warm_socket
from pricecast.process import curl_before_tensorflow, fewer_collections, go_offline

#: The modules a command that runs flows loads, imported once by the warm process.
PRELOAD = (
    "flows.train",
    "flows.retrain",
    "flows.forecast",
    "flows.backtest",
    "flows.tune",
    "pricecast.cli.commands",
    "pricecast.report",
    "keras",  # and TensorFlow with it: imported, never run here (no op, so no thread pool to lose in a fork)
    "bokeh_sampledata.stocks",
    "prefect.client.orchestration",
    "prefect.flow_engine",
    "prefect.task_engine",
    "prefect.utilities.visualization",
    "mlflow.store.tracking.sqlalchemy_store",
    "mlflow.store.model_registry.sqlalchemy_store",
    "mlflow.tracing.processor",
    "mlflow.tracing.export",
    "mlflow.models.display_utils",
    "sqlalchemy.dialects.sqlite",
    "alembic.command",
    "git",
    "matplotlib.pyplot",
    "matplotlib.backends.backend_agg",
    "pyarrow.pandas_compat",
)


def serve(home: Path, url: str) -> bool:
    """Import what commands load, then fork a child for each command handed over, until the server moves
    (False: this process ends) or a loaded module changes (True: it starts again, importing the new code)."""
    go_offline()
    fewer_collections()
    curl_before_tensorflow()  # PRELOAD brings TensorFlow, and a fetch may follow in any command
    os.environ["PREFECT_API_URL"] = url
    for name in PRELOAD:
        __import__(name)
    mine, loaded = settings(dict(os.environ)), _loaded_files()
    path = warm_socket(home)
    if not private_folder(path.parent):
        sys.exit(f"{path.parent} is not this user's alone (mode {path.parent.stat().st_mode & 0o777:o})")
    path.unlink(missing_ok=True)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.listen(16)
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
    signal.signal(signal.SIGCHLD, lambda signum, frame: _reap())
    _log(f"ready on {path} ({len(loaded)} modules loaded)")
    try:
        return _accept(listener, url, mine, loaded)
    finally:  # never in a child: it ends in os._exit
        path.unlink(missing_ok=True)


def _accept(listener: socket.socket, url: str, mine: dict[str, str], loaded: dict[str, int]) -> bool:
    while True:
        conn, _ = listener.accept()
        try:
            request, fds = _receive(conn)
        except (OSError, ValueError) as exc:  # not a command's request (or one that stalled)
            _log(f"bad request: {exc}")
            conn.close()
            continue
        declined = _declined(request, mine, url, loaded)
        if declined:
            reason, then = declined
            _log(f"declined {request['argv']}: {reason}")
            conn.sendall(f"no {reason}\n".encode())
            conn.close()
            _close(fds)
            if then != "serve on":
                return then == "restart"  # out of date: start again with the new code, or end
            continue
        pid = os.fork()
        if pid == 0:
            listener.close()
            _child(conn, request, fds)
        _log(f"{pid}: pricecast {' '.join(request['argv'])} (in {request['cwd']})")
        conn.close()
        _close(fds)


def _receive(conn: socket.socket, timeout: float = 10) -> tuple[dict, list[int]]:
    """A request: its header line with the caller's three fds, then its JSON (argv, cwd, env, url)."""
    conn.settimeout(timeout)
    header, fds, _, _ = socket.recv_fds(conn, 32, 3)
    try:
        size, _, body = header.partition(b"\n")
        while len(body) < int(size):
            chunk = conn.recv(int(size) - len(body))
            if not chunk:
                raise ValueError("the request ended early")
            body += chunk
        request = json.loads(body)
        if len(fds) != 3 or not isinstance(request, dict) or not {"argv", "cwd", "env", "url"} <= request.keys():
            raise ValueError(f"expected 3 file descriptors and argv, cwd, env, url; got {len(fds)} and {body[:80]!r}")
    except (OSError, ValueError):
        _close(fds)
        raise
    conn.settimeout(None)
    return request, fds


def _close(fds: list[int]) -> None:
    for fd in fds:
        os.close(fd)


def _declined(request: dict, mine: dict[str, str], url: str, loaded: dict[str, int]) -> tuple[str, str] | None:
    """Why the command should run itself, and what this process does then: "end", "restart" or "serve on"."""
    if request["url"] != url:
        return f"the server is at {request['url']} now", "end"
    changed = [f for f, mtime in loaded.items() if _mtime(f) != mtime]
    if changed:
        return f"{len(changed)} loaded files changed since it started, {changed[0]} among them", "restart"
    if request.get("python") != sys.executable:
        return f"another Python, {request.get('python')}", "serve on"
    if settings(request["env"]) != mine:
        return "other settings", "serve on"
    return None


def _child(conn: socket.socket, request: dict, fds: list[int]) -> None:
    """In the forked child: become the caller's command, run it, send its exit code, exit. A caller that goes
    away first (killed) stops it as SIGTERM would."""
    for sig in (signal.SIGCHLD, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    os.setsid()  # its own group: a signal for the warm process is not one for the commands it runs
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
        os.close(fd)
    sys.stdout.reconfigure(line_buffering=True)
    os.environ.clear()
    os.environ.update(request["env"], PREFECT_API_URL=request["url"])
    sys.argv = ["pricecast", *request["argv"]]
    code = 1
    try:
        os.chdir(request["cwd"])
        conn.sendall(f"pid {os.getpid()}\n".encode())
        threading.Thread(target=_stop_without_caller, args=(conn,), daemon=True).start()
        code = main(request["argv"])
    except KeyboardInterrupt:
        code = 128 + signal.SIGINT
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:  # noqa: BLE001 - an unexpected error shows its traceback, on the caller's terminal
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        atexit._run_exitfuncs()
        try:
            conn.sendall(f"exit {code}\n".encode())
        finally:
            os._exit(code)


def _stop_without_caller(conn: socket.socket) -> None:
    """The caller sends nothing after its request: this returns when it has gone (or got the exit code)."""
    try:
        conn.recv(1)
    except OSError:
        pass
    os.kill(os.getpid(), signal.SIGTERM)


def _reap() -> None:
    try:
        while os.waitpid(-1, os.WNOHANG)[0]:
            pass
    except ChildProcessError:
        pass


def _loaded_files() -> dict[str, int]:
    files = {getattr(m, "__file__", None) for m in list(sys.modules.values())}
    return {f: _mtime(f) for f in files if f}


def _mtime(file: str) -> int:
    try:
        return os.stat(file).st_mtime_ns
    except OSError:
        return -1


def _log(message: str) -> None:
    print(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {message}", flush=True)


if __name__ == "__main__":
    if serve(Path(sys.argv[1]), sys.argv[2]):
        _log("starting again: a loaded module changed")
        os.execv(sys.executable, [sys.executable, "-m", "pricecast.cli.warm_process", *sys.argv[1:]])  # same pid
    sys.stdout.flush()
    os._exit(0)  # without unloading thousands of modules first
