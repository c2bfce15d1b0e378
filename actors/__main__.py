"""``python -m actors``: the command line."""

from __future__ import annotations

import sys

from actors.cli import main

sys.exit(main())
