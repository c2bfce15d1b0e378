"""Shared fixtures: an actor system per test, opened in the test's own trio run."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator

import pytest

from actors import ActorSystem, open_actor_system


@pytest.fixture
async def system() -> AsyncIterator[ActorSystem]:
    """An actor system with a seeded random source, closed in order after the test."""
    async with open_actor_system(random=random.Random(1234)) as actor_system:
        yield actor_system
