"""Channel names from user input are exact, validated channels; glob helpers escape and detect."""

from __future__ import annotations

import pytest

from actors import InvalidChannelNameError, channel_name
from actors.messages import escape_glob, is_pattern


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
    name = channel_name(template, **parts)
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
