"""When the topology actor refreshes the slot map, in exact virtual time (issue 11, req. 2).

The loop's refresh is replaced by a recorder, so only the schedule is under test: periodic
refreshes with jitter, events debounced into one refresh, a stale map never making a loop, and
the quicker retries while the cluster is degraded.
"""

from __future__ import annotations

import itertools
import random

import attrs
import pytest
import trio
import trio.testing

from actors.pubsub import ClusterPubSub, ConnectionOptions
from actors.pubsub._cluster import (
    DEGRADED_REFRESH_INTERVAL,
    MIN_REFRESH_INTERVAL,
    REFRESH_JITTER,
)
from actors.redis import ClusterSettings, HubObserver

SEED = 7


class Recorder(ClusterPubSub):
    """A cluster broker whose refreshes only record when they run."""

    def __init__(self, refresh_interval: float = 10.0) -> None:
        settings = ClusterSettings(seeds=(("127.0.0.1", 7000),), refresh_interval=refresh_interval)
        super().__init__(settings, ConnectionOptions(), HubObserver())
        self._supervisor_set.set()
        self.times: list[float] = []
        self.changed = False
        self.is_healthy = True

    async def refresh(self) -> bool:
        self.times.append(trio.current_time())
        await trio.lowlevel.checkpoint()
        return self.changed

    def healthy(self) -> bool:
        return self.is_healthy


@attrs.frozen
class _System:
    random: random.Random


@attrs.frozen
class _Context:
    system: _System


async def run(recorder: Recorder, until: float) -> list[float]:
    context = _Context(_System(random.Random(SEED)))
    with trio.move_on_at(until):
        await recorder.run_topology(context)  # type: ignore[arg-type]
    return recorder.times


async def test_periodic_refreshes_are_jittered_around_the_interval(
    autojump_clock: trio.testing.MockClock,
) -> None:
    rng = random.Random(SEED)
    expected = [0.0]
    for _ in range(3):
        expected.append(expected[-1] + 10.0 * (1 + REFRESH_JITTER * (2 * rng.random() - 1)))
    times = await run(Recorder(), expected[-1] + 0.001)
    assert times == expected
    assert all(8.0 <= later - earlier <= 12.0 for earlier, later in itertools.pairwise(times))


async def test_a_burst_of_events_is_one_refresh_at_least_the_minimum_interval_later(
    autojump_clock: trio.testing.MockClock,
) -> None:
    recorder = Recorder()
    recorder.changed = True  # each refresh finds something new: no backing off
    async with trio.open_nursery() as nursery:
        nursery.start_soon(run, recorder, 5.0)
        await trio.sleep(0.1)
        for _ in range(100):
            recorder.request_refresh()
            await trio.sleep(0.001)
        await trio.sleep(1.0)
        recorder.request_refresh()
    # One refresh for the burst, the minimum interval after the first; then one for the last.
    assert recorder.times == pytest.approx([0.0, MIN_REFRESH_INTERVAL, 1.2], abs=1e-9)


async def test_a_stale_map_backs_the_refreshes_off_instead_of_looping(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Every refresh asks for the next (as a MOVED from a stale map would) and finds the same
    map: the spacing doubles up to the periodic interval."""
    recorder = Recorder()

    async def refresh() -> bool:
        recorder.times.append(trio.current_time())
        await trio.lowlevel.checkpoint()
        recorder.request_refresh()
        return False

    recorder.refresh = refresh  # type: ignore[method-assign]
    times = await run(recorder, 40.0)
    gaps = [round(later - earlier, 6) for earlier, later in itertools.pairwise(times)]
    assert gaps[:7] == [0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 10.0]


async def test_a_degraded_cluster_is_refreshed_every_second_at_most(
    autojump_clock: trio.testing.MockClock,
) -> None:
    recorder = Recorder()
    recorder.is_healthy = False
    times = await run(recorder, 4.0)
    gaps = [round(later - earlier, 6) for earlier, later in itertools.pairwise(times)]
    assert (
        gaps == [0.25, 0.5, 1.0, DEGRADED_REFRESH_INTERVAL, DEGRADED_REFRESH_INTERVAL][: len(gaps)]
    )
    assert len(gaps) == 5
