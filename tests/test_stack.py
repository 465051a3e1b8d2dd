"""Team mode on one real stack: `pricecast stack up --auth` (Prefect and MLflow on PostgreSQL, two pool workers),
`pricecast deploy`, retrains triggered through the work pool, a worker killed mid-training, two machines
retraining at once against the shared store, the UIs in a browser, `stack down`.

One stack serves the whole module (it takes about 25 s to start), in databases of its own that are
dropped at the end; the tests run in file order, each building on the one before (as a team would).
A killed worker's run is Crashed only once its heartbeats have been missing for 75 s: the two machines'
retrains and the browser checks run meanwhile, between the test that kills the worker and the one that
waits for the crash.
Without PostgreSQL everything skips, saying why. `tests/test_stack_procs.py` tests the stack's parts
without its servers.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from pricecast.stack import procs, run
from pricecast.stack.plan import Credentials
from tests.team import PRICECAST, ROOT, TINY, Stack, running_stack, wait_for

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


@pytest.fixture(scope="module")
def killed() -> dict:
    """What the test that kills a worker leaves for the one that waits for its run to crash."""
    return {}


@pytest.mark.slow
def test_a_worker_killed_mid_training_leaves_its_run_running_until_its_heartbeats_stop(stack: Stack, killed: dict):
    from pricecast.prices.pg_store import PostgresStore

    exp = stack.mlflow("/experiments/get-by-name?experiment_name=pricecast-TATA")["experiment"]["experiment_id"]
    killed["store"] = PostgresStore(stack.info["urls"]["store"]).read("TATA")
    killed["versions"] = len(stack.mlflow("/model-versions/search?filter=name%3D'pricecast-TATA'")["model_versions"])
    out = stack.cli("trigger", "retrain", "--tickers", "TATA", "--force", "--epochs", "400")
    flow_run_id = out.stdout.split("(", 1)[1].split(")", 1)[0]

    def training() -> list:
        found = stack.mlflow("/runs/search", {"experiment_ids": [exp], "filter": "attributes.status = 'RUNNING'"})
        return found.get("runs", [])

    [mlflow_run] = wait_for(training, 180, "no MLflow run started training", stack)
    time.sleep(2)  # inside fit()
    pid = int(str(stack.prefect(f"/flow_runs/{flow_run_id}")["infrastructure_pid"]).rsplit(":", 1)[-1])
    victim = [name for name, (leader, _) in procs.recorded(stack.state).items() if pid in procs.group_pids(leader)]
    assert len(victim) == 1 and victim[0].startswith("worker"), victim
    procs.stop(stack.state, names=victim, sig=signal.SIGKILL, timeout=10)  # the worker and its flow run, at once
    # Nothing could tell Prefect: only the missing heartbeats will (see the test after the next).
    assert stack.prefect(f"/flow_runs/{flow_run_id}")["state"]["type"] == "RUNNING"
    killed.update(flow_run_id=flow_run_id, run_id=mlflow_run["info"]["run_id"], victim=victim[0], at=time.monotonic())


@pytest.mark.slow
def test_two_retrains_at_once_from_two_machines_lose_no_row_and_a_conflicting_file_writes_nothing(
    stack: Stack, shared_data: Path, tmp_path: Path
) -> None:
    """Two homes (as two machines with their own incoming folders) retrain TATM at the same moment against the
    shared store, which already holds its newest 120 days; their files overlap by 50 identical days. A third
    file, with one day whose close differs from the store's, is refused whole: none of its days reach the store."""
    from pricecast.prices.pg_store import PostgresStore
    from pricecast.prices.sources import load_prices

    prices = pd.read_csv(shared_data / "NSETATAGLOBAL.csv")  # newest first: rows 120+ are older days
    store = PostgresStore(stack.info["urls"]["store"])
    prices.iloc[:120].to_csv(tmp_path / "first.csv", index=False)
    store.merge([load_prices(tmp_path / "first.csv", "TATM")])  # as a first retrain leaves it
    homes = {"east": tmp_path / "east", "west": tmp_path / "west"}
    for name, rows in (("east", slice(120, 220)), ("west", slice(170, 260))):
        (homes[name] / "data" / "incoming").mkdir(parents=True)
        prices.iloc[rows].to_csv(homes[name] / "data" / "incoming" / f"TATM_{name}.csv", index=False)
    bad = prices.iloc[[100, *range(260, 280)]].copy()  # 20 days nobody else brings, and one the store has
    bad.loc[100, "Close"] += 1.0  # with another close
    bad.to_csv(homes["west"] / "data" / "incoming" / "TATM_fix.csv", index=False)

    runs = [
        subprocess.Popen(
            [*PRICECAST, "retrain", "--home", str(home), "--tickers", "TATM", *TINY],
            env=stack.env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for home in homes.values()
    ]
    outputs = [proc.communicate(timeout=600)[0] for proc in runs]
    assert [proc.returncode for proc in runs] == [0, 0], "\n".join(outputs)

    (tmp_path / "expected.csv").write_text(prices.iloc[:260].to_csv(index=False))
    pd.testing.assert_frame_equal(store.read("TATM"), load_prices(tmp_path / "expected.csv", "TATM").frame)
    rejected = homes["west"] / "data" / "incoming" / "rejected"
    assert [p.name for p in rejected.glob("*.csv")] == ["TATM_fix.csv"]  # none of its 21 rows was written
    assert "TATM_fix.csv conflicts with the store" in "\n".join(outputs)


# --- the UIs in a real browser: Playwright driving Debian's Chromium, headless, no browser download ---

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]
CHROMIUM_ARGS += ["--no-first-run", "--disable-sync", "--disable-quic"]
#: Screenshots of the browser checks, kept as test artifacts (docs/guides/backtests.md names this folder).
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
    open from the metric's name (docs/guides/backtests.md's walk-through says so)."""
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
def test_the_killed_workers_run_is_crashed_and_the_next_trigger_completes_on_the_other(stack: Stack, killed: dict):
    from pricecast.prices.pg_store import PostgresStore

    assert killed, "no worker was killed: see the test before the last"

    def ended() -> dict | None:
        state = stack.prefect(f"/flow_runs/{killed['flow_run_id']}")["state"]
        return state if state["type"] != "RUNNING" else None

    state = wait_for(ended, 240, "the killed run did not leave RUNNING", stack)
    print(f"killed worker's flow run {state['type']} {time.monotonic() - killed['at']:.0f} s after: {state['message']}")
    assert state["type"] == "CRASHED"

    out = stack.cli("trigger", "retrain", "--tickers", "TATA", "--force", "--task-runner", "threads", "--wait")
    assert out.returncode == 0 and "Completed" in out.stdout, out.stdout + out.stderr + stack.logs()
    again = out.stdout.split("(", 1)[1].split(")", 1)[0]
    survivor = next(n for n in ("worker-1", "worker-2") if n != killed["victim"])
    assert again in (stack.state / "logs" / f"{survivor}.log").read_text()
    status = stack.mlflow(f"/runs/get?run_id={killed['run_id']}")["run"]["info"]["status"]
    assert status == "KILLED"  # marked by the next run's start: its process was gone
    versions = stack.mlflow("/model-versions/search?filter=name%3D'pricecast-TATA'")["model_versions"]
    assert killed["run_id"] not in {v["run_id"] for v in versions}
    assert len(versions) == killed["versions"] + 1  # the killed run registered nothing; the new one did
    pd.testing.assert_frame_equal(PostgresStore(stack.info["urls"]["store"]).read("TATA"), killed["store"])


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
