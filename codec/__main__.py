"""``python -m codec``: the codec command line."""

import sys

from .cli import main

sys.exit(main())
