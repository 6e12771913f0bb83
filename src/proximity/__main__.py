"""``python -m proximity`` runs the CLI."""

import sys

from proximity.cli.main import main

sys.exit(main())
