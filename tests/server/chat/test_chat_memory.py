"""Chat rooms on ``memory://`` under a mock clock: idle stop, rate limit, history, validation."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from actors import ActorSystem
from actors.messages import InvalidIdentifierError
from actors.pubsub import Position, open_pubsub
from actors.server.chat import (
    ChatMessage,
    InvalidChatMessageError,
    RateLimit,
    RateLimitedError,
    RoomHistory,
    open_chat_service,
    room_channel,
)
from actors.supervision import Restart


async def test_room_actor_starts_on_demand_and_stops_when_idle(
    system: ActorSystem, autojump_clock: trio.testing.MockClock
) -> None:
    async with (
        open_pubsub(system, "memory://") as pubsub,
        open_chat_service(system, pubsub, idle_timeout=10.0) as chat,
    ):
        assert chat.active_rooms() == set()
        start = trio.current_time()
        await chat.send("lobby", "ada", "hello")
        assert chat.active_rooms() == {"lobby"}
        [child] = chat.rooms_supervisor.which_children()
        assert child.restart is Restart.TRANSIENT
        room_ref = child.ref
        await trio.sleep(6.0)
        await chat.send("lobby", "ada", "still here")  # activity pushes the deadline to 16 s
        await trio.sleep(9.0)
        assert chat.active_rooms() == {"lobby"}
        reason = await room_ref.wait_stopped()
        assert trio.current_time() - start == pytest.approx(16.0)
        assert type(reason).__name__ == "Normal"
        await trio.testing.wait_all_tasks_blocked()
        assert chat.active_rooms() == set()
        assert chat.rooms_supervisor.count_children().active == 0  # not restarted
        # The history outlives the actor; the next request starts a fresh one.
        history = await chat.history("lobby")
        assert [m.text for m in history] == ["hello", "still here"]
        assert chat.active_rooms() == {"lobby"}
        assert chat.rooms_supervisor.which_children()[0].ref is not room_ref


async def test_rate_limit_is_a_token_bucket(
    system: ActorSystem, autojump_clock: trio.testing.MockClock
) -> None:
    async with (
        open_pubsub(system, "memory://") as pubsub,
        open_chat_service(system, pubsub, rate=RateLimit(rate=5.0, burst=10)) as chat,
    ):
        start = trio.current_time()
        for index in range(10):
            await chat.send("lobby", "ada", f"burst {index}")
        with pytest.raises(RateLimitedError) as refused:
            await chat.send("lobby", "ada", "one too many")
        assert refused.value.user_id == "ada"
        assert refused.value.retry_after == pytest.approx(0.2)
        await chat.send("lobby", "bob", "others are not limited")
        await trio.sleep_until(start + 0.19)
        with pytest.raises(RateLimitedError):
            await chat.send("lobby", "ada", "still too soon")
        await trio.sleep_until(start + 0.2)
        await chat.send("lobby", "ada", "a token came back")
        with pytest.raises(RateLimitedError):
            await chat.send("lobby", "ada", "and was spent")
        await trio.sleep_until(start + 0.2 + 10 / 5.0)  # refilled to the burst, not beyond
        for index in range(10):
            await chat.send("lobby", "ada", f"second burst {index}")
        with pytest.raises(RateLimitedError):
            await chat.send("lobby", "ada", "over again")


async def test_history_is_capped_and_oldest_first(system: ActorSystem) -> None:
    rate = RateLimit(rate=1000.0, burst=1000)
    async with (
        open_pubsub(system, "memory://") as pubsub,
        open_chat_service(system, pubsub, history_size=3, rate=rate) as chat,
    ):
        assert await chat.history("empty") == []
        for index in range(5):
            await chat.send("r1", "ada", f"m{index}")
        await chat.send("r2", "bob", "elsewhere")
        assert [m.text for m in await chat.history("r1")] == ["m2", "m3", "m4"]
        assert [m.text for m in await chat.history("r1", limit=2)] == ["m3", "m4"]
        assert [m.user_id for m in await chat.history("r2")] == ["bob"]


async def test_send_publishes_on_the_room_channel(system: ActorSystem) -> None:
    received: list[ChatMessage] = []
    arrived = trio.Event()

    async def on_message(message: ChatMessage) -> None:
        received.append(message)
        arrived.set()

    async with (
        open_pubsub(system, "memory://") as pubsub,
        open_chat_service(system, pubsub) as chat,
    ):
        handle = await chat.subscribe("lobby", on_message)
        try:
            sent = await chat.send("lobby", "ada", "hi all")
            with trio.fail_after(5):
                await arrived.wait()
        finally:
            await handle.close()
        assert received == [sent]
        assert room_channel("lobby") == "chat:lobby"


@pytest.mark.parametrize("room", ["*", "a b", "", "lobby*", "x" * 65, "caf\u00e9", "a:b", "a@b"])
async def test_bad_room_names_are_refused(system: ActorSystem, room: str) -> None:
    async with (
        open_pubsub(system, "memory://") as pubsub,
        open_chat_service(system, pubsub) as chat,
    ):
        with pytest.raises(InvalidIdentifierError, match="invalid room name"):
            await chat.send(room, "ada", "hello")
        with pytest.raises(InvalidIdentifierError, match="invalid room name"):
            await chat.history(room)
        assert chat.active_rooms() == set()


@pytest.mark.parametrize(
    ("user_id", "text"),
    [("ada", ""), ("ada", "   \n"), ("ada", "x" * 2001), ("", "hello"), ("u" * 65, "hello")],
    ids=["empty", "blank", "too-long", "no-user", "long-user"],
)
async def test_bad_messages_are_refused(system: ActorSystem, user_id: str, text: str) -> None:
    async with (
        open_pubsub(system, "memory://") as pubsub,
        open_chat_service(system, pubsub) as chat,
    ):
        # A bad user id breaks the one rule of user ids; a bad text is chat's own.
        with pytest.raises(InvalidChatMessageError if user_id == "ada" else InvalidIdentifierError):
            await chat.send("lobby", user_id, text)
        assert isinstance(InvalidChatMessageError("x"), ValueError)
        await chat.send("lobby", "ada", "x" * 2000)  # the limit itself is allowed
        assert [m.text for m in await chat.history("lobby")] == ["x" * 2000]


async def test_settings_are_checked(system: ActorSystem) -> None:
    with pytest.raises(ValueError, match="rate"):
        RateLimit(rate=0)
    with pytest.raises(ValueError, match="burst"):
        RateLimit(burst=0)
    async with open_pubsub(system, "memory://") as pubsub:
        with pytest.raises(ValueError, match="history_size"):
            async with open_chat_service(system, pubsub, history_size=0):
                pass
        with pytest.raises(ValueError, match="idle_timeout"):
            async with open_chat_service(system, pubsub, idle_timeout=0):
                pass


async def test_a_reader_gets_what_came_after_its_position_or_the_newest(
    system: ActorSystem,
) -> None:
    rate = RateLimit(rate=1000.0, burst=1000)
    async with (
        open_pubsub(system, "memory://") as pubsub,
        open_chat_service(system, pubsub, history_size=4, rate=rate) as chat,
    ):
        empty = await chat.read("quiet")
        for index in range(1, 7):
            await chat.send("r1", "ada", f"m{index}")
        everything = await chat.read("r1")
        assert everything.position is not None
        epoch = everything.position.epoch
        after_four = await chat.read("r1", since=Position(epoch, 4))
        up_to_date = await chat.read("r1", since=Position(epoch, 6))
        other_epoch = await chat.read("r1", since=Position("elsewhere", 4))
        too_far_back = await chat.read("r1", since=Position(epoch, 1))  # 5 missed, 4 kept
    assert empty == RoomHistory([], None, resumed=False)
    assert [(p.offset, m.text) for p, m in everything.messages] == [
        (3, "m3"), (4, "m4"), (5, "m5"), (6, "m6")
    ]  # fmt: skip
    assert not everything.resumed
    assert [m.text for _, m in after_four.messages] == ["m5", "m6"]
    assert after_four.resumed
    assert after_four.position == Position(epoch, 6)
    assert up_to_date == RoomHistory([], Position(epoch, 6), resumed=True)
    assert other_epoch == everything
    assert too_far_back == everything
