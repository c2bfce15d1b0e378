"""Typed messages: attrs classes with a wire type name, the codec, and channel-name helpers.

See docs/wire-format.md for what goes on the wire.
"""

from __future__ import annotations

from actors._errors import InvalidChannelNameError, InvalidIdentifierError, MessageDecodeError
from actors.messages._base import (
    TYPE_FIELD,
    Message,
    message_class,
    message_type,
    message_type_name,
    registered_message_types,
)
from actors.messages._cache import Decodable, decode_cached
from actors.messages._channels import (
    GLOB_CHARACTERS,
    MAX_CHANNEL_PART_LENGTH,
    channel_name,
    escape_glob,
    is_pattern,
)
from actors.messages._codec import CODEC, DEFAULT_MAX_DEPTH, DEFAULT_MAX_PAYLOAD_SIZE, Codec
from actors.messages._compiled import CodecStatistics
from actors.messages._identifiers import (
    IDENTIFIER_PATTERN,
    IDENTIFIER_RULE,
    MAX_IDENTIFIER_LENGTH,
    check_room_name,
    check_scope,
    check_user_id,
)
from actors.messages._wire import (
    FieldNaming,
    TaggedUnion,
    UnknownKeys,
    Untagged,
    enum_by_name,
    field_naming,
    tagged_union,
    untagged,
)

__all__ = [
    "CODEC",
    "DEFAULT_MAX_DEPTH",
    "DEFAULT_MAX_PAYLOAD_SIZE",
    "GLOB_CHARACTERS",
    "IDENTIFIER_PATTERN",
    "IDENTIFIER_RULE",
    "MAX_CHANNEL_PART_LENGTH",
    "MAX_IDENTIFIER_LENGTH",
    "TYPE_FIELD",
    "Codec",
    "CodecStatistics",
    "Decodable",
    "FieldNaming",
    "InvalidChannelNameError",
    "InvalidIdentifierError",
    "Message",
    "MessageDecodeError",
    "TaggedUnion",
    "UnknownKeys",
    "Untagged",
    "channel_name",
    "check_room_name",
    "check_scope",
    "check_user_id",
    "decode_cached",
    "enum_by_name",
    "escape_glob",
    "field_naming",
    "is_pattern",
    "message_class",
    "message_type",
    "message_type_name",
    "registered_message_types",
    "tagged_union",
    "untagged",
]
