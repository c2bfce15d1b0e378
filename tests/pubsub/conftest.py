"""The broker conformance fixtures: each scenario of the suite runs on both brokers.

``test_broker_conformance.py`` (delivery, counts, glob rules) and ``test_recovery.py`` (history
and recovery) take ``broker_url``: a fresh ``memory://NAME`` server, then a private redis-server.
"""

from __future__ import annotations

import itertools

import pytest

from actors.testing import RedisServer

_names = itertools.count(1)


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """A private redis-server for one test (skipped when redis-server is not installed)."""
    return redis_server.url


@pytest.fixture(params=["memory", "redis"])
def broker_url(request: pytest.FixtureRequest) -> str:
    """Where the brokers of one test meet: a fresh named memory server, or a fresh Redis."""
    if request.param == "memory":
        return f"memory://conformance-{next(_names)}"
    url: str = request.getfixturevalue("redis_url")
    return url
