"""Prefect flows: short recipes of task calls, and the `pricecast` command line."""
