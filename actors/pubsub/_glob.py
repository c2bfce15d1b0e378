"""Redis's glob patterns (``PSUBSCRIBE``, ``PUBSUB CHANNELS``, ``KEYS``), byte for byte.

``glob_match`` gives the answers of Redis's ``stringmatchlen`` (``src/util.c``, case-sensitive):

* ``*`` matches any run of bytes, ``?`` any one byte;
* ``[abc]`` one of the listed bytes, ``[^abc]`` any other byte, ``[a-z]`` a range (given either
  way round: ``[z-a]`` is the same range); inside brackets ``\\x`` is ``x`` literally;
* ``\\x`` outside brackets is ``x`` literally; a trailing lone backslash is a literal backslash;
* the quirks are kept too: ``[]`` matches nothing and ``[^]`` any byte, an unterminated class
  (``[ab``) takes the rest of the pattern as its members, ``[a-]`` is the range between ``a``
  and ``]`` (so that this ``]`` does not close it), and range bounds compare as C ``char``, which is
  signed on x86-64 where Redis is built most (``[a-\\xe9]`` spans ``\\xe9``..``\\xff`` and
  ``\\x00``..``a``);
* an empty subject is matched only by the empty pattern (not even by ``*``), and a pattern that
  needs more than 1,000 nested ``*`` matches nothing (Redis's guard against abusive patterns).

``fnmatch`` is no substitute: it has no backslash escapes, writes negation ``[!...]`` and
lets ``*`` match the empty string.

How it works: a pattern is parsed once (the parse depends on the pattern alone, exactly as
Redis walks it) into one-byte atoms and ``*`` runs; the atoms between stars form fixed-length
segments, each compiled to a regular expression. A subject matches if the first segment matches
at its start, the last at its end, and the middle ones in order in between, each at its leftmost
place: with fixed-length segments the leftmost choice is never worse, so no backtracking is
needed (Redis's ``skipLongerMatches`` exploits the same fact).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Final

_STAR: Final = 0x2A  # *
_QUESTION: Final = 0x3F  # ?
_OPEN: Final = 0x5B  # [
_CLOSE: Final = 0x5D  # ]
_CARET: Final = 0x5E  # ^
_DASH: Final = 0x2D  # -
_BACKSLASH: Final = 0x5C  # \
MAX_NESTING: Final = 1000
"""Redis gives up (no match) below this many nested ``*`` (``stringmatchlen_impl``)."""
_CACHE_SIZE: Final = 4096

Matcher = Callable[[bytes], bool]


def _signed(byte: int) -> int:
    """A byte as a signed C ``char`` (x86-64), as Redis compares range bounds."""
    return byte - 256 if byte >= 128 else byte


def _class_atom(members: set[int], negate: bool) -> bytes:
    if negate:
        members = set(range(256)) - members
    if not members:
        return b"(?!)"
    return b"[" + b"".join(b"\\x%02x" % member for member in sorted(members)) + b"]"


def _atoms(pattern: bytes) -> list[bytes | None]:
    """The pattern as regex atoms that each match one byte, and None for each run of ``*``.

    A walk of the pattern in the order of Redis's ``stringmatchlen_impl``, branch by branch.
    """
    atoms: list[bytes | None] = []
    size = len(pattern)
    i = 0
    while i < size:
        byte = pattern[i]
        if byte == _STAR:
            while i + 1 < size and pattern[i + 1] == _STAR:
                i += 1
            atoms.append(None)
        elif byte == _QUESTION:
            atoms.append(b".")
        elif byte == _OPEN:
            i += 1
            negate = i < size and pattern[i] == _CARET
            if negate:
                i += 1
            members: set[int] = set()
            while True:
                if i < size and pattern[i] == _BACKSLASH and size - i >= 2:
                    i += 1
                    members.add(pattern[i])
                elif i < size and pattern[i] == _CLOSE:
                    break
                elif i >= size:
                    # Unterminated: the class ends with the pattern.
                    i -= 1
                    break
                elif size - i >= 3 and pattern[i + 1] == _DASH:
                    start, end = _signed(pattern[i]), _signed(pattern[i + 2])
                    if start > end:
                        start, end = end, start
                    members.update(b for b in range(256) if start <= _signed(b) <= end)
                    i += 2
                else:
                    members.add(pattern[i])
                i += 1
            atoms.append(_class_atom(members, negate))
        else:
            if byte == _BACKSLASH and size - i >= 2:
                i += 1
            atoms.append(re.escape(pattern[i : i + 1]))
        i += 1
    return atoms


class _Segment:
    __slots__ = ("regex", "size")

    def __init__(self, atoms: list[bytes]) -> None:
        self.regex = re.compile(b"".join(atoms), re.DOTALL)
        self.size = len(atoms)


class _Glob:
    """A compiled pattern: call it with a subject."""

    __slots__ = ("_head", "_middle", "_minimum", "_never", "_star", "_tail", "pattern")

    def __init__(self, pattern: bytes) -> None:
        self.pattern = pattern
        atoms = _atoms(pattern)
        segments: list[list[bytes]] = [[]]
        for atom in atoms:
            if atom is None:
                segments.append([])
            else:
                segments[-1].append(atom)
        stars = len(segments) - 1
        self._star = stars > 0
        # Redis's recursion gives up past MAX_NESTING stars; only a last star is never entered.
        last_is_star = bool(atoms) and atoms[-1] is None
        self._never = stars > MAX_NESTING + 1 or (stars == MAX_NESTING + 1 and not last_is_star)
        compiled = [_Segment(segment) for segment in segments]
        self._head = compiled[0]
        self._tail = compiled[-1]
        self._middle = tuple(compiled[1:-1])
        self._minimum = sum(segment.size for segment in compiled)

    def __call__(self, subject: bytes) -> bool:
        if not subject:
            return not self.pattern
        if self._never:
            return False
        if not self._star:
            return len(subject) == self._minimum and self._head.regex.match(subject) is not None
        size = len(subject)
        if size < self._minimum:
            return False
        head = self._head
        if head.size and head.regex.match(subject) is None:
            return False
        end = size - self._tail.size
        if self._tail.size and self._tail.regex.match(subject, end) is None:
            return False
        position = head.size
        for segment in self._middle:
            found = segment.regex.search(subject, position, end)
            if found is None:
                return False
            position = found.end()
        return True

    def __repr__(self) -> str:
        return f"<glob {self.pattern!r}>"


@functools.lru_cache(maxsize=_CACHE_SIZE)
def compile_glob(pattern: bytes) -> Matcher:
    """Compile a Redis glob pattern once (cached); the result tells whether a subject matches.

    Args:
        pattern: The pattern, as bytes.

    Returns:
        A function of a subject (bytes) returning whether the pattern matches all of it.
    """
    return _Glob(pattern)


def glob_match(pattern: bytes, subject: bytes) -> bool:
    """Whether ``subject`` matches the Redis glob ``pattern``, exactly as Redis decides it.

    Args:
        pattern: A glob pattern as ``PSUBSCRIBE`` takes it: ``*``, ``?``, ``[abc]``, ``[^abc]``,
            ``[a-z]`` and backslash escapes, byte-wise and case-sensitive.
        subject: A channel name (or any bytes).

    Returns:
        True if the whole subject matches.
    """
    return compile_glob(pattern)(subject)
