"""``python -m ocinb``: the ``ocinb`` command."""

import sys

from .cli import main

sys.exit(main())
