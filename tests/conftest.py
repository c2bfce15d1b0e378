"""Shared fixtures: an actor system per test, and private redis-servers for any test folder."""

from __future__ import annotations

import random
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent / "redis"))
sys.path.insert(0, str(Path(__file__).parent / "gateway"))
sys.path.insert(0, str(Path(__file__).parent / "helpers"))
sys.path.insert(0, str(Path(__file__).parent / "kotlin"))
sys.path.insert(0, str(Path(__file__).parent.parent / "scripts"))  # dev.py, for its tests
sys.path.insert(0, str(Path(__file__).parent.parent / "examples"))  # mirrors some tests use
from _servers import RedisServer, running_redis_server
from kotlin_peer import KotlinPeer, require_kotlin_peer

from actors import ActorSystem, open_actor_system


@pytest.fixture
async def system() -> AsyncIterator[ActorSystem]:
    """An actor system with a seeded random source, closed in order after the test."""
    async with open_actor_system(random=random.Random(1234)) as actor_system:
        yield actor_system


@pytest.fixture(scope="module")
def module_redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A private redis-server shared by one test module (skips without redis-server)."""
    with running_redis_server(tmp_path_factory.mktemp("redis")) as server:
        yield server.url


@pytest.fixture
def fresh_redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A private redis-server for one test, which the test may kill and restart."""
    with running_redis_server(tmp_path / "redis-server") as server:
        yield server


@pytest.fixture(scope="session")
def kotlin_peer() -> KotlinPeer:
    """The guide's Kotlin peer, compiled once (or taken from the build cache).

    Skips without the Kotlin toolchain; fails instead in CI or under ``ACTORS_REQUIRE_REDIS=1``.
    """
    return require_kotlin_peer()
