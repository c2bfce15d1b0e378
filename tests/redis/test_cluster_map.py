"""The slot map read from ``CLUSTER SHARDS``, and the cluster URL form."""

from __future__ import annotations

import pytest
from _servers import cluster_node_args

from actors.redis import (
    HASH_SLOTS,
    ClusterSettings,
    NodeRole,
    RedisProtocolError,
    RedisRedirectError,
    RedisReplyError,
    RedisSettings,
    RedisUrlError,
    SlotMap,
    is_cluster_url,
    open_redis_connection,
    reply_error,
)
from actors.testing import RedisServerFactory


def node(
    node_id: str,
    port: int,
    role: str = "master",
    *,
    endpoint: bytes = b"10.0.0.1",
    health: bytes = b"online",
) -> dict[bytes, object]:
    return {
        b"id": node_id.encode(),
        b"port": port,
        b"tls-port": port + 10_000,
        b"ip": b"10.0.0.1",
        b"endpoint": endpoint,
        b"role": role.encode(),
        b"replication-offset": 0,
        b"health": health,
    }


THREE_SHARDS = [
    {b"slots": [0, 5460], b"nodes": [node("a", 7000), node("d", 7003, "replica")]},
    {b"slots": [5461, 10922], b"nodes": [node("b", 7001), node("e", 7004, "replica")]},
    {b"slots": [10923, 16383], b"nodes": [node("c", 7002), node("f", 7005, "replica")]},
]


def test_three_shards_cover_every_slot() -> None:
    slots = SlotMap.from_shards(THREE_SHARDS, asked_host="seed")
    assert slots.uncovered() == 0
    assert [master.port for master in slots.masters()] == [7000, 7001, 7002]
    for slot, port in [(0, 7000), (5460, 7000), (5461, 7001), (10923, 7002), (16383, 7002)]:
        master = slots.master_of(slot)
        assert master is not None
        assert (master.host, master.port, master.role) == ("10.0.0.1", port, NodeRole.MASTER)
    shard = slots.shard_of(0)
    assert shard is not None
    assert [replica.id for replica in shard.replicas] == ["d"]


def test_tls_clusters_use_the_tls_port() -> None:
    slots = SlotMap.from_shards(THREE_SHARDS, asked_host="seed", tls=True)
    assert [master.port for master in slots.masters()] == [17000, 17001, 17002]


def test_resp2_flat_arrays_read_like_maps() -> None:
    def flat(fields: dict[bytes, object]) -> list[object]:
        return [item for pair in fields.items() for item in pair]

    reply = [
        [b"slots", [0, 16383], b"nodes", [flat(node("a", 7000, endpoint=b""))]],
    ]
    slots = SlotMap.from_shards(reply, asked_host="seed")
    master = slots.master_of(100)
    assert master is not None
    assert master.address == ("10.0.0.1", 7000)  # no endpoint: the IP


def test_a_node_without_endpoint_or_ip_is_where_the_map_was_asked() -> None:
    lone = node("a", 7000, endpoint=b"?")
    lone[b"ip"] = b""
    slots = SlotMap.from_shards([{b"slots": [0, 16383], b"nodes": [lone]}], asked_host="seed")
    master = slots.master_of(0)
    assert master is not None
    assert master.address == ("seed", 7000)


def test_slots_no_online_master_serves_are_uncovered() -> None:
    reply = [
        {b"slots": [0, 99], b"nodes": [node("a", 7000, health=b"failed")]},
        {b"slots": [100, 16000], b"nodes": [node("b", 7001)]},
        {b"slots": [], b"nodes": [node("c", 7002, "replica")]},  # a shard mid-failover
    ]
    slots = SlotMap.from_shards(reply, asked_host="seed")
    assert slots.uncovered() == 100 + (HASH_SLOTS - 16001)
    assert slots.master_of(16383) is None
    assert slots.shard_of(16383) is None


def test_moved_gives_one_slot_to_another_master() -> None:
    slots = SlotMap.from_shards(THREE_SHARDS, asked_host="seed")
    moved = slots.moved(0, "10.0.0.1", 7001)
    master = moved.master_of(0)
    assert master is not None
    assert master.port == 7001
    assert moved.master_of(1) == slots.master_of(1)
    assert slots.master_of(0) != master  # the original is unchanged
    elsewhere = slots.moved(5, "10.9.9.9", 7777)
    new = elsewhere.master_of(5)
    assert new is not None
    assert (new.address, new.id) == (("10.9.9.9", 7777), "")
    assert len(elsewhere.shards) == 4


@pytest.mark.parametrize(
    ("reply", "complaint"),
    [
        (b"nope", "not a list of shards"),
        ([{b"nodes": []}], "without slots or nodes"),
        ([{b"slots": [0], b"nodes": []}], "without slots or nodes"),
        ([{b"slots": [5, 2], b"nodes": []}], "not a slot range"),
        ([{b"slots": [0, 16384], b"nodes": []}], "not a slot range"),
        ([{b"slots": [0, b"9"], b"nodes": []}], "not a slot range"),
        ([{b"slots": [0, 9], b"nodes": [b"x"]}], "a node is not a map"),
        ([{b"slots": [0, 9], b"nodes": [{b"id": b"a", b"role": b"master"}]}], "usable port"),
        ([{b"slots": [0, 9], b"nodes": [{**node("a", 1), b"role": b"boss"}]}], "role 'boss'"),
        ([{b"slots": [0, 9], b"nodes": [node("a", 1), node("b", 2)]}], "two masters"),
        (
            [{b"slots": [0, 9], b"nodes": [node("a", 1)]}, {b"slots": [9, 9], b"nodes": []}],
            "slot 9 is in two shards",
        ),
    ],
)
def test_a_reply_of_the_wrong_shape_is_a_protocol_error(reply: object, complaint: str) -> None:
    with pytest.raises(RedisProtocolError, match=complaint):
        SlotMap.from_shards(reply, asked_host="seed")


async def test_a_real_cluster_node_reads_as_one_shard(
    redis_server_factory: RedisServerFactory,
) -> None:
    server = redis_server_factory(cluster_node_args())
    async with open_redis_connection(server.url) as redis:
        assert await redis.execute("CLUSTER", "ADDSLOTSRANGE", 0, HASH_SLOTS - 1) == b"OK"
        slots = SlotMap.from_shards(
            await redis.execute("CLUSTER", "SHARDS"), asked_host=server.host
        )
    assert slots.uncovered() == 0
    (master,) = slots.masters()
    assert master.address == (server.host, server.port)
    assert len(master.id) == 40


def test_cluster_urls_name_their_seeds() -> None:
    settings = ClusterSettings.from_url(
        "redis+cluster://ada:s%40cret@a.example:7000,b.example,[::1]:7002"
        "?connect_timeout=2&replica_subscriptions=yes&refresh_interval=10"
    )
    assert settings.seeds == (("a.example", 7000), ("b.example", 6379), ("::1", 7002))
    assert settings.replica_subscriptions
    assert settings.refresh_interval == 10.0
    assert (settings.node.username, settings.node.password) == ("ada", "s@cret")
    assert settings.node.connect_timeout == 2.0
    assert not settings.node.tls
    assert settings.for_node("10.0.0.5", 7005) == RedisSettings(
        host="10.0.0.5", port=7005, username="ada", password="s@cret", connect_timeout=2.0
    )
    assert "s@cret" not in repr(settings)
    assert settings.describe() == "redis+cluster://ada@a.example:7000,b.example:6379,[::1]:7002"
    tls = ClusterSettings.from_url("rediss+cluster://h:1/?tls_verify_hostname=false")
    assert tls.node.tls
    assert not tls.node.tls_verify_hostname
    assert is_cluster_url("REDIS+CLUSTER://h:1")
    assert not is_cluster_url("redis://h:1")


@pytest.mark.parametrize(
    ("url", "complaint"),
    [
        ("redis://h:1", "scheme must be"),
        ("redis+cluster://", "without a host"),
        ("redis+cluster://h:1,,h:2", "without a host"),
        ("redis+cluster://h:99999", "not a port"),
        ("redis+cluster://h:x", "not a port"),
        ("redis+cluster://[::1", "not a host"),
        ("redis+cluster://h:1/2", "no path"),
        ("redis+cluster://h:1?db=2", "only database 0"),
        ("redis+cluster://h:1?refresh_interval=0", "refresh_interval must be a positive"),
        ("redis+cluster://h:1?replica_subscriptions=maybe", "must be true or false"),
        ("redis+cluster://h:1?nonsense=1", "unknown option 'nonsense'"),
        ("redis+cluster://h:1?replica_subscriptions=1&replica_subscriptions=0", "given twice"),
        ("redis+cluster://ada:secret@h:1#x", "fragments"),
    ],
)
def test_bad_cluster_urls_are_refused_clearly(url: str, complaint: str) -> None:
    with pytest.raises(RedisUrlError, match=complaint) as caught:
        ClusterSettings.from_url(url)
    assert "secret" not in str(caught.value)


@pytest.mark.parametrize(
    ("message", "moved", "slot", "host", "port"),
    [
        ("MOVED 3999 127.0.0.1:6381", True, 3999, "127.0.0.1", 6381),
        ("ASK 0 node-1.example:7000", False, 0, "node-1.example", 7000),
        ("MOVED 16383 ::1:7002", True, 16383, "::1", 7002),
        ("MOVED 12 [::1]:7002", True, 12, "::1", 7002),
        ("MOVED 12 :7002", True, 12, "", 7002),  # the node does not know its own endpoint
    ],
)
def test_moved_and_ask_replies_name_the_node(
    message: str, moved: bool, slot: int, host: str, port: int
) -> None:
    error = reply_error(message)
    assert isinstance(error, RedisRedirectError)
    assert (error.moved, error.slot, error.host, error.port) == (moved, slot, host, port)
    assert error.code == message.split()[0]


@pytest.mark.parametrize(
    "message",
    ["MOVED", "MOVED 16384 h:1", "MOVED x h:1", "ASK 1 h", "ASK 1 h:0", "MOVED 1 h:1 extra"],
)
def test_a_malformed_redirect_stays_a_plain_reply_error(message: str) -> None:
    error = reply_error(message)
    assert type(error) is RedisReplyError
    assert error.message == message
