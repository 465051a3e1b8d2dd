"""Fault cases 8-13 of issue 5: transient I/O, a stage that raises, a killed process, a full disk,
an unreachable tracking server and two writers at once. Each says what the user sees and what is kept.

Flows run in-process against the shared Prefect test server; the command line runs in
subprocesses pointed at that same server, so Prefect's own record of them can be read back.
"""

from __future__ import annotations

import errno
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from uuid import UUID

import mlflow
import pandas as pd
import pytest
from mlflow import MlflowClient
from prefect import flow
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
from prefect.client.schemas.objects import StateType

import pricecast.prices.sources
import pricecast.prices.store
import pricecast.stages.evaluate
from flows.train import train
from pricecast.config import Config, DataConfig, Paths, SplitConfig, TrackingConfig, TrainingConfig, WindowConfig
from pricecast.errors import DataError, DiskFullError, TrackingError
from pricecast.prices.parse import read_prices
from pricecast.tracking import connect, registry, runs
from tasks.prices import ingest

pytestmark = pytest.mark.reliability

ROOT = Path(__file__).resolve().parents[1]
MODEL = "pricecast-TATA"


# --- data, configs and readers --------------------------------------------------------------


@pytest.fixture(scope="module")
def slices(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The seed's NSE export cut in three: the newest 150 days, the 150 before them, and all 300."""
    lines = (shared_data / "NSETATAGLOBAL.csv").read_text().splitlines()
    folder = tmp_path_factory.mktemp("slices")
    out = {}
    for name, rows in (("new", lines[1:151]), ("old", lines[151:301]), ("both", lines[1:301])):
        out[name] = folder / f"tata-{name}.csv"
        out[name].write_text("\n".join([lines[0], *rows]) + "\n")
    return out


def tiny(home: Path, data: Path, epochs: int = 1) -> Config:
    return Config(
        home=home,
        data=DataConfig(path=data, ticker="TATA"),
        split=SplitConfig(test_days=10),
        window=WindowConfig(lookback=20),
        training=TrainingConfig(epochs=epochs, batch_size=32, seed=1),
    )


def client_for(home: Path) -> MlflowClient:
    uri = f"sqlite:///{home / 'mlruns' / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return MlflowClient(uri, uri)


def all_runs(client: MlflowClient) -> list[mlflow.entities.Run]:
    return client.search_runs(
        [e.experiment_id for e in client.search_experiments()], order_by=["attributes.start_time ASC"]
    )


def versions(client: MlflowClient) -> list[str]:
    return sorted(str(v.version) for v in client.search_model_versions(f"name = '{MODEL}'"))


def flow_run_state(flow_run_id: UUID | str):  # noqa: ANN201 - a Prefect State
    with get_client(sync_client=True) as client:
        return client.read_flow_run(UUID(str(flow_run_id))).state


def task_run(flow_run_id: UUID, name: str, timeout: float = 30) -> tuple[int, list[str]]:
    """Prefect's record of one task of a flow run: its run_count and state names in order.

    Task runs reach the server from a background writer: under load a task's record, its last state and
    run count can land after the flow returns, so this waits (up to `timeout`) until the record has ended.
    """
    deadline = time.monotonic() + timeout
    with get_client(sync_client=True) as client:
        while True:
            found = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
            record = next((t for t in found if t.name.rsplit("-", 1)[0] == name), None)
            states = []
            if record:
                states = [s.name for s in sorted(client.read_task_run_states(record.id), key=lambda s: s.timestamp)]
                if record.run_count > 0 and states and states[-1] in ENDED:
                    return record.run_count, states
            if time.monotonic() > deadline:
                return (record.run_count if record else 0), states
            time.sleep(0.5)


#: Task-run states that end a task run.
ENDED = ("Completed", "Failed", "Crashed", "Cancelled")


# --- the command line in a subprocess -------------------------------------------------------


@pytest.fixture
def cli_env(prefect_harness: None) -> dict[str, str]:
    """The environment of a `python -m pricecast.cli` subprocess: this worktree's code, the test Prefect server."""
    from prefect.settings import PREFECT_API_URL

    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        "PREFECT_API_URL": PREFECT_API_URL.value(),
    }
    for key in ("MLFLOW_TRACKING_URI", "PRICECAST_HOME"):
        env.pop(key, None)
    return env


class Cli:
    """`python -m pricecast.cli <args>` in its own process group, its output collected line by line."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "pricecast.cli", *args],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self.lines: list[str] = []
        self.reader = threading.Thread(target=lambda: self.lines.extend(self.proc.stdout), daemon=True)
        self.reader.start()

    def wait_for(self, text: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not any(text in line for line in self.lines):
            assert self.proc.poll() is None, f"exited {self.proc.returncode} before {text!r}:\n{self.output[-3000:]}"
            assert time.monotonic() < deadline, f"no {text!r} within {timeout} s:\n{self.output[-3000:]}"
            time.sleep(0.2)

    def finish(self, timeout: float) -> int:
        code = self.proc.wait(timeout)
        self.reader.join(10)
        return code

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def stop(self) -> None:
        """End whatever is left of the process group (e.g. a server it started)."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


@pytest.fixture
def clis() -> Iterator[list[Cli]]:
    started: list[Cli] = []
    yield started
    for cli in started:
        cli.stop()


def train_args(home: Path, data: Path, epochs: int) -> list[str]:
    return [
        "train",
        "--home",
        str(home),
        "--data",
        str(data),
        "--ticker",
        "TATA",
        "--epochs",
        str(epochs),
        "--lookback",
        "20",
        "--test-days",
        "10",
        "--batch-size",
        "16",
    ]


# --- transient I/O while reading ---------------------------------------------------------

ROW = pd.DataFrame(
    {
        "date": pd.to_datetime(["2020-01-01"]),
        "open": [1.0],
        "high": [1.0],
        "low": [1.0],
        "close": [1.0],
        "volume": [1.0],
    }
)


@flow
def read_one(path: Path) -> str:
    return ingest(path, "ACME", DataConfig()).ticker


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_harness")
def test_a_transient_read_error_is_retried_by_prefect(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    calls: list[Path] = []

    def flaky(path: Path) -> dict[str, pd.DataFrame]:
        calls.append(path)
        if len(calls) == 1:
            raise OSError(errno.EIO, "Input/output error (injected)")
        return {"": ROW}

    monkeypatch.setattr(pricecast.prices.sources, "read_prices", flaky)
    state = read_one(tmp_path / "a.csv", return_state=True)
    assert state.is_completed() and state.result() == "ACME"
    run_count, states = task_run(state.state_details.flow_run_id, "ingest")
    assert run_count == 2 and len(calls) == 2
    assert states[-3:] == ["AwaitingRetry", "Retrying", "Completed"], states


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_harness")
@pytest.mark.parametrize(
    "error",
    [
        DataError("Value 'x' in a.csv line 3, column 'Open', is not a number"),
        FileNotFoundError("a.csv"),
        OSError(errno.ENOSPC, "No space left on device"),
    ],
    ids=["bad-data", "missing-file", "disk-full"],
)
def test_bad_data_a_missing_file_and_a_full_disk_are_not_retried(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, error: Exception
) -> None:
    def bad(path: Path) -> dict[str, pd.DataFrame]:
        raise error

    monkeypatch.setattr(pricecast.prices.sources, "read_prices", bad)
    state = read_one(tmp_path / "a.csv", return_state=True)
    assert state.is_failed()
    run_count, states = task_run(state.state_details.flow_run_id, "ingest")
    assert run_count == 1 and "AwaitingRetry" not in states and states[-1] == "Failed", states


# --- a stage raises mid-flow -------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_harness")
def test_a_stage_that_raises_fails_both_runs_and_moves_nothing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, slices: dict[str, Path]
) -> None:
    first = train(tiny(tmp_path, slices["new"]))
    client = client_for(tmp_path)
    client.set_registered_model_alias(MODEL, registry.CHAMPION, first.version)

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("evaluation broke (injected)")

    monkeypatch.setattr(pricecast.stages.evaluate, "compare", broken)
    state = train(tiny(tmp_path, slices["both"]), return_state=True)

    assert state.is_failed()
    prefect_state = flow_run_state(state.state_details.flow_run_id)
    assert (
        prefect_state.type == StateType.FAILED and "RuntimeError: evaluation broke (injected)" in prefect_state.message
    )
    client = client_for(tmp_path)
    failed = all_runs(client)[-1]
    assert failed.info.status == "FAILED" and failed.data.tags["error"] == "RuntimeError: evaluation broke (injected)"
    assert failed.data.tags["prefect.flow_run_id"] == str(state.state_details.flow_run_id)
    assert versions(client) == ["1"]
    assert client.get_registered_model(MODEL).aliases == {registry.CHAMPION: 1}


# --- the process is killed mid-training -------------------------------------------------


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_harness")
def test_a_killed_training_leaves_a_whole_store_no_version_and_no_running_run(
    tmp_path: Path, slices: dict[str, Path], cli_env: dict[str, str], clis: list[Cli]
) -> None:
    """SIGKILL and SIGTERM, one process each, both mid-fit on the same store at once."""
    home = tmp_path
    killed = {
        sig: Cli(train_args(home, slices["new"], epochs=20000), cli_env) for sig in (signal.SIGKILL, signal.SIGTERM)
    }
    clis.extend(killed.values())
    for sig, cli in killed.items():
        cli.wait_for("epoch 1/20000", timeout=240)  # mid-fit: 19,999 epochs to go
        cli.proc.send_signal(sig)
    assert killed[signal.SIGKILL].finish(60) == -signal.SIGKILL
    term = killed[signal.SIGTERM]
    assert term.finish(60) == 128 + signal.SIGTERM, term.output[-3000:]
    assert term.output.strip().splitlines()[-1] == "pricecast: stopped by SIGTERM"

    # The store reads back whole; no temporary file is left beside it.
    store_file = Paths(root=home).store_file("TATA")
    assert len(read_prices(store_file)[""]) == 150
    assert [p.name for p in store_file.parent.iterdir() if p.name.endswith(".tmp")] == []

    client = client_for(home)
    runs = {int(r.data.tags["pricecast.pid"]): r for r in all_runs(client)}
    sigterm_run, sigkill_run = runs[term.proc.pid], runs[killed[signal.SIGKILL].proc.pid]
    # SIGTERM: the run ends KILLED and Prefect marks the flow run Crashed.
    assert sigterm_run.info.status == "KILLED" and sigterm_run.data.tags["error"] == "TerminationSignal: SIGTERM"
    assert flow_run_state(sigterm_run.data.tags["prefect.flow_run_id"]).type == StateType.CRASHED
    # SIGKILL: nothing could run, so the run (and Prefect's flow run) still say RUNNING ...
    assert sigkill_run.info.status == "RUNNING"
    assert flow_run_state(sigkill_run.data.tags["prefect.flow_run_id"]).type == StateType.RUNNING
    assert versions(client) == [] and client.search_registered_models() == []

    # ... until the next start, which marks it KILLED and trains normally.
    record = train(tiny(home, slices["new"]))
    client = client_for(home)
    reconciled = client.get_run(sigkill_run.info.run_id)
    assert reconciled.info.status == "KILLED"
    assert (
        f"process {killed[signal.SIGKILL].proc.pid} on {socket.gethostname()} ended without closing the run"
        in reconciled.data.tags["error"]
    )
    assert versions(client) == ["1"] and client.get_model_version(MODEL, "1").run_id == record.run_id
    assert client.get_run(record.run_id).info.status == "FINISHED"


# --- disk full --------------------------------------------------------------------------


def full_disk_under(folder: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Make `os.fsync` of any file under `folder` fail with ENOSPC, as a full disk does; returns the paths hit."""
    real, hit = os.fsync, []

    def fsync(fd: int) -> None:
        path = os.readlink(f"/proc/self/fd/{fd}")
        if path.startswith(str(folder)):
            hit.append(path)
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    return hit


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_harness")
def test_a_full_disk_while_writing_the_store_keeps_the_old_store(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, slices: dict[str, Path]
) -> None:
    train(tiny(tmp_path, slices["new"]))
    store_file = Paths(root=tmp_path).store_file("TATA")
    before = store_file.read_bytes()

    hit = full_disk_under(store_file.parent, monkeypatch)
    state = train(tiny(tmp_path, slices["both"]), return_state=True)  # 150 new rows to write

    assert state.is_failed()
    with pytest.raises(DiskFullError, match=f"^No space left on device while writing {store_file}$"):
        state.result()
    assert store_file.read_bytes() == before and len(hit) == 1  # not retried
    assert sorted(p.name for p in store_file.parent.iterdir()) == [".lock", "TATA.csv"]
    run_count, states = task_run(state.state_details.flow_run_id, "store-prices")
    assert run_count == 1 and states[-1] == "Failed"
    client = client_for(tmp_path)
    assert len(all_runs(client)) == 1 and versions(client) == ["1"]


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_harness")
def test_a_full_disk_while_saving_the_model_fails_the_run_and_registers_nothing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, slices: dict[str, Path]
) -> None:
    train(tiny(tmp_path, slices["new"]))
    artifacts = tmp_path / "mlruns" / "artifacts"
    before = sorted(p.relative_to(artifacts) for p in artifacts.rglob("*"))

    real_copy = shutil.copy2

    def copy2(src: str, dst: str, **kwargs: object) -> str:
        if str(dst).startswith(str(artifacts / "models")):
            raise OSError(errno.ENOSPC, "No space left on device")  # as sendfile raises it: no file name
        return real_copy(src, dst, **kwargs)

    monkeypatch.setattr(shutil, "copy2", copy2)
    state = train(tiny(tmp_path, slices["new"]), return_state=True)

    assert state.is_failed()
    message = f"No space left on device while writing {artifacts}"
    with pytest.raises(DiskFullError, match=f"^{message}$"):
        state.result()
    client = client_for(tmp_path)
    failed = all_runs(client)[-1]
    assert failed.info.status == "FAILED" and failed.data.tags["error"] == f"DiskFullError: {message}"
    assert versions(client) == ["1"]
    assert set(before) <= {
        p.relative_to(artifacts) for p in artifacts.rglob("*")
    }  # the first version's files are all there
    assert registry.load_forecaster(MODEL, "1") is not None


# --- the tracking server is unreachable -------------------------------------------------


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A port that accepts connections and never answers (a hung server)."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        yield f"http://127.0.0.1:{server.getsockname()[1]}"


def closed_port() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}"


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_harness")
def test_an_unreachable_tracking_server_fails_fast_with_one_clear_line(
    tmp_path: Path, slices: dict[str, Path], cli_env: dict[str, str], clis: list[Cli]
) -> None:
    uri = closed_port()
    cli = Cli(train_args(tmp_path, slices["new"], epochs=1), {**cli_env, "MLFLOW_TRACKING_URI": uri})
    clis.append(cli)
    code = cli.finish(120)
    elapsed = time.monotonic() - cli.started
    print(f"\nunreachable tracking server: exit {code} after {elapsed:.1f} s")
    assert code == 1, cli.output[-3000:]
    last = cli.output.strip().splitlines()[-1]
    assert (
        last == f"pricecast: MLflow tracking server {uri} is unreachable ([Errno 111] Connection refused): "
        "start it, or fix --tracking-uri / MLFLOW_TRACKING_URI"
    )
    assert "Traceback" not in cli.output and elapsed < 60
    assert not (tmp_path / "data").exists()  # failed before reading or storing anything


def test_a_hung_tracking_server_fails_after_the_configured_timeout(
    silent_server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In-process, as a served flow meets it; MLflow's own HTTP timeout and retries are bounded too."""
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "7")  # MLflow's defaults: minutes of retries
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "120")
    start = time.monotonic()
    with pytest.raises(
        TrackingError, match=rf"^MLflow tracking server {silent_server} is unreachable \(no answer within 1.5 s\)"
    ):
        connect.connect(
            TrackingConfig(tracking_uri=silent_server, timeout_seconds=1.5, http_retries=1), Paths(root=tmp_path)
        )
    assert 1.4 < time.monotonic() - start < 5
    assert (os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"], os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"]) == ("1", "2")


# --- two flows write the same store and registry at once --------------------------------


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_harness")
def test_two_trainings_at_once_lose_no_row_and_register_one_version_each(
    tmp_path: Path, slices: dict[str, Path], cli_env: dict[str, str], clis: list[Cli]
) -> None:
    pair = {name: Cli(train_args(tmp_path, slices[name], epochs=2), cli_env) for name in ("new", "old")}
    clis.extend(pair.values())
    for cli in pair.values():
        assert cli.finish(300) == 0, cli.output[-4000:]

    store = read_prices(Paths(root=tmp_path).store_file("TATA"))[""]
    expected = (
        pd.concat([read_prices(slices["new"])[""], read_prices(slices["old"])[""]])
        .sort_values("date")
        .reset_index(drop=True)
    )
    pd.testing.assert_frame_equal(store, expected)  # the union: no row lost

    client = client_for(tmp_path)
    found = client.search_model_versions(f"name = '{MODEL}'")
    assert sorted(str(v.version) for v in found) == ["1", "2"]
    sources = {}
    for version in found:
        run = client.get_run(version.run_id)
        assert run.info.status == "FINISHED" and version.tags["data_digest"] == run.data.tags["data_digest"]
        sources[run.data.tags["data.source"]] = str(version.version)
    assert set(sources) == {str(slices["new"]), str(slices["old"])}
    for name, cli in pair.items():
        assert f"Registered model {MODEL} version {sources[str(slices[name])]} " in cli.output


def test_an_experiment_created_meanwhile_by_another_process_is_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = Paths(root=tmp_path)
    connect.connect(TrackingConfig(), paths)
    other = mlflow.create_experiment("pricecast-RACE")  # "another process", just after our look-up found nothing
    real_lookup, lookups = mlflow.get_experiment_by_name, iter([None])
    monkeypatch.setattr(mlflow, "get_experiment_by_name", lambda name: next(lookups, None) or real_lookup(name))
    assert runs.ensure_experiment("pricecast-RACE", paths) == other


def test_write_atomic_on_a_full_disk_names_the_file_and_keeps_the_old_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "TATA.csv"
    target.write_bytes(b"old\n")
    full_disk_under(tmp_path, monkeypatch)
    with pytest.raises(DiskFullError, match=f"^No space left on device while writing {target}$") as raised:
        pricecast.prices.store.write_atomic(target, b"new\n")
    assert raised.value.errno == errno.ENOSPC and isinstance(raised.value, OSError)
    assert target.read_bytes() == b"old\n" and [p.name for p in tmp_path.iterdir()] == ["TATA.csv"]


def test_a_dataset_another_run_inserted_at_the_same_moment_is_linked_on_a_second_try(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two machines retraining one ticker against one team server: MLflow looks for the dataset, then inserts it,
    and the slower insert fails on the key (PostgreSQL's error, as the suite once saw it). The run logs it again
    and goes on; any other tracking error still fails the run."""
    from pricecast.prices.sources import load_default
    from pricecast.stages.split import split_last_days

    config, paths = Config(home=tmp_path), Paths(root=tmp_path)
    connect.connect(config.tracking, paths)
    prices = load_default()
    split = split_last_days(prices.frame.tail(60), 10, "GOOG")
    log_input, calls = mlflow.log_input, []
    taken = (
        'BAD_REQUEST: (psycopg.errors.UniqueViolation) duplicate key value violates unique constraint "dataset_pk"\n'
        "DETAIL:  Key (experiment_id, name, digest)=(1, GOOG-training, 079081fa) already exists."
    )

    def first_insert_loses(dataset: object, context: str) -> None:
        calls.append(context)
        if len(calls) == 1:
            with mlflow.start_run(nested=True):  # the other machine's run inserts the dataset first
                log_input(dataset, context=context)
            raise mlflow.MlflowException(taken)
        log_input(dataset, context=context)

    monkeypatch.setattr(mlflow, "log_input", first_insert_loses)
    with runs.training_run(config, prices, split, None):
        run_id = mlflow.active_run().info.run_id
    client = MlflowClient()
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED" and calls == ["training", "training", "testing"]
    assert sorted(i.dataset.name for i in run.inputs.dataset_inputs) == ["GOOG-testing", "GOOG-training"]

    def unreachable(dataset: object, context: str) -> None:
        raise mlflow.MlflowException("API request to endpoint /api/2.0/mlflow/runs/log-inputs failed")

    monkeypatch.setattr(mlflow, "log_input", unreachable)
    with (
        pytest.raises(mlflow.MlflowException, match="log-inputs failed"),
        runs.training_run(config, prices, split, None),
    ):
        pass
