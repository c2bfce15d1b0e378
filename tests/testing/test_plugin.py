"""The kit's pytest plugin, as a user's project meets it: a pytest of its own, in a subprocess.

The project under test has only a test file and an ini file with ``trio_mode = true``: the plugin
comes from the entry point of the installed ``actors``. Each run is a subprocess, so that the
inner session's configuration and warnings stay out of this one.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

USER_TESTS = """
import trio
import trio.testing

from actors import ActorSystem
from actors.pubsub import ConnectionOptions, PubSubSettings, open_pubsub
from actors.testing import Inbox, MemoryRedisServer, RedisServer


async def test_actor_system(actor_system: ActorSystem) -> None:
    inbox = Inbox()

    async def worker(context: object) -> None:
        await inbox("started")

    await actor_system.spawn(worker)
    assert await inbox.wait_for(1) == ["started"]


async def test_memory_redis_in_virtual_time(
    actor_system: ActorSystem,
    memory_redis: MemoryRedisServer,
    autojump_clock: trio.testing.MockClock,
) -> None:
    settings = PubSubSettings(connection=ConnectionOptions(connector=memory_redis.connect))
    async with open_pubsub(actor_system, "redis://memory", settings=settings) as pubsub:
        assert await pubsub.publish("news", "hello") == 0
        start = trio.current_time()
        await trio.sleep(3600)
        assert trio.current_time() - start == 3600.0  # no real hour passed
    assert memory_redis.attempt_times() == [0.0]


async def test_redis_server_restarts_on_its_port(redis_server: RedisServer) -> None:
    port = redis_server.port
    redis_server.kill()
    await redis_server.restart_async()
    assert (redis_server.port, redis_server.starts) == (port, 2)
"""

INI = "[pytest]\ntrio_mode = true\n"


@pytest.fixture
def project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """A user's project: the tests above and trio mode, nothing of this repository's setup."""
    monkeypatch.delenv("ACTORS_REQUIRE_REDIS", raising=False)
    pytester.makeini(INI)
    pytester.makepyfile(test_user=USER_TESTS)
    return pytester


@pytest.mark.redis
def test_the_fixtures_serve_a_project_without_a_conftest(project: pytest.Pytester) -> None:
    result = project.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=3)


def test_tests_that_use_a_real_server_are_marked_redis(project: pytest.Pytester) -> None:
    result = project.runpytest_subprocess("-p", "no:cacheprovider", "-m", "not redis")
    result.assert_outcomes(passed=2, deselected=1)


def test_without_redis_server_the_test_is_skipped_or_under_the_variable_failed(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(project.mkdir("empty-bin")))  # no redis-server on it
    result = project.runpytest_subprocess("-p", "no:cacheprovider", "-rs")
    result.assert_outcomes(passed=2, skipped=1)
    result.stdout.fnmatch_lines(["*redis-server is not on PATH*ACTORS_REQUIRE_REDIS=1*"])

    monkeypatch.setenv("ACTORS_REQUIRE_REDIS", "1")
    result = project.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(["*redis-server is not on PATH*turns this skip into a failure*"])


def test_the_entry_point_imports_nothing_of_actors() -> None:
    """pytest loads it before coverage starts: ``actors`` is imported later, and measured."""
    code = (
        "import sys, _actors_pytest_plugin; "
        "assert not [m for m in sys.modules if m.split('.')[0] == 'actors'], sorted(sys.modules)"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_the_kit_imports_without_pytest() -> None:
    """``import actors.testing`` (servers, in-memory Redis, waits) works where pytest is absent."""
    code = "import sys; sys.modules['pytest'] = None; import actors.testing"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
