"""`python -m pricecast.cli …` is the `pricecast` command."""

from pricecast.cli import run

run()
