"""Imports point down the layers of the architecture (see the design document).

Every ``import`` in ``actors/`` is parsed with ``ast`` and checked against ``RULES``: a table of
which ``actors.*`` modules each layer must not import. A later layer adds its row here.
"""

from __future__ import annotations

import ast
from pathlib import Path

import attrs
import pytest

PACKAGE = Path(__file__).parent.parent / "actors"


@attrs.frozen
class Rule:
    """What the modules of one layer may import from the rest of ``actors``."""

    layer: str
    """The layer's package, such as ``actors.runtime``."""
    forbidden: tuple[str, ...] = ()
    """Packages the layer must not import (their submodules included)."""
    allowed_only: tuple[str, ...] | None = None
    """If set, the only ``actors`` modules the layer may import besides itself."""
    type_checking_exempt: bool = False
    """Whether imports under ``if TYPE_CHECKING:`` are exempt from the rule."""


ABOVE_SUPERVISION = (
    "actors.redis",
    "actors.pubsub",
    "actors.presence",
    "actors.messages",
    "actors.chat",
    "actors.notifications",
    "actors.gateway",
    "actors.testing",
)

GATEWAY_MAY_IMPORT = (
    "actors._errors",
    "actors.chat",
    "actors.messages",
    "actors.notifications",
    "actors.observability",
    "actors.presence",
    "actors.pubsub",
    "actors.redis",
    "actors.runtime",
    "actors.supervision",
)
"""The gateway is an application: every library layer, and nothing of the command line."""

PRESENCE_MAY_IMPORT = (
    "actors._errors",
    "actors.pubsub",
    "actors.redis",
    "actors.messages",
    "actors.runtime",
    "actors.supervision",
)

CHAT_MAY_IMPORT = PRESENCE_MAY_IMPORT
"""Chat sits beside presence: the same layers below it, and not presence itself."""

NOTIFICATIONS_MAY_IMPORT = PRESENCE_MAY_IMPORT
"""Notifications sit beside chat and presence: the same layers below, neither of them."""

TESTING_MAY_IMPORT = ("actors._errors", "actors.redis", "actors.pubsub", "actors.runtime")
"""The test kit drives the Redis client (and uses the Pub/Sub layer's Redis glob matcher); its
pytest plugin opens actor systems."""

RULES = (
    Rule(layer="actors.runtime", forbidden=("actors.supervision", *ABOVE_SUPERVISION)),
    Rule(layer="actors.supervision", forbidden=ABOVE_SUPERVISION),
    Rule(
        layer="actors.observability",
        allowed_only=("actors._errors",),
        type_checking_exempt=True,
    ),
    Rule(layer="actors.redis", allowed_only=("actors._errors",)),
    Rule(layer="actors.messages", allowed_only=("actors._errors",)),
    Rule(layer="actors._errors", allowed_only=()),
    Rule(layer="actors.presence", allowed_only=PRESENCE_MAY_IMPORT),
    Rule(layer="actors.chat", allowed_only=CHAT_MAY_IMPORT),
    Rule(layer="actors.notifications", allowed_only=NOTIFICATIONS_MAY_IMPORT),
    Rule(layer="actors.gateway", allowed_only=GATEWAY_MAY_IMPORT),
    Rule(layer="actors.testing", allowed_only=TESTING_MAY_IMPORT),
)


@attrs.frozen
class Import:
    module: str
    """The ``actors`` module imported (for ``from actors.x import y``, ``actors.x``)."""
    line: int
    type_checking: bool
    """Whether the import sits under ``if TYPE_CHECKING:``."""


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def actors_imports(path: Path, module: str | None = None) -> list[Import]:
    """Every import of an ``actors`` module in a file, relative imports resolved.

    ``module`` is the file's dotted name, by default worked out from its place in ``actors/``.
    """
    tree = ast.parse(path.read_text(), filename=str(path))
    package = (module or module_name(path)).split(".")
    if path.name != "__init__.py":
        package.pop()
    found: list[Import] = []

    def visit(node: ast.AST, guarded: bool) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for statement in node.body:
                visit(statement, True)
            for statement in node.orelse:
                visit(statement, guarded)
            return
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                names = [".".join([*base, node.module] if node.module else base)]
            elif node.module is not None:
                names = [node.module]
        for name in names:
            if name == "actors" or name.startswith("actors."):
                found.append(Import(name, getattr(node, "lineno", 0), guarded))
        for child in ast.iter_child_nodes(node):
            visit(child, guarded)

    visit(tree, False)
    return found


def within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def breaks(rule: Rule, imported: Import) -> bool:
    """Whether a layer governed by ``rule`` may not make this import."""
    if imported.type_checking and rule.type_checking_exempt:
        return False
    if within(imported.module, rule.layer):
        return False
    if any(within(imported.module, package) for package in rule.forbidden):
        return True
    return rule.allowed_only is not None and not any(
        within(imported.module, allowed) for allowed in rule.allowed_only
    )


def violations(rule: Rule, path: Path) -> list[str]:
    where = path.relative_to(PACKAGE.parent)
    return [
        f"{where}:{imported.line}: {imported.module}"
        for imported in actors_imports(path)
        if breaks(rule, imported)
    ]


def layer_files(rule: Rule) -> list[Path]:
    relative = Path(*rule.layer.split(".")[1:])
    single = PACKAGE / relative.with_suffix(".py")
    if single.is_file():
        return [single]
    return sorted((PACKAGE / relative).rglob("*.py"))


@pytest.mark.parametrize("rule", RULES, ids=[rule.layer for rule in RULES])
def test_layer_imports_point_down(rule: Rule) -> None:
    problems = [problem for path in layer_files(rule) for problem in violations(rule, path)]
    assert not problems, f"{rule.layer} imports what its layer must not:\n" + "\n".join(problems)


def test_the_built_layers_are_checked() -> None:
    """A rule for a layer that exists must find files, or it checks nothing."""
    for rule in RULES[:3]:
        assert layer_files(rule), rule.layer


def test_only_tests_import_the_test_helpers() -> None:
    """No module of the library imports ``actors.testing``, so importing it makes no cycle."""
    testing = PACKAGE / "testing"
    problems = [
        f"{path.relative_to(PACKAGE.parent)}:{imported.line}: {imported.module}"
        for path in sorted(PACKAGE.rglob("*.py"))
        if testing not in path.parents
        for imported in actors_imports(path)
        if within(imported.module, "actors.testing")
    ]
    assert not problems, "library modules import actors.testing:\n" + "\n".join(problems)


def test_every_module_starts_with_future_annotations() -> None:
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text())
        future = [
            node
            for node in tree.body
            if isinstance(node, ast.ImportFrom) and node.module == "__future__"
        ]
        assert any(alias.name == "annotations" for node in future for alias in node.names), path


def test_the_checker_sees_forbidden_and_guarded_imports(tmp_path: Path) -> None:
    module = tmp_path / "sample.py"
    module.write_text(
        "from __future__ import annotations\n"
        "from typing import TYPE_CHECKING\n"
        "import actors.supervision\n"
        "if TYPE_CHECKING:\n"
        "    from actors.runtime._ref import ActorRef\n"
        "def f() -> None:\n"
        "    from actors.redis import x\n"
        "from .._errors import ActorsError\n"
        "from . import _mailbox\n"
    )
    found = {(i.module, i.type_checking) for i in actors_imports(module, "actors.runtime.sample")}
    assert found == {
        ("actors.supervision", False),
        ("actors.runtime._ref", True),
        ("actors.redis", False),
        ("actors._errors", False),
        ("actors.runtime", False),
    }
    imports = actors_imports(module, "actors.runtime.sample")
    runtime = [i.module for i in imports if breaks(RULES[0], i)]
    assert runtime == ["actors.supervision", "actors.redis"]
    observability = Rule(layer="actors.observability", allowed_only=(), type_checking_exempt=True)
    assert "actors.runtime._ref" not in [i.module for i in imports if breaks(observability, i)]
