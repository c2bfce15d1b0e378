"""Fenced code blocks of a Markdown document, for the tests that check the docs."""

from __future__ import annotations

import re
from pathlib import Path

import attrs

FENCE = re.compile(r"^```(?P<info>\S*)\s*$")


@attrs.frozen
class Block:
    line: int
    """The line number of the opening fence, from 1."""
    language: str
    text: str
    previous: str
    """The line before the opening fence, stripped ("" for a block on the first line)."""


def fenced_blocks(document: Path, language: str | None = None) -> list[Block]:
    """The fenced blocks of ``document`` (only those of ``language``, if given), in order.

    Raises:
        AssertionError: A block is never closed.
    """
    lines = document.read_text().splitlines()
    blocks: list[Block] = []
    number = 0
    while number < len(lines):
        fence = FENCE.match(lines[number])
        if fence is None:
            number += 1
            continue
        end = number + 1
        while end < len(lines) and lines[end].strip() != "```":
            end += 1
        assert end < len(lines), f"{document.name}:{number + 1}: unclosed code block"
        if language is None or fence["info"] == language:
            previous = lines[number - 1].strip() if number else ""
            text = "\n".join(lines[number + 1 : end])
            blocks.append(Block(number + 1, fence["info"], text, previous))
        number = end + 1
    return blocks
