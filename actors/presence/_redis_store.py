"""``RedisPresenceStore``: presence state in Redis, changed only by Lua scripts.

Per scope, with a hash tag so that every key of a scope lives on one cluster slot:

- ``presence:{scope}:members``: hash, ``user_id:connection_id`` to JSON metadata;
- ``presence:{scope}:expiry``: sorted set of the same members, scored by expiry time (the
  server's clock, ``TIME``, so machines with skewed clocks agree);
- ``presence:{scope}:users``: hash, ``user_id`` to its number of connections;
- ``presence:{scope}:version``: a counter bumped by every change;
- ``presence:{scope}:leaving``: hash, ``user_id`` to its one member in a grace window (left
  explicitly, removed by a sweep when the window passes unless a join cancels it first).

Each operation is one script, so exactly one caller sees each member added or removed.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Final, Protocol

from actors.messages import channel_name
from actors.presence._store import JoinResult, Metadata, Removal, Snapshot, check_ids, member_key
from actors.redis import Argument, Script

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

DEFAULT_EXPIRE_BATCH: Final = 1000
DEFAULT_SCOPE_KEEP: Final = 24 * 3600.0
"""Seconds a scope's keys outlive the last join, leave, heartbeat or sweep of it."""

_NOW: Final = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
"""


def _keeping_keys(body: str) -> str:
    """``body`` run as a function, then every key of the scope kept for ``ARGV[#ARGV]`` more
    seconds, whatever the body returned early: a scope nobody touches for that long (no
    tracker sweeping it, no connection heartbeating in it) disappears from Redis."""
    return (
        _NOW
        + "local function change()\n"
        + body
        + """
end
local result = change()
local keep = math.floor(tonumber(ARGV[#ARGV]) * 1000)
for _, key in ipairs(KEYS) do redis.call('PEXPIRE', key, keep) end
return result
"""
    )


JOIN_SCRIPT: Final = Script(
    _keeping_keys(
        """
local returned = redis.call('HGET', KEYS[5], ARGV[2]) == ARGV[1]
if returned then
  if ARGV[5] == '1' then return {0, 0, tonumber(redis.call('GET', KEYS[4]) or '0')} end
  redis.call('HDEL', KEYS[5], ARGV[2])
end
local added = redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
redis.call('ZADD', KEYS[2], string.format('%.6f', now + tonumber(ARGV[4])), ARGV[1])
local online = 0
local version = tonumber(redis.call('GET', KEYS[4]) or '0')
if added == 1 then
  if redis.call('HINCRBY', KEYS[3], ARGV[2], 1) == 1 then online = 1 end
end
if added == 1 or returned then
  added = 1
  version = redis.call('INCR', KEYS[4])
end
return {added, online, version}
"""
    )
)
"""KEYS: members, expiry, users, version, leaving. ARGV: member, user id, metadata JSON, TTL,
whether it is a heartbeat (``1``: a leaving member is left alone) or a join (``0``: it cancels
the leave, and is a change, since trackers started within the window do not list it), how long
to keep the scope's keys."""

LEAVE_SCRIPT: Final = Script(
    _keeping_keys(
        """
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return {0, 0, 0} end
local leaving = redis.call('HGET', KEYS[5], ARGV[2])
if leaving == ARGV[1] then return {0, 0, 0} end
local grace = tonumber(ARGV[3])
local live = tonumber(redis.call('HGET', KEYS[3], ARGV[2]) or '0')
if leaving then live = live - 1 end
if grace > 0 and live <= 1 then
  local reply = {2, 1, tonumber(redis.call('GET', KEYS[4]) or '0')}
  if leaving then
    redis.call('HDEL', KEYS[1], leaving)
    redis.call('ZREM', KEYS[2], leaving)
    redis.call('HINCRBY', KEYS[3], ARGV[2], -1)
    reply = {2, 1, redis.call('INCR', KEYS[4]), leaving}
  end
  redis.call('HSET', KEYS[5], ARGV[2], ARGV[1])
  redis.call('ZADD', KEYS[2], string.format('%.6f', now + grace), ARGV[1])
  return reply
end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
local offline = 0
if redis.call('HINCRBY', KEYS[3], ARGV[2], -1) <= 0 then
  redis.call('HDEL', KEYS[3], ARGV[2])
  offline = 1
end
return {1, offline, redis.call('INCR', KEYS[4])}
"""
    )
)
"""KEYS: members, expiry, users, version, leaving. ARGV: member, user id, grace (seconds), how
long to keep the scope's keys.

Replies ``{removed, offline, version}``; ``removed`` is 2 for a deferred leave, which names a
fourth item when it replaced the user's leaving member (removed then, at ``version``)."""

EXPIRE_SCRIPT: Final = Script(
    _keeping_keys(
        """
local due = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', string.format('%.6f', now),
  'LIMIT', 0, tonumber(ARGV[1]))
local out = {}
for _, member in ipairs(due) do
  redis.call('ZREM', KEYS[2], member)
  redis.call('HDEL', KEYS[1], member)
  local user = string.match(member, '^(.*):[^:]*$')
  local left = 0
  if redis.call('HGET', KEYS[5], user) == member then
    redis.call('HDEL', KEYS[5], user)
    left = 1
  end
  local offline = 0
  if redis.call('HINCRBY', KEYS[3], user, -1) <= 0 then
    redis.call('HDEL', KEYS[3], user)
    offline = 1
  end
  table.insert(out, member)
  table.insert(out, offline)
  table.insert(out, redis.call('INCR', KEYS[4]))
  table.insert(out, left)
end
return out
"""
    )
)
"""KEYS: members, expiry, users, version, leaving. ARGV: the most members to expire in one
call, how long to keep the scope's keys."""

SNAPSHOT_SCRIPT: Final = Script(
    """
return {
  tonumber(redis.call('GET', KEYS[4]) or '0'),
  redis.call('HGETALL', KEYS[1]),
  redis.call('HVALS', KEYS[5]),
}
"""
)
"""KEYS: members, expiry, users, version, leaving."""


class _Executor(Protocol):
    async def execute(self, *args: Argument) -> Any: ...


def presence_keys(scope: str) -> tuple[str, str, str, str, str]:
    """The members, expiry, users, version and leaving keys of a scope (validated)."""
    base = channel_name("presence:{scope}", scope=scope, hash_tag="scope")
    return (
        f"{base}:members",
        f"{base}:expiry",
        f"{base}:users",
        f"{base}:version",
        f"{base}:leaving",
    )


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _split(member: object) -> tuple[str, str]:
    user_id, _, connection_id = _text(member).rpartition(":")
    return user_id, connection_id


class RedisPresenceStore:
    """``PresenceStore`` on Redis, shared by every process of a deployment.

    Args:
        connection: Returns the connection to run scripts on, such as
            ``RedisPubSub.ready_connection`` (it changes on every reconnect, and waits for
            one during a reconnect).
        expire_batch: The most members one sweep removes.
        keep: Seconds a scope's keys outlive the last change or sweep of it. Every open
            tracker sweeps its scope every few seconds, so only a scope nobody tracks any more
            expires; its version counter then restarts, which no live tracker can see.

    Raises:
        ValueError: ``keep`` is not positive.
    """

    def __init__(
        self,
        connection: Callable[[], Awaitable[_Executor]],
        *,
        expire_batch: int = DEFAULT_EXPIRE_BATCH,
        keep: float = DEFAULT_SCOPE_KEEP,
    ) -> None:
        if not keep > 0:
            raise ValueError(f"keep must be positive: {keep}")
        self._connection = connection
        self._expire_batch = expire_batch
        self._keep = repr(float(keep))

    async def join(
        self, scope: str, user_id: str, connection_id: str, metadata: Metadata, ttl: float
    ) -> JoinResult:
        """Add or refresh a connection (see ``PresenceStore.join``)."""
        return await self._join(scope, user_id, connection_id, metadata, ttl, heartbeat=False)

    async def _join(
        self,
        scope: str,
        user_id: str,
        connection_id: str,
        metadata: Metadata,
        ttl: float,
        *,
        heartbeat: bool,
    ) -> JoinResult:
        check_ids(user_id, connection_id)
        reply = await JOIN_SCRIPT.run(
            await self._connection(),
            presence_keys(scope),
            (
                member_key(user_id, connection_id),
                user_id,
                json.dumps(metadata),
                repr(ttl),
                "1" if heartbeat else "0",
                self._keep,
            ),
        )
        added, online, version = reply
        return JoinResult(added=bool(added), user_online=bool(online), version=int(version))

    async def heartbeat(
        self, scope: str, user_id: str, connection_id: str, metadata: Metadata, ttl: float
    ) -> JoinResult:
        """Refresh a connection (see ``PresenceStore.heartbeat``)."""
        return await self._join(scope, user_id, connection_id, metadata, ttl, heartbeat=True)

    async def leave(
        self, scope: str, user_id: str, connection_id: str, grace: float = 0.0
    ) -> Removal | None:
        """Remove a connection (see ``PresenceStore.leave``)."""
        reply = await LEAVE_SCRIPT.run(
            await self._connection(),
            presence_keys(scope),
            (member_key(user_id, connection_id), user_id, repr(float(grace)), self._keep),
        )
        removed, offline, version, *replaced_member = reply
        if not removed:
            return None
        replaced = None
        if replaced_member:
            replaced = Removal(
                user_id=user_id,
                connection_id=_split(replaced_member[0])[1],
                user_offline=False,
                version=int(version),
                left=True,
            )
        return Removal(
            user_id=user_id,
            connection_id=connection_id,
            user_offline=bool(offline),
            version=int(version),
            deferred=removed == 2,
            replaced=replaced,
        )

    async def expire(self, scope: str) -> list[Removal]:
        """Remove expired members (see ``PresenceStore.expire``)."""
        reply = await EXPIRE_SCRIPT.run(
            await self._connection(), presence_keys(scope), (self._expire_batch, self._keep)
        )
        removals = []
        for index in range(0, len(reply), 4):
            user_id, connection_id = _split(reply[index])
            removals.append(
                Removal(
                    user_id=user_id,
                    connection_id=connection_id,
                    user_offline=bool(reply[index + 1]),
                    version=int(reply[index + 2]),
                    left=bool(reply[index + 3]),
                )
            )
        return removals

    async def snapshot(self, scope: str) -> Snapshot:
        """Members and leaving ones (see ``PresenceStore.snapshot``)."""
        version, flat, leaving = await SNAPSHOT_SCRIPT.run(
            await self._connection(), presence_keys(scope)
        )
        members: dict[tuple[str, str], Metadata] = {}
        for index in range(0, len(flat), 2):
            metadata = json.loads(flat[index + 1])
            members[_split(flat[index])] = (
                {str(k): str(v) for k, v in metadata.items()} if isinstance(metadata, dict) else {}
            )
        return Snapshot(
            version=int(version),
            members=members,
            leaving=frozenset(_split(member) for member in leaving),
        )
