"""The test kit's private Redis Cluster (issue 11, requirement 6).

``redis_cluster`` is one cluster of 3 masters and 3 replicas for the session, reset before each
test; the tests kill, restart, fail over and migrate on the real processes, and read roles from
the cluster rather than assume them. The tests that form clusters of their own (stop, a failed
start, a rebuild) cost about 2.5 s each.
"""

from __future__ import annotations

import itertools
import os
import shutil
import textwrap
from pathlib import Path

import pytest
import trio

from actors.redis import RedisReplyError, open_redis_connection
from actors.testing import (
    CLUSTER_SLOTS,
    RedisCluster,
    RedisClusterNode,
    RedisServerError,
    missing_tooling,
)
from actors.testing.pytest_plugin import require_redis_server

FAILOVER_BOUND = 10.0  # seconds: a failover takes about two node timeouts (1 s each) and a vote


def other_master(cluster: RedisCluster, than: RedisClusterNode) -> RedisClusterNode:
    return next(master for master in cluster.masters() if master is not than)


def redis_server_executable() -> str:
    path = shutil.which("redis-server")
    assert path is not None
    return path


def assert_no_process(pids: list[int]) -> None:
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


async def test_the_cluster_has_three_masters_with_a_replica_each_serving_every_slot(
    redis_cluster: RedisCluster,
) -> None:
    masters, replicas = redis_cluster.masters(), redis_cluster.replicas()
    assert len(masters) == 3
    assert len(replicas) == 3
    assert {*masters, *replicas} == set(redis_cluster.nodes)
    assert all(len(redis_cluster.replicas(master)) == 1 for master in masters)
    assert len(set(redis_cluster.pids)) == 6
    assert redis_cluster.seed_url() in redis_cluster.urls

    # The masters' slot ranges, end to end, are 0 to 16383; every node sees them the same way.
    ranges = sorted(
        slots for master in masters for slots in master.cluster_nodes()[master.node_id].slots
    )
    assert ranges[0][0] == 0
    assert ranges[-1][1] == CLUSTER_SLOTS - 1
    assert all(left[1] + 1 == right[0] for left, right in itertools.pairwise(ranges))
    assert redis_cluster.master_of_slot(0) is masters[0]
    assert redis_cluster.master_of_slot(CLUSTER_SLOTS - 1) is masters[-1]
    for node in redis_cluster.nodes:
        info = node.cluster_info()
        assert info["cluster_state"] == "ok"
        assert info["cluster_slots_ok"] == str(CLUSTER_SLOTS)
        assert info["cluster_known_nodes"] == "6"
        assert info["cluster_size"] == "3"

    # The project's own client talks to a node; another master redirects with MOVED.
    slot = redis_cluster.key_slot("greeting")
    owner = redis_cluster.master_of_slot(slot)
    async with open_redis_connection(owner.url) as redis:
        assert await redis.execute("SET", "greeting", "hello") == b"OK"
    async with open_redis_connection(other_master(redis_cluster, owner).url) as redis:
        with pytest.raises(RedisReplyError, match=rf"^MOVED {slot} 127.0.0.1:{owner.port}$"):
            await redis.execute("GET", "greeting")


async def test_a_killed_master_is_replaced_by_its_replica_and_rejoins_as_its_replica(
    redis_cluster: RedisCluster,
) -> None:
    master = redis_cluster.master_of_slot(0)
    [replica] = redis_cluster.replicas(master)
    started = trio.current_time()
    redis_cluster.kill(master)
    assert master.pid is None
    await redis_cluster.wait_ok_async()
    assert trio.current_time() - started < FAILOVER_BOUND
    assert redis_cluster.master_of_slot(0) is replica
    assert master not in redis_cluster.masters()

    await redis_cluster.restart_async(master)  # same port, same nodes.conf
    assert master.starts == 2
    assert redis_cluster.replicas(replica) == [master]
    assert all(
        node.cluster_nodes()[master.node_id].master_id == replica.node_id
        for node in redis_cluster.nodes
    )


async def test_a_manual_failover_swaps_a_master_and_its_replica(
    redis_cluster: RedisCluster,
) -> None:
    slot = redis_cluster.key_slot("kept")
    master = redis_cluster.master_of_slot(slot)
    [replica] = redis_cluster.replicas(master)
    master.command("SET", "kept", "across the failover")
    master.command("WAIT", 1, 5000)

    await redis_cluster.failover_async(replica)

    assert redis_cluster.master_of_slot(slot) is replica
    assert redis_cluster.replicas(replica) == [master]
    for node in redis_cluster.nodes:
        view = node.cluster_nodes()
        assert view[replica.node_id].is_master
        assert view[master.node_id].master_id == replica.node_id
    assert replica.command("GET", "kept") == b"across the failover"


async def test_migrating_a_slot_moves_its_keys_and_the_source_answers_moved(
    redis_cluster: RedisCluster,
) -> None:
    slot = redis_cluster.key_slot("{moving}")
    source = redis_cluster.master_of_slot(slot)
    target = other_master(redis_cluster, source)
    keys = [f"{{moving}}:{number}" for number in range(150)]  # more than one MIGRATE batch
    async with open_redis_connection(source.url) as redis:
        for key in keys:
            await redis.execute("SET", key, key.upper())

    assert await redis_cluster.migrate_slot_async(slot, source, target) == len(keys)

    assert redis_cluster.master_of_slot(slot) is target
    assert target.command("CLUSTER", "COUNTKEYSINSLOT", slot) == len(keys)
    async with open_redis_connection(target.url) as redis:
        assert await redis.execute("GET", keys[7]) == keys[7].upper().encode()
    async with open_redis_connection(source.url) as redis:
        with pytest.raises(RedisReplyError, match=rf"^MOVED {slot} 127.0.0.1:{target.port}$"):
            await redis.execute("GET", keys[7])
    for node in redis_cluster.nodes:  # every node, replicas too, knows the new owner
        slots = node.cluster_nodes()[target.node_id].slots
        assert any(first <= slot <= last for first, last in slots)


async def test_wait_ok_names_the_node_that_is_not_ok_and_its_cluster_info(
    redis_cluster: RedisCluster,
) -> None:
    master = redis_cluster.masters()[0]
    redis_cluster.kill(master)
    with pytest.raises(RedisServerError) as raised:
        redis_cluster.wait_ok(timeout=0)
    message = str(raised.value)
    first_running = next(node for node in redis_cluster.nodes if node.running)
    assert f"is not ok after 0 s: {first_running!r} (id {first_running.node_id}): " in message
    assert "the running masters serve 1" in message
    assert f" of {CLUSTER_SLOTS} slots\n" in message
    assert "--- its CLUSTER INFO ---\ncluster_state:" in message
    await redis_cluster.restart_async(master)


async def test_reset_restarts_the_killed_nodes_and_flushes_every_key(
    redis_cluster: RedisCluster,
) -> None:
    replica = redis_cluster.replicas()[0]
    owner = redis_cluster.master_of_slot(redis_cluster.key_slot("leftover"))
    owner.command("SET", "leftover", "x")
    redis_cluster.kill(replica)

    await redis_cluster.reset_async()

    assert len(redis_cluster.pids) == 6
    assert replica.running
    assert all(node.command("DBSIZE") == 0 for node in redis_cluster.nodes)


def test_reset_forms_a_new_cluster_when_the_old_one_does_not_heal(
    redis_cluster: RedisCluster,
) -> None:
    slot = redis_cluster.key_slot("stuck")
    source = redis_cluster.master_of_slot(slot)
    target = other_master(redis_cluster, source)
    target.command("CLUSTER", "SETSLOT", slot, "IMPORTING", source.node_id)  # and nothing more
    old_pids = redis_cluster.pids

    redis_cluster.reset(timeout=0.2)

    assert_no_process(old_pids)
    assert not set(redis_cluster.nodes) & {source, target}
    assert len(redis_cluster.masters()) == 3
    assert len(redis_cluster.replicas()) == 3
    redis_cluster.wait_ok(timeout=0)


def test_the_fault_methods_refuse_what_they_cannot_do(redis_cluster: RedisCluster) -> None:
    stranger = RedisClusterNode()
    master = redis_cluster.masters()[0]
    with pytest.raises(RuntimeError, match="is already running"):
        redis_cluster.start()
    with pytest.raises(ValueError, match="is not a node of"):
        redis_cluster.kill(stranger)
    with pytest.raises(ValueError, match="is a master, not a replica"):
        redis_cluster.failover(master)
    slot = master.cluster_nodes()[master.node_id].slots[0][0]
    with pytest.raises(ValueError, match=f"does not serve slot {slot}"):
        redis_cluster.migrate_slot(slot, other_master(redis_cluster, master), master)
    with pytest.raises(ValueError, match="is not another master"):
        redis_cluster.migrate_slot(slot, master, master)
    with pytest.raises(ValueError, match="is not another master"):
        redis_cluster.migrate_slot(slot, master, redis_cluster.replicas(master)[0])
    stranger.stop()


def test_a_node_answers_commands_and_raises_its_error_replies(
    redis_cluster: RedisCluster,
) -> None:
    slot = redis_cluster.key_slot("elsewhere")
    owner = redis_cluster.master_of_slot(slot)
    node = other_master(redis_cluster, owner)
    assert node.command("PING") == b"PONG"
    with pytest.raises(RedisReplyError, match=rf"^MOVED {slot} 127.0.0.1:{owner.port}$"):
        node.command("GET", "elsewhere")
    with pytest.raises(TypeError, match="answered 0, not text"):
        node.text("DBSIZE")
    assert node.text("CLUSTER", "MYID") == node.node_id
    assert node.bus_port not in {0, node.port}
    assert f"--cluster-port {node.bus_port}" in " ".join(node.command_line())


def test_a_cluster_needs_three_masters_and_no_negative_replicas() -> None:
    with pytest.raises(ValueError, match="at least 3 masters"):
        RedisCluster(masters=2)
    with pytest.raises(ValueError, match="must not be negative"):
        RedisCluster(replicas_per_master=-1)


@pytest.mark.redis
async def test_stop_kills_every_node_by_pid_and_removes_the_directory() -> None:
    require_redis_server(cluster=True)
    cluster = await RedisCluster().start_async()
    try:
        pids = cluster.pids
        assert len(pids) == 6
        for pid in pids:
            os.kill(pid, 0)  # alive
        directory = trio.Path(cluster.directory)
        assert await directory.is_dir()
    finally:
        await cluster.stop_async()
    assert cluster.pids == []
    assert_no_process(pids)
    assert not await directory.exists()
    with pytest.raises(RedisServerError, match="no node is running"):
        cluster.seed_url()


@pytest.mark.redis
def test_a_failed_join_stops_every_node_it_started(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    require_redis_server(cluster=True)
    bin_directory = tmp_path / "bin"
    bin_directory.mkdir()
    fake_cli = bin_directory / "redis-cli"
    fake_cli.write_text("#!/bin/sh\necho 'cannot join: no luck'\nexit 3\n")
    fake_cli.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_directory}{os.pathsep}{os.environ['PATH']}")
    cluster = RedisCluster(tmp_path / "cluster")
    with pytest.raises(RedisServerError, match="failed with code 3:\ncannot join: no luck"):
        cluster.start()
    assert cluster.pids == []
    assert all(node.starts == 1 and not node.running for node in cluster.nodes)


@pytest.mark.redis
def test_without_redis_cli_a_cluster_cannot_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    require_redis_server()
    bin_directory = tmp_path / "bin"
    bin_directory.mkdir()
    (bin_directory / "redis-server").symlink_to(redis_server_executable())
    monkeypatch.setenv("PATH", str(bin_directory))
    assert missing_tooling() is None
    assert "redis-cli is not on PATH" in (missing_tooling(cluster=True) or "")
    with pytest.raises(RedisServerError, match="redis-cli is not on PATH"):
        RedisCluster(tmp_path / "cluster").start()


CLUSTER_USER_TESTS = textwrap.dedent(
    """
    from actors.testing import RedisCluster


    def test_uses_the_cluster(redis_cluster: RedisCluster) -> None:
        assert len(redis_cluster.masters()) == 3
    """
)


@pytest.mark.redis
def test_without_redis_cli_the_cluster_tests_are_skipped_or_under_the_variable_failed(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    require_redis_server()
    monkeypatch.delenv("ACTORS_REQUIRE_REDIS", raising=False)
    pytester.makeini("[pytest]\ntrio_mode = true\n")
    pytester.makepyfile(test_user=CLUSTER_USER_TESTS)
    bin_directory = tmp_path / "bin"
    bin_directory.mkdir()
    (bin_directory / "redis-server").symlink_to(redis_server_executable())
    monkeypatch.setenv("PATH", str(bin_directory))

    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*redis-cli is not on PATH*ACTORS_REQUIRE_REDIS=1*"])

    monkeypatch.setenv("ACTORS_REQUIRE_REDIS", "1")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*redis-cli is not on PATH*turns this skip into a failure*"])


def test_commands_share_one_connection(redis_cluster: RedisCluster) -> None:
    node = redis_cluster.masters()[0]
    first, second = node.commands(("CLIENT", "ID"), ("CLIENT", "ID"))
    assert first == second  # WAIT after a write relies on it (see RedisCluster.reset)
    assert first != node.command("CLIENT", "ID")
    with pytest.raises(RedisReplyError, match="unknown command"):
        node.commands(("PING",), ("NO-SUCH-COMMAND",))
