"""The public API: everything in ``__all__`` exists and is documented, nothing public is missing.

In the spirit of trio's ``_tests/test_exports.py``.
"""

from __future__ import annotations

import enum
import importlib
import inspect
import types

import pytest

import actors

CORE = "actors"
"""The framework's core vocabulary, re-exported at the top."""
FRAMEWORK_PACKAGES = [
    "actors.runtime",
    "actors.supervision",
    "actors.observability",
    "actors.messages",
    "actors.redis",
    "actors.pubsub",
    "actors.presence",
]
SERVER_PACKAGES = [
    "actors.server.gateway",
    "actors.server.chat",
    "actors.server.notifications",
    "actors.server.http",
    "actors.server.demo",
]
"""The server built on the framework: its names live in their own namespace, not in ``actors``."""
PACKAGES = [CORE, *FRAMEWORK_PACKAGES, *SERVER_PACKAGES]
CORE_SIZE = range(40, 61)
"""How many names ``actors`` exports: the core vocabulary, not every name of every layer."""
ERRORS = "actors._errors"
HELPER_PACKAGES = ["actors.testing", "actors.runtime.lowlevel"]
"""Public packages that ``actors`` does not re-export, as ``trio`` does not re-export
``trio.testing`` or ``trio.lowlevel``: checked on their own (importable, complete, documented)."""
PLUGIN = "actors.testing.pytest_plugin"
"""The pytest plugin: its ``__all__`` is the skip-or-fail policy; pytest finds its fixtures."""
PLUGIN_FIXTURES = [
    "redis_server_factory",
    "redis_server",
    "module_redis_server",
    "module_redis_url",
    "unix_redis_server",
    "tls_files",
    "tls_redis_server",
    "tls_client_auth_redis_server",
    "acl_redis_server",
    "session_redis_cluster",
    "redis_cluster",
    "actor_system",
    "memory_redis",
]


def public_names(module: types.ModuleType) -> list[str]:
    names: list[str] = module.__all__
    return names


def documented(value: object) -> bool:
    return bool(inspect.getdoc(value))


@pytest.mark.parametrize("package", [*PACKAGES, *HELPER_PACKAGES, PLUGIN, ERRORS])
def test_all_names_are_importable_and_unique(package: str) -> None:
    module = importlib.import_module(package)
    names = public_names(module)
    assert len(names) == len(set(names)), f"{package}.__all__ has duplicates"
    for name in names:
        assert hasattr(module, name), f"{package}.__all__ names {name}, which does not exist"
    namespace: dict[str, object] = {}
    exec(f"from {package} import *", namespace)
    assert set(names) <= set(namespace)


def test_the_core_is_small_and_comes_from_the_framework() -> None:
    assert len(actors.__all__) in CORE_SIZE, len(actors.__all__)
    homes = {
        name for package in FRAMEWORK_PACKAGES for name in importlib.import_module(package).__all__
    }
    strays = sorted(set(actors.__all__) - homes)
    assert not strays, f"actors.__all__ names no framework package exports: {strays}"


def test_the_server_names_stay_in_their_own_namespace() -> None:
    for package in SERVER_PACKAGES:
        names = set(public_names(importlib.import_module(package)))
        shared = sorted(names & set(actors.__all__))
        assert not shared, f"actors re-exports {package}'s {shared}"


def test_every_error_has_a_public_home() -> None:
    """Each error of ``_errors`` is exported by a public package, so users can catch it."""
    exported = {
        name
        for package in [*FRAMEWORK_PACKAGES, *SERVER_PACKAGES]
        for name in importlib.import_module(package).__all__
    }
    orphans = sorted(set(public_names(importlib.import_module(ERRORS))) - exported)
    assert not orphans, f"errors no public package exports: {orphans}"


@pytest.mark.parametrize("package", [*PACKAGES, *HELPER_PACKAGES, ERRORS])
def test_no_public_name_is_missing_from_all(package: str) -> None:
    """A public class or function defined in (or imported into) a package is in its ``__all__``."""
    module = importlib.import_module(package)
    exported = set(public_names(module))
    candidates = {
        name
        for name, value in vars(module).items()
        if not name.startswith("_")
        and (inspect.isclass(value) or inspect.isfunction(value))
        and getattr(value, "__module__", "").startswith("actors")
    }
    missing = sorted(candidates - exported)
    assert not missing, f"{package} has public names outside __all__: {missing}"


def test_every_error_derives_from_actors_error() -> None:
    errors = importlib.import_module(ERRORS)
    for name in public_names(errors):
        assert issubclass(getattr(errors, name), actors.ActorsError), name


def _public_members(cls: type) -> list[tuple[str, object]]:
    members: list[tuple[str, object]] = []
    for name, value in vars(cls).items():
        if name.startswith("_"):
            continue
        if isinstance(value, (staticmethod, classmethod)):
            value = value.__func__
        if inspect.isfunction(value) or isinstance(value, property):
            members.append((name, value))
    return members


PUBLIC_OBJECTS = [
    # Named in full (``actors.testing.MemoryRedisServer``); the ids of ``actors`` names are bare.
    pytest.param(
        f"{module.__name__}.{name}", value, id=f"{module.__name__}.{name}"[len("actors.") :]
    )
    for module in map(importlib.import_module, [*PACKAGES, *HELPER_PACKAGES, PLUGIN])
    for name in public_names(module)
    if inspect.isclass(value := getattr(module, name)) or inspect.isfunction(value)
]


def test_the_plugin_is_registered_once(pytestconfig: pytest.Config) -> None:
    """The entry point and ``pytest_plugins`` in conftest.py both name it: it is there once."""
    plugin = importlib.import_module(PLUGIN)
    assert pytestconfig.pluginmanager.get_plugin(PLUGIN) is plugin
    registered = pytestconfig.pluginmanager.list_name_plugin()
    assert [name for name, value in registered if value is plugin] == [PLUGIN]


@pytest.mark.parametrize("name", PLUGIN_FIXTURES)
def test_plugin_fixtures_are_documented(name: str) -> None:
    fixture = getattr(importlib.import_module(PLUGIN), name)
    assert documented(fixture), f"the fixture {name} has no docstring"


def test_helper_packages_are_not_re_exported() -> None:
    """Test helpers stay out of ``actors``, as ``trio.testing`` stays out of ``trio``."""
    for package in HELPER_PACKAGES:
        names = set(public_names(importlib.import_module(package)))
        assert not names & set(actors.__all__), package


@pytest.mark.parametrize(("name", "value"), PUBLIC_OBJECTS)
def test_public_classes_and_functions_have_docstrings(name: str, value: object) -> None:
    assert documented(value), f"{name} has no docstring"


# Known gaps, reported to the owners of actors/: strict xfails, so fixing one fails the test
# until its entry here is removed.
UNDOCUMENTED: dict[str, str] = {}

PUBLIC_CLASSES = [
    pytest.param(
        *param.values,
        id=param.id,
        marks=[pytest.mark.xfail(reason=UNDOCUMENTED[param.id], strict=True)]
        if param.id in UNDOCUMENTED
        else [],
    )
    for param in PUBLIC_OBJECTS
    if inspect.isclass(param.values[1])
]


@pytest.mark.parametrize(("name", "value"), PUBLIC_CLASSES)
def test_public_methods_have_docstrings(name: str, value: type) -> None:
    if issubclass(value, BaseException | enum.Enum):
        return
    undocumented = [member for member, obj in _public_members(value) if not documented(obj)]
    assert not undocumented, f"{name} has undocumented public members: {undocumented}"


def test_version_is_a_string() -> None:
    assert isinstance(actors.__version__, str)
