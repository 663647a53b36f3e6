"""python -m plant: the simulated plant, standalone (see plant/cli.py)."""

import sys

from .cli import main

sys.exit(main())
