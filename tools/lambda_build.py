"""Builds the Lambda artifacts for the template's target on any host: called by the Makefile's ``build-*`` targets.

``sam build`` runs those targets (the template's ``BuildMethod: makefile``) with ``ARTIFACTS_DIR`` set and the
resource's source folder as the working directory. Nothing here runs code of the target Python or needs Docker:

- ``layer``: the third-party packages of ``requirements.txt`` as pip downloads them for the target (CPython 3.13 on
  manylinux aarch64, binary wheels only: cp313 or abi3), never the host's, plus the ``kauto`` package, under
  ``python/``. pip's host-Python bytecode and console scripts are left out.
- ``function``: the handler module(s) of the function folder.

Lambda mounts both read-only (``/opt``, ``/var/task``), so Python cannot cache bytecode there and every cold start
would compile every module it imports. When the build machine has the runtime's Python, both are shipped with
bytecode compiled by it, in ``unchecked-hash`` mode (valid whatever the zip's timestamps); otherwise the build says so.

Run: ``python tools/lambda_build.py layer|function SOURCE_DIR ARTIFACTS_DIR``
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

RUNTIME_VERSION = (3, 13)  # the template's Runtime: python3.13
RUNTIME_DOTTED = f"{RUNTIME_VERSION[0]}.{RUNTIME_VERSION[1]}"
RUNTIME_NAME = f"python{RUNTIME_DOTTED}"
# Architectures: [arm64]. Lambda's python3.13 runs on Amazon Linux 2023 (glibc 2.34): any manylinux up to 2_34.
TARGET_PLATFORMS = (
    "manylinux_2_34_aarch64",
    "manylinux_2_28_aarch64",
    "manylinux_2_17_aarch64",
    "manylinux2014_aarch64",
)
LAYER_MOUNT = "/opt/python"  # where Lambda puts a layer's python/ folder
FUNCTION_MOUNT = "/var/task"
SKIPPED_NAMES = {"__pycache__", ".pytest_cache", ".mypy_cache"}
TEST_FOLDERS = ("tests", "test")


def runtime_python_candidates(home: Path, path_dirs: Iterable[str]) -> list[Path]:
    """Where a Python 3.13 may live: on PATH (possibly a pyenv shim), then pyenv's versions, newest first."""
    candidates = [Path(d) / RUNTIME_NAME for d in path_dirs if d]
    pyenv_versions = home / ".pyenv" / "versions"
    if pyenv_versions.is_dir():
        found = [p / "bin" / RUNTIME_NAME for p in pyenv_versions.iterdir() if p.name.startswith(RUNTIME_DOTTED)]
        candidates += sorted(found, key=lambda p: p.parent.parent.name, reverse=True)
    return [c for c in candidates if c.is_file() and os.access(c, os.X_OK)]


def find_runtime_python(candidates: Iterable[Path]) -> Path | None:
    """The first candidate that runs and reports the runtime's version (a pyenv shim may refuse; skip it)."""
    for candidate in candidates:
        try:
            result = subprocess.run(
                [str(candidate), "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            )
        except OSError:
            continue
        if result.returncode == 0 and result.stdout.strip() == RUNTIME_DOTTED:
            return candidate
    return None


def locate_runtime_python() -> Path | None:
    """``RUNTIME_PYTHON`` if set (empty: build without bytecode), else the first working Python 3.13 found."""
    override = os.environ.get("RUNTIME_PYTHON")
    if override is not None:
        return find_runtime_python([Path(override)]) if override else None
    return find_runtime_python(runtime_python_candidates(Path.home(), os.environ.get("PATH", "").split(os.pathsep)))


def copy_sources(source: Path, destination: Path) -> None:
    """Copy a source tree without caches (bytecode of the host's Python must not ship)."""
    shutil.copytree(
        source,
        destination,
        ignore=lambda _dir, names: [n for n in names if n in SKIPPED_NAMES or n.endswith(".pyc")],
        dirs_exist_ok=True,
    )


def install_dependencies(requirements: Path, target: Path) -> None:
    platforms = [arg for platform in TARGET_PLATFORMS for arg in ("--platform", platform)]
    command = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--requirement",
        str(requirements),
        "--target",
        str(target),
        *platforms,
        "--implementation",
        "cp",
        "--python-version",
        RUNTIME_DOTTED,
        "--only-binary=:all:",
        # pip would compile with the host's Python: that bytecode is useless to the runtime.
        "--no-compile",
        "--upgrade",
    ]
    subprocess.run(command, check=True)
    # Console scripts carry the host interpreter's path in their shebang; nothing in Lambda runs them.
    shutil.rmtree(target / "bin", ignore_errors=True)
    # Some packages ship their own test suites (certifi): dead weight in a layer.
    for package in target.iterdir():
        for name in TEST_FOLDERS:
            shutil.rmtree(package / name, ignore_errors=True)


def compile_bytecode(python: Path, root: Path, mount: str) -> None:
    """Compile every module under ``root`` with the runtime's Python; tracebacks show the path Lambda mounts."""
    subprocess.run(
        [
            str(python),
            "-m",
            "compileall",
            "-q",
            "-j",
            "0",
            "--invalidation-mode",
            "unchecked-hash",
            "-s",
            str(root),
            "-p",
            mount,
            str(root),
        ],
        check=True,
    )


def say(message: str) -> None:
    print(f"[build] {message}", flush=True)


def build_layer(source: Path, artifacts: Path) -> None:
    python_dir = artifacts / "python"
    python_dir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    say(
        f"layer: pip install of {source / 'requirements.txt'} for {RUNTIME_NAME} arm64 (manylinux aarch64 wheels); "
        "about 30 s the first time (downloads ~15 MB), a few seconds from pip's cache"
    )
    install_dependencies(source / "requirements.txt", python_dir)
    say(f"layer: dependencies installed in {time.monotonic() - started:.0f} s")
    copy_sources(source / "kauto", python_dir / "kauto")
    finish(python_dir, LAYER_MOUNT, "layer")


def build_function(source: Path, artifacts: Path) -> None:
    artifacts.mkdir(parents=True, exist_ok=True)
    copy_sources(source, artifacts)
    finish(artifacts, FUNCTION_MOUNT, f"function {artifacts.name}")


def finish(root: Path, mount: str, what: str) -> None:
    python = locate_runtime_python()
    if python is not None:
        started = time.monotonic()
        compile_bytecode(python, root, mount)
        say(f"{what}: bytecode compiled by {python} (unchecked-hash) in {time.monotonic() - started:.0f} s")
    else:
        say(
            f"{what}: no {RUNTIME_NAME} on this machine (PATH, ~/.pyenv/versions, RUNTIME_PYTHON): shipping WITHOUT "
            "bytecode, so every cold start compiles the modules it imports. Install "
            f"{RUNTIME_NAME} and rebuild to ship bytecode."
        )
    size = sum(p.stat().st_size for p in root.rglob("*") if p.is_file())
    shown = f"{size / 1e6:.1f} MB" if size >= 1e6 else f"{size / 1e3:.1f} kB"
    say(f"{what}: {shown} unzipped (Lambda allows 250 MB for a function and its layers)")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("kind", choices=["layer", "function"])
    parser.add_argument("source", type=Path, help="the resource's source folder (CodeUri / ContentUri)")
    parser.add_argument("artifacts", type=Path, help="where sam build collects the artifact (ARTIFACTS_DIR)")
    args = parser.parse_args(argv)
    if args.kind == "layer":
        build_layer(args.source.resolve(), args.artifacts.resolve())
    else:
        build_function(args.source.resolve(), args.artifacts.resolve())
    return 0


if __name__ == "__main__":
    sys.exit(main())
