"""``python -m human3r_demo run VIDEO --out DIR``; see :mod:`human3r_demo.cli`."""

import sys

from .cli import main

sys.exit(main())
