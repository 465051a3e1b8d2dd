"""`python -m pricecast.cli …` is the `pricecast` command."""

import sys

from pricecast.cli import main

sys.exit(main())
