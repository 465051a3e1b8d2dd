"""What every process the project starts sets first: no phoning home, and the collector's pace.

The CLI, the warm process, the task runner's spawned workers, the servers the project starts, the tests and the
benchmarks call these; they are not configuration (no flag or YAML field sets them).
"""

from __future__ import annotations

import gc
import os

#: Prefect, MLflow and TensorFlow must not phone home or chatter: these machines are offline.
OFFLINE_ENV = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "true",
    "TF_CPP_MIN_LOG_LEVEL": "3",
}


def go_offline(env: dict[str, str] | None = None) -> dict[str, str]:
    """Set the offline variables in `env` (default: this process's environment) unless already set; returns it.

    The CLI, the tests, the benchmarks and every server the project starts call this one function.
    """
    env = os.environ if env is None else env
    for key, value in OFFLINE_ENV.items():
        env.setdefault(key, value)
    return env


#: Python collects its youngest objects after every 700 new ones by default. Importing TensorFlow, Prefect and
#: MLflow and tracing a Keras model make millions: collecting after every 10,000 saves about 12% of a small
#: training's CPU (docs/engineering-notes.md). PRICECAST_GC_YOUNG sets another threshold (700: Python's own).
YOUNG_GENERATION = 10_000


def curl_before_tensorflow() -> None:
    """Load curl_cffi's libcurl (yfinance's transport, and every price source's) before TensorFlow's.

    TensorFlow brings a libcurl of its own; loaded first, it takes the symbols curl_cffi binds to, and every
    curl_cffi request in that process then fails ("Impersonating chrome152 is not supported"). Processes that
    may import TensorFlow before they fetch call this first: the warm process (it preloads TensorFlow) and the
    test processes. About 80 ms; a process that has TensorFlow already gains nothing from it.
    """
    import curl_cffi._wrapper  # noqa: F401 - loading the library is the point


def fewer_collections() -> None:
    """Collect the youngest objects after every `YOUNG_GENERATION` new ones (or $PRICECAST_GC_YOUNG): this process
    and what it forks. The older generations keep Python's pace.

    The CLI, the warm process, the task runner's spawned workers and the tests call it first thing.
    """
    young = int(os.environ.get("PRICECAST_GC_YOUNG") or YOUNG_GENERATION)
    gc.set_threshold(young, *gc.get_threshold()[1:])
