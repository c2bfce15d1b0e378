"""Structured logs: one JSON object per line, and the records that say whom they are about.

The formatter is checked field by field; the records are checked where they are made: a
supervised actor's crash and restart carry the actor, a payload that does not decode carries
its channel.
"""

from __future__ import annotations

import io
import logging
import sys
from datetime import UTC, datetime

import attrs
import orjson
import pytest
import trio

from actors import ActorContext, ActorSystem, Message, message_type, open_actor_system
from actors.observability import (
    LOG_FORMATS,
    RECORD_CONTEXT_KEYS,
    JsonLogFormatter,
    configure_logging,
)
from actors.pubsub import open_pubsub
from actors.supervision import Backoff, ChildSpec, SupervisorSpec, open_supervisor
from actors.testing import Inbox

# A fixed instant, 2026-12-06 07:30:15.25 UTC, as the record's creation time.
CREATED = datetime(2026, 12, 6, 7, 30, 15, 250_000, tzinfo=UTC).timestamp()


def record(message: str, *args: object, **extra: object) -> logging.LogRecord:
    made = logging.LogRecord("actors.test", logging.WARNING, __file__, 1, message, args, None)
    made.created = CREATED
    made.__dict__.update(extra)
    return made


def formatted(made: logging.LogRecord) -> dict[str, object]:
    line = JsonLogFormatter().format(made)
    assert "\n" not in line
    document = orjson.loads(line)
    assert isinstance(document, dict)
    return document


def test_a_record_is_one_json_object_with_time_level_logger_and_event() -> None:
    assert formatted(record("room %r: %d left\nfor good", "lobby", 3)) == {
        "time": "2026-12-06T07:30:15.250000Z",
        "level": "WARNING",
        "logger": "actors.test",
        "event": "room 'lobby': 3 left\nfor good",
    }


def test_the_actor_and_the_channel_a_record_carries_are_fields() -> None:
    document = formatted(record("crashed", actor="worker (actor#7)", channel=b"chat:\xfflobby"))
    assert document["actor"] == "worker (actor#7)"
    assert document["channel"] == "chat:\ufffdlobby"
    assert RECORD_CONTEXT_KEYS == ("actor", "channel")
    assert "actor" not in formatted(record("no one", actor=None))


def test_an_exception_gives_its_type_message_and_traceback() -> None:
    try:
        raise ValueError("bad payload")
    except ValueError:
        made = record("failed")
        made.exc_info = sys.exc_info()
    error = formatted(made)["error"]
    assert isinstance(error, dict)
    assert (error["type"], error["message"]) == ("ValueError", "bad payload")
    assert error["traceback"].startswith("Traceback (most recent call last):\n")
    assert error["traceback"].endswith("ValueError: bad payload\n")


def test_configure_logging_sends_json_lines_or_text_lines() -> None:
    out = io.StringIO()
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    # configure_logging replaces (and closes) the root's handlers: keep pytest's out of reach.
    root.handlers.clear()
    try:
        configure_logging("json", stream=out)
        logging.getLogger("actors.test").info("hello %s", "there", extra={"channel": "news"})
        logging.getLogger("actors.test").debug("below the level")
        configure_logging("text", stream=out)
        logging.getLogger("actors.test").warning("plain")
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
    json_line, text_line = out.getvalue().splitlines()
    document = orjson.loads(json_line)
    assert (document["event"], document["channel"], document["level"]) == (
        "hello there",
        "news",
        "INFO",
    )
    assert text_line.endswith(" WARNING actors.test: plain")
    assert LOG_FORMATS == ("text", "json")
    with pytest.raises(ValueError, match="log format must be one of text, json"):
        configure_logging("xml")  # type: ignore[arg-type]


async def test_a_crash_and_its_restart_name_the_actor(
    autojump_clock: trio.abc.Clock, caplog: pytest.LogCaptureFixture
) -> None:
    crashed = trio.Event()

    async def fails_once(context: ActorContext) -> None:
        if not crashed.is_set():
            crashed.set()
            raise RuntimeError("boom")
        await trio.sleep_forever()

    spec = SupervisorSpec(
        children=[
            ChildSpec(
                id="flaky",
                start=fails_once,
                backoff=Backoff(initial=1.0, multiplier=2.0, maximum=1.0, jitter=0.0),
            )
        ]
    )
    async with open_actor_system() as system, open_supervisor(system, spec) as supervisor:
        await crashed.wait()
        await trio.sleep(2.0)
        child = supervisor.child("flaky")
        assert child.statistics().restarts == 1
    (crash,) = [r for r in caplog.records if "crashed: RuntimeError('boom')" in r.getMessage()]
    assert crash.__dict__["actor"] == f"flaky (actor#{child.actor_id})"
    assert "restarting in 1.000 s" in crash.getMessage()
    assert formatted(crash)["actor"] == crash.__dict__["actor"]


@message_type("logs-test.note")
@attrs.frozen
class Note(Message):
    text: str


async def test_a_payload_that_does_not_decode_names_its_channel(
    actor_system: ActorSystem, caplog: pytest.LogCaptureFixture
) -> None:
    inbox = Inbox()

    async def handle(message: Note) -> None:
        inbox.add(message.text)

    async with open_pubsub(actor_system, "memory://") as pubsub:
        await pubsub.psubscribe("notes.*", handle)
        await pubsub.broker.publish("notes.alice", b"\xff not json")
        await pubsub.publish("notes.alice", Note("fine"))
        assert await inbox.wait_for(1) == ["fine"]
    (skipped,) = [r for r in caplog.records if "skipped message" in r.getMessage()]
    assert formatted(skipped)["channel"] == "notes.alice"
