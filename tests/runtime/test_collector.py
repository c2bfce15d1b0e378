"""``tune_garbage_collector`` sets the young generation's threshold and freezes the heap."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from actors.runtime import DEFAULT_GC_THRESHOLD, tune_garbage_collector


@pytest.fixture
def restored_collector() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


@pytest.mark.usefixtures("restored_collector")
def test_it_raises_the_young_threshold_only() -> None:
    _, middle, old = gc.get_threshold()
    tune_garbage_collector(freeze=False)
    assert gc.get_threshold() == (DEFAULT_GC_THRESHOLD, middle, old)
    assert gc.get_freeze_count() == 0


@pytest.mark.usefixtures("restored_collector")
def test_it_freezes_what_exists() -> None:
    tune_garbage_collector(10_000)
    assert gc.get_threshold()[0] == 10_000
    assert gc.get_freeze_count() > 0


def test_a_threshold_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        tune_garbage_collector(0)
