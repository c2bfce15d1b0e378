"""``python -m actors``: the ``actors`` program (``actors.server.cli``).

The one module of the framework's top level that imports the server: it is the program, not a
library module, and nothing imports it (the layering test names it as the entry point).
"""

from __future__ import annotations

import sys

from actors.server.cli import main

sys.exit(main())
