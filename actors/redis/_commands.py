"""Typed helpers for the commands the rest of ``actors`` needs, on top of ``execute``.

Replies are normalised so that RESP2 and RESP3 give the same Python values: a RESP2 flat
array of pairs becomes the ``dict`` RESP3 would send, scores become ``float``.
Keys, members and values stay ``bytes``; channel names come back as ``str`` (UTF-8, with
``surrogateescape`` so that any bytes round-trip).
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any, Protocol

import attrs

from actors._errors import RedisProtocolError, RedisReplyError

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

    from actors.redis._resp import Argument

__all__ = ["RedisCommands", "Script", "parse_info"]


class _Executor(Protocol):
    async def execute(self, *args: Argument) -> Any: ...


def _text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "surrogateescape")
    return str(value)


def _pairs(reply: object) -> list[tuple[Any, Any]]:
    """Pairs from a RESP3 map, a flat RESP2 array, or an array of two-element arrays."""
    if isinstance(reply, dict):
        return list(reply.items())
    if not isinstance(reply, list):
        raise RedisProtocolError(f"expected a map or an array, got {reply!r:.200}")
    if reply and isinstance(reply[0], list):
        return [(item[0], item[1]) for item in reply]
    if len(reply) % 2:
        raise RedisProtocolError(f"expected an even number of items, got {reply!r:.200}")
    return list(zip(reply[::2], reply[1::2], strict=True))


def _parse_info_value(value: str) -> object:
    """An INFO value: an int or a float when it is one, a dict for ``key=value,...`` lists."""
    try:
        return int(value)
    except ValueError:
        pass
    try:
        return float(value)
    except ValueError:
        pass
    if ("=" in value and "," in value) or value.count("=") == 1:
        fields = {}
        for item in value.split(","):
            name, separator, field = item.partition("=")
            if not separator:
                return value
            fields[name] = _parse_info_value(field)
        return fields
    return value


def parse_info(text: str) -> dict[str, object]:
    """Parse the text of an INFO reply.

    Args:
        text: The reply, lines of ``name:value`` with ``# Section`` headers.

    Returns:
        A flat dict of every field; numbers become ``int`` or ``float``, lists such as
        ``db0:keys=1,expires=0`` become dicts.
    """
    info: dict[str, object] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name, separator, value = line.partition(":")
        if separator:
            info[name] = _parse_info_value(value)
    return info


class RedisCommands:
    """Typed helpers over ``execute``, mixed into ``RedisConnection``.

    Subscription commands are not here: their acknowledgements come back as push frames
    (see ``RedisConnection.send_subscription_command``).
    """

    async def execute(self, *args: Argument) -> Any:
        """Send one command and return its reply (implemented by the connection)."""
        raise NotImplementedError

    async def ping(self, message: str | bytes | None = None) -> bytes:
        """Send PING.

        Args:
            message: Echoed back instead of ``PONG`` when given.

        Returns:
            ``b"PONG"`` or the message.
        """
        reply = await (self.execute("PING") if message is None else self.execute("PING", message))
        return bytes(reply)

    async def publish(self, channel: str | bytes, message: str | bytes) -> int:
        """Publish a message to a channel.

        Args:
            channel: The channel.
            message: The payload.

        Returns:
            How many subscriptions received it, on this server (patterns counted separately).
        """
        return int(await self.execute("PUBLISH", channel, message))

    async def spublish(self, channel: str | bytes, message: str | bytes) -> int:
        """Publish a message to a shard channel (``SPUBLISH``, Redis 7).

        On a cluster it must go to the master that owns the channel's hash slot (others answer
        ``MOVED``); only ``SSUBSCRIBE`` subscribers receive it, never pattern subscriptions.

        Args:
            channel: The shard channel.
            message: The payload.

        Returns:
            How many clients of this node hold the shard channel.
        """
        return int(await self.execute("SPUBLISH", channel, message))

    async def pubsub_channels(self, pattern: str | None = None) -> list[str]:
        """List the channels with at least one subscriber (pattern subscriptions not counted).

        Args:
            pattern: Only channels matching this glob pattern.
        """
        args: list[Argument] = ["PUBSUB", "CHANNELS"]
        if pattern is not None:
            args.append(pattern)
        return sorted(_text(channel) for channel in await self.execute(*args))

    async def pubsub_numsub(self, *channels: str | bytes) -> dict[str, int]:
        """Count the subscribers of channels (pattern subscriptions not counted).

        Args:
            *channels: The channels.

        Returns:
            Each channel's subscriber count, zero included.
        """
        reply = await self.execute("PUBSUB", "NUMSUB", *channels)
        return {_text(channel): int(count) for channel, count in _pairs(reply)}

    async def pubsub_shardnumsub(self, *channels: str | bytes) -> dict[str, int]:
        """Count the subscribers of shard channels on this node (``PUBSUB SHARDNUMSUB``).

        Args:
            *channels: The shard channels.

        Returns:
            Each shard channel's subscriber count, zero included.
        """
        reply = await self.execute("PUBSUB", "SHARDNUMSUB", *channels)
        return {_text(channel): int(count) for channel, count in _pairs(reply)}

    async def pubsub_numpat(self) -> int:
        """Return the number of pattern subscriptions on the server, all clients together."""
        return int(await self.execute("PUBSUB", "NUMPAT"))

    async def info(self, section: str | None = None) -> dict[str, object]:
        """Run INFO and parse its text.

        Args:
            section: A section such as ``"server"`` or ``"clients"``; the default ones if unset.

        Returns:
            The fields, as parsed by ``parse_info``.
        """
        reply = await (self.execute("INFO") if section is None else self.execute("INFO", section))
        return parse_info(_text(reply))

    async def hset(self, key: str | bytes, mapping: Mapping[str | bytes, Argument]) -> int:
        """Set fields of a hash.

        Args:
            key: The hash.
            mapping: Field names and values; must not be empty.

        Returns:
            The number of fields that were new.

        Raises:
            ValueError: ``mapping`` is empty.
        """
        if not mapping:
            raise ValueError("hset needs at least one field")
        args: list[Argument] = ["HSET", key]
        for field, value in mapping.items():
            args += [field, value]
        return int(await self.execute(*args))

    async def hget(self, key: str | bytes, field: str | bytes) -> bytes | None:
        """Return one field of a hash, or ``None`` when the field or the hash is missing."""
        reply = await self.execute("HGET", key, field)
        return None if reply is None else bytes(reply)

    async def hgetall(self, key: str | bytes) -> dict[bytes, bytes]:
        """Return every field of a hash (empty for a missing key)."""
        return {
            bytes(field): bytes(value)
            for field, value in _pairs(await self.execute("HGETALL", key))
        }

    async def hdel(self, key: str | bytes, *fields: str | bytes) -> int:
        """Delete fields of a hash and return how many existed."""
        return int(await self.execute("HDEL", key, *fields))

    async def zadd(self, key: str | bytes, mapping: Mapping[str | bytes, float]) -> int:
        """Add members to a sorted set, or update their scores.

        Args:
            key: The sorted set.
            mapping: Members and their scores; must not be empty.

        Returns:
            The number of members that were new.

        Raises:
            ValueError: ``mapping`` is empty.
        """
        if not mapping:
            raise ValueError("zadd needs at least one member")
        args: list[Argument] = ["ZADD", key]
        for member, score in mapping.items():
            args += [score, member]
        return int(await self.execute(*args))

    async def zrem(self, key: str | bytes, *members: str | bytes) -> int:
        """Remove members from a sorted set and return how many existed."""
        return int(await self.execute("ZREM", key, *members))

    async def zrangebyscore(
        self,
        key: str | bytes,
        minimum: float | str,
        maximum: float | str,
        *,
        offset: int | None = None,
        count: int | None = None,
    ) -> list[bytes]:
        """Return the members with a score between two bounds, lowest first.

        Args:
            key: The sorted set.
            minimum: Lowest score; ``"-inf"`` or ``"(5"`` (exclusive) work too.
            maximum: Highest score; ``"+inf"`` or ``"(9"`` work too.
            offset: With ``count``, skip this many members first (LIMIT).
            count: With ``offset``, return at most this many members.
        """
        reply = await self.execute(*_zrange_args(key, minimum, maximum, offset, count, False))
        return [bytes(member) for member in reply]

    async def zrangebyscore_with_scores(
        self,
        key: str | bytes,
        minimum: float | str,
        maximum: float | str,
        *,
        offset: int | None = None,
        count: int | None = None,
    ) -> list[tuple[bytes, float]]:
        """Like ``zrangebyscore``, with each member's score."""
        reply = await self.execute(*_zrange_args(key, minimum, maximum, offset, count, True))
        return [(bytes(member), float(score)) for member, score in _pairs(reply)]

    async def zremrangebyscore(
        self, key: str | bytes, minimum: float | str, maximum: float | str
    ) -> int:
        """Remove the members with a score between two bounds and return how many went."""
        return int(await self.execute("ZREMRANGEBYSCORE", key, minimum, maximum))

    async def expire(self, key: str | bytes, seconds: int) -> bool:
        """Set a key's time to live; return whether the key exists."""
        return bool(await self.execute("EXPIRE", key, seconds))

    async def eval(
        self, source: str, keys: Sequence[str | bytes] = (), args: Sequence[Argument] = ()
    ) -> Any:
        """Run a Lua script (EVAL) and return its reply."""
        return await self.execute("EVAL", source, len(keys), *keys, *args)

    async def evalsha(
        self, sha1: str, keys: Sequence[str | bytes] = (), args: Sequence[Argument] = ()
    ) -> Any:
        """Run a cached Lua script by its SHA1 (EVALSHA) and return its reply.

        Raises:
            RedisReplyError: With code ``NOSCRIPT`` when the server does not have the script.
        """
        return await self.execute("EVALSHA", sha1, len(keys), *keys, *args)

    async def xadd(
        self,
        key: str | bytes,
        fields: Mapping[str | bytes, Argument],
        *,
        entry_id: str = "*",
        max_length: int | None = None,
        approximate: bool = True,
    ) -> bytes:
        """Append an entry to a stream.

        Args:
            key: The stream.
            fields: The entry's fields; must not be empty.
            entry_id: The entry ID; ``"*"`` lets the server choose.
            max_length: Trim the stream to about (or, with ``approximate=False``, exactly) this
                many entries.
            approximate: Whether trimming may keep a few extra entries (``MAXLEN ~``), which is
                much cheaper.

        Returns:
            The entry's ID.

        Raises:
            ValueError: ``fields`` is empty.
        """
        if not fields:
            raise ValueError("xadd needs at least one field")
        args: list[Argument] = ["XADD", key]
        if max_length is not None:
            args += ["MAXLEN", "~" if approximate else "=", max_length]
        args.append(entry_id)
        for field, value in fields.items():
            args += [field, value]
        return bytes(await self.execute(*args))

    async def xrange(
        self,
        key: str | bytes,
        start: str | bytes = "-",
        end: str | bytes = "+",
        *,
        count: int | None = None,
    ) -> list[tuple[bytes, dict[bytes, bytes]]]:
        """Return stream entries with IDs between two bounds, oldest first.

        Args:
            key: The stream.
            start: First ID (``"-"`` for the start, ``"(id"`` exclusive).
            end: Last ID (``"+"`` for the end).
            count: Return at most this many entries.

        Returns:
            ``(entry_id, fields)`` pairs.
        """
        args: list[Argument] = ["XRANGE", key, start, end]
        if count is not None:
            args += ["COUNT", count]
        reply = await self.execute(*args)
        if reply is None:  # COUNT 0
            return []
        return [
            (bytes(entry_id), {bytes(name): bytes(value) for name, value in _pairs(fields)})
            for entry_id, fields in reply
        ]

    async def client_setname(self, name: str) -> None:
        """Name this connection (CLIENT SETNAME); names cannot hold spaces."""
        await self.execute("CLIENT", "SETNAME", name)

    async def client_id(self) -> int:
        """Return this connection's ID on the server (CLIENT ID)."""
        return int(await self.execute("CLIENT", "ID"))


def _zrange_args(
    key: str | bytes,
    minimum: float | str,
    maximum: float | str,
    offset: int | None,
    count: int | None,
    with_scores: bool,
) -> list[Argument]:
    args: list[Argument] = ["ZRANGEBYSCORE", key, minimum, maximum]
    if with_scores:
        args.append("WITHSCORES")
    if offset is not None or count is not None:
        if offset is None or count is None:
            raise ValueError("offset and count go together")
        args += ["LIMIT", offset, count]
    return args


@attrs.frozen
class Script:
    """A Lua script run by its SHA1, sent in full only when the server lacks it.

    ``Script(source)`` computes the SHA1 once. ``await script.run(connection, keys, args)`` tries
    EVALSHA and falls back to EVAL (which also caches the script on the server) on ``NOSCRIPT``,
    for instance after a restart or SCRIPT FLUSH.
    """

    source: str
    """The Lua source."""
    sha1: str = attrs.field(init=False)
    """Hex SHA1 of the source, as the server computes it."""

    @sha1.default
    def _sha1_default(self) -> str:
        return hashlib.sha1(self.source.encode(), usedforsecurity=False).hexdigest()

    async def run(
        self,
        connection: _Executor,
        keys: Iterable[str | bytes] = (),
        args: Iterable[Argument] = (),
    ) -> Any:
        """Run the script and return its reply.

        Args:
            connection: Where to run it (anything with ``execute``, such as ``RedisConnection``).
            keys: The KEYS the script touches.
            args: The ARGV values.

        Raises:
            RedisReplyError: The script failed, or the server refused it.
        """
        key_list = list(keys)
        arg_list = list(args)
        try:
            return await connection.execute(
                "EVALSHA", self.sha1, len(key_list), *key_list, *arg_list
            )
        except RedisReplyError as exc:
            if exc.code != "NOSCRIPT":
                raise
        return await connection.execute("EVAL", self.source, len(key_list), *key_list, *arg_list)
