"""``python -m telemetry_client`` runs the ``telemetry-client`` command line."""

import sys

from .cli import main

sys.exit(main())
