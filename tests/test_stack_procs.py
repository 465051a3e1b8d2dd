"""The team stack without its servers: its plan (what runs, with which secrets where), credentials, ports
taken under it, and how `stack down` stops processes, on real processes standing in for the services
(`tests/test_stack.py` runs a real stack)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from pricecast.stack import procs, run
from pricecast.stack.plan import Credentials, Service, StackConfig, plan, read_credentials, write_private
from tests.team import PRICECAST, wait_for


def test_no_secret_on_a_command_line(tmp_path: Path) -> None:
    creds = Credentials("alice", "s3cret-pw")
    services = plan(StackConfig(tmp_path, workers=2, auth=True), {"prefect": 1, "mlflow": 2}, creds)
    assert [s.name for s in services] == ["prefect-server", "mlflow-server", "worker-1", "worker-2"]
    assert not [a for s in services for a in s.argv if "s3cret" in a]
    assert services[0].env["PREFECT_SERVER_API_AUTH_STRING"] == "alice:s3cret-pw"
    assert services[2].env["PREFECT_API_AUTH_STRING"] == "alice:s3cret-pw"
    assert services[2].env["MLFLOW_TRACKING_PASSWORD"] == "s3cret-pw"
    assert "--app-name" in services[1].argv and "MLFLOW_AUTH_CONFIG_PATH" in services[1].env
    assert all(s.env["PREFECT_SERVER_ANALYTICS_ENABLED"] == "false" for s in services)
    assert all("127.0.0.1" in " ".join(s.argv) for s in services[:2])
    assert "s3cret" not in repr(creds)


def test_the_mlflow_server_checks_a_password_once_a_minute_not_on_every_request(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlflow.server.auth.config import read_auth_config

    from pricecast.stack.plan import AUTH_CACHE_SECONDS, mlflow_auth_ini

    write_private(tmp_path / "auth.ini", mlflow_auth_ini(Credentials("alice", "pw"), "sqlite:///a.db"))
    monkeypatch.setenv("MLFLOW_AUTH_CONFIG_PATH", str(tmp_path / "auth.ini"))
    read = read_auth_config()  # MLflow's own reader, as its server reads the file
    assert (read.admin_username, read.admin_password) == ("alice", "pw")
    assert read.auth_cache_ttl_seconds == AUTH_CACHE_SECONDS > 0


def test_credentials_from_env_or_an_owner_only_file(tmp_path: Path) -> None:
    assert read_credentials(None, {"PRICECAST_STACK_PASSWORD": "p"}) == Credentials("admin", "p")
    f = tmp_path / "creds"
    f.write_text("bob:pw\n")
    f.chmod(0o644)
    with pytest.raises(Exception, match=r"readable by others \(mode 644\); run: chmod 600"):
        read_credentials(f, {})
    f.chmod(0o600)
    assert read_credentials(f, {}) == Credentials("bob", "pw")
    write_private(tmp_path / "s" / "new", "x")
    assert (tmp_path / "s" / "new").stat().st_mode & 0o077 == 0


def test_up_starts_its_servers_again_on_new_ports_when_a_port_it_chose_is_taken_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A port `up` chose free can be bound by another process before its server binds it (seen under the suite's
    load): both servers start again on new ports. A port given explicitly is never changed. Real processes, with
    Python's http.server in place of Prefect's and MLflow's (the same bind error, in a fraction of the time)."""
    from pricecast.errors import StackError
    from pricecast.stack.plan import Service

    (tmp_path / "www").mkdir()
    (tmp_path / "www" / "health").write_text("ok")
    holder = socket.socket()  # bound, not yet listening: `port_taken` finds nothing there, a server cannot bind it
    holder.bind(("127.0.0.1", 0))
    taken = holder.getsockname()[1]
    first, free_port = iter([taken]), procs.free_port
    monkeypatch.setattr(procs, "free_port", lambda host="127.0.0.1": next(first, None) or free_port(host))

    def servers(config: StackConfig, ports: dict[str, int], credentials: Credentials | None) -> list[Service]:
        www = ["--bind", "127.0.0.1", "--directory", str(tmp_path / "www")]
        argv = {k: [sys.executable, "-m", "http.server", str(port), *www] for k, port in ports.items()}
        return [
            Service(f"{k}-server", argv[k], {}, f"http://127.0.0.1:{ports[k]}/health") for k in ("prefect", "mlflow")
        ]

    monkeypatch.setattr(run, "plan", servers)
    state = tmp_path / "state"
    try:
        ports, took = run._start_servers(StackConfig(state, prefect_port=0, mlflow_port=0, timeout=30), state, None, {})
        assert taken not in ports.values() and set(took) == {"prefect-server", "mlflow-server"}
        assert "address already in use" in (state / "logs" / "prefect-server.log").read_text().lower()
        assert all(alive for _, alive in procs.recorded(state).values())
        procs.stop(state)
        given = StackConfig(state, prefect_port=taken, mlflow_port=0, timeout=30)
        with pytest.raises(StackError, match="prefect-server exited while starting"):
            run._start_servers(given, state, None, {})
    finally:
        procs.stop(state)
        holder.close()


def test_down_never_signals_a_recycled_pid(tmp_path: Path) -> None:
    other = subprocess.Popen(["sleep", "30"], start_new_session=True)
    try:
        (tmp_path / "pids").mkdir()
        (tmp_path / "pids" / "worker-1.pid").write_text(f"{other.pid} 1\n")  # start time 1: not this process
        assert procs.stop(tmp_path) == {"worker-1": "not running"}
        assert other.poll() is None
    finally:
        other.kill()
        other.wait()


def test_down_stops_the_servers_only_once_the_workers_have_gone(tmp_path: Path) -> None:
    """A worker still talks to the Prefect server while it stops: the server must outlive it."""
    server = procs.spawn(
        Service("prefect-server", [sys.executable, "-c", "import time; time.sleep(120)"], {}), tmp_path
    )
    on_term = (
        "import signal, sys, time\n"
        "def stop(*_):\n"
        "    time.sleep(1)  # a last request to the server\n"
        f"    state = open('/proc/{server}/stat').read().rsplit(')', 1)[1].split()[0]\n"
        f"    open({str(tmp_path / 'seen')!r}, 'w').write(state)\n"
        "    sys.exit(0)\n"
        "signal.signal(signal.SIGTERM, stop)\n"
        f"open({str(tmp_path / 'ready')!r}, 'w').close()\n"
        "time.sleep(120)\n"
    )
    procs.spawn(Service("worker-1", [sys.executable, "-c", on_term], {}), tmp_path)
    wait_for((tmp_path / "ready").exists, 30, "the worker did not start")
    assert procs.stop(tmp_path) == {"worker-1": "stopped", "prefect-server": "stopped"}
    assert (tmp_path / "seen").read_text() in ("S", "R")  # the server still ran when the worker left it
    assert procs.start_time(server) is None


def test_a_service_started_from_a_background_job_gets_sigint_back(tmp_path: Path) -> None:
    """A background job ignores SIGINT and its children inherit that; Prefect's worker stops on SIGTERM by sending
    itself SIGINT, so ignored it never stopped (`stack down` killed it a minute later)."""
    seen = tmp_path / "seen"
    report = f"import signal; open({str(seen)!r}, 'w').write(repr(signal.getsignal(signal.SIGINT)))"
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        pid = procs.spawn(Service("worker-1", [sys.executable, "-c", report], {}), tmp_path)
    finally:
        signal.signal(signal.SIGINT, previous)
    wait_for(lambda: procs.start_time(pid) is None, 30, "the service did not exit")
    assert seen.read_text() == "<built-in function default_int_handler>"


def test_down_kills_a_descendant_that_outlives_its_service_and_returns_once_it_has_gone(tmp_path: Path) -> None:
    """A service that stops on SIGTERM but leaves a descendant of its own session that ignores it (as a flow
    run's process can): the descendant moves to init, out of the service's tree, and is killed all the same."""
    child = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print(flush=True); time.sleep(120)"
    leader = "import subprocess, sys, time\n"
    leader += f"subprocess.Popen([sys.executable, '-c', {child!r}], start_new_session=True)\ntime.sleep(120)"
    service = subprocess.Popen([sys.executable, "-c", leader], start_new_session=True, stdout=subprocess.PIPE)
    try:
        service.stdout.readline()  # the descendant ignores SIGTERM from here on
        [descendant] = [p for p in procs.group_pids(service.pid) if p != service.pid]
        (tmp_path / "pids").mkdir()
        (tmp_path / "pids" / "worker-1.pid").write_text(f"{service.pid} {procs.start_time(service.pid)}\n")
        assert procs.stop(tmp_path, timeout=2) == {"worker-1": "killed"}
        assert procs.start_time(descendant) is None and service.wait(timeout=10) == -signal.SIGTERM
    finally:
        for pid in procs.group_pids(service.pid) or [service.pid]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        service.wait()


def test_unreachable_postgres_is_one_line(tmp_path: Path) -> None:
    out = subprocess.run(
        [*PRICECAST, "stack", "up", "--state-dir", str(tmp_path), "--pg-url", "postgresql://postgres@127.0.0.1:1/x"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 1 and out.stderr.startswith("pricecast: PostgreSQL at postgresql://postgres@127.0.0.1:1/x")
    assert "Traceback" not in out.stderr
