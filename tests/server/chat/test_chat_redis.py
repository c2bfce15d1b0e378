"""Chat rooms on a private real redis-server: the rooms' history streams and publish delivery.

Real sockets: no autojump clock; waits have deadlines.
"""

from __future__ import annotations

import pytest
import trio
import trio.testing

from actors import ActorSystem
from actors.pubsub import RedisPubSub, open_pubsub
from actors.pubsub._history import history_keys
from actors.server.chat import (
    CHAT_CHANNELS,
    ChatMessage,
    RateLimit,
    chat_history,
    open_chat_service,
    room_channel,
)
from actors.testing import RedisServer

FAST = RateLimit(rate=1000.0, burst=1000)


@pytest.fixture(scope="module")
def chat_redis(module_redis_url: str) -> str:
    return module_redis_url


async def test_history_is_the_room_channel_s_capped_stream(
    system: ActorSystem, chat_redis: str
) -> None:
    async with (
        open_pubsub(system, chat_redis) as one,
        open_pubsub(system, chat_redis) as two,
        open_chat_service(system, one, history_size=5, rate=FAST) as first,
        open_chat_service(system, two, history_size=5, rate=FAST) as second,
    ):
        for index in range(8):
            await first.send("capped", "ada", f"m{index}")
        broker = one.broker
        assert isinstance(broker, RedisPubSub)
        keys = history_keys(room_channel("capped"))
        assert keys.stream == "{chat:capped}:history:stream"
        assert await broker.connection().execute("XLEN", keys.stream) == 8  # MAXLEN ~ trims nodes
        # Another process (here, another service on another connection) sees the same history.
        history = await second.history("capped")
        assert [m.text for m in history] == ["m3", "m4", "m5", "m6", "m7"]
        assert all(isinstance(m, ChatMessage) and m.room == "capped" for m in history)
        assert [m.text for m in await second.history("capped", limit=2)] == ["m6", "m7"]
        assert await second.history("never-used") == []
        newest = await second.read("capped", limit=1)
        assert [(p.offset, m.text) for p, m in newest.messages] == [(8, "m7")]


async def test_messages_reach_a_subscriber_on_another_connection(
    system: ActorSystem, chat_redis: str
) -> None:
    received: list[ChatMessage] = []
    all_three = trio.Event()

    async def on_message(message: ChatMessage) -> None:
        received.append(message)
        if len(received) == 3:
            all_three.set()

    async with (
        open_pubsub(system, chat_redis) as sender,
        open_pubsub(system, chat_redis) as listener,
        open_chat_service(system, sender, rate=FAST) as chat,
    ):
        # Another process's subscriber knows the rooms' channels carry history, as every process
        # running the chat service does: it reads each message out of its envelope.
        listener.keep_history(CHAT_CHANNELS, chat_history(50))
        handle = await listener.subscribe(
            room_channel("delivery"), on_message, message_type=ChatMessage
        )
        try:
            sent = [await chat.send("delivery", "ada", f"hello {index}") for index in range(3)]
            with trio.fail_after(5):
                await all_three.wait()
        finally:
            await handle.close()
        assert received == sent


async def test_a_message_sent_while_redis_is_down_waits_for_the_reconnect(
    system: ActorSystem, redis_server: RedisServer
) -> None:
    redis_server.kill()
    async with (
        open_pubsub(system, redis_server.url) as pubsub,
        open_chat_service(system, pubsub, rate=FAST) as chat,
        trio.open_nursery() as nursery,
    ):
        sent: list[ChatMessage] = []
        done = trio.Event()

        async def send() -> None:
            sent.append(await chat.send("late", "ada", "sent before Redis was up"))
            done.set()

        nursery.start_soon(send)
        await trio.testing.wait_all_tasks_blocked()
        assert sent == []  # waiting for a connection, not refused
        await trio.to_thread.run_sync(redis_server.start)
        with trio.fail_after(15):
            await done.wait()
        assert [m.text for m in await chat.history("late")] == ["sent before Redis was up"]
