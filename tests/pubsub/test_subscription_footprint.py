"""What an idle subscription keeps alive, in bytes: a ceiling, as for idle actors in
tests/runtime/test_actor_footprint.py.

A subscription is a supervised actor, its supervisor's record of it, its sink and its row in
the broker's table, and the client's handle: about 4,800 bytes on ``memory://`` (Python 3.11),
5,400 before 2026-12-06.
"""

from __future__ import annotations

from footprint import measured

SUBSCRIPTION_BYTES = 5_000


def test_an_idle_subscription_keeps_at_most_5000_bytes() -> None:
    """1,000 subscriptions, measured in a fresh process without coverage's tracer (see
    ``footprint``)."""
    assert measured("subscription") <= SUBSCRIPTION_BYTES
