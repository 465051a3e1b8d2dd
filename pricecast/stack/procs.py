"""The stack's processes: started in process groups of their own, found again by pid files, stopped whole.

`<state>/pids/<name>.pid` holds "<pid> <start time>"; `stop` signals only a process whose pid *and*
start time are the recorded ones, so a recycled pid is never killed. Prefect's process worker starts
each flow run in a session of its own, so a service's processes are its group and every descendant.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping
from pathlib import Path

from pricecast.errors import StackError
from pricecast.stack.plan import INHERITED_OUT, Service


def start_time(pid: int) -> str | None:
    """The kernel's start time of a live process (field 22 of /proc/<pid>/stat); None when gone or a zombie."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return None if fields[0] in ("Z", "X") else fields[19]


def process_table(zombies: bool = False) -> dict[int, tuple[int, int]]:
    """Every process: pid -> (parent pid, process group); those exited but not yet reaped only with `zombies`."""
    table = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if zombies or fields[0] not in ("Z", "X"):
                table[int(entry.name)] = (int(fields[1]), int(fields[2]))
    return table


def tree(table: Mapping[int, tuple[int, int]], roots: Iterable[int] = (), groups: Iterable[int] = ()) -> set[int]:
    """The roots, every member of the process groups, and all their descendants (in sessions of their own too)."""
    groups = set(groups)
    members = set(roots) | {pid for pid, (_, group) in table.items() if group in groups}
    while children := {pid for pid, (ppid, _) in table.items() if ppid in members} - members:
        members |= children
    return members


def group_pids(pgid: int) -> list[int]:
    """Live processes of a service: its process group, and every descendant of those in sessions of their own."""
    return sorted(tree(process_table(), groups=[pgid]))


def memory_mb(pids: Iterable[int]) -> float:
    """Proportional set size (shared pages split between their sharers) of processes, in MB."""
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


def spawn(service: Service, state_dir: Path, inherit: Mapping[str, str] = os.environ) -> int:
    """Start a service in a process group of its own, output to its log; record `pid start-time`."""
    logs, pids = Path(state_dir) / "logs", Path(state_dir) / "pids"
    logs.mkdir(parents=True, exist_ok=True)
    pids.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in inherit.items() if k not in INHERITED_OUT} | service.env
    if key_file := env.pop("MLFLOW_FLASK_SERVER_SECRET_KEY_FILE", None):
        env["MLFLOW_FLASK_SERVER_SECRET_KEY"] = Path(key_file).read_text().strip()
    with open(logs / f"{service.name}.log", "ab") as log:
        proc = subprocess.Popen(
            service.argv,
            env=env,
            cwd=service.cwd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_default_sigint,
        )
    (pids / f"{service.name}.pid").write_text(f"{proc.pid} {start_time(proc.pid)}\n")
    return proc.pid


def _default_sigint() -> None:
    """In the child, before it runs: Ctrl+C's default back. A background job (`make stack &`, nohup, a CI step)
    starts with SIGINT ignored and its children inherit that; Prefect's worker stops on SIGTERM by sending
    itself SIGINT, so with SIGINT ignored it never stopped and `down` killed it a minute later."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def recorded(state_dir: Path) -> dict[str, tuple[int, bool]]:
    """Each service's recorded pid, and whether that very process (same start time) still runs."""
    out = {}
    for pid_file in sorted((Path(state_dir) / "pids").glob("*.pid")):
        pid, started = pid_file.read_text().split()
        out[pid_file.stem] = (int(pid), start_time(int(pid)) == started)
    return out


def _signal(pids: Iterable[int], sig: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def stop(state_dir: Path, timeout: float = 20.0, names: Iterable[str] | None = None, sig: int = signal.SIGTERM) -> dict:
    """Stop what `up` started (or the services `names`): `sig` to each group and its descendants, SIGKILL
    after `timeout`. The workers first, and only once they have gone the servers: a worker and its flow
    runs, stopping, still send the Prefect server their last states and logs. Returns what happened once
    every process signalled has gone.

    The processes are those of each group when it is signalled (a descendant whose parent dies moves to
    init and out of the tree), and those it has when it is killed.
    """
    found = {n: v for n, v in recorded(state_dir).items() if names is None or n in names}
    workers = [n for n in found if n.startswith("worker")]
    result = {}
    for phase in (workers, [n for n in found if n not in workers]):
        result |= _stop_together({n: found[n] for n in phase}, timeout, sig)
    for name in found:
        (Path(state_dir) / "pids" / f"{name}.pid").unlink(missing_ok=True)
    return result


def _stop_together(found: Mapping[str, tuple[int, bool]], timeout: float, sig: int) -> dict:
    """`sig` to every group at once, SIGKILL to what is left after `timeout`; returns once all have gone."""
    result, live = {}, {}
    for name, (pid, alive) in found.items():
        if alive:
            live[name] = group_pids(pid)
            _signal(live[name], sig)
        result[name] = "stopped" if alive else "not running"
    _wait_gone(live, timeout)
    live = {name: sorted({*pids, *group_pids(found[name][0])}) for name, pids in _alive(live).items()}
    for name, pids in live.items():
        _signal(pids, signal.SIGKILL)
        result[name] = "killed"
    _wait_gone(live, 10)  # a killed process takes a moment to go (a large one frees its memory first)
    return result


def _alive(groups: Mapping[str, list[int]]) -> dict[str, list[int]]:
    """The groups with a process still alive (not a zombie)."""
    return {name: pids for name, pids in groups.items() if any(start_time(p) is not None for p in pids)}


def _wait_gone(groups: Mapping[str, list[int]], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while _alive(groups) and time.monotonic() < deadline:
        time.sleep(0.2)


def http_status(url: str, headers: Mapping[str, str] | None = None, body: bytes | None = None) -> int | None:
    """The HTTP status a GET (or a JSON POST when `body` is given) gets; None when nothing answers."""
    request = urllib.request.Request(
        url,
        data=body,
        headers={"Content-Type": "application/json", **(headers or {})},
        method="POST" if body else "GET",
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except (OSError, ValueError):
        return None


def last_line(state_dir: Path, name: str) -> str:
    try:
        text = (Path(state_dir) / "logs" / f"{name}.log").read_text(errors="replace")
    except OSError:
        return "(no log)"
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "(empty log)"


def wait_healthy(services: Mapping[str, tuple[str, int]], state_dir: Path, headers: Mapping[str, str], timeout: float):
    """Wait until each `name: (health_url, pid)` answers 200; seconds each took.

    Raises:
        StackError: a process exits first, or time runs out; names the log to read and its last line.
    """
    start, waiting, took = time.monotonic(), dict(services), {}
    while waiting:
        for name, (url, pid) in list(waiting.items()):
            if http_status(url, headers) == 200:
                took[name] = round(time.monotonic() - start, 1)
                del waiting[name]
            elif start_time(pid) is None:
                log = Path(state_dir) / "logs" / f"{name}.log"
                raise StackError(f"{name} exited while starting: {last_line(state_dir, name)} (log: {log})")
        if waiting and time.monotonic() - start > timeout:
            name = next(iter(waiting))
            raise StackError(f"{name} did not answer within {timeout:g} s: {last_line(state_dir, name)}")
        time.sleep(0.3)
    return took


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on now (the OS picks it)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def port_taken(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


#: How many times a server is started when a port chosen free for it was bound by another process first.
PORT_TRIES = 3


def lost_its_port(log: Path, offset: int) -> bool:
    """Whether a server's log, from `offset` on, says its port was in use (`[Errno 98] ... address already in use`)."""
    with open(log, "rb") as handle:
        handle.seek(offset)
        return b"address already in use" in handle.read().lower()
