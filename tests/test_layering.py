"""Imports point down the layers of the architecture (see docs/architecture.md).

Every ``import`` in ``actors/`` is parsed with ``ast``, those under ``if TYPE_CHECKING:``
included, and checked against ``RULES``: for each layer, the only ``actors`` modules it may import
besides its own. Every module of the package belongs to exactly one layer, so a new package
needs its row here before its first test can pass. The framework (everything but
``actors.server``) never imports the server; ``actors.__main__``, the program, is the one
module of the top level that does.
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
    """The layer: a package such as ``actors.runtime`` or a module such as ``actors.cli``."""
    may_import: tuple[str, ...]
    """The only ``actors`` modules (their submodules included) the layer may import besides
    itself."""


ERRORS = "actors._errors"
RUNTIME = (ERRORS, "actors.runtime")
SUPERVISION = (*RUNTIME, "actors.supervision")
PUBSUB = (*SUPERVISION, "actors.observability", "actors.messages", "actors.redis", "actors.pubsub")
FRAMEWORK = (*PUBSUB, "actors.presence")
"""What applications build on: every library layer, and not the test kit or the command line."""
SERVER_SERVICE = (*FRAMEWORK,)
"""Chat and notifications sit side by side on the framework, neither importing the other."""

RULES = (
    Rule(layer="actors._errors", may_import=()),
    Rule(layer="actors.runtime", may_import=(ERRORS,)),
    Rule(layer="actors.supervision", may_import=RUNTIME),
    # The runtime defines the instrument hooks; observability implements them.
    Rule(layer="actors.observability", may_import=RUNTIME),
    Rule(layer="actors.messages", may_import=(ERRORS,)),
    Rule(layer="actors.redis", may_import=(ERRORS,)),
    Rule(layer="actors.pubsub", may_import=PUBSUB),
    Rule(layer="actors.presence", may_import=FRAMEWORK),
    # The test kit drives the Redis client (and the Pub/Sub layer's glob matcher) and opens
    # actor systems for its pytest plugin.
    Rule(
        layer="actors.testing",
        may_import=(ERRORS, "actors.redis", "actors.pubsub", "actors.runtime"),
    ),
    Rule(layer="actors._operator", may_import=FRAMEWORK),
    Rule(layer="actors.cli", may_import=("actors", "actors._operator")),
    # The package's own __init__ is the public API: it gathers the framework, nothing else.
    Rule(layer="actors", may_import=FRAMEWORK),
    Rule(layer="actors.__main__", may_import=("actors.server.cli",)),
    Rule(layer="actors.server", may_import=()),
    Rule(layer="actors.server.http", may_import=(ERRORS, "actors.observability")),
    Rule(layer="actors.server.chat", may_import=SERVER_SERVICE),
    Rule(layer="actors.server.notifications", may_import=SERVER_SERVICE),
    Rule(
        layer="actors.server.gateway",
        may_import=(
            *FRAMEWORK,
            "actors.server.admin",
            "actors.server.chat",
            "actors.server.notifications",
            "actors.server.http",
        ),
    ),
    Rule(layer="actors.server.demo", may_import=FRAMEWORK),
    # The observer reads the framework's snapshots; the gateway hands itself in (GatewayFacts).
    Rule(
        layer="actors.server.admin",
        may_import=(*FRAMEWORK, "actors.server.http", "actors.server.demo"),
    ),
    # The command line configures the process's logging (observability) and checks the Redis
    # client name it is given (redis) before anything starts.
    Rule(
        layer="actors.server.cli",
        may_import=(
            "actors",
            "actors.cli",
            "actors.observability",
            "actors.presence",
            "actors.redis",
            "actors.server.admin",
            "actors.server.demo",
            "actors.server.gateway",
            "actors.server.http",
        ),
    ),
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
    """Whether ``module`` is ``package`` or one of its submodules.

    ``actors`` stands for the top-level module alone (the public API), not the whole tree.
    """
    if package == "actors":
        return module == "actors"
    return module == package or module.startswith(package + ".")


def layer_of(module: str) -> Rule | None:
    """The rule of the most specific layer holding ``module``."""
    holding = [rule for rule in RULES if within(module, rule.layer)]
    return max(holding, key=lambda rule: len(rule.layer), default=None)


def breaks(rule: Rule, imported: Import) -> bool:
    """Whether a layer governed by ``rule`` may not make this import."""
    if layer_of(imported.module) == rule:
        return False
    return not any(within(imported.module, allowed) for allowed in rule.may_import)


def modules() -> list[tuple[Path, str]]:
    return [(path, module_name(path)) for path in sorted(PACKAGE.rglob("*.py"))]


def layer_files(rule: Rule) -> list[Path]:
    return [path for path, module in modules() if layer_of(module) == rule]


@pytest.mark.parametrize("rule", RULES, ids=[rule.layer for rule in RULES])
def test_layer_imports_point_down(rule: Rule) -> None:
    problems = [
        f"{path.relative_to(PACKAGE.parent)}:{imported.line}: {imported.module}"
        for path in layer_files(rule)
        for imported in actors_imports(path)
        if breaks(rule, imported)
    ]
    assert not problems, f"{rule.layer} imports what its layer must not:\n" + "\n".join(problems)


@pytest.mark.parametrize("rule", RULES, ids=[rule.layer for rule in RULES])
def test_every_rule_governs_modules(rule: Rule) -> None:
    """A rule whose layer holds no module checks nothing: a renamed package must not hide."""
    assert layer_files(rule), rule.layer


def test_every_module_belongs_to_a_layer() -> None:
    orphans = [str(path) for path, module in modules() if layer_of(module) is None]
    assert not orphans, "modules no rule governs (add a row to RULES):\n" + "\n".join(orphans)


def test_the_framework_never_imports_the_server() -> None:
    """Only the server itself and the program (``python -m actors``) import ``actors.server``."""
    problems = [
        f"{path.relative_to(PACKAGE.parent)}:{imported.line}: {imported.module}"
        for path, module in modules()
        if not within(module, "actors.server") and module != "actors.__main__"
        for imported in actors_imports(path)
        if within(imported.module, "actors.server")
    ]
    assert not problems, "framework modules import the server:\n" + "\n".join(problems)


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
    runtime = layer_of("actors.runtime.sample")
    assert runtime is not None
    assert runtime.layer == "actors.runtime"
    assert [i.module for i in imports if breaks(runtime, i)] == [
        "actors.supervision",
        "actors.redis",
    ]
    # A guarded import counts like any other: observability may import the runtime, not Redis.
    observability = layer_of("actors.observability._metrics")
    assert observability is not None
    assert [i.module for i in imports if breaks(observability, i)] == [
        "actors.supervision",
        "actors.redis",
    ]


def test_the_top_level_stands_for_itself_alone() -> None:
    assert within("actors", "actors")
    assert not within("actors.server.gateway", "actors")
    top = layer_of("actors")
    assert top is not None
    assert top.layer == "actors"
    gateway = layer_of("actors.server.gateway._session")
    assert gateway is not None
    assert gateway.layer == "actors.server.gateway"
    assert layer_of("actors.brand_new_package.module") is None
