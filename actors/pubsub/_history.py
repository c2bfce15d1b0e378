"""A channel's history in Redis: publications numbered within an epoch, kept in a capped stream.

Redis Pub/Sub forgets what it delivered; a channel with history also appends every publication
to a stream, so that a subscriber that missed some can read them back by number. One script
(``PUBLISH_SCRIPT``, run by its SHA1) does it all at once:

1. The channel's meta hash holds its epoch and its last offset. With no meta (a new channel, or
   one whose history expired) the script starts a new epoch, given by the caller (random), and
   drops any stream and ids left over, so offsets in one epoch always start at 1.
2. A message id among the ids of the last ``size`` publications (a sorted set, scored by offset)
   is not appended again (a retried publish that already ran); the script answers with the
   position it got then.
3. The next offset is appended to the stream as the entry ID ``<offset>-0`` (so that ``XRANGE``
   reads a range of offsets directly), capped with ``MAXLEN ~ size``.
4. The id joins the set, which keeps the last ``size``; the meta, the stream and the ids expire
   ``ttl`` after the last publication. Three keys per channel, however many publications: a
   slot migration moves them in one step.
5. It publishes (``PUBLISH``, or ``SPUBLISH`` for a shard channel) the envelope
   ``{"epoch":"<epoch>","offset":<offset>,"data":<payload>}``: the payload, which must be JSON,
   as it is, with its position.

Every key of a channel shares the channel's hash slot (``history_keys``), so the script is
single-slot on a Redis Cluster and may ``SPUBLISH`` to the channel. docs/recovery.md describes
the guarantees and the envelope.
"""

from __future__ import annotations

import functools
import re
import secrets
from typing import TYPE_CHECKING, Any, Final

import attrs
import orjson

from actors.redis import RedisCommands, Script, hash_tag, key_slot

if TYPE_CHECKING:
    from actors.redis import Argument

__all__ = [
    "MAX_MESSAGE_ID_LENGTH",
    "PUBLISH_SCRIPT",
    "RANGE_SCRIPT",
    "History",
    "HistoryKeys",
    "HistoryPublished",
    "HistoryRange",
    "HistoryWindow",
    "Position",
    "check_message_id",
    "history_keys",
    "history_window",
    "publish_with_history",
    "read_envelope",
    "read_range",
    "read_recent",
    "write_envelope",
]

MAX_MESSAGE_ID_LENGTH: Final = 128  # characters

_MESSAGE_ID: Final = re.compile(rf"[A-Za-z0-9_.:\-]{{1,{MAX_MESSAGE_ID_LENGTH}}}")

PUBLISH_SCRIPT: Final = Script(
    """
local meta, stream, ids = KEYS[1], KEYS[2], KEYS[3]
local channel, payload, size, ttl, fresh_epoch, sharded, message_id =
    ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7]
local epoch = redis.call('HGET', meta, 'epoch')
if epoch then
    local seen = redis.call('ZSCORE', ids, message_id)
    if seen then
        return {epoch, tonumber(seen), 0, 0}
    end
else
    epoch = fresh_epoch
    redis.call('DEL', stream, ids)
    redis.call('HSET', meta, 'epoch', epoch, 'offset', 0)
end
local offset = redis.call('HINCRBY', meta, 'offset', 1)
redis.call('XADD', stream, 'MAXLEN', '~', size, offset .. '-0', 'data', payload)
redis.call('ZADD', ids, offset, message_id)
redis.call('ZREMRANGEBYSCORE', ids, '-inf', offset - tonumber(size))
redis.call('PEXPIRE', meta, ttl)
redis.call('PEXPIRE', stream, ttl)
redis.call('PEXPIRE', ids, ttl)
local envelope = '{"epoch":"' .. epoch .. '","offset":' .. offset .. ',"data":' .. payload .. '}'
local receivers
if sharded == '1' then
    receivers = redis.call('SPUBLISH', channel, envelope)
else
    receivers = redis.call('PUBLISH', channel, envelope)
end
return {epoch, offset, 1, receivers}
"""
)
"""KEYS: the meta hash, the stream, the ids (``history_keys``). ARGV: the channel, the JSON
payload, the stream's size, the TTL in milliseconds, an epoch for a new history, ``1`` for
``SPUBLISH``, the message id. Returns ``[epoch, offset, 1 if appended else 0, receivers]``."""


RANGE_SCRIPT: Final = Script(
    """
local epoch = redis.call('HGET', KEYS[1], 'epoch')
if not epoch then
    return false
end
local last = redis.call('HGET', KEYS[1], 'offset')
local oldest = redis.call('XRANGE', KEYS[2], '-', '+', 'COUNT', 1)
local first = 0
if oldest[1] then
    first = tonumber(string.match(oldest[1][1], '^(%d+)'))
end
local entries = {}
local count = tonumber(ARGV[3])
if count > 0 then
    local start = ARGV[1]
    if ARGV[4] == 'newest' then
        start = math.max(1, tonumber(last) - count + 1) .. '-0'
    end
    entries = redis.call('XRANGE', KEYS[2], start, ARGV[2], 'COUNT', count)
end
return {epoch, tonumber(last), first, entries}
"""
)
"""KEYS: the meta hash, the stream. ARGV: the first and last entry IDs to read, how many at
most (0 for none), and ``newest`` to read the newest ones rather than from the first. Returns
``[epoch, last offset, first offset kept (0 when the stream is empty), entries]``, or nil when
the channel has no history now: the window and a page of entries read together, so that both
belong to one epoch."""


def _positive(_: object, attribute: attrs.Attribute[Any], value: float) -> None:
    if not value > 0:
        raise ValueError(f"{attribute.name} must be positive, not {value!r}")


@attrs.frozen
class History:
    """How much of a channel's past Redis keeps for subscribers that missed it.

    Attributes:
        size: About how many publications the stream keeps (``XADD MAXLEN ~``: Redis trims in
            whole nodes, so a few more may stay).
        ttl: Seconds the history lives after the channel's last publication; an idle channel's
            history then expires, and the next publication starts a new epoch.

    The ids of the last ``size`` publications are kept with them: a message id among them is
    not appended again (a retried publish).
    """

    size: int = attrs.field(validator=_positive)
    ttl: float = attrs.field(validator=_positive)

    @property
    def ttl_milliseconds(self) -> int:
        """``ttl`` in whole milliseconds, at least 1, as ``PEXPIRE`` takes it."""
        return max(1, round(self.ttl * 1000))


@attrs.frozen
class Position:
    """Where a publication stands in its channel's history.

    Attributes:
        epoch: The history's epoch: a new random one whenever the history starts over, so an
            offset from another epoch says nothing about this one.
        offset: Its number within the epoch, from 1, one more for each publication.
    """

    epoch: str
    offset: int


@attrs.frozen
class HistoryPublished:
    """What a publish with history did.

    Attributes:
        position: The publication's position (an earlier one's, if ``appended`` is False).
        appended: False when the message id was among the last ``size`` publications already:
            the stream and the channel got nothing new.
        receivers: How many subscriptions received it (as ``PUBLISH`` counts; 0 when not
            appended).
    """

    position: Position
    appended: bool
    receivers: int = 0


@attrs.frozen
class HistoryKeys:
    """The Redis keys of one channel's history, all in the channel's hash slot."""

    meta: str
    """A hash: ``epoch`` and ``offset`` (the last one given)."""
    stream: str
    """The stream of publications: entry ID ``<offset>-0``, field ``data``."""
    ids: str
    """A sorted set: the message ids of the last ``size`` publications, scored by offset."""


def check_message_id(message_id: str) -> str:
    """``message_id`` if it may be a publication's idempotency key; ``ValueError`` otherwise."""
    if not isinstance(message_id, str) or not _MESSAGE_ID.fullmatch(message_id):
        raise ValueError(
            f"invalid message id {message_id!r:.80} for a history: 1 to "
            f"{MAX_MESSAGE_ID_LENGTH} letters, digits and _ . : -"
        )
    return message_id


@functools.lru_cache(maxsize=4096)  # pure, and on every publish's path
def history_keys(channel: str) -> HistoryKeys:
    """The keys of ``channel``'s history, in the channel's hash slot.

    A channel with a hash tag (``chat:{lobby}``) keeps it: ``chat:{lobby}:history:meta``. A
    channel without one is the tag of its keys: ``{notifications}:history:meta``.

    Raises:
        ValueError: No key name can share the channel's slot (a ``}`` in a channel without a
            hash tag); give the channel a hash tag.
    """
    base = channel if hash_tag(channel.encode()) is not None else "{" + channel + "}"
    keys = HistoryKeys(base + ":history:meta", base + ":history:stream", base + ":history:ids")
    if key_slot(keys.meta) != key_slot(channel):
        raise ValueError(
            f"the history of {channel!r} cannot share its hash slot; give the channel a hash "
            "tag, such as name:{scope}"
        )
    return keys


async def publish_with_history(
    commands: RedisCommands,
    channel: str,
    payload: bytes,
    *,
    history: History,
    message_id: str,
    sharded: bool = False,
) -> HistoryPublished:
    """Number a publication, append it to the channel's history and publish its envelope.

    Args:
        commands: Where to run the script: a connection, or a cluster's key-routed commands
            (``Broker.command_connection``).
        channel: The channel.
        payload: The publication: JSON (an encoded message), which the envelope carries as is.
        history: How much history the channel keeps.
        message_id: The publication's id (a message's ``id``): publishing it again within the
            last ``size`` publications appends nothing and answers the first one's position.
        sharded: ``SPUBLISH`` to a shard channel rather than ``PUBLISH``.

    Raises:
        ValueError: An invalid message id, or a channel whose history cannot share its slot.
        RedisReplyError: Redis refused the script (on a cluster: MOVED and the like).
    """
    keys = history_keys(channel)
    arguments: list[Argument] = [
        channel,
        payload,
        history.size,
        history.ttl_milliseconds,
        secrets.token_hex(8),
        1 if sharded else 0,
        check_message_id(message_id),
    ]
    reply = await PUBLISH_SCRIPT.run(commands, [keys.meta, keys.stream, keys.ids], arguments)
    epoch, offset, appended, receivers = reply
    return HistoryPublished(Position(_text(epoch), int(offset)), bool(appended), int(receivers))


@attrs.frozen
class HistoryWindow:
    """What a channel's history holds now.

    Attributes:
        epoch: The history's epoch.
        last: The offset of its last publication.
        first: The oldest offset still in the stream (the stream is capped and expires); 0 if
            it holds none.
    """

    epoch: str
    last: int
    first: int

    def covers(self, position: Position) -> bool:
        """Whether everything after ``position`` is still here: same epoch, nothing trimmed."""
        if position.epoch != self.epoch or position.offset > self.last:
            return False
        return position.offset == self.last or 0 < self.first <= position.offset + 1


@attrs.frozen
class HistoryRange:
    """A page of a channel's history and the window it was read from, read at once.

    Attributes:
        window: What the history held when the page was read.
        entries: ``(offset, payload)`` of the page's publications, oldest first.
    """

    window: HistoryWindow
    entries: list[tuple[int, bytes]]


async def history_window(commands: RedisCommands, channel: str) -> HistoryWindow | None:
    """The channel's history as it stands, in one round trip; None if it has none now."""
    found = await read_range(commands, channel, after=0, up_to=None, limit=0)
    return None if found is None else found.window


async def read_range(
    commands: RedisCommands, channel: str, *, after: int, up_to: int | None, limit: int
) -> HistoryRange | None:
    """Up to ``limit`` publications numbered from ``after + 1`` to ``up_to`` (the newest when
    None) and the history's window, in one round trip; None if the channel has no history.

    The entries are what the stream still holds of the range: compare the first one's offset
    with ``after + 1`` (or ``window.first``) to tell whether some were trimmed.

    Args:
        commands: Where to read: a connection, or a cluster's key-routed commands.
        channel: The channel.
        after: The last offset the reader has.
        up_to: The last offset it wants, or None for all there is.
        limit: How many entries to read at most (0: the window alone).
    """
    if limit < 0:
        raise ValueError(f"limit must not be negative, not {limit}")
    end = "+" if up_to is None else f"{up_to}-0"
    return await _run_range(commands, channel, [f"{after + 1}-0", end, limit, "from"])


async def read_recent(commands: RedisCommands, channel: str, limit: int) -> HistoryRange | None:
    """The newest ``limit`` publications the history holds, oldest first, and its window, in
    one round trip; None if the channel has no history."""
    if limit < 0:
        raise ValueError(f"limit must not be negative, not {limit}")
    return await _run_range(commands, channel, ["-", "+", limit, "newest"])


async def _run_range(
    commands: RedisCommands, channel: str, arguments: list[Argument]
) -> HistoryRange | None:
    keys = history_keys(channel)
    reply = await RANGE_SCRIPT.run(commands, [keys.meta, keys.stream], arguments)
    if reply is None:
        return None
    epoch, last, first, entries = reply
    found = [
        (int(entry_id.split(b"-", 1)[0]), _field(fields, b"data")) for entry_id, fields in entries
    ]
    return HistoryRange(HistoryWindow(_text(epoch), int(last), int(first)), found)


def _field(fields: Any, name: bytes) -> bytes:
    # RESP3 answers a stream entry's fields as a flat list, like RESP2.
    for index in range(0, len(fields) - 1, 2):
        if fields[index] == name:
            value: bytes = fields[index + 1]
            return value
    raise ValueError(f"a history entry without its {name.decode()} field")


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


_OWN_EPOCH: Final = b'{"epoch":"'
_OWN_OFFSET: Final = b'","offset":'
_OWN_DATA: Final = b',"data":'


def write_envelope(position: Position, payload: bytes) -> bytes:
    """The envelope of a publication, byte for byte as ``PUBLISH_SCRIPT`` writes it: the
    payload (JSON) as it is, with its position."""
    return b"%s%s%s%d%s%s}" % (
        _OWN_EPOCH,
        position.epoch.encode(),
        _OWN_OFFSET,
        position.offset,
        _OWN_DATA,
        payload,
    )


def read_envelope(envelope: bytes) -> tuple[Position, bytes]:
    """The position and the payload of a publication's envelope.

    An envelope as ``PUBLISH_SCRIPT`` writes it gives its payload back byte for byte, found
    without parsing it: the payload is valid JSON exactly when the envelope is, so a broken one
    is refused by the decoder that reads the payload. Any other spelling of the same object
    (another client's) is parsed, and its payload re-encoded compactly.

    Raises:
        ValueError: Not an envelope: not a JSON object with a string ``epoch``, a positive
            integer ``offset`` and a ``data`` value.
    """
    if envelope.startswith(_OWN_EPOCH) and envelope.endswith(b"}"):
        epoch_end = envelope.find(_OWN_OFFSET, len(_OWN_EPOCH))
        data_at = envelope.find(_OWN_DATA, epoch_end + len(_OWN_OFFSET))
        if epoch_end > 0 and data_at > 0:
            epoch = envelope[len(_OWN_EPOCH) : epoch_end]
            digits = envelope[epoch_end + len(_OWN_OFFSET) : data_at]
            # Our epochs are hex and our offsets plain digits: anything else is parsed below.
            if epoch.isalnum() and digits.isdigit() and digits[:1] != b"0":
                data = envelope[data_at + len(_OWN_DATA) : -1]
                return Position(epoch.decode(), int(digits)), data
    try:
        value = orjson.loads(envelope)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"not a history envelope: {exc.msg}") from None
    if type(value) is not dict:
        raise ValueError("not a history envelope: not a JSON object")
    epoch_text, offset = value.get("epoch"), value.get("offset")
    if type(epoch_text) is not str or type(offset) is not int or offset < 1 or "data" not in value:
        raise ValueError("not a history envelope: it needs epoch, offset and data")
    return Position(epoch_text, offset), orjson.dumps(value["data"])
