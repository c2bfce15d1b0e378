"""Every code block in the docs is an included region of an example, and matches it exactly.

A region is marked in ``examples/*.py`` with the comment lines ``# docs: start NAME`` and
``# docs: end NAME``; its text is the lines between them, minus any other marker lines, with the
common indentation removed. In Markdown, ``<!-- include: examples/FILE.py NAME -->`` on the line
right before a fenced python block says which region the block holds (without ``NAME``: the
whole file). The examples themselves run in ``test_examples.py``, so the docs' code is tested.
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest
from markdown_blocks import fenced_blocks

ROOT = Path(__file__).parent.parent
DOCUMENTS = sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md")])
INCLUDE = re.compile(r"<!-- include: (?P<path>\S+)(?: (?P<region>\S+))? -->")
MARKER = re.compile(r"^\s*# docs: (?P<kind>start|end) (?P<name>\S+)\s*$")


def regions(path: Path) -> dict[str, str]:
    """The named regions of an example file."""
    lines = path.read_text().splitlines()
    found: dict[str, str] = {}
    open_at: dict[str, int] = {}
    for number, line in enumerate(lines):
        match = MARKER.match(line)
        if match is None:
            continue
        name = match["name"]
        if match["kind"] == "start":
            assert name not in open_at, f"{path}: region {name} started twice"
            assert name not in found, f"{path}: region {name} defined twice"
            open_at[name] = number
        else:
            assert name in open_at, f"{path}:{number + 1}: end of region {name} never started"
            body = [
                text for text in lines[open_at.pop(name) + 1 : number] if not MARKER.match(text)
            ]
            found[name] = textwrap.dedent("\n".join(body)).strip("\n")
    assert not open_at, f"{path}: regions never ended: {sorted(open_at)}"
    return found


def code_blocks(document: Path) -> list[tuple[int, str, str | None]]:
    """(line number, code, include directive or None) for each python block of a document."""
    return [
        (block.line, block.text, block.previous if INCLUDE.fullmatch(block.previous) else None)
        for block in fenced_blocks(document, "python")
    ]


def included_text(directive: str) -> str:
    match = INCLUDE.fullmatch(directive)
    assert match is not None
    path = ROOT / match["path"]
    assert path.is_file(), f"{directive}: no such file"
    if match["region"] is None:
        return path.read_text().strip("\n")
    found = regions(path)
    assert match["region"] in found, f"{directive}: no such region; known: {sorted(found)}"
    return found[match["region"]]


BLOCKS = [
    pytest.param(document, line, code, directive, id=f"{document.name}:{line}")
    for document in DOCUMENTS
    for line, code, directive in code_blocks(document)
]


def test_the_docs_exist() -> None:
    names = {document.name for document in DOCUMENTS}
    assert {"README.md", "overview.md", "actors.md", "supervision.md", "design.md"} <= names


@pytest.mark.parametrize(("document", "line", "code", "directive"), BLOCKS)
def test_python_block_is_an_included_example_region(
    document: Path, line: int, code: str, directive: str | None
) -> None:
    assert directive is not None, (
        f"{document.name}:{line}: a python block without an include directive is untested code"
    )
    assert code.strip("\n") == included_text(directive), (
        f"{document.name}:{line}: the block differs from {directive}"
    )


def test_every_include_directive_precedes_a_python_block() -> None:
    for document in DOCUMENTS:
        lines = document.read_text().splitlines()
        for number, line in enumerate(lines):
            if INCLUDE.fullmatch(line.strip()):
                following = lines[number + 1] if number + 1 < len(lines) else ""
                assert following.strip() == "```python", (
                    f"{document.name}:{number + 1}: an include must sit right before ```python"
                )


@pytest.mark.parametrize("example", sorted((ROOT / "examples").glob("*.py")), ids=str)
def test_example_regions_are_well_formed(example: Path) -> None:
    regions(example)  # raises on unbalanced or duplicated markers


def test_regions_keep_indentation_relative_and_drop_markers(tmp_path: Path) -> None:
    example = tmp_path / "sample.py"
    example.write_text(
        "def f() -> None:\n"
        "    # docs: start outer\n"
        "    x = 1\n"
        "    # docs: start inner\n"
        "    if x:\n"
        "        print(x)\n"
        "    # docs: end inner\n"
        "    # docs: end outer\n"
    )
    assert regions(example) == {
        "inner": "if x:\n    print(x)",
        "outer": "x = 1\nif x:\n    print(x)",
    }
