"""RedisSettings and its URL form."""

from __future__ import annotations

import os
import socket

import pytest

from actors.redis import (
    ClusterSettings,
    RedisSettings,
    check_client_name,
    default_client_name,
    with_client_name,
)


def test_defaults() -> None:
    settings = RedisSettings()
    assert (settings.host, settings.port, settings.db, settings.protocol) == (
        "localhost",
        6379,
        0,
        3,
    )
    assert settings.connect_timeout == 5.0
    assert settings.keepalive
    assert not settings.tls
    assert settings.unix_path is None


def test_from_url_reads_every_part_of_a_redis_url() -> None:
    settings = RedisSettings.from_url(
        "redis://alice:s%40cret@cache.example:6380/4?client_name=worker-1&protocol=2"
        "&connect_timeout=1.5&keepalive=false"
    )
    assert settings == RedisSettings(
        host="cache.example",
        port=6380,
        db=4,
        username="alice",
        password="s@cret",
        client_name="worker-1",
        protocol=2,
        connect_timeout=1.5,
        keepalive=False,
    )


def test_from_url_takes_a_password_without_user() -> None:
    settings = RedisSettings.from_url("redis://:pw@localhost")
    assert settings.username is None
    assert settings.password == "pw"
    assert settings.port == 6379


def test_from_url_rediss_turns_tls_on_with_its_files() -> None:
    settings = RedisSettings.from_url(
        "rediss://example.org:6390?tls_ca_file=/ca.pem&tls_cert_file=/c.pem&tls_key_file=/k.pem"
        "&tls_verify_hostname=no"
    )
    assert settings.tls
    assert (settings.tls_ca_file, settings.tls_cert_file, settings.tls_key_file) == (
        "/ca.pem",
        "/c.pem",
        "/k.pem",
    )
    assert not settings.tls_verify_hostname


def test_from_url_unix_socket_with_db() -> None:
    settings = RedisSettings.from_url("unix:///run/redis/redis.sock?db=3&client_name=x")
    assert settings.unix_path == "/run/redis/redis.sock"
    assert settings.db == 3
    assert settings.client_name == "x"


def test_from_url_ipv6_host() -> None:
    settings = RedisSettings.from_url("redis://[::1]:7000/0")
    assert (settings.host, settings.port) == ("::1", 7000)
    assert settings.describe() == "redis://[::1]:7000/0"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://localhost", "scheme must be redis://, rediss:// or unix://"),
        ("localhost:6379", "scheme must be"),
        ("redis://localhost:99999", "Port out of range"),
        ("redis://localhost:port", "Port could not be cast"),
        ("redis://localhost/abc", "db must be an integer"),
        ("redis://localhost/-1", "db must be a non-negative integer"),
        ("redis://localhost/1?db=2", "'db' given twice"),
        ("redis://localhost?protocol=4", "protocol must be 2 or 3"),
        ("redis://localhost?protocol=three", "protocol must be an integer"),
        ("redis://localhost?connect_timeout=0", "connect_timeout must be a positive"),
        ("redis://localhost?connect_timeout=soon", "connect_timeout must be a number"),
        ("redis://localhost?keepalive=maybe", "keepalive must be true or false"),
        ("redis://localhost?ssl=true", "unknown option 'ssl'"),
        ("redis://localhost?client_name=", "client_name is empty"),
        ("redis://localhost?client_name=a%20b", "without spaces: 'a b'"),
        ("redis://localhost?client_name=caf%C3%A9", "printable ASCII"),
        ("redis://localhost?client_name=a%0Ab", "printable ASCII"),
        ("redis://localhost#frag", "fragments are not allowed"),
        ("redis://bob@localhost", "username needs a password"),
        ("unix://", "no socket path"),
        ("unix://host/path.sock", "takes no host or port"),
        ("rediss://localhost?tls_key_file=/k.pem", "tls_key_file needs tls_cert_file"),
    ],
)
def test_from_url_rejects_bad_urls_with_a_clear_message(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RedisSettings.from_url(url)


def test_errors_about_a_url_never_show_its_password() -> None:
    with pytest.raises(ValueError, match="invalid Redis URL") as info:
        RedisSettings.from_url("redis://u:hunter2@localhost/x")
    assert "hunter2" not in str(info.value)
    assert "***" in str(info.value)


def test_repr_and_describe_hide_the_password() -> None:
    settings = RedisSettings(username="u", password="hunter2", client_name="n")
    assert "hunter2" not in repr(settings)
    assert "password='***'" in repr(settings)
    assert "hunter2" not in settings.describe()
    assert settings.describe() == "redis://u@localhost:6379/0"
    assert "password=None" in repr(RedisSettings())


def test_describe_unix_and_tls() -> None:
    assert RedisSettings(unix_path="/s.sock", db=2).describe() == "unix:///s.sock?db=2"
    assert RedisSettings(tls=True, port=6380).describe() == "rediss://localhost:6380/0"


@pytest.mark.parametrize(
    "options",
    [
        {"port": 0},
        {"db": -1},
        {"protocol": 1},
        {"connect_timeout": -1.0},
        {"connect_timeout": float("inf")},
        {"unix_path": "/s.sock", "tls": True},
    ],
)
def test_settings_validate_their_fields(options: dict[str, object]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011
        RedisSettings(**options)  # type: ignore[arg-type]


def test_every_connection_is_named_after_its_host_and_process_by_default() -> None:
    name = f"actors:{socket.gethostname()}:{os.getpid()}"
    assert default_client_name() == name
    assert RedisSettings().client_name == name
    assert RedisSettings.from_url("redis://localhost").client_name == name
    assert RedisSettings.from_url("redis://localhost?client_name=worker-1").client_name == (
        "worker-1"
    )
    assert RedisSettings(client_name=None).client_name is None
    cluster = ClusterSettings.from_url("redis+cluster://a:7000,b:7001?client_name=edge-1")
    assert cluster.for_node("c", 7002).client_name == "edge-1"
    assert ClusterSettings.from_url("redis+cluster://a:7000").for_node("c", 1).client_name == name


def test_a_host_name_redis_would_refuse_is_made_acceptable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(socket, "gethostname", lambda: "bad host\nname\u00e9")
    assert default_client_name() == f"actors:bad-host-name-:{os.getpid()}"
    assert check_client_name(default_client_name()) == default_client_name()


@pytest.mark.parametrize("name", ["", "two words", "tab\there", "line\nbreak", "naïve", "\x7f"])
def test_client_names_redis_refuses_fail_fast(name: str) -> None:
    with pytest.raises(ValueError, match="printable ASCII characters from '!' to '~'"):
        check_client_name(name)
    with pytest.raises(ValueError, match="without spaces"):
        RedisSettings(client_name=name)


def test_with_client_name_sets_or_replaces_the_option_and_keeps_the_rest() -> None:
    assert with_client_name("redis://:p%40ss@h:1/2", "edge-1") == (
        "redis://:p%40ss@h:1/2?client_name=edge-1"
    )
    replaced = with_client_name("redis://h?protocol=2&client_name=old", "new")
    assert replaced == "redis://h?protocol=2&client_name=new"
    assert RedisSettings.from_url(replaced).client_name == "new"
    cluster = with_client_name("redis+cluster://a:1,b:2?refresh_interval=5", "n")
    assert ClusterSettings.from_url(cluster).node.client_name == "n"
    with pytest.raises(ValueError, match="without spaces"):
        with_client_name("redis://h", "a b")
