"""Team mode on real servers: `pricecast stack up --auth` (Prefect and MLflow on PostgreSQL, two pool workers),
`pricecast deploy`, retrains triggered through the work pool, a worker killed mid-training, `stack down`.

One stack serves the whole module (it takes about 35 s to start), in databases of its own that are
dropped at the end; the tests run in file order, each building on the one before (as a team would).
Two machines retraining at once against the shared store have a stack of their own
(`tests/test_stack_store.py`), so that the two modules run side by side.
The browser checks use the same stack. Without PostgreSQL everything skips, saying why.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from pricecast.stack import procs, run
from pricecast.stack.plan import Credentials, Service, StackConfig, plan, read_credentials, write_private
from tests.team import PRICECAST, ROOT, TINY, Stack, running_stack, wait_for

# --- pure: no server ----------------------------------------------------------------------------


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


# --- one real stack for the rest of the module ---------------------------------------------------


def incoming(home: Path, shared_data: Path) -> None:
    """Two tickers' first days, from the seed's file: TATA and TATB."""
    (home / "data" / "incoming").mkdir(parents=True, exist_ok=True)
    prices = pd.read_csv(shared_data / "NSETATAGLOBAL.csv")
    prices.iloc[:120].to_csv(home / "data" / "incoming" / "TATA.csv", index=False)
    prices.iloc[200:320].to_csv(home / "data" / "incoming" / "TATB.csv", index=False)


@pytest.fixture(scope="module")
def stack(pg_url: str, shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(pg_url, tmp_path_factory.mktemp("team"), workers=2) as running:
        incoming(running.home, shared_data)
        yield running


@pytest.mark.slow
def test_up_prints_the_exports_and_answers_401_without_credentials(stack: Stack) -> None:
    assert (stack.state / "secrets").stat().st_mode & 0o077 == 0
    assert (stack.state / "secrets" / "credentials").stat().st_mode & 0o077 == 0
    prefect, mlflow = stack.info["urls"]["prefect"], stack.info["urls"]["mlflow"]
    assert procs.http_status(f"{prefect}/flows/filter", body=b"{}") == 401
    assert procs.http_status(f"{prefect}/flows/filter", stack.headers, body=b"{}") == 200
    search = f"{mlflow}/api/2.0/mlflow/experiments/search?max_results=5"
    assert procs.http_status(search) == 401
    assert procs.http_status(search, Credentials(stack.credentials.user, "wrong").header()) == 401
    assert procs.http_status(search, stack.headers) == 200
    rows = run.status(stack.state, stack.headers)
    print("memory (MB, PSS):", {n: r["memory_mb"] for n, r in rows.items()}, "timings (s):", stack.info["timings"])
    assert all(r["running"] for r in rows.values()) and len(run.workers_online(stack.info, stack.headers)) == 2


@pytest.mark.slow
def test_deploy_then_a_retrain_of_two_tickers_runs_on_the_pool_in_parallel(stack: Stack) -> None:
    out = stack.cli("deploy", "--home", str(stack.home), "--task-runner", "processes", "--max-workers", "2", *TINY)
    assert out.returncode == 0, out.stdout + out.stderr
    deployments = stack.prefect("/deployments/filter", {})
    assert sorted(d["name"] for d in deployments) == ["pricecast"] * 4  # train, retrain, forecast, backtest
    assert {d["work_pool_name"] for d in deployments} == {stack.info["pool"]}
    assert [s["schedule"]["cron"] for d in deployments for s in d["schedules"]] == ["30 17 * * 1-5"]

    t0 = time.monotonic()
    out = stack.cli("trigger", "retrain", "--wait")
    print(f"retrain of two tickers on the pool: {time.monotonic() - t0:.0f} s")
    assert out.returncode == 0 and "of retrain: Completed" in out.stdout, out.stdout + out.stderr + stack.logs()
    runs = stack.prefect("/flow_runs/filter", {})
    parent = next(r for r in runs if r["name"] in out.stdout)
    assert parent["work_queue_name"] and parent["infrastructure_pid"]  # a worker of the pool ran it
    trainings = [r for r in runs if r["name"] in ("retrain-TATA", "retrain-TATB")]
    assert len(trainings) == 2 and all(r["state_type"] == "COMPLETED" for r in trainings)
    start = max(pd.Timestamp(r["start_time"]) for r in trainings)
    assert all(pd.Timestamp(r["end_time"]) > start for r in trainings)  # they overlapped: in parallel

    # Runs, metrics and artifacts, read back over MLflow's HTTP API (the server's backend is PostgreSQL).
    for ticker in ("TATA", "TATB"):
        exp = stack.mlflow(f"/experiments/get-by-name?experiment_name=pricecast-{ticker}")["experiment"]
        [found] = stack.mlflow("/runs/search", {"experiment_ids": [exp["experiment_id"]]})["runs"]
        metrics = {m["key"]: m["value"] for m in found["data"]["metrics"]}
        assert {"mae", "naive_mae", "skill", "loss"} <= set(metrics) and found["info"]["status"] == "FINISHED"
        artifacts = stack.mlflow(f"/artifacts/list?run_id={found['info']['run_id']}&path=plots")["files"]
        assert {"plots/loss.png", "plots/forecast.png"} <= {a["path"] for a in artifacts}
        assert found["info"]["artifact_uri"].startswith("mlflow-artifacts:")
    assert list((stack.state / "artifacts").rglob("loss.png"))  # proxied into --artifacts-destination

    # The shared store in PostgreSQL holds the merged rows and the forecasts.
    from pricecast.prices.pg_store import PostgresStore

    store = PostgresStore(stack.info["urls"]["store"])
    assert store.tickers() == ["TATA", "TATB"] and len(store.read("TATA")) == 120
    assert len(store.read_forecasts("TATB")) == 1
    assert sorted(p.name for p in (stack.home / "data" / "incoming" / "processed").iterdir()) == [
        "TATA.csv",
        "TATB.csv",
    ]


# --- the UIs in a real browser: Playwright driving Debian's Chromium, headless, no browser download ---

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]
CHROMIUM_ARGS += ["--no-first-run", "--disable-sync", "--disable-quic"]
#: Screenshots of the browser checks, kept as test artifacts (the README names this folder).
SHOTS = Path(os.environ.get("PRICECAST_SCREENSHOTS", ROOT / "tests" / "screenshots"))


@pytest.fixture(scope="module")
def browser():
    from tests.conftest import CHROMIUM, missing

    if not Path(CHROMIUM).exists():
        missing(f"{CHROMIUM} is missing: apt-get install -y chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing("playwright is not installed: pip install playwright (never `playwright install`)")
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.mark.slow
def test_prefect_ui_lists_the_deployments_with_the_schedule_and_the_pool_with_its_workers(stack: Stack, browser):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    ui = stack.info["urls"]["prefect"].removesuffix("/api")
    page.goto(f"{ui}/deployments")
    page.wait_for_url("**/login**")  # the API auth string is asked for first
    page.locator("input").first.fill(f"{stack.credentials.user}:{stack.credentials.password}")
    page.keyboard.press("Enter")
    page.wait_for_url("**/deployments")
    page.get_by_text("retrain").first.wait_for(timeout=60_000)
    page.screenshot(path=str(SHOTS / "prefect-deployments.png"), full_page=True)
    body = page.inner_text("body")
    assert all(name in body for name in ("train", "retrain", "forecast", "backtest")), body[:2000]
    retrain_id = next(d["id"] for d in stack.prefect("/deployments/filter", {}) if d["entrypoint"].endswith(":retrain"))
    page.goto(f"{ui}/deployments/deployment/{retrain_id}")
    page.get_by_text(stack.info["pool"]).first.wait_for(timeout=60_000)
    page.screenshot(path=str(SHOTS / "prefect-retrain-deployment.png"), full_page=True)
    body = page.inner_text("body")
    assert "Monday through Friday" in body or "30 17 * * 1-5" in body, body[:2000]
    page.goto(f"{ui}/work-pools/work-pool/{stack.info['pool']}?tab=Workers")
    for worker in run.workers_online(stack.info, stack.headers):
        page.get_by_text(worker).first.wait_for(timeout=60_000)
    page.screenshot(path=str(SHOTS / "prefect-work-pool-workers.png"), full_page=True)
    assert "online" in page.inner_text("body").lower()
    page.close()  # an open Prefect UI polls the server every few seconds for the rest of the module


ROW_JS = """name => {
  const link = [...document.querySelectorAll('a[title="Plot chart"]')]
    .find(a => a.firstChild.textContent.trim() === name);
  const top = link.parentElement.getBoundingClientRect().top;
  return [...document.querySelectorAll('div[role=rowgroup] > div')]
    .filter(d => !d.contains(link) && Math.abs(d.getBoundingClientRect().top - top) < 1)
    .sort((a, b) => a.getBoundingClientRect().left - b.getBoundingClientRect().left)
    .map(d => d.innerText.trim());
}"""


@pytest.mark.slow
def test_mlflow_compare_view_puts_mae_beside_naive_and_the_loss_history_is_one_click_further(stack: Stack, browser):
    """What MLflow 3.17 really shows: a metrics table on the compare page; the loss curves of both runs
    open from the metric's name (the README's walk-through says so)."""
    context = browser.new_context(
        viewport={"width": 1400, "height": 1000},
        http_credentials={"username": stack.credentials.user, "password": stack.credentials.password},
    )
    page = context.new_page()
    runs, experiments, shown = [], [], {}
    for ticker in ("TATA", "TATB"):
        exp = stack.mlflow(f"/experiments/get-by-name?experiment_name=pricecast-{ticker}")["experiment"]
        found = stack.mlflow("/runs/search", {"experiment_ids": [exp["experiment_id"]]})["runs"][-1]
        runs.append(found["info"]["run_id"])
        experiments.append(exp["experiment_id"])
        shown[ticker] = {m["key"]: m["value"] for m in found["data"]["metrics"]}
    q = urllib.parse.quote
    page.goto(
        f"{stack.info['urls']['mlflow']}/#/compare-runs?runs={q(json.dumps(runs))}&experiments={q(json.dumps(experiments))}"
    )
    page.get_by_text("Comparing 2 Runs from 2 Experiments").wait_for(timeout=60_000)
    page.get_by_role("link", name="naive_mae", exact=True).wait_for()
    for metric in ("mae", "naive_mae"):
        cells = page.evaluate(ROW_JS, metric)
        assert [float(c) for c in cells] == pytest.approx([shown[t][metric] for t in ("TATA", "TATB")], rel=1e-3)
    page.screenshot(path=str(SHOTS / "mlflow-compare.png"), full_page=True)
    assert page.locator("svg.main-svg").count() == 0 or "loss" not in page.inner_text("body").split("Metrics")[0]
    page.get_by_role("link", name="loss", exact=True).click()
    page.wait_for_url("**/#/metric?**")
    page.get_by_text("(loss)").first.wait_for(timeout=30_000)
    assert page.get_by_text("(loss)").count() >= 2  # both runs' curves in one chart
    assert page.locator("svg.main-svg").count() >= 1
    page.screenshot(path=str(SHOTS / "mlflow-loss-history.png"))
    context.close()


@pytest.mark.slow
def test_a_worker_killed_mid_training_crashes_its_run_and_the_next_trigger_completes_on_the_other(stack: Stack):
    from pricecast.prices.pg_store import PostgresStore

    store = PostgresStore(stack.info["urls"]["store"])
    before = store.read("TATA")
    exp = stack.mlflow("/experiments/get-by-name?experiment_name=pricecast-TATA")["experiment"]["experiment_id"]
    versions_before = len(stack.mlflow("/model-versions/search?filter=name%3D'pricecast-TATA'")["model_versions"])
    out = stack.cli("trigger", "retrain", "--tickers", "TATA", "--force", "--epochs", "400")
    flow_run_id = out.stdout.split("(", 1)[1].split(")", 1)[0]

    def training() -> list:
        found = stack.mlflow("/runs/search", {"experiment_ids": [exp], "filter": "attributes.status = 'RUNNING'"})
        return found.get("runs", [])

    [killed_run] = wait_for(training, 180, "no MLflow run started training", stack)
    time.sleep(2)  # inside fit()
    pid = int(str(stack.prefect(f"/flow_runs/{flow_run_id}")["infrastructure_pid"]).rsplit(":", 1)[-1])
    victim = [name for name, (leader, _) in procs.recorded(stack.state).items() if pid in procs.group_pids(leader)]
    assert len(victim) == 1 and victim[0].startswith("worker"), victim
    t0 = time.monotonic()
    procs.stop(stack.state, names=victim, sig=signal.SIGKILL, timeout=10)  # the worker and its flow run, at once

    def ended() -> dict | None:
        state = stack.prefect(f"/flow_runs/{flow_run_id}")["state"]
        return state if state["type"] != "RUNNING" else None

    state = wait_for(ended, 240, "the killed run did not leave RUNNING", stack)
    print(f"killed worker's flow run {state['type']} after {time.monotonic() - t0:.0f} s: {state['message']}")
    assert state["type"] == "CRASHED"

    out = stack.cli("trigger", "retrain", "--tickers", "TATA", "--force", "--task-runner", "threads", "--wait")
    assert out.returncode == 0 and "Completed" in out.stdout, out.stdout + out.stderr + stack.logs()
    again = out.stdout.split("(", 1)[1].split(")", 1)[0]
    survivor = next(n for n in ("worker-1", "worker-2") if n not in victim)
    assert again in (stack.state / "logs" / f"{survivor}.log").read_text()
    status = stack.mlflow(f"/runs/get?run_id={killed_run['info']['run_id']}")["run"]["info"]["status"]
    assert status == "KILLED"  # marked by the next run's start: its process was gone
    versions = stack.mlflow("/model-versions/search?filter=name%3D'pricecast-TATA'")["model_versions"]
    assert killed_run["info"]["run_id"] not in {v["run_id"] for v in versions}
    assert len(versions) == versions_before + 1  # the killed run registered nothing; the new one did
    pd.testing.assert_frame_equal(store.read("TATA"), before)  # the store is unchanged


def flow_run_processes(stack: Stack) -> list[int]:
    """The workers' flow-run processes (`python -m prefect.engine`) still alive."""
    found = []
    for leader, _ in procs.recorded(stack.state).values():
        for pid in procs.group_pids(leader):
            try:
                if b"prefect.engine" in Path(f"/proc/{pid}/cmdline").read_bytes():
                    found.append(pid)
            except OSError:  # it has just exited
                pass
    return found


@pytest.mark.slow
def test_stack_down_leaves_no_process(stack: Stack) -> None:
    # A flow run is Completed before its process has exited (logs flushed, TensorFlow unloaded), and a
    # worker waits for it: stopping idle workers is what is tested here.
    wait_for(lambda: not flow_run_processes(stack), 120, "the last flow run's process did not exit", stack)
    recorded = procs.recorded(stack.state)
    members = {p for pid, _ in recorded.values() for p in procs.group_pids(pid)}
    t0 = time.monotonic()
    out = stack.cli("stack", "down", "--state-dir", str(stack.state))
    print(f"stack down: {time.monotonic() - t0:.1f} s, {out.stdout}")
    stopped = json.loads(out.stdout) if out.returncode == 0 else {}
    # Every service stopped on SIGTERM, the workers too, though `stack up` ran with SIGINT ignored (tests/team.py)
    assert stopped == dict.fromkeys(recorded, "stopped"), out.stdout + out.stderr
    assert not [p for p in members if procs.start_time(p) is not None]
    assert procs.recorded(stack.state) == {}
