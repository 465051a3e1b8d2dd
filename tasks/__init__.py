"""Pipeline stages: one module per stage, pure typed functions with a thin Prefect task each."""
