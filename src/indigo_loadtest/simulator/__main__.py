"""`python -m indigo_loadtest.simulator`: same as `indigo-loadtest serve`."""

import sys

from .cli import main

sys.exit(main())
