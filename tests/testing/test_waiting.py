"""The kit's waits: ``wait_until`` polls a plain or async condition, ``Inbox`` wakes on each item.

Every wait runs in virtual time (``autojump_clock``), so its instants and deadlines are exact.
"""

from __future__ import annotations

import pytest
import trio
import trio.testing

from actors.testing import POLL_INTERVAL, Inbox, wait_until


async def test_a_plain_condition_is_polled_every_interval(
    autojump_clock: trio.testing.MockClock,
) -> None:
    checks: list[float] = []

    def one_second_passed() -> bool:
        checks.append(trio.current_time())
        return trio.current_time() >= 1.0

    await wait_until(one_second_passed, interval=0.25)
    assert checks == [0.0, 0.25, 0.5, 0.75, 1.0]


async def test_an_async_condition_is_awaited_between_the_intervals(
    autojump_clock: trio.testing.MockClock,
) -> None:
    calls: list[float] = []

    async def third_call() -> bool:
        calls.append(trio.current_time())
        await trio.sleep(0.5)  # a query to a server, say
        return len(calls) == 3

    await wait_until(third_call, interval=0.25)
    assert calls == [0.0, 0.75, 1.5]
    assert trio.current_time() == 2.0


async def test_the_default_interval_is_poll_interval(
    autojump_clock: trio.testing.MockClock,
) -> None:
    checks: list[float] = []

    def second_check() -> bool:
        checks.append(trio.current_time())
        return len(checks) == 2

    await wait_until(second_check)
    assert checks == [0.0, POLL_INTERVAL]


async def test_a_condition_that_never_holds_fails_at_the_deadline_saying_what(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with pytest.raises(trio.TooSlowError, match=r"^timed out after 2\.0 s waiting for the sky$"):
        await wait_until(lambda: False, timeout=2.0, what="the sky")
    assert trio.current_time() == 2.0


async def test_without_what_the_message_names_the_condition(
    autojump_clock: trio.testing.MockClock,
) -> None:
    def never() -> bool:
        return False

    with pytest.raises(trio.TooSlowError, match=r"waiting for .*never$"):
        await wait_until(never, timeout=1.0)


async def test_a_hanging_async_condition_fails_at_the_deadline(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with pytest.raises(trio.TooSlowError):
        await wait_until(trio.sleep_forever, timeout=3.0)
    assert trio.current_time() == 3.0


async def test_retried_errors_mean_not_yet_and_the_last_becomes_the_cause(
    autojump_clock: trio.testing.MockClock,
) -> None:
    attempts = 0

    def refused_twice() -> bool:
        nonlocal attempts
        attempts += 1
        if attempts <= 2:
            raise ConnectionRefusedError(f"attempt {attempts}")
        return True

    await wait_until(refused_twice, retry_on=OSError)
    assert attempts == 3

    def refused() -> bool:
        raise ConnectionRefusedError("still down")

    with pytest.raises(trio.TooSlowError) as caught:
        await wait_until(refused, timeout=1.0, retry_on=(OSError, ValueError))
    assert isinstance(caught.value.__cause__, ConnectionRefusedError)


async def test_other_errors_of_the_condition_propagate_at_once() -> None:
    def broken() -> bool:
        raise ValueError("a bug in the test")

    with pytest.raises(ValueError, match="a bug in the test"):
        await wait_until(broken, retry_on=OSError)


async def test_waits_are_checkpoints_even_when_nothing_is_awaited() -> None:
    inbox = Inbox()
    inbox.add("there")
    with trio.testing.assert_checkpoints():
        await wait_until(lambda: True)
    with trio.testing.assert_checkpoints():
        await inbox.wait_for(1)


async def test_an_inbox_wakes_its_waiter_on_each_item(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    inbox = Inbox()

    async def deliver() -> None:
        for number in range(3):
            await trio.sleep(1)
            await inbox(number)

    nursery.start_soon(deliver)
    assert await inbox.wait_until(lambda items: 1 in items) == [0, 1]
    assert trio.current_time() == 2.0
    assert await inbox.wait_for(3) == [0, 1, 2]
    assert trio.current_time() == 3.0


async def test_an_inbox_wait_fails_at_its_deadline_with_what_it_received(
    autojump_clock: trio.testing.MockClock,
) -> None:
    inbox = Inbox()
    inbox.add("a")
    with pytest.raises(
        trio.TooSlowError, match=r"^timed out after 1\.0 s waiting for 2 items; received: \['a'\]$"
    ):
        await inbox.wait_for(2, timeout=1.0)
    assert trio.current_time() == 1.0
