"""What the in-memory server answers: Redis 7's replies, errors and pushes, command by command.

``Dataset`` is what a running redis-server holds in memory (its clients, their subscriptions,
its keys, its counters): a restart replaces it, as a ``kill -9`` and a fresh start would.
``ServerConfig`` is what survives a restart: credentials, database count, version.
The connections, their faults and the bytes on the wire are ``_memory_redis``'s business;
here a command is a list of ``bytes`` and its answers go to ``ClientState.reply``.

Error texts are Redis's own, word for word, so that the client's error classification (by the
first word: ``WRONGPASS``, ``NOAUTH``, ``NOPERM``, ``NOPROTO``) is tested against what it will meet.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Final

import attrs
import trio

from actors.pubsub import compile_glob
from actors.testing._memory_state import ClientState, CommandFailed, ServerConfig
from actors.testing._resp_encoder import ErrorReply, Push, Status, Verbatim

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = ["Dataset"]

OK: Final = Status(b"OK")
PONG: Final = Status(b"PONG")
WRONGPASS: Final = "WRONGPASS invalid username-password pair or user is disabled."
NOAUTH: Final = "NOAUTH Authentication required."
NOAUTH_HELLO: Final = (
    "NOAUTH HELLO must be called with the client already authenticated, otherwise the "
    "HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and "
    "select the RESP protocol version at the same time"
)
NOT_AN_INTEGER: Final = "ERR value is not an integer or out of range"
SYNTAX_ERROR: Final = "ERR syntax error"
_INTEGER: Final = re.compile(rb"0|-?[1-9][0-9]*")
# Before authenticating, only these run (Redis's ``no-auth`` commands).
_NO_AUTH: Final = frozenset({b"AUTH", b"HELLO", b"QUIT"})
# A RESP2 connection with subscriptions runs only these (RESP3 has no such limit).
_SUBSCRIBED_RESP2: Final = frozenset(
    {
        b"PING",
        b"SUBSCRIBE",
        b"SSUBSCRIBE",
        b"UNSUBSCRIBE",
        b"SUNSUBSCRIBE",
        b"PSUBSCRIBE",
        b"PUNSUBSCRIBE",
        b"QUIT",
    }
)


_Command = Callable[["Dataset", ClientState, list[bytes]], object]
_NO_REPLY: Final = object()  # a command that answered with push frames only


@attrs.frozen
class _Spec:
    run: _Command | None  # None for a container such as CLIENT: its subcommands run
    arity: int  # Redis's convention: exact when positive, at least -arity when negative
    subcommands: dict[bytes, _Spec] | None = None


class Dataset:
    """Everything a running redis-server keeps in memory; a restart starts a new one."""

    def __init__(self, config: ServerConfig, started_at: float) -> None:
        self.config = config
        self.started_at = started_at
        self.clients: dict[int, ClientState] = {}
        self.channels: dict[bytes, dict[ClientState, None]] = {}
        self.patterns: dict[bytes, dict[ClientState, None]] = {}
        self.shard_channels: dict[bytes, dict[ClientState, None]] = {}
        # Per database: key -> (value, expiry on trio's clock or None).
        self.keys: list[dict[bytes, tuple[bytes, float | None]]] = [
            {} for _ in range(config.databases)
        ]
        self.connections_received = 0
        self.commands_processed = 0

    # -- clients ---------------------------------------------------------------------------------

    def add_client(self, client: ClientState) -> None:
        self.clients[client.id] = client
        self.connections_received += 1

    def remove_client(self, client: ClientState) -> None:
        """The connection is gone: its subscriptions go with it, without any acknowledgement."""
        self.clients.pop(client.id, None)
        for table, names in (
            (self.channels, client.channels),
            (self.patterns, client.patterns),
            (self.shard_channels, client.shard_channels),
        ):
            for name in names:
                _discard(table, name, client)
            names.clear()

    # -- publishing and counting -----------------------------------------------------------------

    def publish(self, channel: bytes, payload: bytes) -> int:
        """Deliver to the channel's subscribers, then to each matching pattern's, as Redis does."""
        receivers = 0
        for client in self.channels.get(channel, {}):
            client.reply(Push([b"message", channel, payload]))
            receivers += 1
        for pattern, clients in self.patterns.items():
            if compile_glob(pattern)(channel):
                for client in clients:
                    client.reply(Push([b"pmessage", pattern, channel, payload]))
                    receivers += 1
        return receivers

    def spublish(self, channel: bytes, payload: bytes) -> int:
        receivers = 0
        for client in self.shard_channels.get(channel, {}):
            client.reply(Push([b"smessage", channel, payload]))
            receivers += 1
        return receivers

    def end_subscriptions(self, kind: bytes, names: Iterable[bytes]) -> int:
        """Unsubscribe every client from ``names`` on the server's own initiative, with the push
        each would get for its own unsubscribe (``kind``: ``unsubscribe``, ``punsubscribe`` or
        ``sunsubscribe``); returns how many subscriptions ended."""
        table, own = {
            b"unsubscribe": (self.channels, _own_channels),
            b"punsubscribe": (self.patterns, _own_patterns),
            b"sunsubscribe": (self.shard_channels, _own_shard_channels),
        }[kind]
        ended = 0
        for name in names:
            for client in list(table.get(name, {})):
                del own(client)[name]
                _discard(table, name, client)
                client.reply(Push([kind, name, _count(client, kind)]))
                ended += 1
        return ended

    def active_channels(self, pattern: bytes | None, *, shard: bool = False) -> list[bytes]:
        table = self.shard_channels if shard else self.channels
        matches = compile_glob(pattern) if pattern is not None else None
        return [name for name in table if matches is None or matches(name)]

    # -- commands --------------------------------------------------------------------------------

    def execute(self, client: ClientState, args: list[bytes]) -> None:
        """Run one command and send its answers (a reply, push frames, or an error)."""
        try:
            reply = self._dispatch(client, args)
        except CommandFailed as failure:
            reply = ErrorReply(failure.message)
        if reply is not _NO_REPLY:
            client.reply(reply)

    def _dispatch(self, client: ClientState, args: list[bytes]) -> object:
        name = args[0].upper()
        spec = _COMMANDS.get(name)
        if spec is None or (name == b"HELLO" and not self.config.resp3):
            raise CommandFailed(_unknown_command(args))
        full_name = name.decode(errors="replace").lower()
        if spec.subcommands is not None and len(args) >= 2:
            subcommand = args[1].upper()
            sub_spec = spec.subcommands.get(subcommand)
            if sub_spec is None:
                raise CommandFailed(
                    f"ERR unknown subcommand '{_text(args[1], 128)}'. Try {full_name.upper()} HELP."
                )
            spec = sub_spec
            full_name += "|" + subcommand.decode(errors="replace").lower()
        if (spec.arity > 0 and len(args) != spec.arity) or len(args) < -spec.arity:
            raise CommandFailed(f"ERR wrong number of arguments for '{full_name}' command")
        if not client.authenticated and name not in _NO_AUTH:
            raise CommandFailed(NOAUTH)
        if client.protocol == 2 and client.subscribed() and name not in _SUBSCRIBED_RESP2:
            raise CommandFailed(
                f"ERR Can't execute '{full_name}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / "
                "PING / QUIT / RESET are allowed in this context"
            )
        assert spec.run is not None  # a container's arity admits no call without a subcommand
        try:
            return spec.run(self, client, args)
        finally:
            # As Redis counts: commands that ran, after they ran (INFO does not count itself).
            self.commands_processed += 1

    # Connection and handshake.

    def _ping(self, client: ClientState, args: list[bytes]) -> object:
        if len(args) > 2:
            raise CommandFailed("ERR wrong number of arguments for 'ping' command")
        if client.protocol == 2 and client.subscribed():
            return [b"pong", args[1] if len(args) > 1 else b""]
        return args[1] if len(args) > 1 else PONG

    def _echo(self, client: ClientState, args: list[bytes]) -> object:
        return args[1]

    def _quit(self, client: ClientState, args: list[bytes]) -> object:
        client.quitting = True
        return OK

    def _auth(self, client: ClientState, args: list[bytes]) -> object:
        if len(args) > 3:
            raise CommandFailed(SYNTAX_ERROR)
        if len(args) == 2:
            if self.config.default_user_open():
                raise CommandFailed(
                    "ERR AUTH <password> called without any password configured for the "
                    "default user. Are you sure your configuration is correct?"
                )
            username, password = b"default", args[1]
        else:
            username, password = args[1], args[2]
        if not self.config.check_credentials(username, password):
            raise CommandFailed(WRONGPASS)
        client.authenticated = True
        return OK

    def _hello(self, client: ClientState, args: list[bytes]) -> object:
        protocol = client.protocol
        if len(args) >= 2:
            protocol = _integer(args[1], "ERR Protocol version is not an integer or out of range")
            if protocol not in (2, 3):
                raise CommandFailed("NOPROTO unsupported protocol version")
        credentials: tuple[bytes, bytes] | None = None
        name: bytes | None = None
        position = 2
        while position < len(args):
            option = args[position].upper()
            remaining = len(args) - 1 - position
            if option == b"AUTH" and remaining >= 2:
                credentials = (args[position + 1], args[position + 2])
                position += 3
            elif option == b"SETNAME" and remaining >= 1:
                name = args[position + 1]
                position += 2
            else:
                raise CommandFailed(f"ERR Syntax error in HELLO option '{_text(args[position])}'")
        if credentials is not None:
            if not self.config.check_credentials(*credentials):
                raise CommandFailed(WRONGPASS)
            client.authenticated = True
        if not client.authenticated:
            raise CommandFailed(NOAUTH_HELLO)
        if name is not None:
            _set_name(client, name)
        # The reply is already in the new protocol, as Redis switches before answering.
        client.protocol = protocol
        return {
            b"server": b"redis",
            b"version": self.config.version.encode(),
            b"proto": protocol,
            b"id": client.id,
            b"mode": b"standalone",
            b"role": b"master",
            b"modules": [],
        }

    def _select(self, client: ClientState, args: list[bytes]) -> object:
        index = _integer(args[1], NOT_AN_INTEGER)
        if not 0 <= index < self.config.databases:
            raise CommandFailed("ERR DB index is out of range")
        client.db = index
        return OK

    def _client_id(self, client: ClientState, args: list[bytes]) -> object:
        return client.id

    def _client_setname(self, client: ClientState, args: list[bytes]) -> object:
        _set_name(client, args[2])
        return OK

    def _client_getname(self, client: ClientState, args: list[bytes]) -> object:
        return client.name

    # Publish/subscribe.

    def _publish(self, client: ClientState, args: list[bytes]) -> object:
        return self.publish(args[1], args[2])

    def _spublish(self, client: ClientState, args: list[bytes]) -> object:
        return self.spublish(args[1], args[2])

    def _subscribe(self, client: ClientState, args: list[bytes]) -> object:
        self._join(client, b"subscribe", self.channels, client.channels, args[1:])
        return _NO_REPLY

    def _psubscribe(self, client: ClientState, args: list[bytes]) -> object:
        self._join(client, b"psubscribe", self.patterns, client.patterns, args[1:])
        return _NO_REPLY

    def _ssubscribe(self, client: ClientState, args: list[bytes]) -> object:
        self._join(client, b"ssubscribe", self.shard_channels, client.shard_channels, args[1:])
        return _NO_REPLY

    def _unsubscribe(self, client: ClientState, args: list[bytes]) -> object:
        self._leave(client, b"unsubscribe", self.channels, client.channels, args[1:])
        return _NO_REPLY

    def _punsubscribe(self, client: ClientState, args: list[bytes]) -> object:
        self._leave(client, b"punsubscribe", self.patterns, client.patterns, args[1:])
        return _NO_REPLY

    def _sunsubscribe(self, client: ClientState, args: list[bytes]) -> object:
        self._leave(client, b"sunsubscribe", self.shard_channels, client.shard_channels, args[1:])
        return _NO_REPLY

    def _join(
        self,
        client: ClientState,
        kind: bytes,
        table: dict[bytes, dict[ClientState, None]],
        own: dict[bytes, None],
        names: Iterable[bytes],
    ) -> None:
        # One acknowledgement per name, even for a name already held, each with the count.
        for name in names:
            if name not in own:
                own[name] = None
                table.setdefault(name, {})[client] = None
            client.reply(Push([kind, name, _count(client, kind)]))

    def _leave(
        self,
        client: ClientState,
        kind: bytes,
        table: dict[bytes, dict[ClientState, None]],
        own: dict[bytes, None],
        names: list[bytes],
    ) -> None:
        if not names:
            names = list(own)
            if not names:  # nothing to leave: one acknowledgement with a null name
                client.reply(Push([kind, None, _count(client, kind)]))
                return
        for name in names:
            if name in own:
                del own[name]
                _discard(table, name, client)
            client.reply(Push([kind, name, _count(client, kind)]))

    def _pubsub_channels(self, client: ClientState, args: list[bytes]) -> object:
        if len(args) > 3:
            raise CommandFailed("ERR wrong number of arguments for 'pubsub|channels' command")
        return self.active_channels(args[2] if len(args) == 3 else None)

    def _pubsub_shardchannels(self, client: ClientState, args: list[bytes]) -> object:
        if len(args) > 3:
            raise CommandFailed("ERR wrong number of arguments for 'pubsub|shardchannels' command")
        return self.active_channels(args[2] if len(args) == 3 else None, shard=True)

    def _pubsub_numsub(self, client: ClientState, args: list[bytes]) -> object:
        reply: list[object] = []
        for channel in args[2:]:
            reply += (channel, len(self.channels.get(channel, {})))
        return reply

    def _pubsub_shardnumsub(self, client: ClientState, args: list[bytes]) -> object:
        reply: list[object] = []
        for channel in args[2:]:
            reply += (channel, len(self.shard_channels.get(channel, {})))
        return reply

    def _pubsub_numpat(self, client: ClientState, args: list[bytes]) -> object:
        return len(self.patterns)

    # Introspection.

    def _info(self, client: ClientState, args: list[bytes]) -> object:
        sections = self._info_sections()
        wanted = [arg.decode(errors="replace").lower() for arg in args[1:]] or ["default"]
        names: list[str] = []
        for section in wanted:
            if section in ("all", "default", "everything"):
                names += [name for name in sections if name not in names]
            elif section in sections and section not in names:
                names.append(section)
        text = "\r\n".join(
            f"# {name.capitalize()}\r\n"
            + "".join(f"{field}:{value}\r\n" for field, value in sections[name].items())
            for name in names
        )
        return Verbatim(text.encode())

    def _info_sections(self) -> dict[str, dict[str, object]]:
        now = trio.current_time()
        keyspace: dict[str, object] = {}
        for index in range(len(self.keys)):
            self._expire_all(index, now)
            keys = self.keys[index]
            if keys:
                expires = sum(1 for _, expiry in keys.values() if expiry is not None)
                keyspace[f"db{index}"] = f"keys={len(keys)},expires={expires},avg_ttl=0"
        return {
            "server": {
                "redis_version": self.config.version,
                "redis_mode": "standalone",
                "os": "actors.testing in-memory server",
                "arch_bits": 64,
                "tcp_port": 6379,
                "uptime_in_seconds": int(now - self.started_at),
            },
            "clients": {
                "connected_clients": len(self.clients),
                "blocked_clients": 0,
                "pubsub_clients": sum(1 for client in self.clients.values() if client.subscribed()),
            },
            "stats": {
                "total_connections_received": self.connections_received,
                "total_commands_processed": self.commands_processed,
                "pubsub_channels": len(self.channels),
                "pubsub_patterns": len(self.patterns),
                "pubsubshard_channels": len(self.shard_channels),
            },
            "replication": {"role": "master", "connected_slaves": 0},
            "cluster": {"cluster_enabled": 0},
            "keyspace": keyspace,
        }

    # Keys: strings only, with expiry on trio's clock.

    def _get(self, client: ClientState, args: list[bytes]) -> object:
        entry = self._entry(client.db, args[1])
        return None if entry is None else entry[0]

    def _set(self, client: ClientState, args: list[bytes]) -> object:
        key, value = args[1], args[2]
        now = trio.current_time()
        expiry: float | None = None
        keep_ttl = only_new = only_existing = False
        options = [option.upper() for option in args[3:]]
        position = 0
        while position < len(options):
            option = options[position]
            if option in (b"EX", b"PX") and position + 1 < len(options) and expiry is None:
                amount = _integer(args[3 + position + 1], NOT_AN_INTEGER)
                if amount <= 0:
                    raise CommandFailed("ERR invalid expire time in 'set' command")
                expiry = now + (amount if option == b"EX" else amount / 1000)
                position += 2
                continue
            if option == b"NX" and not only_existing:
                only_new = True
            elif option == b"XX" and not only_new:
                only_existing = True
            elif option == b"KEEPTTL" and expiry is None:
                keep_ttl = True
            else:
                raise CommandFailed(SYNTAX_ERROR)
            position += 1
        if keep_ttl and expiry is not None:
            raise CommandFailed(SYNTAX_ERROR)
        existing = self._entry(client.db, key)
        if (only_new and existing is not None) or (only_existing and existing is None):
            return None
        if keep_ttl and existing is not None:
            expiry = existing[1]
        self.keys[client.db][key] = (value, expiry)
        return OK

    def _del(self, client: ClientState, args: list[bytes]) -> object:
        removed = 0
        for key in args[1:]:
            if self._entry(client.db, key) is not None:
                del self.keys[client.db][key]
                removed += 1
        return removed

    def _exists(self, client: ClientState, args: list[bytes]) -> object:
        return sum(1 for key in args[1:] if self._entry(client.db, key) is not None)

    def _entry(self, db: int, key: bytes) -> tuple[bytes, float | None] | None:
        entry = self.keys[db].get(key)
        # Redis's keyIsExpired: a key lives through its expiry instant, and is gone after it.
        if entry is not None and entry[1] is not None and entry[1] < trio.current_time():
            del self.keys[db][key]
            return None
        return entry

    def _expire_all(self, db: int, now: float) -> None:
        keys = self.keys[db]
        for key in [
            key for key, (_, expiry) in keys.items() if expiry is not None and expiry < now
        ]:
            del keys[key]


def _count(client: ClientState, kind: bytes) -> int:
    if kind in (b"ssubscribe", b"sunsubscribe"):
        return len(client.shard_channels)
    return client.subscription_count()


def _own_channels(client: ClientState) -> dict[bytes, None]:
    return client.channels


def _own_patterns(client: ClientState) -> dict[bytes, None]:
    return client.patterns


def _own_shard_channels(client: ClientState) -> dict[bytes, None]:
    return client.shard_channels


def _discard(table: dict[bytes, dict[ClientState, None]], name: bytes, client: ClientState) -> None:
    clients = table.get(name)
    if clients is not None:
        clients.pop(client, None)
        if not clients:
            del table[name]


def _set_name(client: ClientState, name: bytes) -> None:
    if any(byte < 0x21 or byte > 0x7E for byte in name):
        raise CommandFailed(
            "ERR Client names cannot contain spaces, newlines or special characters."
        )
    client.name = name or None


def _integer(value: bytes, error: str) -> int:
    """A 64-bit integer written as Redis's ``string2ll`` accepts it: no sign but ``-``, no spaces,
    no leading zeros."""
    if _INTEGER.fullmatch(value) is None:
        raise CommandFailed(error)
    number = int(value)
    if not -(2**63) <= number < 2**63:
        raise CommandFailed(error)
    return number


def _text(value: bytes, limit: int | None = None) -> str:
    text = value.decode(errors="replace")
    return text if limit is None else text[:limit]


def _unknown_command(args: list[bytes]) -> str:
    """Redis's message: the name, then the first arguments quoted, up to about 128 characters."""
    shown = ""
    for argument in args[1:]:
        if len(shown) >= 128:
            break
        shown += f"'{_text(argument, 128 - len(shown))}' "
    return f"ERR unknown command '{_text(args[0], 128)}', with args beginning with: {shown}"


_CLIENT_SUBCOMMANDS: Final = {
    b"ID": _Spec(Dataset._client_id, 2),
    b"SETNAME": _Spec(Dataset._client_setname, 3),
    b"GETNAME": _Spec(Dataset._client_getname, 2),
}
_PUBSUB_SUBCOMMANDS: Final = {
    b"CHANNELS": _Spec(Dataset._pubsub_channels, -2),
    b"NUMSUB": _Spec(Dataset._pubsub_numsub, -2),
    b"NUMPAT": _Spec(Dataset._pubsub_numpat, 2),
    b"SHARDCHANNELS": _Spec(Dataset._pubsub_shardchannels, -2),
    b"SHARDNUMSUB": _Spec(Dataset._pubsub_shardnumsub, -2),
}


_COMMANDS: Final[dict[bytes, _Spec]] = {
    b"PING": _Spec(Dataset._ping, -1),
    b"ECHO": _Spec(Dataset._echo, 2),
    b"QUIT": _Spec(Dataset._quit, -1),
    b"AUTH": _Spec(Dataset._auth, -2),
    b"HELLO": _Spec(Dataset._hello, -1),
    b"SELECT": _Spec(Dataset._select, 2),
    b"CLIENT": _Spec(None, -2, _CLIENT_SUBCOMMANDS),
    b"PUBLISH": _Spec(Dataset._publish, 3),
    b"SPUBLISH": _Spec(Dataset._spublish, 3),
    b"SUBSCRIBE": _Spec(Dataset._subscribe, -2),
    b"PSUBSCRIBE": _Spec(Dataset._psubscribe, -2),
    b"SSUBSCRIBE": _Spec(Dataset._ssubscribe, -2),
    b"UNSUBSCRIBE": _Spec(Dataset._unsubscribe, -1),
    b"PUNSUBSCRIBE": _Spec(Dataset._punsubscribe, -1),
    b"SUNSUBSCRIBE": _Spec(Dataset._sunsubscribe, -1),
    b"PUBSUB": _Spec(None, -2, _PUBSUB_SUBCOMMANDS),
    b"INFO": _Spec(Dataset._info, -1),
    b"GET": _Spec(Dataset._get, 2),
    b"SET": _Spec(Dataset._set, -3),
    b"DEL": _Spec(Dataset._del, -2),
    b"EXISTS": _Spec(Dataset._exists, -2),
}
