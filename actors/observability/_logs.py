"""Log lines for machines: one JSON object per record, and the switch between text and JSON.

A record says which actor or channel it is about through ``extra``: ``logger.warning("...",
extra={"actor": label})`` or ``extra={"channel": name}``; the runtime, the supervisors, the Redis
client and Pub/Sub do so on the lines an operator searches for (crashes and restarts,
subscription errors, gaps, dead letters). The keys are plain strings so that those layers need
not import this one.
"""

from __future__ import annotations

import logging
import sys
import traceback
from datetime import UTC, datetime
from typing import IO, Any, Final, Literal

import orjson

__all__ = [
    "LOG_FORMATS",
    "RECORD_CONTEXT_KEYS",
    "JsonLogFormatter",
    "LogFormat",
    "configure_logging",
]

LogFormat = Literal["text", "json"]
"""``text``: one human line per record (the default); ``json``: one JSON object per line."""
LOG_FORMATS: Final[tuple[LogFormat, ...]] = ("text", "json")
RECORD_CONTEXT_KEYS: Final = ("actor", "channel")
"""The ``extra`` keys a record may carry and the JSON line repeats: whom it is about."""
TEXT_FORMAT: Final = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def _plain(value: object) -> object:
    """A context value as JSON can hold it: text as it is, bytes decoded, others by ``str``."""
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    return str(value)


class JsonLogFormatter(logging.Formatter):
    """Formats a record as one line of JSON (no newline inside, whatever the message holds).

    The keys: ``time`` (ISO 8601, UTC, microseconds), ``level``, ``logger``, ``event`` (the
    message with its arguments), ``actor`` and ``channel`` when the record carries them (see
    ``RECORD_CONTEXT_KEYS``), and ``error`` (``type``, ``message``, ``traceback``) when the
    record has an exception. Nothing of the record is evaluated beyond its message.
    """

    def format(self, record: logging.LogRecord) -> str:
        document: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="microseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "event": record.getMessage(),
        }
        for key in RECORD_CONTEXT_KEYS:
            value = record.__dict__.get(key)
            if value is not None:
                document[key] = _plain(value)
        if record.exc_info and record.exc_info[1] is not None:
            error = record.exc_info[1]
            document["error"] = {
                "type": type(error).__qualname__,
                "message": str(error),
                "traceback": "".join(traceback.format_exception(error)),
            }
        elif record.stack_info:
            document["stack"] = record.stack_info
        return orjson.dumps(document, default=_plain).decode()


def configure_logging(
    log_format: LogFormat = "text",
    *,
    level: int = logging.INFO,
    stream: IO[str] | None = None,
) -> logging.Handler:
    """Send every log record of ``level`` and above to ``stream``, as text or as JSON lines.

    Replaces the root logger's handlers (it is meant for a program's start, as
    ``logging.basicConfig(force=True)``).

    Args:
        log_format: ``text`` (``TIME LEVEL LOGGER: MESSAGE``) or ``json`` (``JsonLogFormatter``).
        level: The root logger's level.
        stream: Where the lines go; standard error by default.

    Returns:
        The handler installed.

    Raises:
        ValueError: ``log_format`` is neither ``text`` nor ``json``.
    """
    if log_format not in LOG_FORMATS:
        raise ValueError(f"log format must be one of {', '.join(LOG_FORMATS)}: {log_format!r}")
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    if log_format == "json":
        handler.setFormatter(JsonLogFormatter())
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    logging.basicConfig(level=level, handlers=[handler], force=True)
    return handler
