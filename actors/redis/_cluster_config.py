"""Where a Redis Cluster is: ``ClusterSettings`` and the cluster URL form.

A cluster is reached through a few seed nodes: any one that answers tells where the others
are (``CLUSTER SHARDS``). Everything else about a connection (TLS, credentials, timeouts, the
RESP version) is the same for every node, so it is one ``RedisSettings`` used as a template.
"""

from __future__ import annotations

import math
from typing import Final
from urllib.parse import parse_qsl, urlencode

import attrs

from actors._errors import RedisUrlError
from actors.redis._config import (
    DEFAULT_PORT,
    RedisSettings,
    parse_bool_option,
    parse_float_option,
    redact_url,
)

__all__ = ["CLUSTER_SCHEMES", "DEFAULT_REFRESH_INTERVAL", "ClusterSettings", "is_cluster_url"]

CLUSTER_SCHEMES: Final = {"redis+cluster": "redis", "rediss+cluster": "rediss"}
"""Cluster URL schemes, and the node URL scheme each stands for."""
DEFAULT_REFRESH_INTERVAL: Final = 30.0
"""Seconds between periodic slot-map refreshes (each one jittered)."""


def is_cluster_url(url: str) -> bool:
    """Whether ``url`` names a cluster (``redis+cluster://`` or ``rediss+cluster://``)."""
    scheme, separator, _ = url.partition("://")
    return bool(separator) and scheme.lower() in CLUSTER_SCHEMES


Seeds = tuple[tuple[str, int], ...]
"""Seed nodes: ``(host, port)`` pairs."""


def _check_seeds(
    instance: ClusterSettings, attribute: attrs.Attribute[Seeds], value: Seeds
) -> None:
    if not value:
        raise ValueError("a cluster needs at least one seed node")
    for host, port in value:
        if not host or type(port) is not int or not 1 <= port <= 65_535:
            raise ValueError(f"not a seed node: {host!r}:{port!r}")


def _check_interval(
    instance: ClusterSettings, attribute: attrs.Attribute[float], value: float
) -> None:
    if not isinstance(value, int | float) or not (value > 0 and math.isfinite(value)):
        raise ValueError(f"refresh_interval must be a positive number of seconds, not {value!r}")


@attrs.frozen(kw_only=True)
class ClusterSettings:
    """How to reach a Redis Cluster: seed nodes, and how to connect to every node.

    Build one directly or from a URL with ``ClusterSettings.from_url``; like ``RedisSettings``,
    it never shows the password.
    """

    seeds: Seeds = attrs.field(validator=_check_seeds)
    """``(host, port)`` of nodes to read the slot map from; any one that answers will do."""
    node: RedisSettings = attrs.field(factory=RedisSettings)
    """How to connect to each node (its host and port are replaced by the node's); ``db``
    must be 0, the only database a cluster has."""
    replica_subscriptions: bool = False
    """Whether shard subscriptions go to a replica of the slot's shard instead of its master:
    spreads subscribers over more nodes, but a replica can lag its master, and Redis 7.0
    sends no push when a replica is moved under another master (the per-node probe notices)."""
    refresh_interval: float = attrs.field(
        default=DEFAULT_REFRESH_INTERVAL, validator=_check_interval
    )
    """Seconds between periodic slot-map refreshes, besides those that events trigger."""

    def __attrs_post_init__(self) -> None:
        if self.node.db != 0:
            raise ValueError(f"a cluster has only database 0, not {self.node.db}")
        if self.node.unix_path is not None:
            raise ValueError("cluster nodes are reached over TCP, not a Unix socket")

    def for_node(self, host: str, port: int) -> RedisSettings:
        """The settings of one node's connection."""
        return attrs.evolve(self.node, host=host, port=port)

    @classmethod
    def from_url(cls, url: str) -> ClusterSettings:
        """Parse a cluster URL.

        Accepted forms::

            redis+cluster://[[user]:password@]host[:port][,host[:port]...][?option=value&...]
            rediss+cluster://...              (TLS)

        Every host is a seed node (the port defaults to 6379; an IPv6 address goes in brackets).
        Options: those of ``RedisSettings.from_url`` but ``db`` (a cluster has only
        database 0), plus ``replica_subscriptions`` (a boolean) and ``refresh_interval``
        (seconds).

        Raises:
            RedisUrlError: The URL is malformed, or an option is unknown, repeated or invalid
                (a ``ValueError``).
        """
        scheme, separator, rest = url.partition("://")
        node_scheme = CLUSTER_SCHEMES.get(scheme.lower())
        if not separator or node_scheme is None:
            raise _url_error(url, "the scheme must be redis+cluster:// or rediss+cluster://")
        location, _, query = rest.partition("?")
        if "#" in location or "#" in query:
            raise _url_error(url, "fragments are not allowed")
        credentials, at, hosts = location.rpartition("@")
        if hosts.endswith("/"):
            hosts = hosts[:-1]
        if "/" in hosts:
            raise _url_error(url, "a cluster URL takes no path (a cluster has only database 0)")
        seeds = tuple(_seed(url, text) for text in hosts.split(","))
        options: dict[str, object] = {}
        node_query: list[tuple[str, str]] = []
        for name, value in parse_qsl(query, keep_blank_values=True):
            key = name.lower()
            if key in options:
                raise _url_error(url, f"{name!r} given twice")
            if key == "replica_subscriptions":
                options[key] = parse_bool_option(url, key, value)
            elif key == "refresh_interval":
                options[key] = parse_float_option(url, key, value)
            elif key == "db":
                raise _url_error(url, "a cluster has only database 0: db is not an option")
            else:
                node_query.append((name, value))
        host, port = seeds[0]
        netloc = f"[{host}]" if ":" in host else host
        node_url = f"{node_scheme}://{credentials}{at}{netloc}:{port}"
        if node_query:
            node_url += "?" + urlencode(node_query)
        try:
            node = RedisSettings.from_url(node_url)
        except RedisUrlError as error:
            # Say it of the URL the user wrote, not of the one made from it.
            reason = str(error).partition(": ")[2] or str(error)
            raise _url_error(url, reason) from None
        try:
            return cls(seeds=seeds, node=node, **options)  # type: ignore[arg-type]
        except (ValueError, TypeError) as error:
            raise _url_error(url, str(error)) from None

    def describe(self) -> str:
        """Where this connects, as a cluster URL without the password, for logs and errors."""
        user = f"{self.node.username}@" if self.node.username else ""
        scheme = "rediss+cluster" if self.node.tls else "redis+cluster"
        hosts = ",".join(f"[{h}]:{p}" if ":" in h else f"{h}:{p}" for h, p in self.seeds)
        return f"{scheme}://{user}{hosts}"


def _url_error(url: str, reason: str) -> RedisUrlError:
    return RedisUrlError(f"invalid Redis cluster URL {redact_url(url)!r}: {reason}")


def _seed(url: str, text: str) -> tuple[str, int]:
    if text.startswith("["):
        host, bracket, port_text = text[1:].partition("]")
        if not bracket or (port_text and not port_text.startswith(":")):
            raise _url_error(url, f"not a host: {text!r}")
        port_text = port_text[1:]
    else:
        host, _, port_text = text.partition(":")
    if not host:
        raise _url_error(url, f"a seed node without a host: {text!r}")
    if not port_text:
        return (host, DEFAULT_PORT)
    if not port_text.isdigit() or not 1 <= int(port_text) <= 65_535:
        raise _url_error(url, f"not a port: {port_text!r}")
    return (host, int(port_text))
