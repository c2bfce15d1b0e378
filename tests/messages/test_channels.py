"""Channel names from user input are exact, validated channels; glob helpers escape and detect."""

from __future__ import annotations

import pytest

from actors import InvalidChannelNameError, channel_name
from actors.messages import escape_glob, is_pattern
from actors.presence import presence_keys
from actors.redis import key_slot


@pytest.mark.parametrize(
    ("template", "parts", "expected"),
    [
        ("user:{id}", {"id": "42"}, "user:42"),
        ("user:{id}", {"id": 42}, "user:42"),
        ("events.{type}", {"type": "order-created"}, "events.order-created"),
        ("chat:{room}", {"room": "team_a.b@example"}, "chat:team_a.b@example"),
        ("{a}:{b}", {"a": "x", "b": "y"}, "x:y"),
        ("notifications", {}, "notifications"),
    ],
)
def test_valid_parts_build_the_channel(
    template: str, parts: dict[str, str | int], expected: str
) -> None:
    # hash_tag given explicitly: else, for mypy, the splatted dict of str | int values could
    # hold a "hash_tag" key that is not a str.
    name = channel_name(template, hash_tag=None, **parts)
    assert name == expected
    assert not is_pattern(name)


@pytest.mark.parametrize(
    ("room", "reason"),
    [
        ("*", "glob character"),
        ("a*", "glob character"),
        ("?", "glob character"),
        ("[ab]", "glob character"),
        ("a\\b", "glob character"),
        ("a b", "not allowed"),
        ("", "empty"),
        ("x" * 129, "longer than 128"),
        ("café", "not allowed"),  # non-ASCII letters are refused on purpose
        ("\uff52\uff4f\uff4f\uff4d", "not allowed"),  # full-width look-alikes of "room"
        ("a:b", "not allowed"),
        ("a\nb", "not allowed"),
    ],
)
def test_user_input_that_is_not_a_plain_name_is_refused(room: str, reason: str) -> None:
    with pytest.raises(InvalidChannelNameError, match="room") as caught:
        channel_name("chat:{room}", room=room)
    assert reason in caught.value.reason
    assert isinstance(caught.value, ValueError)


def test_the_longest_allowed_part_is_accepted() -> None:
    assert channel_name("chat:{room}", room="x" * 128) == "chat:" + "x" * 128


@pytest.mark.parametrize("value", [True, None, 1.5, b"room"])
def test_parts_must_be_str_or_int(value: object) -> None:
    with pytest.raises(InvalidChannelNameError, match="str or an int"):
        channel_name("chat:{room}", room=value)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("template", "parts", "reason"),
    [
        ("events.*", {}, "glob character"),
        ("chat:{room}", {}, "missing parts ['room']"),
        ("chat:{room}", {"room": "a", "extra": "b"}, "unused parts ['extra']"),
        ("chat:{room!r}", {"room": "a"}, "plain name"),
        ("chat:{room:>9}", {"room": "a"}, "plain name"),
        ("chat:{0}", {}, "plain name"),
        ("chat:{room.attr}", {"room": "a"}, "plain name"),
        ("chat:{", {}, "bad template"),
        ("", {}, "empty"),
    ],
)
def test_bad_templates_are_refused(template: str, parts: dict[str, str], reason: str) -> None:
    with pytest.raises(InvalidChannelNameError) as caught:
        channel_name(template, **parts)
    assert reason in caught.value.reason


@pytest.mark.parametrize(
    ("text", "escaped"),
    [
        ("plain", "plain"),
        ("a*b", "a\\*b"),
        ("price[usd]?", "price\\[usd\\]\\?"),
        ("back\\slash", "back\\\\slash"),
    ],
)
def test_escape_glob_makes_literal_text_match_only_itself(text: str, escaped: str) -> None:
    assert escape_glob(text) == escaped
    assert not is_pattern(escape_glob(text))


@pytest.mark.parametrize(
    ("name", "pattern"),
    [
        ("events.*", True),
        ("user:?", True),
        ("h[ae]llo", True),
        (b"events.*", True),
        ("notifications", False),
        ("a\\*b", False),
        ("a]b", False),
        ("a\\\\*", True),
        (b"user:42", False),
    ],
)
def test_is_pattern(name: str | bytes, pattern: bool) -> None:
    assert is_pattern(name) is pattern


def test_hash_tag_wraps_the_named_part_in_braces() -> None:
    assert channel_name("chat:{room}", room="lobby", hash_tag="room") == "chat:{lobby}"
    assert (
        channel_name("chat:{room}:history", room="lobby", hash_tag="room") == "chat:{lobby}:history"
    )
    assert channel_name("{tenant}:chat:{room}", tenant=7, room="a", hash_tag="tenant") == (
        "{7}:chat:a"
    )
    assert channel_name("users:{id}", id=42, hash_tag="id") == "users:{42}"


def test_names_built_with_the_same_hash_tag_share_a_slot() -> None:
    for scope in ["lobby", "x", "team_a.b@example", "7", "a" * 128]:
        names = [
            channel_name("presence:{scope}", scope=scope, hash_tag="scope"),
            channel_name("presence:{scope}:members", scope=scope, hash_tag="scope"),
            channel_name("chat:{room}:history", room=scope, hash_tag="room"),
            channel_name("{scope}", scope=scope, hash_tag="scope"),
            channel_name("user:{user}:{scope}", user="u1", scope=scope, hash_tag="scope"),
        ]
        assert {key_slot(name) for name in names} == {key_slot(scope)}, names
        assert not any(is_pattern(name) for name in names)


def test_names_with_different_tags_hash_their_tags_only() -> None:
    first = channel_name("chat:{room}", room="lobby", hash_tag="room")
    second = channel_name("chat:{room}", room="other", hash_tag="room")
    assert key_slot(first) == key_slot("lobby") != key_slot(second) == key_slot("other")


def test_presence_keys_keep_their_names_and_share_the_scope_slot() -> None:
    keys = presence_keys("lobby")
    assert keys[0] == "presence:{lobby}:members"
    assert {key_slot(key) for key in keys} == {key_slot("lobby")}


@pytest.mark.parametrize(
    ("tag", "reason"),
    [
        ("*", "glob character"),
        ("a?", "glob character"),
        ("[a]", "glob character"),
        ("{a}", "not allowed"),
        ("a}", "not allowed"),
        ("", "empty"),
        ("x" * 129, "longer than 128"),
    ],
)
def test_a_hash_tag_is_validated_like_any_part(tag: str, reason: str) -> None:
    with pytest.raises(InvalidChannelNameError, match="room") as caught:
        channel_name("chat:{room}", room=tag, hash_tag="room")
    assert reason in caught.value.reason


@pytest.mark.parametrize(
    ("template", "hash_tag", "reason"),
    [
        ("chat:{room}", "rooms", "names no field"),
        ("chat:{room}", "", "names no field"),
        ("chat", "room", "names no field"),
        ("chat:{{x}}:{room}", "room", "brace"),
        ("chat:{room}:}}", "room", "brace"),
        ("chat:*:{room}", "room", "glob character"),
    ],
)
def test_a_hash_tag_must_name_a_field_of_a_template_without_braces(
    template: str, hash_tag: str, reason: str
) -> None:
    parts = {"room": "lobby"} if "{room}" in template else {}
    with pytest.raises(InvalidChannelNameError) as caught:
        channel_name(template, hash_tag=hash_tag, **parts)
    assert reason in caught.value.reason


def test_literal_braces_without_hash_tag_still_build_a_tag_by_hand() -> None:
    assert channel_name("presence:{{{scope}}}", scope="lobby") == "presence:{lobby}"
