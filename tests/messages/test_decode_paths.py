"""The compiled decode path and the cattrs path accept and refuse the same payloads.

For every message class of the framework, the examples and the tests (and every plain attrs
class nested in one), hypothesis writes payloads that are mostly right and sometimes wrong in
each way a sender can be: a field missing or of another JSON type, an unknown key, another
tag, timestamps in every spelling (offsets, nanoseconds, lowercase, no offset). The default
codec (compiled where it can be) and a ``compiled=False`` codec must then build equal objects
(same ``repr``, so the same types and tzinfo) or refuse with the same reason and field errors
(``decode_paths.py`` in tests/helpers holds the payloads and the comparison).

Type names are process-wide, and some examples reuse a framework name (``notification``): such
a module is checked in a subprocess of its own.
"""

from __future__ import annotations

import enum
import importlib
import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import attrs
import orjson
import pytest
from decode_paths import assert_same_outcome, check_class, json_object, nested_plain_classes
from hypothesis import given, settings
from hypothesis import strategies as st

import actors.presence
import actors.server.chat
import actors.server.gateway
import actors.server.notifications
from actors.messages import (
    Codec,
    FieldNaming,
    Message,
    MessageDecodeError,
    UnknownKeys,
    enum_by_name,
    field_naming,
    message_type,
    registered_message_types,
    tagged_union,
)

_ROOT = Path(__file__).resolve().parents[2]
_FRAMEWORK = (
    actors.presence,
    actors.server.chat,
    actors.server.gateway,
    actors.server.notifications,
)
_TYPE_NAME = re.compile(r"""@message_type\(\s*["']([^"']+)["']""")


def _message_modules() -> tuple[list[Path], list[Path]]:
    """Example and test modules that register message classes at module level: those this
    process can import, and those whose type names another module here already took."""
    here: list[Path] = []
    apart: list[Path] = []
    taken = dict(registered_message_types())
    for folder in ("examples", "tests"):
        for path in sorted((_ROOT / folder).rglob("*.py")):
            text = path.read_text()
            if path.name == Path(__file__).name or "\n@message_type(" not in text:
                continue
            names = _TYPE_NAME.findall(text)
            module = sys.modules.get(path.stem)
            clash = any(name in taken and taken[name].__module__ != path.stem for name in names)
            if clash and module is None:
                apart.append(path)
                continue
            here.append(path)
            if module is None:
                if str(path.parent) not in sys.path:
                    sys.path.append(str(path.parent))
                importlib.import_module(path.stem)
                taken = dict(registered_message_types())
    return here, apart


IMPORTED, APART = _message_modules()
MESSAGE_CLASSES = {
    name: cls
    for name, cls in registered_message_types().items()
    if cls.__module__.split(".")[0] in {"actors"} | {path.stem for path in IMPORTED}
}
PLAIN_CLASSES: dict[str, type] = {}
for _cls in MESSAGE_CLASSES.values():
    nested_plain_classes(_cls, PLAIN_CLASSES)


@pytest.mark.parametrize("cls", list(MESSAGE_CLASSES.values()), ids=list(MESSAGE_CLASSES))
def test_both_paths_agree_on_every_message_class(cls: type) -> None:
    check_class(cls, examples=50)


@pytest.mark.parametrize("cls", list(PLAIN_CLASSES.values()), ids=list(PLAIN_CLASSES))
def test_both_paths_agree_on_every_nested_attrs_class(cls: type) -> None:
    check_class(cls, examples=40)


@pytest.mark.parametrize("path", APART, ids=[path.stem for path in APART])
def test_both_paths_agree_on_the_classes_of_a_module_checked_apart(path: Path) -> None:
    helpers = _ROOT / "tests" / "helpers"
    script = (
        f"import sys; sys.path[:0] = [{str(helpers)!r}, {str(path.parent)!r}]; "
        f"import decode_paths; decode_paths.check_module({path.stem!r})"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=50, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "agree" in done.stdout


def test_the_classes_under_test_include_the_framework_examples_and_tests() -> None:
    modules = {cls.__module__.split(".")[0] for cls in MESSAGE_CLASSES.values()}
    checked = modules | {path.stem for path in APART}
    assert {"actors", "messages", "kotlin_interop", "typed_pubsub", "test_codec"} <= checked
    assert len(IMPORTED) + len(APART) >= 18
    assert len(MESSAGE_CLASSES) >= 40
    for package in _FRAMEWORK:
        assert any(cls.__module__.startswith(package.__name__) for cls in MESSAGE_CLASSES.values())


@message_type("decode-paths.reading")
@attrs.frozen(kw_only=True)
class Reading(Message):
    sensor: str
    value: float
    taken_at: datetime | None = None


def test_a_valid_message_takes_the_compiled_path() -> None:
    codec = Codec()
    message = Reading(sensor="s-1", value=2.5, taken_at=datetime(2026, 1, 2, 3, 4, 5, 6, UTC))
    assert codec.decode(codec.encode(message), Reading) == message
    statistics = codec.statistics()
    assert "Reading" in statistics.compiled
    assert statistics.handed_to_cattrs == 0


@pytest.mark.parametrize(
    ("timestamp", "expected"),
    [
        ("2026-01-01T02:00:00+02:00", datetime(2026, 1, 1, tzinfo=UTC)),
        ("2026-01-01T00:00:00.123456789Z", datetime(2026, 1, 1, 0, 0, 0, 123456, UTC)),
        ("2026-01-01T00:00:00.9999999Z", datetime(2026, 1, 1, 0, 0, 0, 999999, UTC)),
    ],
)
def test_a_timestamp_msgspec_would_read_otherwise_is_read_by_cattrs(
    timestamp: str, expected: datetime
) -> None:
    codec = Codec()
    payload = orjson.dumps(
        {"type": "decode-paths.reading", "sensor": "s", "value": 1, "taken_at": timestamp}
    )
    decoded = codec.decode(payload, Reading)
    assert decoded.taken_at == expected
    assert decoded.taken_at is not None
    assert decoded.taken_at.tzinfo is UTC
    assert codec.statistics().handed_to_cattrs == 1


def test_a_refused_payload_has_the_cattrs_reason() -> None:
    codec = Codec()
    payload = orjson.dumps({"type": "decode-paths.reading", "sensor": 1, "value": "x"})
    with pytest.raises(MessageDecodeError) as refused:
        codec.decode(payload, Reading)
    assert refused.value.reason == "invalid fields"
    assert refused.value.errors == (
        "expected a string, got a number @ $.sensor",
        "expected a number, got a string @ $.value",
    )


def test_invalid_utf8_in_a_key_the_class_ignores_is_still_refused() -> None:
    payload = b'{"type":"decode-paths.reading","sensor":"s","value":1,"note":"\xff"}'
    with pytest.raises(MessageDecodeError, match="invalid UTF-8 at byte 62"):
        Codec().decode(payload, Reading)


@pytest.mark.parametrize(
    "deep", [b"[" * 70 + b"]" * 70, b'{"a":' * 70 + b"1" + b"}" * 70], ids=["arrays", "objects"]
)
def test_nesting_past_the_bound_in_an_ignored_key_is_still_refused(deep: bytes) -> None:
    payload = b'{"type":"decode-paths.reading","sensor":"s","value":1,"deep":' + deep + b"}"
    with pytest.raises(MessageDecodeError, match="nested deeper than 64 levels"):
        Codec().decode(payload, Reading)


class Level(enum.Enum):
    LOW = "low"
    HIGH = "high"


@attrs.frozen
class Hooked:
    level: Level


@field_naming(FieldNaming.CAMEL_CASE)
@attrs.frozen
class Renamed:
    user_id: str


@attrs.frozen
class Converted:
    count: int = attrs.field(converter=int)


@enum_by_name
class ByName(enum.Enum):
    ONLINE = "online"


@attrs.frozen
class Named:
    status: ByName


@attrs.frozen
class Nested:
    at: list[datetime]


def test_classes_the_compiled_path_cannot_express_keep_cattrs_with_the_reason() -> None:
    codec = Codec()
    codec.converter.register_structure_hook(Level, lambda value, _: Level(value.lower()))
    for cls, payload in (
        (Hooked, b'{"level":"HIGH"}'),
        (Renamed, b'{"userId":"u"}'),
        (Converted, b'{"count":3}'),
        (Named, b'{"status":"ONLINE"}'),
        (Nested, b'{"at":["2026-01-01T00:00:00Z"]}'),
    ):
        codec.decode(payload, cls)
    reasons = codec.statistics().cattrs
    assert reasons == {
        "Converted": "Converted.count has a converter",
        "Hooked": f"Hooked.level: a structure hook is registered for {Level!r}",
        "Named": "Named.status: the enum ByName is read by name",
        "Nested": "Nested.at: a timestamp inside a collection or a nested class",
        "Renamed": "Renamed renames its fields on the wire",
    }
    assert codec.decode(b'{"level":"HIGH"}', Hooked) == Hooked(Level.HIGH)


def test_a_codec_that_refuses_unknown_keys_keeps_cattrs() -> None:
    codec = Codec(unknown_keys=UnknownKeys.FORBID)
    with pytest.raises(MessageDecodeError):
        codec.decode(b'{"level":"low","extra":1}', Hooked)
    assert codec.statistics().cattrs == {"Hooked": "the codec refuses unknown keys"}


@attrs.frozen
class FirstWithLabels:
    labels: dict[str, str]


@attrs.frozen
class SecondWithLabels:
    labels: dict[str, str]


def test_a_mapping_field_keeps_its_strict_hook_in_every_class_that_has_one() -> None:
    codec = Codec(compiled=False)
    for cls in (FirstWithLabels, SecondWithLabels):
        with pytest.raises(MessageDecodeError) as refused:
            codec.decode(b'{"labels":null}', cls)
        assert refused.value.errors == ("expected an object, got null @ $.labels",)


def test_a_number_beyond_a_double_in_an_ignored_key_is_skipped_by_the_compiled_path_only() -> None:
    # The one documented difference (docs/wire-format.md, "Two decode paths").
    payload = b'{"type":"decode-paths.reading","sensor":"s","value":1,"huge":1e999}'
    assert Codec().decode(payload, Reading).sensor == "s"
    with pytest.raises(MessageDecodeError) as refused:
        Codec(compiled=False).decode(payload, Reading)
    assert refused.value.reason.startswith("invalid JSON: ")


@message_type("decode-paths.sample")
@attrs.frozen(kw_only=True)
class Sample(Message):
    value: int


def test_a_union_and_its_tagged_union_each_keep_their_own_discriminator() -> None:
    codec = Codec()
    union = Reading | Sample
    by_kind = tagged_union(union, discriminator="kind")
    assert codec.decode(b'{"type":"decode-paths.sample","value":1}', union).value == 1
    assert codec.decode(b'{"kind":"decode-paths.sample","value":2}', by_kind).value == 2
    with pytest.raises(MessageDecodeError, match="missing type tag 'type'"):
        codec.decode(b'{"kind":"decode-paths.sample","value":3}', union)
    with pytest.raises(MessageDecodeError, match="missing type tag 'kind'"):
        codec.decode(b'{"type":"decode-paths.sample","value":4}', by_kind)
    assert codec.statistics().handed_to_cattrs == 2


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_both_paths_agree_on_a_union_and_on_its_tagged_union(data: st.DataObject) -> None:
    value = data.draw(json_object(data.draw(st.sampled_from([Reading, Sample]))))
    if "type" in value and data.draw(st.booleans()):
        value["kind"] = value.pop("type")
    payload = orjson.dumps(value)
    for expected in (Reading | Sample, tagged_union(Reading | Sample, discriminator="kind")):
        assert_same_outcome(payload, expected)


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b'{"a": 1, "b": {"c": [1, 2]}}', None),
        (b"x" * 65, "payload too large"),
        (b"{not json", "invalid JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b'{"a": [[[[1]]]]}', "nested deeper than 4 levels"),
        (b'{"a": {"b": {"c": {"d": {}}}}}', "nested deeper than 4 levels"),  # no [ at all
        (b'{"a": "[[[[[[[[", "b": {}}', None),  # brackets in a string: walked, not too deep
    ],
)
def test_a_dict_takes_its_compiled_path_and_the_full_one_says_why_not(
    payload: bytes, reason: str | None
) -> None:
    codec = Codec(max_payload_size=64, max_depth=4)
    if reason is None:
        assert codec.decode(payload, dict) == orjson.loads(payload)
    else:
        with pytest.raises(MessageDecodeError, match=re.escape(reason)):
            codec.decode(payload, dict)
    # Whatever the compiled path did not take went to the full path, counted.
    walked = payload.count(b"[") + payload.count(b"{") > 4
    assert codec.statistics().handed_to_cattrs == int(reason is not None or walked)


def test_a_kept_decoder_is_decode_for_its_type() -> None:
    codec = Codec(max_depth=4)
    decode = codec.decoder(Reading)
    assert codec.decoder(Reading) is decode
    good = codec.encode(Reading(sensor="s", value=1.0))
    assert decode(good) == codec.decode(good, Reading) == codec.decode(good, Reading)
    for bad, reason in (
        (b'{"type": "decode-paths.reading", "sensor": [[[[1]]]]}', "nested deeper than 4"),
        (b'{"type": "decode-paths.sample"}', "decode-paths.sample"),
        (b"[]", "not a JSON object"),
    ):
        with pytest.raises(MessageDecodeError, match=re.escape(reason)):
            decode(bad)
    assert codec.statistics().handed_to_cattrs == 3
    assert codec.decoder(str)(b"caf\xc3\xa9") == "caf\u00e9"
    assert codec.decoder(bytes)(b"x") == b"x"
    with pytest.raises(TypeError):
        codec.decoder(list[int])
