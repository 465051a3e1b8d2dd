"""The model registry: a run's model packaged as a self-contained pyfunc, its versions and the champion alias."""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version
from pathlib import Path
from typing import TYPE_CHECKING, Any

import joblib
import mlflow
import pandas as pd
from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion
from mlflow.models import infer_signature

from pricecast.forecaster import LEVELS, NumpyNetwork, PriceForecaster, model_input
from pricecast.interrupts import held_signals

if TYPE_CHECKING:
    from pricecast.stages.features import FeatureTransform

CHAMPION = "champion"
FORECASTER_CODE = Path(__file__).parents[1] / "forecaster.py"
#: What a registered version needs to load and predict (pricecast/forecaster.py's imports).
MODEL_REQUIREMENTS = ("mlflow", "tensorflow", "scikit-learn", "pandas", "joblib")


def model_name(ticker: str) -> str:
    return f"pricecast-{ticker}"


def requirement_mismatches(requirements: list[str]) -> list[str]:
    """`package==pinned (installed: version)` for each pinned requirement this environment does not match."""
    mismatched = []
    for line in requirements:
        name, pinned = line.split(";")[0].strip().partition("==")[::2]
        if not pinned:
            continue
        try:
            installed = package_version(name)
        except PackageNotFoundError:
            installed = "none"
        if installed != pinned:
            mismatched.append(f"{name}=={pinned} (installed: {installed})")
    return mismatched


def load_forecaster(name: str, version: str | int) -> mlflow.pyfunc.PyFuncModel:
    """A registered version as a pyfunc model, with a warning naming each of its pinned requirements this
    environment does not match (MLflow's own check maps every installed module to its package: a second)."""
    folder = Path(mlflow.artifacts.download_artifacts(f"models:/{name}/{version}"))
    requirements = folder / "requirements.txt"
    mismatched = requirement_mismatches(requirements.read_text().splitlines()) if requirements.exists() else []
    if mismatched:
        logging.getLogger(__name__).warning("%s v%s was logged with %s", name, version, ", ".join(mismatched))
    return mlflow.pyfunc.load_model(str(folder), suppress_warnings=True)


def _registered(name: str) -> mlflow.entities.model_registry.RegisteredModel | None:
    try:
        return MlflowClient().get_registered_model(name)
    except mlflow.exceptions.MlflowException as exc:
        if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
            return None
        raise


def champion(ticker: str) -> ModelVersion | None:
    """The version holding the `champion` alias, if any."""
    model = _registered(model_name(ticker))
    if model is None or CHAMPION not in model.aliases:
        return None
    return MlflowClient().get_model_version(model.name, model.aliases[CHAMPION])


def last_challenger(ticker: str) -> ModelVersion | None:
    """The version the last retrain decided on (promoted or kept), if any."""
    model = _registered(model_name(ticker))
    if model is None or "last_challenger" not in model.tags:
        return None
    return MlflowClient().get_model_version(model.name, model.tags["last_challenger"])


def forecaster_of(model: mlflow.pyfunc.PyFuncModel) -> PriceForecaster:
    """The forecaster inside a loaded version: its lookback, target and one-step `next_prices`."""
    return model.unwrap_python_model()


@dataclass(frozen=True)
class ModelRef:
    """What a forecast comes from: a registered version (the champion, another, or one asked for), or a
    baseline served because no registered version beats it (`baseline` names it, `note` says why)."""

    name: str
    version: str
    run_id: str
    alias: str | None
    baseline: str | None = None
    note: str = ""
    target: str = "open"

    @property
    def uri(self) -> str:
        if self.baseline:
            return f"baseline:{self.baseline}"
        return f"models:/{self.name}@{self.alias}" if self.alias == CHAMPION else f"models:/{self.name}/{self.version}"

    @property
    def label(self) -> str:
        if self.baseline:
            return f"the {self.baseline} baseline (fallback: {self.note})"
        what = self.alias if self.alias and self.alias != "requested" else None
        text = f"{self.name} v{self.version} ({what or ('requested' if self.alias else 'latest version: no champion')})"
        return f"{text}; {self.note}" if self.note else text

    @property
    def model_column(self) -> str:
        """The forecasts CSV's `model` value: the registered model's name, or the baseline's."""
        return self.baseline or self.name


def versions(ticker: str) -> list[ModelVersion]:
    """Every version of the ticker's registered model, newest first (empty when there is none)."""
    name = model_name(ticker)
    found = MlflowClient().search_model_versions(f"name = '{name}'") if _registered(name) else []
    return sorted(found, key=lambda v: int(v.version), reverse=True)


def set_version_tags(ticker: str, number: str, tags: dict[str, str]) -> None:
    """Tags on one version (its latest evaluation, for instance)."""
    client = MlflowClient()
    for key, value in tags.items():
        client.set_model_version_tag(model_name(ticker), number, key, value)


def forecast_model(ticker: str) -> ModelRef:
    """The ticker's champion, else its latest version (no judgement of quality: see `pricecast.serving`).

    Raises:
        LookupError: the ticker has no registered version at all.
    """
    best = champion(ticker)
    if best is not None:
        return ModelRef(best.name, str(best.version), best.run_id, CHAMPION)
    found = versions(ticker)
    if not found:
        name = model_name(ticker)
        raise LookupError(f"No registered model {name}: train one first (`pricecast train --ticker {ticker}`)")
    return ModelRef(found[0].name, str(found[0].version), found[0].run_id, None)


def log_baseline(kind: str, target: str, history: pd.DataFrame, method: str, levels: tuple[int, ...]) -> str:
    """Log a parameter-free baseline as a pyfunc model in the active run (no registration); returns its URI.

    Its range is calibrated on its errors over the history's last days, so it holds with any input sent.
    """
    from pricecast.stages.baselines import make_baseline
    from pricecast.stages.features import FeatureSpec, FeatureTransform
    from pricecast.stages.ranges import baseline_calibration, fit_range

    model = make_baseline(kind, target).fit(history)
    spec = FeatureSpec(target, (target,), "level", 1)
    calibration = baseline_calibration(kind, history, target)
    prices = history[target].to_numpy(dtype="float64")
    return log_model(model, FeatureTransform(spec), history, fit_range(method, levels, kind, prices, calibration))


def model_config_of(model: Any, transform: FeatureTransform) -> dict[str, Any]:
    """What the registered model needs to forecast like `model`: a baseline's own settings, or the network's
    representation, inputs and scaling statistics (the `level` scaler travels as an artifact)."""
    if hasattr(model, "packaged"):
        return model.packaged()
    spec = transform.spec
    config: dict[str, Any] = {
        "kind": "network",
        "lookback": spec.lookback,
        "target": spec.target,
        "representation": spec.representation,
        "inputs": list(spec.inputs),
    }
    if spec.representation == "level" and transform.level_scaler is not None:
        config |= {
            "scaler_min": float(transform.level_scaler.min_[0]),
            "scaler_scale": float(transform.level_scaler.scale_[0]),
        }
    if spec.representation == "return":
        config |= {
            "input_mean": [float(v) for v in transform.input_mean],
            "input_std": [float(v) for v in transform.input_std],
            "target_scale": float(transform.target_scale),
        }
    return config


def log_model(
    model: Any,
    transform: FeatureTransform,
    history: pd.DataFrame,
    range_spec: dict | None = None,
    extra: dict[str, Any] | None = None,
) -> str:
    """Log a network (with its scaling) or a fitted baseline as one self-contained pyfunc model; returns its URI.

    The input example is the last `lookback` days of `history`; the signature takes the horizon and
    levels params. `range_spec` (`pricecast.stages.ranges.fit_range`) is how its ranges are made; `extra`
    adds to the model config (a global network's volatility scaling).
    """
    config = model_config_of(model, transform) | (extra or {}) | ({"range": range_spec} if range_spec else {})
    levels = ",".join(str(v) for v in (range_spec or {}).get("levels", LEVELS))
    requirements = [*MODEL_REQUIREMENTS, *(["statsmodels"] if config["kind"] == "arima" else [])]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        artifacts = {}
        network = NumpyNetwork.from_keras(model) if config["kind"] == "network" else None
        if config["kind"] == "network":
            model.save(folder / "network.keras")
            artifacts["network"] = str(folder / "network.keras")
        if network is not None:  # what the version forecasts with, without TensorFlow
            network.save(str(folder / "network.npz"))
            artifacts["weights"] = str(folder / "network.npz")
            if transform.level_scaler is not None and config["representation"] == "level":
                joblib.dump(transform.level_scaler, folder / "scaler.joblib")
                artifacts["scaler"] = str(folder / "scaler.joblib")
        twin = PriceForecaster.from_config(
            config, network or (model if config["kind"] == "network" else None), transform.level_scaler
        )
        example = model_input(history, twin.columns, twin.lookback)
        forecast = twin.predict(None, example)
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=FORECASTER_CODE,
            model_config=config,
            artifacts=artifacts or None,
            signature=infer_signature(example, forecast, params={"horizon": 1, "levels": levels}),
            input_example=(example, {"horizon": 1}),
            pip_requirements=[f"{p}=={package_version(p)}" for p in requirements],
        )
    return info.model_uri


def register(model_uri: str, ticker: str, data_digest: str, description: str) -> ModelVersion:
    """A new version of the ticker's registered model, tagged with the digest of its data, described."""
    name = model_name(ticker)
    with held_signals():  # a stop waits: never a version without its description
        version = mlflow.register_model(model_uri, name, tags={"data_digest": data_digest, "ticker": ticker})
        MlflowClient().update_model_version(name, version.version, description=description)
    return version


def set_champion(ticker: str, version: str) -> None:
    """Move the `champion` alias to a version."""
    MlflowClient().set_registered_model_alias(model_name(ticker), CHAMPION, version)


def add_to_description(ticker: str, version: str, line: str) -> None:
    """Append a paragraph to a version's description."""
    client = MlflowClient()
    before = client.get_model_version(model_name(ticker), version)
    client.update_model_version(before.name, before.version, description=f"{before.description}\n\n{line}")


def model_tags(ticker: str) -> dict[str, str]:
    """The registered model's tags (empty when there is no registered model)."""
    model = _registered(model_name(ticker))
    return dict(model.tags) if model else {}


def set_model_tags(ticker: str, tags: dict[str, str]) -> None:
    """Tags on the ticker's registered model."""
    client = MlflowClient()
    for key, value in tags.items():
        client.set_registered_model_tag(model_name(ticker), key, value)


def version(ticker: str, number: str) -> ModelVersion:
    """One version of the ticker's registered model."""
    return MlflowClient().get_model_version(model_name(ticker), number)
