"""The project's own fixtures; the shared ones come from the plugin of ``actors.testing``.

The plugin (private redis-servers, ``actor_system``, ``memory_redis``, the ``redis`` marker and
its skip-or-fail policy) is registered by the ``pytest11`` entry point of the editable install
that ``scripts/dev.py`` makes; ``pytest_plugins`` below loads it too when the checkout is only on
the path, and pytest does not load it twice.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent / "redis"))
sys.path.insert(0, str(Path(__file__).parent / "server" / "gateway"))
sys.path.insert(0, str(Path(__file__).parent / "helpers"))
sys.path.insert(0, str(Path(__file__).parent / "kotlin"))
sys.path.insert(0, str(Path(__file__).parent.parent / "scripts"))  # dev.py, for its tests
sys.path.insert(0, str(Path(__file__).parent.parent / "examples"))  # mirrors some tests use
from kotlin_peer import KotlinPeer, require_kotlin_peer

from actors import ActorSystem

# pytester runs the plugin in projects of its own (tests/testing/test_plugin.py).
pytest_plugins = ["actors.testing.pytest_plugin", "pytester"]


@pytest.fixture
def system(actor_system: ActorSystem) -> ActorSystem:
    """The plugin's ``actor_system``, under the short name the project's tests use."""
    return actor_system


@pytest.fixture(scope="session")
def kotlin_peer() -> KotlinPeer:
    """The guide's Kotlin peer, compiled once (or taken from the build cache).

    Skips without the Kotlin toolchain; fails instead in CI or under ``ACTORS_REQUIRE_REDIS=1``.
    """
    return require_kotlin_peer()
