"""No module reaches into the private state of objects that another module owns.

Every module in ``actors/`` is parsed with ``ast``, in the manner of ``test_layering.py``. An
attribute access ``X._name`` (``X`` anything but ``self`` or ``cls``, dunder names excepted) is
allowed only when:

- the module itself defines ``_name`` in one of its classes (a method, a class attribute, a slot,
  or an attribute assigned on ``self``): Python's unit of privacy is the module, so a class and
  the functions beside it share its private names (``Gateway`` and ``open_gateway``, or a cell
  linking itself to another cell);
- or the module's package lists the access in ``EXCEPTIONS``, with its reason.

Everything else fails: one module reading or writing what another module's object keeps private
is how an actor's state came to be written from four modules before the actor cell owned it.
A second check keeps the runtime's private modules private: outside ``actors/runtime/``, code
imports ``actors.runtime`` and ``actors.runtime.lowlevel`` only.
"""

from __future__ import annotations

import ast
from pathlib import Path

import attrs
import pytest

PACKAGE = Path(__file__).parent.parent / "actors"

EXCEPTIONS: dict[str, dict[str, str]] = {
    "actors": {
        "argparse._SubParsersAction": "the type of what add_subparsers() returns, in an "
        "annotation: argparse has no public name for it, and typeshed uses this one",
    },
    "actors.messages": {
        "sys._getframe": "the caller's namespace, to resolve a message's forward references "
        "where it is defined; CPython documents sys._getframe",
    },
    "actors.redis": {
        "parts._replace": "namedtuple's documented method (urlsplit's SplitResult); the "
        "underscore only keeps it apart from the field names",
    },
}
"""Per package: the accesses (as written in the source) allowed anyway, and why."""

RUNTIME_PUBLIC_MODULES = ("actors.runtime", "actors.runtime.lowlevel")


@attrs.frozen
class Violation:
    module: str
    line: int
    access: str

    def __str__(self) -> str:
        return f"{self.module}:{self.line}: {self.access}"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def package_of(module: str, path_is_package: bool = False) -> str:
    return module if path_is_package else module.rpartition(".")[0]


def is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def names_defined_by_classes(tree: ast.Module) -> set[str]:
    """The private names that the module's classes define."""
    defined: set[str] = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.ClassDef):
            continue
        for statement in node.body:
            if isinstance(statement, ast.FunctionDef | ast.AsyncFunctionDef):
                defined.add(statement.name)
            elif isinstance(statement, ast.Assign | ast.AnnAssign):
                targets = (
                    statement.targets if isinstance(statement, ast.Assign) else [statement.target]
                )
                for target in targets:
                    if isinstance(target, ast.Name):
                        defined.add(target.id)
                        if target.id == "__slots__" and statement.value is not None:
                            defined.update(
                                constant.value
                                for constant in ast.walk(statement.value)
                                if isinstance(constant, ast.Constant)
                                and isinstance(constant.value, str)
                            )
        for inner in ast.walk(node):
            if (
                isinstance(inner, ast.Attribute)
                and isinstance(inner.ctx, ast.Store)
                and isinstance(inner.value, ast.Name)
                and inner.value.id == "self"
            ):
                defined.add(inner.attr)
    return {name for name in defined if is_private(name)}


def violations(source: str, module: str, package: str) -> list[Violation]:
    """The private accesses in ``source`` that neither its module nor ``EXCEPTIONS`` allow."""
    tree = ast.parse(source)
    own = names_defined_by_classes(tree)
    allowed = EXCEPTIONS.get(package, {})
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Attribute) or not is_private(node.attr):
            continue
        if isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"):
            continue
        if node.attr in own:
            continue
        access = ast.unparse(node)
        if access in allowed:
            continue
        found.append(Violation(module, node.lineno, access))
    return sorted(found, key=lambda violation: violation.line)


def runtime_private_imports(source: str, module: str) -> list[Violation]:
    """Imports of the runtime's private modules, from outside the runtime."""
    if module == "actors.runtime" or module.startswith("actors.runtime."):
        return []
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            imported = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            imported = [alias.name for alias in node.names]
        else:
            continue
        for name in imported:
            if name.startswith("actors.runtime.") and name not in RUNTIME_PUBLIC_MODULES:
                if name.rpartition(".")[0] in RUNTIME_PUBLIC_MODULES and not is_private(
                    name.rpartition(".")[2]
                ):
                    continue  # a public name imported from a public module
                found.append(Violation(module, node.lineno, f"import {name}"))
    return found


MODULES = sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=lambda path: module_name(path))
def test_no_module_touches_another_modules_private_attributes(path: Path) -> None:
    module = module_name(path)
    package = package_of(module, path.name == "__init__.py")
    found = violations(path.read_text(), module, package)
    assert not found, "private attributes of other modules' objects:\n" + "\n".join(map(str, found))


@pytest.mark.parametrize("path", MODULES, ids=lambda path: module_name(path))
def test_only_the_runtime_imports_its_private_modules(path: Path) -> None:
    found = runtime_private_imports(path.read_text(), module_name(path))
    assert not found, "use actors.runtime or actors.runtime.lowlevel:\n" + "\n".join(
        map(str, found)
    )


def test_every_exception_is_still_needed() -> None:
    """An exception the code no longer needs is taken out, so the table stays honest."""
    used: set[tuple[str, str]] = set()
    for path in MODULES:
        module = module_name(path)
        package = package_of(module, path.name == "__init__.py")
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and ast.unparse(node) in EXCEPTIONS.get(package, {}):
                used.add((package, ast.unparse(node)))
    listed = {(package, access) for package, table in EXCEPTIONS.items() for access in table}
    assert listed <= used, f"exceptions nothing needs: {sorted(listed - used)}"


# -- the checker itself -------------------------------------------------------------------------

PLANTED = """
class Supervisor:
    def __init__(self, ref):
        self._children = {}
        self.ref = ref

    def restart(self, other):
        other._children.clear()  # allowed: this module's class defines _children
        self.ref._state = "restarting"  # another module's private state: a violation
"""


def test_the_checker_finds_a_planted_violation() -> None:
    found = violations(PLANTED, "actors.supervision._planted", "actors.supervision")
    assert [violation.access for violation in found] == ["self.ref._state"]
    assert found[0].line == 9


def test_the_checker_honours_the_exception_table() -> None:
    source = "import sys\nframe = sys._getframe(1)\nref._mailbox.put_nowait(1)\n"
    found = violations(source, "actors.messages._planted", "actors.messages")
    assert [violation.access for violation in found] == ["ref._mailbox"]
    found = violations(source, "actors.pubsub._planted", "actors.pubsub")
    assert [violation.access for violation in found] == ["sys._getframe", "ref._mailbox"]


def test_the_checker_finds_a_private_runtime_import() -> None:
    source = (
        "from actors.runtime._ref import ActorRef\n"
        "from actors.runtime.lowlevel import ActorCell\n"
        "from actors.runtime import _cell\n"
        "import actors.runtime._mailbox\n"
    )
    found = runtime_private_imports(source, "actors.supervision._planted")
    assert [violation.access for violation in found] == [
        "import actors.runtime._ref",
        "import actors.runtime._ref.ActorRef",
        "import actors.runtime._cell",
        "import actors.runtime._mailbox",
    ]
    assert runtime_private_imports(source, "actors.runtime._planted") == []
