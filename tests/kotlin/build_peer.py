"""Install the Kotlin toolchain of the test suite's Kotlin peer and compile the peer, with caches.

Usage:
    python3 tests/kotlin/build_peer.py [install | build | all]    (all: the default)

Only the standard library is used, so that ``.ci/run`` can call it before the virtual environment
exists. Everything comes from the registries these machines reach, pinned by version and sha256:

- kotlinc with the kotlinx.serialization compiler plugin and kotlin-stdlib: the npm package
  ``kotlin-compiler`` (JetBrains' compiler distribution), fetched with ``npm pack``.
- the kotlinx.serialization runtime (core and json, for the JVM): the jars that JetBrains' PyPI
  wheel ``kotlin-jupyter-kernel`` ships, fetched with ``pip download``. Maven Central, their usual
  home, is out of reach here. The compiler is the 2.2 line, which kotlinx.serialization 1.9.0 is
  built for.
- ``java``: the system's (Debian: ``default-jre-headless``); it runs kotlinc and the peer.

Both live in a cache outside the checkout, so that every clone on a machine (CI makes a fresh one
per run) shares them: ``$ACTORS_KOTLIN_CACHE``, else ``$XDG_CACHE_HOME/actors/kotlin-peer``, else
``~/.cache/actors/kotlin-peer``. ``install`` fetches what is missing there; ``build`` compiles
``GuidePeer.kt`` into ``build/<digest>/guide-peer.jar``, where the digest covers the sources, the
compiler's arguments and the pinned toolchain, and reuses that jar while nothing changed. Each
step writes into a temporary directory and renames it into place, so that concurrent runs and
interrupted ones never leave a half-written toolchain or jar behind.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Final

HERE: Final = Path(__file__).resolve().parent
SOURCES: Final = (HERE / "GuidePeer.kt",)
MAIN_CLASS: Final = "GuidePeerKt"

KOTLIN_VERSION: Final = "2.2.21"
KOTLIN_PACKAGE: Final = f"kotlin-compiler@{KOTLIN_VERSION}"  # npm
KOTLIN_TARBALL: Final = f"kotlin-compiler-{KOTLIN_VERSION}.tgz"
KOTLIN_TARBALL_SHA256: Final = "7a16b983e6c759893c1f262c0c4bca801b0b5953a166ff8494e0a7f8659fe44e"

SERIALIZATION_VERSION: Final = "1.9.0"
JARS_WHEEL_REQUIREMENT: Final = "kotlin-jupyter-kernel==0.19.0.944"  # PyPI
JARS_WHEEL: Final = "kotlin_jupyter_kernel-0.19.0.944-py3-none-any.whl"
JARS_WHEEL_SHA256: Final = "dc654a426a28e6621aeb0bd7772d268a9a877aabae4a17b73383752a416281a3"
JARS_IN_WHEEL: Final = "run_kotlin_kernel/jars/"
RUNTIME_JARS: Final = {
    f"kotlinx-serialization-core-jvm-{SERIALIZATION_VERSION}.jar": (
        "1f0afa172110e45a7231ef1b44ae8fd84c1ebaff96f3fc3ad68ef8c48120b59c"
    ),
    f"kotlinx-serialization-json-jvm-{SERIALIZATION_VERSION}.jar": (
        "d94cc34cae39246a1af74fda63f9c4812ce12216ef641d5fa3bbbb539a6922d8"
    ),
}

# kotlin.time.Instant is experimental in Kotlin 2.2: opting in here keeps the guide's classes as
# they are written.
COMPILER_OPTIONS: Final = ("-opt-in=kotlin.time.ExperimentalTime", "-no-reflect", "-Werror")
INSTALL_TIMEOUT: Final = 600.0  # seconds for one download
COMPILE_TIMEOUT: Final = 300.0  # seconds for kotlinc


class ToolchainError(RuntimeError):
    """A download, a checksum or the compiler failed."""


@dataclass(frozen=True)
class Toolchain:
    """What compiling and running the peer takes, all present on disk."""

    java: Path
    kotlin_home: Path
    runtime_jars: tuple[Path, ...]

    @property
    def kotlinc(self) -> Path:
        return self.kotlin_home / "bin" / "kotlinc"

    @property
    def serialization_plugin(self) -> Path:
        return self.kotlin_home / "lib" / "kotlinx-serialization-compiler-plugin.jar"

    @property
    def stdlib(self) -> Path:
        return self.kotlin_home / "lib" / "kotlin-stdlib.jar"


def cache_root() -> Path:
    configured = os.environ.get("ACTORS_KOTLIN_CACHE")
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "actors" / "kotlin-peer"


def kotlin_home(root: Path) -> Path:
    return root / "toolchain" / f"kotlin-compiler-{KOTLIN_VERSION}"


def jars_directory(root: Path) -> Path:
    return root / "toolchain" / f"kotlinx-serialization-{SERIALIZATION_VERSION}"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _check_sha256(path: Path, expected: str) -> None:
    actual = sha256_of(path)
    if actual != expected:
        raise ToolchainError(f"{path.name}: sha256 {actual}, expected {expected}")


def missing_parts(root: Path | None = None) -> list[str]:
    """What is missing for compiling and running the peer, each with how to get it."""
    root = cache_root() if root is None else root
    missing = []
    if shutil.which("java") is None:
        missing.append("java (Debian: apt-get install default-jre-headless)")
    cached = []
    if not (kotlin_home(root) / "lib" / "kotlin-compiler.jar").exists():
        cached.append(f"kotlinc {KOTLIN_VERSION}")
    if not all((jars_directory(root) / name).exists() for name in RUNTIME_JARS):
        cached.append(f"the kotlinx.serialization {SERIALIZATION_VERSION} jars")
    if cached:
        missing.append(
            f"{' and '.join(cached)} in {root} (python3 {_script()} install fetches them)"
        )
    return missing


def _script() -> str:
    try:
        return str(Path(__file__).resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(Path(__file__).resolve())


def find_toolchain(root: Path | None = None) -> Toolchain | None:
    """The installed toolchain, or None when a part is missing (see ``missing_parts``)."""
    root = cache_root() if root is None else root
    java = shutil.which("java")
    if java is None or missing_parts(root):
        return None
    return Toolchain(
        java=Path(java),
        kotlin_home=kotlin_home(root),
        runtime_jars=tuple(jars_directory(root) / name for name in RUNTIME_JARS),
    )


# --- install ----------------------------------------------------------------------------------


def _run(command: list[str], *, cwd: Path, timeout: float) -> None:
    result = subprocess.run(
        command, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
    )
    if result.returncode != 0:
        raise ToolchainError(
            f"{' '.join(command)} failed ({result.returncode}):\n{result.stdout}{result.stderr}"
        )


def _move_into_place(staged: Path, target: Path) -> None:
    """Rename ``staged`` to ``target``; another run that got there first wins."""
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        staged.rename(target)
    except OSError:
        if not target.exists():
            raise


def install_kotlin_compiler(root: Path) -> Path:
    """kotlinc from the npm package ``kotlin-compiler``, unpacked into the cache once."""
    home = kotlin_home(root)
    if (home / "lib" / "kotlin-compiler.jar").exists():
        return home
    if shutil.which("npm") is None:
        raise ToolchainError("npm is not on PATH (Debian: apt-get install npm)")
    (root / "toolchain").mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=root / "toolchain") as scratch:
        staging = Path(scratch)
        print(f"fetching {KOTLIN_PACKAGE} from npm", flush=True)
        _run(
            ["npm", "pack", KOTLIN_PACKAGE, "--pack-destination", str(staging), "--silent"],
            cwd=staging,
            timeout=INSTALL_TIMEOUT,
        )
        tarball = staging / KOTLIN_TARBALL
        _check_sha256(tarball, KOTLIN_TARBALL_SHA256)
        unpacked = staging / "unpacked"
        with tarfile.open(tarball) as archive:
            if hasattr(tarfile, "data_filter"):  # Python 3.11.4 and later
                archive.extractall(unpacked, filter="data")
            else:  # pragma: no cover - the tarball's checksum was checked above
                archive.extractall(unpacked)
        _move_into_place(unpacked / "package", home)
    return home


def install_runtime_jars(root: Path) -> Path:
    """The kotlinx.serialization jars, taken out of their PyPI wheel into the cache once."""
    directory = jars_directory(root)
    if all((directory / name).exists() for name in RUNTIME_JARS):
        return directory
    (root / "toolchain").mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=root / "toolchain") as scratch:
        staging = Path(scratch)
        print(f"fetching {JARS_WHEEL_REQUIREMENT} from PyPI for its jars", flush=True)
        pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "download"]
        _run(
            [
                *pip,
                "--no-deps",
                "--only-binary=:all:",
                "--dest",
                str(staging),
                JARS_WHEEL_REQUIREMENT,
            ],
            cwd=staging,
            timeout=INSTALL_TIMEOUT,
        )
        wheel = staging / JARS_WHEEL
        _check_sha256(wheel, JARS_WHEEL_SHA256)
        jars = staging / "jars"
        jars.mkdir()
        with zipfile.ZipFile(wheel) as archive:
            for name, expected in RUNTIME_JARS.items():
                (jars / name).write_bytes(archive.read(JARS_IN_WHEEL + name))
                _check_sha256(jars / name, expected)
        _move_into_place(jars, directory)
    return directory


def install(root: Path | None = None) -> Toolchain:
    """Fetch whatever part of the toolchain is missing from the cache (java excepted)."""
    root = cache_root() if root is None else root
    install_kotlin_compiler(root)
    install_runtime_jars(root)
    toolchain = find_toolchain(root)
    if toolchain is None:
        raise ToolchainError("missing: " + "; ".join(missing_parts(root)))
    return toolchain


# --- build ------------------------------------------------------------------------------------


def build_digest() -> str:
    """Names the build: the sources, the compiler's options and the pinned toolchain."""
    digest = hashlib.sha256()
    for part in [
        KOTLIN_TARBALL_SHA256,
        *RUNTIME_JARS.values(),
        *COMPILER_OPTIONS,
        *(f"{path.name}:{sha256_of(path)}" for path in SOURCES),
    ]:
        digest.update(part.encode() + b"\0")
    return digest.hexdigest()[:16]


def peer_jar(root: Path | None = None) -> Path:
    root = cache_root() if root is None else root
    return root / "build" / build_digest() / "guide-peer.jar"


def build(toolchain: Toolchain, root: Path | None = None) -> Path:
    """Compile the peer with kotlinc and the serialization plugin, unless it is already built."""
    root = cache_root() if root is None else root
    jar = peer_jar(root)
    if jar.exists():
        return jar
    jar.parent.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=jar.parent.parent) as scratch:
        staged = Path(scratch) / jar.parent.name
        staged.mkdir()
        command = [
            "bash",
            str(toolchain.kotlinc),
            *COMPILER_OPTIONS,
            f"-Xplugin={toolchain.serialization_plugin}",
            "-cp",
            os.pathsep.join(map(str, toolchain.runtime_jars)),
            "-d",
            str(staged / jar.name),
            *map(str, SOURCES),
        ]
        environment = {**os.environ, "JAVACMD": str(toolchain.java)}  # kotlinc runs on it
        result = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=COMPILE_TIMEOUT,
            check=False,
            env=environment,
        )
        if result.returncode != 0 or not (staged / jar.name).exists():
            raise ToolchainError(f"kotlinc failed ({result.returncode}):\n{result.stderr}")
        _move_into_place(staged, jar.parent)
    return jar


def run_command(toolchain: Toolchain, jar: Path) -> list[str]:
    """The command that runs the compiled peer; its arguments follow (see GuidePeer.kt)."""
    classpath = os.pathsep.join(map(str, [jar, toolchain.stdlib, *toolchain.runtime_jars]))
    return [str(toolchain.java), "-cp", classpath, MAIN_CLASS]


def main(argv: list[str]) -> int:
    step = argv[0] if argv else "all"
    if step not in {"install", "build", "all"} or len(argv) > 1:
        print(__doc__)
        return 2
    started = time.monotonic()
    try:
        if step in {"install", "all"}:
            toolchain = install()
        else:
            found = find_toolchain()
            if found is None:
                print("missing: " + "; ".join(missing_parts()), file=sys.stderr)
                return 1
            toolchain = found
        if step in {"build", "all"}:
            jar = build(toolchain)
            print(f"kotlin peer: {jar} ({time.monotonic() - started:.1f} s)", flush=True)
        else:
            print(f"kotlin toolchain: {cache_root()} ({time.monotonic() - started:.1f} s)")
    except ToolchainError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
