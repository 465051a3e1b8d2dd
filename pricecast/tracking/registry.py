"""The model registry: a run's model packaged as a self-contained pyfunc, its versions and the champion alias."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from importlib.metadata import version as package_version
from pathlib import Path
from typing import TYPE_CHECKING

import joblib
import mlflow
import pandas as pd
from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion
from mlflow.models import infer_signature

from pricecast.forecaster import PriceForecaster, model_input

if TYPE_CHECKING:
    import keras
    from sklearn.preprocessing import MinMaxScaler

CHAMPION = "champion"
FORECASTER_CODE = Path(__file__).parents[1] / "forecaster.py"
#: What a registered version needs to load and predict (pricecast/forecaster.py's imports).
MODEL_REQUIREMENTS = ("mlflow", "tensorflow", "scikit-learn", "pandas", "joblib")


def model_name(ticker: str) -> str:
    return f"pricecast-{ticker}"


def load_forecaster(name: str, version: str | int) -> mlflow.pyfunc.PyFuncModel:
    """A registered version as a pyfunc model."""
    return mlflow.pyfunc.load_model(f"models:/{name}/{version}")


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
    """The version a forecast comes from: the champion, or the latest version while there is none."""

    name: str
    version: str
    run_id: str
    alias: str | None

    @property
    def uri(self) -> str:
        return f"models:/{self.name}@{self.alias}" if self.alias else f"models:/{self.name}/{self.version}"

    @property
    def label(self) -> str:
        return f"{self.name} v{self.version} ({self.alias or 'latest version: no champion yet'})"


def forecast_model(ticker: str) -> ModelRef:
    """The ticker's champion, else its latest version.

    Raises:
        LookupError: the ticker has no registered version at all.
    """
    best = champion(ticker)
    if best is not None:
        return ModelRef(best.name, str(best.version), best.run_id, CHAMPION)
    name = model_name(ticker)
    versions = MlflowClient().search_model_versions(f"name = '{name}'") if _registered(name) else []
    if not versions:
        raise LookupError(f"No registered model {name}: train one first (`pricecast train --ticker {ticker}`)")
    latest = max(versions, key=lambda v: int(v.version))
    return ModelRef(name, str(latest.version), latest.run_id, None)


def log_model(network: keras.Model, scaler: MinMaxScaler, lookback: int, target: str, history: pd.DataFrame) -> str:
    """Log the network, its scaler and window settings as one self-contained pyfunc model; returns its URI.

    The input example is the last `lookback` days of `history`; the signature takes the horizon param.
    """
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        joblib.dump(scaler, folder / "scaler.joblib")
        network.save(folder / "network.keras")
        example = model_input(history, target, lookback)
        forecast = PriceForecaster.from_parts(network, scaler, lookback, target).predict(None, example)
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=FORECASTER_CODE,
            model_config={"lookback": lookback, "target": target},
            artifacts={"network": str(folder / "network.keras"), "scaler": str(folder / "scaler.joblib")},
            signature=infer_signature(example, forecast, params={"horizon": 1}),
            input_example=(example, {"horizon": 1}),
            pip_requirements=[f"{p}=={package_version(p)}" for p in MODEL_REQUIREMENTS],
        )
    return info.model_uri


def register(model_uri: str, ticker: str, data_digest: str, description: str) -> ModelVersion:
    """A new version of the ticker's registered model, tagged with the digest of its data, described."""
    name = model_name(ticker)
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
