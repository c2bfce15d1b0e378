"""The ``pytest11`` entry point of actors' test kit: it loads ``actors.testing.pytest_plugin``.

pytest imports entry-point plugins before any coverage plugin starts measuring, so this module
imports nothing of ``actors``: had it imported the kit at once, the import-time lines of every
module of ``actors`` (imports, definitions) would count as never run in a coverage report of
``actors``. The kit is registered instead once pytest is configured, under its module's name, so
that a ``conftest.py`` naming it in ``pytest_plugins`` does not load it a second time.
"""

from __future__ import annotations

from typing import Final

import pytest

PLUGIN: Final = "actors.testing.pytest_plugin"


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    """Register the kit's plugin, unless a ``conftest.py`` or ``-p`` did already."""
    config.pluginmanager.import_plugin(PLUGIN)
