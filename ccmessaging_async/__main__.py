"""``python -m ccmessaging_async``: the console script, as ``ccmessaging-async`` runs it."""

import sys

from .cli import main

sys.exit(main())
