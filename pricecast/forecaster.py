"""The registered model: price history in, forecast prices with their dates out.

MLflow runs this file as the model's code when a version is logged or loaded (models from code),
so it is self-contained: it needs MLflow, Keras, scikit-learn, pandas and joblib, never
pricecast, and a registered version loads anywhere those are installed. `set_model` at the
bottom is what makes the file a model; importing the module (tests do, to build the in-memory
twin of a version) only records that class as MLflow's current code model.

Input: a DataFrame of at least `lookback` rows of daily history: `date` (text, YYYY-MM-DD or
M/D/YYYY) and the target column (`open`, say); the store's other columns may come along.
Param `horizon` (default 1): trading days to forecast, one step at a time, each forecast fed
back as the newest price. Output: `date` (the weekday each forecast is for) and `forecast`.
"""

from __future__ import annotations

import joblib
import mlflow.models
import mlflow.pyfunc
import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException

MAX_HORIZON = 260  # a trading year


def bad_input(message: str) -> MlflowException:
    """An error the model server answers with 400 and this message."""
    return MlflowException.invalid_parameter_value(message)


def history_values(history: pd.DataFrame, target: str, lookback: int) -> tuple[pd.Timestamp, np.ndarray]:
    """The last date and the last `lookback` target prices of a history frame, checked.

    Raises:
        MlflowException (400): a missing column, unparseable or repeated dates, a price that
        is not a positive number, or fewer than `lookback` rows; the message names the row and value.
    """
    if not isinstance(history, pd.DataFrame):
        raise bad_input(f"Expected a table with columns 'date' and '{target}', got {type(history).__name__}")
    missing = [c for c in ("date", target) if c not in history.columns]
    if missing:
        raise bad_input(
            f"Missing column {', '.join(repr(c) for c in missing)} (got {', '.join(map(str, history.columns))})"
        )
    if len(history) < lookback:
        raise bad_input(f"{len(history)} rows of history are too few: the model needs the last {lookback} days")
    text = history["date"].astype("string").str.strip()
    dates = pd.to_datetime(text, format="%Y-%m-%d", errors="coerce").fillna(
        pd.to_datetime(text, format="%m/%d/%Y", errors="coerce")
    )
    if dates.isna().any():
        row = int(np.argmax(dates.isna().to_numpy()))
        raise bad_input(
            f"Row {row}: date {history['date'].iloc[row]!r} is not a date (expected YYYY-MM-DD or M/D/YYYY)"
        )
    if dates.duplicated().any():
        row = int(np.argmax(dates.duplicated().to_numpy()))
        raise bad_input(f"Row {row}: date {text.iloc[row]} appears twice")
    prices = pd.to_numeric(history[target], errors="coerce").to_numpy(dtype="float64")
    bad = ~(prices > 0)  # NaN, zero, negative
    if bad.any():
        row = int(np.argmax(bad))
        value = history[target].iloc[row]
        shown = repr(value) if isinstance(value, str) else str(value)
        raise bad_input(f"Row {row}: {target} {shown} is not a positive price")
    order = np.argsort(dates.to_numpy(), kind="stable")
    return pd.Timestamp(dates.iloc[order[-1]]), prices[order][-lookback:]


def model_input(frame: pd.DataFrame, target: str, lookback: int) -> pd.DataFrame:
    """A store frame's last `lookback` days as the model's input: ISO date text and the target price."""
    tail = frame.tail(lookback)
    return pd.DataFrame(
        {
            "date": pd.to_datetime(tail["date"]).dt.strftime("%Y-%m-%d").to_numpy(),
            target: tail[target].to_numpy(dtype="float64"),
        }
    )


def trading_days_after(day: pd.Timestamp, count: int) -> pd.DatetimeIndex:
    """The next `count` weekdays after `day` (exchange holidays are not known to the model)."""
    return pd.bdate_range(day + pd.Timedelta(days=1), periods=count)


class PriceForecaster(mlflow.pyfunc.PythonModel):
    """The network, its scaler and its window settings, forecasting in price units."""

    @classmethod
    def from_parts(cls, network, scaler, lookback: int, target: str) -> PriceForecaster:
        """The in-memory twin of a registered version, from a trained network and its fitted scaler."""
        model = cls()
        model.network, model.scaler, model.lookback, model.target = network, scaler, int(lookback), target
        return model

    def load_context(self, context):
        import keras

        self.network = keras.models.load_model(context.artifacts["network"], compile=False)
        self.scaler = joblib.load(context.artifacts["scaler"])
        self.lookback = int(context.model_config["lookback"])
        self.target = context.model_config["target"]
        self.next_prices(np.ones((1, self.lookback)))  # traces the network once, here, not on the first request

    def next_prices(self, windows: np.ndarray) -> np.ndarray:
        """One-step forecasts: one row per window of `lookback` prices (oldest first) -> the next price."""
        values = np.asarray(windows, dtype="float64").reshape(len(windows), -1)
        scaled = self.scaler.transform(values.reshape(-1, 1)).reshape(values.shape[0], values.shape[1], 1)
        # predict_on_batch, not predict: predict builds a data pipeline on every call (~100 ms a request)
        predicted = np.asarray(self.network.predict_on_batch(scaled.astype("float32"))).reshape(-1, 1)
        return self.scaler.inverse_transform(predicted).ravel()

    def predict(self, context, model_input: pd.DataFrame, params: dict | None = None):
        horizon = int((params or {}).get("horizon", 1))
        if not 1 <= horizon <= MAX_HORIZON:
            raise bad_input(f"horizon {horizon} is not between 1 and {MAX_HORIZON} trading days")
        last_day, window = history_values(model_input, self.target, self.lookback)
        forecasts = []
        for _ in range(horizon):
            forecasts.append(float(self.next_prices(window[np.newaxis, :])[0]))
            window = np.append(window[1:], forecasts[-1])
        return pd.DataFrame({"date": trading_days_after(last_day, horizon).strftime("%Y-%m-%d"), "forecast": forecasts})


mlflow.models.set_model(PriceForecaster())
