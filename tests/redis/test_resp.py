"""The sans-IO RESP layer: command encoding and frame parsing, with no server."""

from __future__ import annotations

import itertools

import hiredis
import pytest
from hypothesis import given
from hypothesis import strategies as st

from actors._errors import (
    RedisAuthenticationError,
    RedisPermissionError,
    RedisProtocolError,
    RedisReplyError,
)
from actors.redis import MAX_FEED_SIZE, RespParser, encode_command, is_push, reply_error

# -- encoding -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("PING",), b"*1\r\n$4\r\nPING\r\n"),
        (("SET", "k", "v"), b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n"),
        (("SET", b"k", b""), b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n"),
        (("EXPIRE", "k", 10), b"*3\r\n$6\r\nEXPIRE\r\n$1\r\nk\r\n$2\r\n10\r\n"),
        (("INCRBY", "k", -3), b"*3\r\n$6\r\nINCRBY\r\n$1\r\nk\r\n$2\r\n-3\r\n"),
        (("X", 2**70), b"*2\r\n$1\r\nX\r\n$22\r\n1180591620717411303424\r\n"),
        (("ZADD", "z", 2.5, "m"), b"*4\r\n$4\r\nZADD\r\n$1\r\nz\r\n$3\r\n2.5\r\n$1\r\nm\r\n"),
        (("X", float("inf")), b"*2\r\n$1\r\nX\r\n$3\r\ninf\r\n"),
        (("X", float("-inf")), b"*2\r\n$1\r\nX\r\n$4\r\n-inf\r\n"),
        (("ECHO", "é"), b"*2\r\n$4\r\nECHO\r\n$2\r\n\xc3\xa9\r\n"),
        (("ECHO", b"a\r\nb\x00"), b"*2\r\n$4\r\nECHO\r\n$5\r\na\r\nb\x00\r\n"),
    ],
)
def test_encode_command_writes_an_array_of_bulk_strings(
    args: tuple[str | bytes | int | float, ...], expected: bytes
) -> None:
    assert encode_command(*args) == expected


def test_encode_command_without_arguments_is_refused() -> None:
    with pytest.raises(ValueError, match="at least its name"):
        encode_command()


@pytest.mark.parametrize("bad", [None, True, False, [1], {"a": 1}, bytearray(b"x"), object()])
def test_encode_command_refuses_other_types_naming_the_position(bad: object) -> None:
    with pytest.raises(TypeError, match=r"argument 2 is a \w+; expected str, bytes, int or float"):
        encode_command("SET", "k", bad)  # type: ignore[arg-type]


@given(st.lists(st.one_of(st.binary(), st.text(), st.integers()), min_size=1, max_size=8))
def test_encoded_commands_parse_back_to_their_arguments(
    args: list[bytes | str | int],
) -> None:
    frames = RespParser().feed(encode_command(*args))
    expected = [
        a.encode() if isinstance(a, str) else str(a).encode() if isinstance(a, int) else a
        for a in args
    ]
    assert frames == [expected]


# -- parsing --------------------------------------------------------------------------------------

MIXED_STREAM = (
    b"+OK\r\n"
    b"-ERR wrong number of arguments\r\n"
    b":42\r\n"
    b"$5\r\nhello\r\n"
    b"$-1\r\n"
    b"*3\r\n:1\r\n$1\r\na\r\n*1\r\n+nested\r\n"
    b"*-1\r\n"
    b"%2\r\n+key\r\n~2\r\n:1\r\n:2\r\n+other\r\n_\r\n"
    b",3.25\r\n"
    b"(3492890328409238509324850943850943825024385\r\n"
    b"#t\r\n"
    b"=15\r\ntxt:Some string\r\n"
    b">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$7\r\npayload\r\n"
    b"*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$7\r\npayload\r\n"
    b"-NOPERM no permissions to access a channel\r\n"
)
MIXED_FRAMES: list[object] = [
    b"OK",
    RedisReplyError("ERR wrong number of arguments"),
    42,
    b"hello",
    None,
    [1, b"a", [b"nested"]],
    None,
    {b"key": [1, 2], b"other": None},
    3.25,
    b"3492890328409238509324850943850943825024385",
    True,
    b"Some string",
    hiredis.PushNotification([b"message", b"ch", b"payload"]),
    [b"message", b"ch", b"payload"],
    RedisPermissionError("NOPERM no permissions to access a channel"),
]


def _comparable(frames: list[object]) -> list[object]:
    """Frames with errors turned into (type, message) so that equality means something."""
    return [
        (type(frame), frame.message) if isinstance(frame, RedisReplyError) else frame
        for frame in frames
    ]


def test_parser_returns_every_resp2_and_resp3_type() -> None:
    frames = RespParser().feed(MIXED_STREAM)
    assert _comparable(frames) == _comparable(MIXED_FRAMES)
    assert [type(frame) for frame in frames] == [type(frame) for frame in MIXED_FRAMES]


def test_parser_returns_the_same_frames_when_split_at_every_byte_boundary() -> None:
    expected = _comparable(MIXED_FRAMES)
    for split in range(len(MIXED_STREAM) + 1):
        parser = RespParser()
        frames = parser.feed(MIXED_STREAM[:split]) + parser.feed(MIXED_STREAM[split:])
        assert _comparable(frames) == expected, split


def test_parser_handles_one_byte_at_a_time() -> None:
    parser = RespParser()
    frames: list[object] = []
    for index in range(len(MIXED_STREAM)):
        frames += parser.feed(MIXED_STREAM[index : index + 1])
    assert _comparable(frames) == _comparable(MIXED_FRAMES)


@given(st.lists(st.integers(min_value=0, max_value=len(MIXED_STREAM)), max_size=20))
def test_parser_handles_any_split_of_the_stream(cuts: list[int]) -> None:
    parser = RespParser()
    frames: list[object] = []
    bounds = [0, *sorted(cuts), len(MIXED_STREAM)]
    for start, end in itertools.pairwise(bounds):
        frames += parser.feed(memoryview(MIXED_STREAM)[start:end])
    assert _comparable(frames) == _comparable(MIXED_FRAMES)


def test_parser_accepts_a_reused_bytearray_buffer() -> None:
    parser = RespParser()
    buffer = bytearray(8)
    frames: list[object] = []
    stream = b"$5\r\nhello\r\n+OK\r\n"
    for start in range(0, len(stream), 8):
        piece = stream[start : start + 8]
        buffer[: len(piece)] = piece
        frames += parser.feed(memoryview(buffer)[: len(piece)])
    assert frames == [b"hello", b"OK"]


def test_parser_returns_a_10_megabyte_bulk_string_whole() -> None:
    payload = bytes(range(256)) * (10 * 1024 * 1024 // 256)
    stream = b"$%d\r\n%s\r\n+after\r\n" % (len(payload), payload)
    parser = RespParser()
    frames: list[object] = []
    for start in range(0, len(stream), 1024 * 1024):
        frames += parser.feed(stream[start : start + 1024 * 1024])
    assert len(frames) == 2
    assert frames[0] == payload
    assert frames[1] == b"after"
    assert RespParser().feed(stream) == [payload, b"after"]


class _RecordingReader:
    """Wraps a ``hiredis.Reader`` and records the size of each feed."""

    def __init__(self, reader: hiredis.Reader) -> None:
        self.reader = reader
        self.sizes: list[int] = []

    def feed(self, data: bytes, offset: int, length: int) -> None:
        self.sizes.append(length)
        self.reader.feed(data, offset, length)

    def gets(self) -> object:
        return self.reader.gets()


def test_parser_feeds_hiredis_at_most_64_kib_at_a_time() -> None:
    parser = RespParser()
    recorder = _RecordingReader(parser._reader)
    parser._reader = recorder  # type: ignore[assignment]
    stream = b":1\r\n" * 100_000
    frames = parser.feed(stream)
    assert frames == [1] * 100_000
    assert max(recorder.sizes) == MAX_FEED_SIZE
    assert sum(recorder.sizes) == len(stream)


def test_push_frames_are_told_apart_from_arrays_by_type_only() -> None:
    push, array = RespParser().feed(
        b">2\r\n$9\r\nsubscribe\r\n$1\r\nc\r\n*2\r\n$9\r\nsubscribe\r\n$1\r\nc\r\n"
    )
    assert push == array == [b"subscribe", b"c"]
    assert is_push(push)
    assert not is_push(array)
    assert not is_push(b"OK")
    assert not is_push(None)


def test_attributes_come_out_as_a_separate_frame_before_their_reply() -> None:
    """hiredis 3.5 has no attribute type: it hands the attribute map over as an ordinary array.

    Redis 7 never sends attributes (they are reserved for future use); this pins the behaviour.
    """
    assert RespParser().feed(b"|1\r\n+ttl\r\n:3\r\n+OK\r\n") == [[b"ttl", 3], b"OK"]


def test_error_replies_in_a_pipeline_stay_at_their_place_with_their_type() -> None:
    stream = (
        b"+OK\r\n"
        b"-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"
        b":1\r\n"
        b"-NOPERM this user has no permissions to run the 'publish' command\r\n"
        b"-WRONGPASS invalid username-password pair or user is disabled.\r\n"
        b"-NOAUTH Authentication required.\r\n"
        b"*2\r\n:1\r\n-ERR inside an array\r\n"
        b"$2\r\nok\r\n"
    )
    frames = RespParser().feed(stream)
    assert frames[0] == b"OK"
    assert type(frames[1]) is RedisReplyError
    assert frames[1].code == "WRONGTYPE"
    assert frames[2] == 1
    assert type(frames[3]) is RedisPermissionError
    assert frames[3].code == "NOPERM"
    assert type(frames[4]) is RedisAuthenticationError
    assert type(frames[5]) is RedisAuthenticationError
    assert isinstance(frames[6], list)
    assert frames[6][0] == 1
    assert type(frames[6][1]) is RedisReplyError
    assert frames[6][1].message == "ERR inside an array"
    assert frames[7] == b"ok"


@pytest.mark.parametrize(
    ("message", "error_type", "code"),
    [
        ("ERR unknown command", RedisReplyError, "ERR"),
        ("NOSCRIPT No matching script", RedisReplyError, "NOSCRIPT"),
        ("NOPERM no", RedisPermissionError, "NOPERM"),
        ("WRONGPASS invalid", RedisAuthenticationError, "WRONGPASS"),
        ("NOAUTH Authentication required.", RedisAuthenticationError, "NOAUTH"),
        ("", RedisReplyError, "ERR"),
    ],
)
def test_reply_error_maps_codes_to_types(
    message: str, error_type: type[RedisReplyError], code: str
) -> None:
    error = reply_error(message)
    assert type(error) is error_type
    assert error.code == code
    assert error.message == message


def test_invalid_resp_raises_a_protocol_error_and_the_parser_stays_broken() -> None:
    parser = RespParser()
    assert parser.feed(b"+OK\r\n") == [b"OK"]
    with pytest.raises(RedisProtocolError, match="reply type byte"):
        parser.feed(b"?what\r\n")
    with pytest.raises(RedisProtocolError):
        parser.feed(b"+OK\r\n")


def test_an_incomplete_frame_yields_nothing_until_it_completes() -> None:
    parser = RespParser()
    assert parser.feed(b"*2\r\n$3\r\nfoo\r\n") == []
    assert parser.feed(b"") == []
    assert parser.feed(b"$3\r\nbar\r\n") == [[b"foo", b"bar"]]
