"""Does a registered version load where only its declared requirements are installed?

Makes a fresh virtual environment, installs the version's own `requirements.txt` into it (nothing
else: no pricecast, no Prefect), loads the version there with `mlflow.pyfunc.load_model` and
forecasts from the store, then compares with the same forecast made here. Prints the times.

    .venv/bin/python bench/model_env.py --home DIR --ticker GOOG [--version 1]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FORECAST = """
import json, sys, mlflow, pandas as pd
model = mlflow.pyfunc.load_model(sys.argv[1])
print(json.dumps(model.predict(pd.read_csv(sys.argv[2]), params={"horizon": 3}).to_dict("list")))
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, required=True, help="a pricecast home with a trained ticker")
    parser.add_argument("--ticker", default="GOOG")
    parser.add_argument("--version", default="1")
    args = parser.parse_args()

    import mlflow

    uri = f"sqlite:///{args.home.resolve() / 'mlruns' / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    model_uri = f"models:/pricecast-{args.ticker}/{args.version}"
    store = args.home.resolve() / "data" / "prices" / f"{args.ticker}.csv"
    requirements = Path(mlflow.pyfunc.get_model_dependencies(model_uri))
    print(f"{model_uri} declares: {' '.join(requirements.read_text().split())}")
    here = json.loads(
        subprocess.run(
            [sys.executable, "-c", FORECAST, model_uri, str(store)],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "MLFLOW_TRACKING_URI": uri},
        ).stdout.splitlines()[-1]
    )

    with tempfile.TemporaryDirectory() as tmp:
        venv = Path(tmp) / "venv"
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        python = venv / "bin" / "python"
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", "-r", str(requirements)], check=True)
        installed = time.perf_counter() - start
        has_pricecast = (
            subprocess.run([str(python), "-c", "import pricecast.forecaster"], capture_output=True, cwd=tmp).returncode
            == 0
        )
        has_prefect = (
            subprocess.run([str(python), "-c", "import prefect"], capture_output=True, cwd=tmp).returncode == 0
        )
        start = time.perf_counter()
        out = subprocess.run(
            [str(python), "-c", FORECAST, model_uri, str(store)],
            capture_output=True,
            text=True,
            cwd=tmp,
            env={
                "PATH": os.environ["PATH"],
                "MLFLOW_TRACKING_URI": uri,
                "TF_CPP_MIN_LOG_LEVEL": "3",
                "MLFLOW_DISABLE_TELEMETRY": "true",
            },
        )
        loaded = time.perf_counter() - start
    if out.returncode != 0:
        print(out.stderr[-3000:])
        return 1
    there = json.loads(out.stdout.splitlines()[-1])
    print(
        f"fresh venv: install {installed:.1f} s; pricecast importable: {has_pricecast}; prefect importable: "
        f"{has_prefect}"
    )
    print(f"load and forecast there: {loaded:.1f} s -> {there}")
    print(f"same forecast as in the project's venv: {there == here}")
    return 0 if there == here else 1


if __name__ == "__main__":
    sys.exit(main())
