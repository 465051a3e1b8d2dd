"""pricecast: recurrent-network forecasts of daily prices that retrain themselves.

The library: prices (reading, validating, the store), stages (split, features, prepare, model,
evaluate, plot), tracking (every MLflow call), promotion and forecasts. It never imports Prefect;
`tasks/` and `flows/` wrap it, and `pricecast.cli` drives the flows.
"""
