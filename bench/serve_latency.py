"""The served model under load: latency of one 60-row request, and throughput with concurrent clients.

Usage: python bench/serve_latency.py [--requests 300] [--clients 8] [--seconds 15] [--data-dir ../shared/data]

Trains a small version on the seed's data in a temporary home (2 epochs: the network's size, not
its quality, sets the cost of a request), times its network alone in this process, serves it with
the real `pricecast serve-model` (MLflow's model server) on a free port, then sends the last 60
days as one request, over and over on one
connection: p50, p90 and p99 against the targets (p50 <= 10 ms, p99 <= 30 ms). Then `--clients`
threads send requests for `--seconds`: requests per second and their latency.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
PRICECAST = [sys.executable, "-m", "pricecast.cli"]


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def post(connection: http.client.HTTPConnection, body: bytes) -> float:
    """One request; its latency in milliseconds."""
    start = time.perf_counter()
    connection.request("POST", "/invocations", body, {"Content-Type": "application/json"})
    response = connection.getresponse()
    answer = response.read()
    assert response.status == 200, answer
    return (time.perf_counter() - start) * 1e3


def serve(home: Path, port: int, env: dict[str, str], log: Path) -> subprocess.Popen:
    command = [*PRICECAST, "serve-model", "--ticker", "TATA", "--model-port", str(port), "--home", str(home)]
    command += ["--version", "1"]  # the network itself: a 2-epoch version loses, and would be replaced by a baseline
    output = log.open("w")
    server = subprocess.Popen(
        command, env=env, cwd=ROOT, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
    )
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        assert server.poll() is None, log.read_text()[-3000:]
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2):
                return server
        except OSError:
            time.sleep(1)
    raise RuntimeError("the model server did not start:\n" + log.read_text()[-3000:])


def forward_pass_ms(home: Path, repeat: int = 300) -> tuple[str, float]:
    """The registered network alone (NumPy, in this process) on one window: its kind and median milliseconds."""
    import mlflow
    import numpy as np

    uri = f"sqlite:///{home / 'mlruns' / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    model = mlflow.pyfunc.load_model("models:/pricecast-TATA/1").unwrap_python_model()
    network = model.network  # a NumpyNetwork: what the served version forecasts with
    window = np.random.default_rng(0).normal(size=(1, model.lookback, len(model.inputs))).astype("float32")
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        network(window)
        times.append((time.perf_counter() - start) * 1e3)
    units = network.weights["recurrent"].shape[0]
    return f"{network.cell}({units}), {model.lookback} days x {len(model.inputs)} inputs", quantile(times, 0.5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--data-dir", type=Path, default=ROOT.parent / "shared" / "data")
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_API", "MLFLOW_TRACKING"))}
    prices = args.data_dir / "NSETATAGLOBAL.csv"
    last = pd.read_csv(prices).sort_values("Date").tail(60)
    rows = last[["Date", "Open", "High", "Low", "Close"]].to_numpy().tolist()  # what the default network reads
    body = json.dumps({"dataframe_split": {"columns": ["date", "open", "high", "low", "close"], "data": rows}}).encode()

    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        train = [*PRICECAST, "train", "--data", str(prices), "--ticker", "TATA", "--epochs", "2", "--home", str(home)]
        subprocess.run(train, env=env, cwd=ROOT, check=True, capture_output=True)
        kind, ms = forward_pass_ms(home)
        print(f"the network alone, in NumPy ({kind}): median {ms:.2f} ms a window")
        from pricecast.stack.procs import free_port

        port = free_port()
        server = serve(home, port, env, Path(tmp) / "serve.log")
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            for _ in range(20):  # warm-up
                post(connection, body)
            latencies = [post(connection, body) for _ in range(args.requests)]
            p50, p90, p99 = (quantile(latencies, q) for q in (0.5, 0.9, 0.99))
            print(f"one 60-row request, {args.requests} in a row on one connection:")
            print(f"  p50 {p50:.1f} ms (target <= 10), p90 {p90:.1f} ms, p99 {p99:.1f} ms (target <= 30)")

            stop, counts, loaded = time.perf_counter() + args.seconds, [], []

            def client() -> None:
                mine = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                times = []
                while time.perf_counter() < stop:
                    times.append(post(mine, body))
                counts.append(len(times))
                loaded.extend(times)

            threads = [threading.Thread(target=client) for _ in range(args.clients)]
            start = time.perf_counter()
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            elapsed = time.perf_counter() - start
            print(f"{args.clients} concurrent clients for {elapsed:.1f} s: {sum(counts) / elapsed:.0f} requests/s,")
            print(f"  p50 {quantile(loaded, 0.5):.1f} ms, p99 {quantile(loaded, 0.99):.1f} ms")
        finally:
            os.killpg(server.pid, signal.SIGTERM)  # the model server and its uvicorn workers
            server.wait(timeout=60)


if __name__ == "__main__":
    main()
