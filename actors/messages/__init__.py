"""Typed messages: attrs classes with a wire type name, the codec, and channel-name helpers.

See docs/wire-format.md for what goes on the wire.
"""

from __future__ import annotations

from actors._errors import InvalidChannelNameError, MessageDecodeError
from actors.messages._base import (
    TYPE_FIELD,
    Message,
    message_class,
    message_type,
    message_type_name,
)
from actors.messages._channels import (
    GLOB_CHARACTERS,
    MAX_CHANNEL_PART_LENGTH,
    channel_name,
    escape_glob,
    is_pattern,
)
from actors.messages._codec import (
    CODEC,
    DEFAULT_MAX_DEPTH,
    DEFAULT_MAX_PAYLOAD_SIZE,
    Codec,
    Decodable,
    decode_cached,
)

__all__ = [
    "CODEC",
    "DEFAULT_MAX_DEPTH",
    "DEFAULT_MAX_PAYLOAD_SIZE",
    "GLOB_CHARACTERS",
    "MAX_CHANNEL_PART_LENGTH",
    "TYPE_FIELD",
    "Codec",
    "Decodable",
    "InvalidChannelNameError",
    "Message",
    "MessageDecodeError",
    "channel_name",
    "decode_cached",
    "escape_glob",
    "is_pattern",
    "message_class",
    "message_type",
    "message_type_name",
]
