"""The registered model: a Keras network with its scaler, predicting prices from prices.

Logged as an MLflow pyfunc model, so a registered version is a self-describing forecaster:
input one row per window with the last `lookback` prices (`t-<lookback>` ... `t-1`, oldest
first, in price units), output the next day's price.
"""

from __future__ import annotations

import joblib
import mlflow.pyfunc
import numpy as np
import pandas as pd


def window_columns(lookback: int) -> list[str]:
    """Input column names, oldest first: `t-60`, ..., `t-1`."""
    return [f"t-{lag}" for lag in range(lookback, 0, -1)]


def windows_frame(x_prices: np.ndarray) -> pd.DataFrame:
    """Windows in price units (samples, lookback[, 1]) as the model's input frame."""
    x_prices = np.asarray(x_prices, dtype="float64").reshape(len(x_prices), -1)
    return pd.DataFrame(x_prices, columns=window_columns(x_prices.shape[1]))


class PriceForecaster(mlflow.pyfunc.PythonModel):
    """Scales each input window, runs the network, and returns prices."""

    def load_context(self, context: mlflow.pyfunc.PythonModelContext) -> None:
        import keras

        self.network = keras.models.load_model(context.artifacts["network"], compile=False)
        self.scaler = joblib.load(context.artifacts["scaler"])

    def predict(self, context: mlflow.pyfunc.PythonModelContext, model_input: pd.DataFrame, params: dict | None = None) -> np.ndarray:
        values = np.asarray(model_input, dtype="float64")
        scaled = self.scaler.transform(values.reshape(-1, 1)).reshape(values.shape[0], values.shape[1], 1)
        predicted = self.network.predict(scaled.astype("float32"), verbose=0).reshape(-1, 1)
        return self.scaler.inverse_transform(predicted).ravel()
