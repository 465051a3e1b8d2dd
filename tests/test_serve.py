"""`pricecast serve` against a real Prefect server on 127.0.0.1: deployments, schedule, limits, manual trigger."""

from __future__ import annotations

import importlib.metadata
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from contextlib import closing
from pathlib import Path

import pandas as pd
import pytest

from flows.train import train as train_flow
from pricecast.cli import build_config, parser
from pricecast.prefect_server import answers, warm_socket
from pricecast.stack.procs import free_port, start_time
from pricecast.templates import cache_folder, new_prefect_database
from pricecast.tracking.connect import new_database

pytestmark = pytest.mark.slow
PRICECAST = [sys.executable, "-m", "pricecast.cli"]
ROOT = Path(__file__).resolve().parents[1]


def api(port: int, path: str, body: dict | None = None) -> object:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/api{path}",
        data=json.dumps(body or {}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


@pytest.fixture
def served(tmp_path: Path, shared_data: Path):
    """`pricecast serve` in its own process with its own Prefect home; stopped with SIGTERM.

    SIGTERM, not SIGINT: a process started by a background job (`make test &`, nohup, some CI
    runners) ignores SIGINT, and `pricecast serve` stops cleanly on SIGTERM.
    """
    port = free_port()
    env = no_server_env()
    env.update(PREFECT_HOME=str(tmp_path / "prefect"), PRICECAST_HOME=str(tmp_path / "home"), PYTHONUNBUFFERED="1")
    incoming = tmp_path / "home" / "data" / "incoming"
    incoming.mkdir(parents=True)
    pd.read_csv(shared_data / "NSETATAGLOBAL.csv").head(120).to_csv(incoming / "TATA.csv", index=False)
    log = open(tmp_path / "serve.log", "w")
    process = subprocess.Popen(
        [*PRICECAST, "serve", "--prefect-port", str(port)], env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            try:
                if len(api(port, "/deployments/filter")) == 3:
                    break
            except OSError:
                pass
            assert process.poll() is None, (tmp_path / "serve.log").read_text()[-3000:]
            time.sleep(2)
        else:
            pytest.fail("deployments did not appear:\n" + (tmp_path / "serve.log").read_text()[-3000:])
        yield port, env, tmp_path
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=60) == 0, (tmp_path / "serve.log").read_text()[-3000:]
            assert not answers(f"http://127.0.0.1:{port}/api")  # its Prefect server stopped with it
        log.close()


def test_serve_schedules_limits_and_manual_trigger(served: tuple[int, dict, Path]) -> None:
    port, env, tmp_path = served
    deployments = {d["name"] + ":" + d["flow_id"]: d for d in api(port, "/deployments/filter")}
    flows = {f["id"]: f["name"] for f in api(port, "/flows/filter")}
    by_flow = {flows[d["flow_id"]]: d for d in deployments.values()}
    assert set(by_flow) == {"train", "retrain", "forecast"}
    assert all(d["name"] == "pricecast" for d in by_flow.values())
    schedules = by_flow["retrain"]["schedules"]
    assert [(s["schedule"]["cron"], s["schedule"]["timezone"], s["active"]) for s in schedules] == [
        ("30 17 * * 1-5", "America/New_York", True)
    ]
    assert by_flow["train"]["schedules"] == [] and by_flow["forecast"]["schedules"] == []
    for deployment in by_flow.values():
        limit = deployment.get("global_concurrency_limit") or {}
        assert deployment.get("concurrency_limit") == 1 or limit.get("limit") == 1
    assert by_flow["retrain"]["parameters"]["config"]["home"] == str((tmp_path / "home").resolve())
    # The Prefect UI served with it talks to this server, not to the default port.
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/ui-settings", timeout=10) as response:
        assert json.loads(response.read())["api_url"] == f"http://127.0.0.1:{port}/api"

    # A manual trigger from another process, waiting for the run to finish.
    out = subprocess.run(
        [*PRICECAST, "trigger", "retrain", "--ticker", "TATA", "--wait", "--prefect-port", str(port)],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:] + (tmp_path / "serve.log").read_text()[-3000:]
    assert "of retrain: Completed" in out.stdout
    assert (tmp_path / "home" / "data" / "prices" / "TATA.csv").exists()
    assert (tmp_path / "home" / "data" / "incoming" / "processed" / "TATA.csv").exists()
    # The retrain forecast the ticker it retrained.
    forecasts = tmp_path / "home" / "data" / "forecasts" / "TATA.csv"
    assert len(pd.read_csv(forecasts)) == 1
    # A backfill through the served forecast deployment.
    days = pd.read_csv(tmp_path / "home" / "data" / "prices" / "TATA.csv")["date"].iloc[-6:-1].tolist()
    out = subprocess.run(
        [
            *PRICECAST,
            "trigger",
            "forecast",
            "--ticker",
            "TATA",
            "--start",
            days[0],
            "--end",
            days[-1],
            "--wait",
            "--prefect-port",
            str(port),
        ],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0 and "of forecast: Completed" in out.stdout, out.stdout[-2000:] + out.stderr[-3000:]
    backfill = pd.read_csv(forecasts).iloc[1:]
    assert backfill["as_of"].tolist() == days and backfill["actual"].notna().all()


def test_ui_serves_the_store(tmp_path: Path, shared_data: Path) -> None:
    """`pricecast ui` is a real MLflow server on 127.0.0.1 that reads this home's store."""
    import mlflow

    home = tmp_path / "home"
    uri = f"sqlite:///{home / 'mlruns' / 'mlflow.db'}"
    (home / "mlruns").mkdir(parents=True)
    new_database(home / "mlruns" / "mlflow.db", (home / "mlruns" / "artifacts" / "0").as_uri())  # as a home's
    client = mlflow.MlflowClient(uri)
    experiment = client.create_experiment("pricecast-TEST", artifact_location=(home / "mlruns" / "artifacts").as_uri())
    run = client.create_run(experiment, run_name="probe")
    client.log_metric(run.info.run_id, "mae", 4.5)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_TRACKING")}
    ui = subprocess.Popen(
        [*PRICECAST, "ui", "--home", str(home), "--ui-port", str(port)],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its server's workers are stopped with it, as a group
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                url = f"http://127.0.0.1:{port}/ajax-api/2.0/mlflow/runs/get?run_id={run.info.run_id}"
                with urllib.request.urlopen(url, timeout=5) as response:
                    served = json.loads(response.read())["run"]
                break
            except OSError:
                assert time.monotonic() < deadline and ui.poll() is None, "the MLflow UI did not come up"
                time.sleep(1)
        assert served["info"]["run_name"] == "probe" and served["data"]["metrics"][0]["value"] == 4.5
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as response:
            assert b"<html" in response.read().lower()
    finally:
        os.killpg(ui.pid, signal.SIGTERM)
        try:
            ui.wait(timeout=60)
        except subprocess.TimeoutExpired:  # under a loaded machine: nothing of it may outlive the test
            os.killpg(ui.pid, signal.SIGKILL)
            ui.wait()


@pytest.mark.usefixtures("prefect_harness")
def test_a_long_lived_server_and_its_warm_process_serve_every_command_of_its_home(
    tmp_path: Path, shared_data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`pricecast server start`: a training runs on that server (no temporary one), in the warm process, on this
    terminal, with the numbers of the same training here (the warm process has TensorFlow imported before it
    forks); bad input there is still one line and exit 2; SIGTERM and Ctrl+C reach the command (one line, 143
    and 130) and a killed caller stops it; another interpreter's or other settings' command runs itself; a
    changed module restarts the warm process; `stop` ends both."""
    env = no_server_env() | {"XDG_CACHE_HOME": str(marked_cache(tmp_path))}
    home = tmp_path / "home"
    data = first_150_days(tmp_path, shared_data)
    train = ["train", "--data", str(data), "--ticker", "TATA", "--lookback", "5"]

    def pricecast(*args: str, extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        command = [*PRICECAST, *args, "--home", str(home)]
        return subprocess.run(
            command, env=env | (extra_env or {}), cwd=ROOT, capture_output=True, text=True, timeout=600
        )

    def warm_log() -> str:
        return (home / "prefect" / "warm.log").read_text()

    assert pricecast("server", "status").returncode == 3
    started = pricecast("server", "start")
    assert started.returncode == 0, started.stderr[-3000:]
    try:
        # Its new database began as a copy of the empty one made once per Prefect version (marked here).
        assert "pricecast_test_marker" in tables(home / "prefect" / "prefect.db")
        url = started.stdout.split("PREFECT_API_URL=")[1].split()[0]
        status = pricecast("server", "status").stdout
        assert status.startswith(f"Prefect server running on {url}") and "Warm process" in status, status
        with socket.socket(socket.AF_UNIX) as stranger:  # not a command's request: logged, and it goes on
            stranger.connect(str(warm_socket(home)))
            stranger.sendall(b"garbage\n{}")
            assert stranger.recv(100) == b""
        with socket.socket(socket.AF_UNIX) as venv:  # another virtual environment's command runs itself
            request = {"argv": ["forecast"], "cwd": str(tmp_path), "env": env, "url": url, "python": "/other/python"}
            body = json.dumps(request).encode()
            venv.connect(str(warm_socket(home)))
            socket.send_fds(venv, [f"{len(body)}\n".encode()], [0, 1, 2])
            venv.sendall(body)
            assert venv.recv(100) == b"no another Python, /other/python\n"
        trained = pricecast(*train, "--epochs", "1")
        assert trained.returncode == 0, trained.stdout[-2000:] + trained.stderr[-3000:]
        assert "temporary server" not in trained.stdout + trained.stderr
        assert "bad request: invalid literal for int()" in warm_log()
        assert "MLflow run " in trained.stdout  # the child printed on this process's terminal
        assert f"pricecast {' '.join(train)} --epochs 1 --home {home}" in warm_log()  # it ran there
        monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
        train_flow(build_config(parser().parse_args([*train, "--epochs", "1", "--home", str(tmp_path / "here")])))
        assert last_metrics(home) == last_metrics(tmp_path / "here") and "mae" in last_metrics(home)
        runs = json.loads(
            urllib.request.urlopen(
                urllib.request.Request(
                    f"{url}/flow_runs/filter", data=b"{}", headers={"Content-Type": "application/json"}
                ),
                timeout=10,
            ).read()
        )
        assert [r["state_type"] for r in runs] == ["COMPLETED"]

        (tmp_path / "empty.csv").write_text("")
        bad = pricecast("train", "--data", str(tmp_path / "empty.csv"))
        assert (bad.returncode, bad.stdout) == (2, "") and bad.stderr.count("\n") == 1, bad.stderr
        assert bad.stderr.startswith("pricecast: ") and "empty.csv" in bad.stderr
        assert f"--data {tmp_path / 'empty.csv'}" in warm_log()

        other = pricecast("train", "--data", str(tmp_path / "empty.csv"), extra_env={"TF_CPP_MIN_LOG_LEVEL": "1"})
        assert (other.returncode, other.stderr) == (2, bad.stderr)
        assert warm_log().rstrip().endswith("other settings")  # declined: it ran in its own process

        def handed_over(marker: str) -> int:
            """The pid of the warm process's child running the command with `marker` in its arguments."""
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                found = [line for line in warm_log().splitlines() if marker in line]
                if found:
                    time.sleep(2)  # the caller has its child's pid and passes signals on
                    return int(found[0].split()[2].rstrip(":"))
                time.sleep(0.2)
            pytest.fail(f"no command with {marker} in the warm process's log:\n{warm_log()}")

        def training(log: Path, epochs: str) -> None:
            """Wait until the command is inside its fit (its first epoch logged), past the run's set-up."""
            deadline = time.monotonic() + 240
            while f"epoch 1/{epochs}" not in log.read_text():
                if time.monotonic() > deadline:
                    pytest.fail(f"no epoch logged within 240 s:\n{log.read_text()[-3000:]}\n{warm_log()}")
                time.sleep(0.5)

        long_run = [*PRICECAST, *train, "--home", str(home), "--epochs"]
        with open(tmp_path / "terminated.err", "w+") as log:
            terminated = subprocess.Popen([*long_run, "5000"], env=env, cwd=ROOT, stdout=log, stderr=log)
        handed_over("--epochs 5000")
        training(tmp_path / "terminated.err", "5000")
        terminated.send_signal(signal.SIGTERM)
        terminated.wait(timeout=120)
        err = (tmp_path / "terminated.err").read_text()
        assert terminated.returncode == 128 + signal.SIGTERM, err[-3000:]
        assert err.strip().splitlines()[-1] == "pricecast: stopped by SIGTERM"

        with open(tmp_path / "interrupted.err", "w+") as log:
            interrupted = subprocess.Popen(  # as a terminal's foreground command: SIGINT not ignored
                [*long_run, "5002"],
                env=env,
                cwd=ROOT,
                stdout=subprocess.DEVNULL,
                stderr=log,
                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
            )
        handed_over("--epochs 5002")
        training(tmp_path / "interrupted.err", "5002")
        interrupted.send_signal(signal.SIGINT)  # Ctrl+C
        interrupted.wait(timeout=120)
        err = (tmp_path / "interrupted.err").read_text()
        assert interrupted.returncode == 128 + signal.SIGINT, err[-3000:]
        assert err.strip().splitlines()[-1] == "pricecast: stopped by SIGINT" and "Traceback" not in err

        killed = subprocess.Popen([*long_run, "5001"], env=env, cwd=ROOT, stdout=subprocess.DEVNULL)
        child = handed_over("--epochs 5001")
        killed.kill()  # SIGKILL: nothing is passed on, but the child sees its caller go and stops
        killed.wait()
        deadline = time.monotonic() + 60
        while Path(f"/proc/{child}").exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not Path(f"/proc/{child}").exists(), f"the command's process {child} outlived its killed caller"

        loaded = ROOT / "pricecast" / "cli" / "show.py"
        before = loaded.stat()
        os.utime(loaded, ns=(before.st_atime_ns, before.st_mtime_ns + 1))  # as an edit or an upgrade would
        try:
            again = pricecast("train", "--data", str(tmp_path / "empty.csv"))
        finally:
            os.utime(loaded, ns=(before.st_atime_ns, before.st_mtime_ns))
        assert (again.returncode, again.stderr) == (2, bad.stderr)
        assert "loaded files changed since it started" in warm_log()
        deadline = time.monotonic() + 120  # it starts again in place, with the new code
        while warm_log().count(" ready on ") < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        pid = int((home / "prefect" / "warm.pid").read_text())
        assert f"Warm process {pid}" in pricecast("server", "status").stdout
        again = pricecast("train", "--data", str(tmp_path / "empty.csv"))
        assert (again.returncode, again.stderr) == (2, bad.stderr)
        assert warm_log().rstrip().endswith(f"--data {tmp_path / 'empty.csv'} --home {home} (in {ROOT})")
    finally:
        warm_pid = int((home / "prefect" / "warm.pid").read_text())
        stopped = pricecast("server", "stop")
    assert stopped.stdout.strip() == "Prefect server stopped" and not answers(url)
    assert start_time(warm_pid) is None and not warm_socket(home).exists()  # the warm process ended too
    status = pricecast("server", "status")
    assert (status.returncode, status.stdout) == (3, "No Prefect server is running\n")


def last_metrics(home: Path) -> dict[str, float]:
    """The home's newest MLflow run's metrics but its timings."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{home / 'mlruns' / 'mlflow.db'}")
    experiments = [e.experiment_id for e in client.search_experiments()]
    [run] = client.search_runs(experiments, order_by=["start_time DESC"], max_results=1)
    return {k: v for k, v in run.data.metrics.items() if not k.endswith("_seconds")}


def tables(database: Path) -> list[str]:
    with closing(sqlite3.connect(database)) as db:
        return [name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]


def marked_cache(tmp_path: Path) -> Path:
    """A cache folder (XDG_CACHE_HOME) whose empty Prefect database has one table more than Prefect's."""
    cache = tmp_path / "cache" / "pricecast"
    cache.mkdir(parents=True)
    for made in cache_folder().glob("mlflow-*-empty.db"):  # not made again
        shutil.copyfile(made, cache / made.name)
    template = cache / f"prefect-{importlib.metadata.version('prefect')}-empty.db"
    new_prefect_database(template)  # a copy of this machine's, made first if it is not there yet
    with closing(sqlite3.connect(template)) as db:
        db.execute("CREATE TABLE pricecast_test_marker (x INTEGER)")
    return cache.parent


def no_server_env() -> dict[str, str]:
    """This environment without a Prefect API address or a tracking URI: the command finds its own servers."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_API", "MLFLOW_TRACKING"))}


def first_150_days(tmp_path: Path, shared_data: Path) -> Path:
    """The seed's file cut to its header and first 150 days."""
    data = tmp_path / "tata.csv"
    data.write_text("\n".join((shared_data / "NSETATAGLOBAL.csv").read_text().splitlines()[:151]) + "\n")
    return data


def _first_server_children(proc: subprocess.Popen) -> set[int]:
    """The Prefect servers among `proc`'s children within its first 5 s (fails when there are none)."""
    started, servers = time.monotonic(), set()
    while not servers and proc.poll() is None and time.monotonic() - started < 5:
        servers = _server_children(proc.pid)
        time.sleep(0.05)
    assert servers, "no Prefect server among the command's children in its first 5 s"
    return servers


def _server_children(pid: int) -> set[int]:
    """Children of `pid` that are Prefect API servers (uvicorn on `prefect.server.api.server:create_app`)."""
    found = set()
    for entry in Path("/proc").iterdir():
        try:
            status = (entry / "status").read_text()
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ")
        except (OSError, ValueError):
            continue
        if f"\nPPid:\t{pid}\n" in status and b"prefect.server.api.server:create_app" in command:
            found.add(int(entry.name))
    return found


def test_without_a_server_a_training_starts_the_temporary_server_first_and_leaves_none(
    tmp_path: Path, shared_data: Path
) -> None:
    """No PREFECT_API_URL, no long-lived server: the command starts Prefect's temporary server before its
    imports (not Prefect, later, by itself), runs its flow on it, and stops it on the way out."""
    env, data = no_server_env(), first_150_days(tmp_path, shared_data)
    command = [*PRICECAST, "train", "--data", str(data), "--ticker", "TATA", "--epochs", "1", "--lookback", "5"]
    proc = subprocess.Popen(
        [*command, "--home", str(tmp_path / "home")],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    servers = _first_server_children(proc)
    output = proc.communicate(timeout=600)[0].decode()
    assert proc.returncode == 0, output[-3000:]
    assert "Starting temporary server" not in output  # Prefect did not start one of its own
    assert not [pid for pid in servers if _alive(pid)], "the server outlived the command"


def test_a_killed_command_takes_its_temporary_server_with_it(tmp_path: Path, shared_data: Path) -> None:
    """SIGKILL to a command leaves no Prefect server behind (the server dies with its parent)."""
    env, data = no_server_env(), first_150_days(tmp_path, shared_data)
    command = [*PRICECAST, "train", "--data", str(data), "--ticker", "TATA", "--home", str(tmp_path / "home")]
    proc = subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    servers = _first_server_children(proc)
    proc.kill()
    proc.wait()
    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in servers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_alive(pid) for pid in servers), "the server outlived its killed command"


def _alive(pid: int) -> bool:
    """A live process (not gone, not a zombie waiting for its new parent to reap it)."""
    try:
        return "\nState:\tZ" not in Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False


def test_server_start_chooses_another_port_when_the_one_it_chose_is_taken_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A port chosen free can be bound by another process before the server binds it: `server start` starts
    it again on another. A port given is never changed. Real processes, Python's http.server in place of
    Prefect's server (the same bind error) and a warm process that exits at once (commands then run themselves)."""
    from pricecast import prefect_server
    from pricecast.config import Paths
    from pricecast.errors import StackError

    (tmp_path / "www" / "api").mkdir(parents=True)
    (tmp_path / "www" / "api" / "health").write_text("true")
    fake = tmp_path / "python"  # `python -m prefect server start ... --port N` serves www; anything else exits
    fake.write_text(
        f"#!{sys.executable}\nimport os, sys\n"
        "if sys.argv[1:4] == ['-m', 'prefect', 'server']:\n"
        "    port = sys.argv[sys.argv.index('--port') + 1]\n"
        f"    os.execv({sys.executable!r}, [{sys.executable!r}, '-m', 'http.server', port, '--bind', '127.0.0.1', "
        f"'--directory', {str(tmp_path / 'www')!r}])\n"
    )
    fake.chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(fake))
    holder = socket.socket()  # bound, not listening: the OS will not hand it out, a server cannot bind it
    holder.bind(("127.0.0.1", 0))
    taken = holder.getsockname()[1]
    chosen = iter([taken, free_port()])
    monkeypatch.setattr(prefect_server, "free_port", lambda: next(chosen))
    server = prefect_server.LocalServer(Paths(root=tmp_path / "home"))
    try:
        url = server.start()
        assert f":{taken}/" not in url and server.url() == url
        assert "address already in use" in server.log.read_text().lower()
        assert server.stop()
        with pytest.raises(StackError, match=f"exited with code 1: is port {taken} taken.* \\(log {server.log}\\)"):
            server.start(taken)
        assert not server.url()
    finally:
        server.stop()
        holder.close()
