"""The integration guide's Kotlin services and ``actors``, talking through Redis (issue 15, req. 5).

The Kotlin peer (tests/kotlin/GuidePeer.kt: the guide's classes, the real kotlinx.serialization
and its default ``Json``) publishes every guide message kind, and typed subscriptions decode each
into an attrs object equal to the Kotlin value; then ``PubSub.publish`` sends the same values,
and kotlinx decodes each into a value it writes back exactly as it writes its own. The mirrors
and their codec are examples/kotlin_interop.py.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable

import trio
from kotlin_interop import AS_KOTLIN_TYPE, KOTLIN, SAMPLES
from kotlin_peer import KotlinPeer

from actors import ActorSystem
from actors.pubsub import PubSubSettings, open_pubsub
from actors.testing import RedisServer

TIMEOUT = 30.0


async def test_every_guide_message_from_kotlin_decodes_into_equal_objects(
    system: ActorSystem, kotlin_peer: KotlinPeer, redis_server: RedisServer
) -> None:
    url = redis_server.url
    received: dict[str, list[object]] = defaultdict(list)
    all_in = trio.Event()

    def collector(kind: str) -> Callable[[object], Awaitable[None]]:
        async def collect(message: object) -> None:
            received[kind].append(message)
            if sum(map(len, received.values())) == len(SAMPLES):
                all_in.set()

        return collect

    with trio.fail_after(TIMEOUT):
        async with open_pubsub(system, url, settings=PubSubSettings(codec=KOTLIN)) as pubsub:
            handles = [
                await pubsub.subscribe(
                    kotlin_peer.channel("from-kotlin", kind), collector(kind), message_type=as_type
                )
                for kind, as_type in AS_KOTLIN_TYPE.items()
            ]
            lines = await kotlin_peer.publish(url, "from-kotlin")
            await all_in.wait()
    expected: dict[str, list[object]] = defaultdict(list)
    for kind, value in SAMPLES:
        expected[kind].append(value)
    assert received == expected
    assert all(handle.statistics().counters.decode_errors == 0 for handle in handles)
    # The one kind kotlinx cannot write at all is the guide's PubSubMessage.Notification through
    # its sealed base (its "type" property clashes with the discriminator).
    assert [line.kind for line in lines if line.json is None] == ["PubSubMessage"]


async def test_every_guide_message_from_python_is_taken_by_kotlinx_as_its_own(
    system: ActorSystem, kotlin_peer: KotlinPeer, redis_server: RedisServer
) -> None:
    """kotlinx decodes each payload and writes it again exactly as it writes its own value:
    it decoded an equal value, and refused nothing (its default Json refuses unknown keys)."""
    url = redis_server.url
    with trio.fail_after(TIMEOUT):
        own = [line for line in await kotlin_peer.publish(url, "kotlin-own") if line.json]
        async with (
            open_pubsub(system, url, settings=PubSubSettings(codec=KOTLIN)) as pubsub,
            kotlin_peer.receiving(url, "from-python", len(SAMPLES)) as receiver,
        ):
            for kind, value in SAMPLES:
                channel = kotlin_peer.channel("from-python", kind)
                await pubsub.publish(channel, value, as_type=AS_KOTLIN_TYPE[kind])
            lines = await receiver.lines()
    assert [(line.kind, line.json, line.error) for line in lines] == [
        (line.kind, line.json, None) for line in own
    ]
