"""What ``make build`` produces is what Lambda (python3.13, arm64) can run, and nothing else.

The session fixture runs ``make build`` once (into a temporary build folder; with pytest-xdist the first worker builds
and the other reuses it) and the tests read the artifacts as files: ELF headers of every native library, the wheel
tags pip recorded, the bytecode headers, and the sizes Lambda counts against its 250 MB limit.
"""

from __future__ import annotations

import fcntl
import importlib.util
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from cfnlint.decode import cfn_yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
LAYER_LIMIT_BYTES = 250 * 1024 * 1024  # Lambda: function + layers, unzipped
ELF_MAGIC = b"\x7fELF"
EM_AARCH64 = 183
# Wheel tags pip may install for the target: pure Python, or CPython 3.13 / the stable ABI on manylinux aarch64.
TARGET_TAG = re.compile(r"^(py3|py313|cp313)-none-any$|^cp3\d+-(cp313|abi3)-manylinux[_0-9a-z]*_aarch64$")
NOT_SHIPPED = {"tests", "test", "conftest.py", "fakes.py", "kauto_local", "kauto_ops", "local", "ops", "simulator"}


def load_build_tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location("lambda_build", REPO_ROOT / "tools" / "lambda_build.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


lambda_build = load_build_tool()


@pytest.fixture(scope="session")
def build_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """``make build`` into a shared temporary folder, once per session (a lock serialises pytest-xdist workers)."""
    # Under pytest-xdist each worker's base folder sits in the run's own folder, which the workers share.
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    target = shared / "lambda-build"
    log = shared / "lambda-build.log"
    with (shared / "lambda-build.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (target / "template.yaml").is_file():
            env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MAKE"))}
            result = subprocess.run(  # noqa: S603 - fixed command
                ["make", "--no-print-directory", "build", f"SAM_BUILD_DIR={target}"],  # noqa: S607 - make on PATH
                cwd=REPO_ROOT,
                env=env,
                capture_output=True,
                text=True,
                timeout=900,
                check=False,
            )
            log.write_text(result.stdout + result.stderr)
            assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    yield target


@pytest.fixture(scope="session")
def build_output(build_dir: Path) -> str:
    return (build_dir.parent / "lambda-build.log").read_text()


@pytest.fixture(scope="session")
def layer_dir(build_dir: Path) -> Path:
    return build_dir / "SharedLayer" / "python"


@pytest.fixture(scope="session")
def function_dirs(build_dir: Path) -> dict[str, Path]:
    template = cfn_yaml.loads((REPO_ROOT / "template.yaml").read_text(encoding="utf-8"))
    names = [k for k, r in template["Resources"].items() if r["Type"] == "AWS::Serverless::Function"]
    return {name: build_dir / name for name in names}


@pytest.fixture(scope="session")
def runtime_magic() -> bytes | None:
    """The bytecode magic number of this machine's Python 3.13, or None when it has none (nor does the build)."""
    python = lambda_build.locate_runtime_python()
    if python is None:
        return None
    script = "import importlib.util, sys; sys.stdout.write(importlib.util.MAGIC_NUMBER.hex())"
    command = [str(python), "-c", script]
    result = subprocess.run(command, capture_output=True, text=True, check=True, timeout=30)  # noqa: S603
    return bytes.fromhex(result.stdout)


def files_under(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def unzipped_size(root: Path) -> int:
    return sum(p.stat().st_size for p in files_under(root))


def elf_machine(path: Path) -> int | None:
    with path.open("rb") as handle:
        header = handle.read(20)
    if not header.startswith(ELF_MAGIC):
        return None
    return int.from_bytes(header[18:20], "little" if header[5] == 1 else "big")


def test_build_targets_the_templates_runtime_and_architecture() -> None:
    template = cfn_yaml.loads((REPO_ROOT / "template.yaml").read_text(encoding="utf-8"))
    function_globals = template["Globals"]["Function"]

    assert function_globals["Runtime"] == lambda_build.RUNTIME_NAME
    assert function_globals["Architectures"] == ["arm64"]
    assert all(platform.endswith("_aarch64") for platform in lambda_build.TARGET_PLATFORMS)
    for logical_id, resource in template["Resources"].items():
        if resource["Type"] in {"AWS::Serverless::Function", "AWS::Serverless::LayerVersion"}:
            assert resource["Metadata"]["BuildMethod"] == "makefile", logical_id


def test_every_native_library_is_aarch64_for_the_runtimes_abi(layer_dir: Path, function_dirs: dict[str, Path]) -> None:
    roots = [layer_dir, *function_dirs.values()]
    elf_files = [p for root in roots for p in files_under(root) if elf_machine(p) is not None]

    assert elf_files, "the layer should hold cryptography's native module"
    assert {p.name: elf_machine(p) for p in elf_files} == {p.name: EM_AARCH64 for p in elf_files}
    for path in elf_files:
        if ".so" in path.name:
            assert path.name.endswith((".cpython-313-aarch64-linux-gnu.so", ".abi3.so")), path


def test_every_installed_wheel_was_built_for_the_target(layer_dir: Path) -> None:
    tags = {
        wheel.parent.name: [line.removeprefix("Tag: ") for line in wheel.read_text().splitlines() if "Tag:" in line]
        for wheel in layer_dir.glob("*.dist-info/WHEEL")
    }

    # A wheel's tags are alternatives (py2.py3 wheels list both): one must fit the target, none a native other one.
    assert tags
    assert [name for name, wheel_tags in tags.items() if not any(TARGET_TAG.match(t) for t in wheel_tags)] == []
    assert [t for wheel_tags in tags.values() for t in wheel_tags if not t.endswith(("-any", "_aarch64"))] == []


def test_layer_holds_exactly_the_pinned_requirements_and_no_boto3(layer_dir: Path) -> None:
    distributions = [p.name.removesuffix(".dist-info").rsplit("-", 1) for p in layer_dir.glob("*.dist-info")]
    shipped = {re.sub(r"[-_.]+", "-", name).lower(): version for name, version in distributions}
    pins = [
        line.split("==")
        for line in (REPO_ROOT / "shared" / "requirements.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]

    for name, version in pins:
        assert shipped[re.sub(r"[-_.]+", "-", name).lower()] == version
    assert "boto3" not in shipped
    assert "botocore" not in shipped


def test_layer_ships_the_kauto_sources_and_nothing_of_tests_fakes_local_or_operator_tooling(
    layer_dir: Path, function_dirs: dict[str, Path]
) -> None:
    source = REPO_ROOT / "shared" / "kauto"
    expected = {
        p.relative_to(source) for p in files_under(source) if "__pycache__" not in p.parts and p.suffix != ".pyc"
    }
    shipped = {p.relative_to(layer_dir / "kauto") for p in files_under(layer_dir / "kauto") if p.suffix != ".pyc"}

    assert shipped == expected
    assert not (layer_dir / "bin").exists(), "console scripts name the build host's interpreter"
    for root in [layer_dir, *function_dirs.values()]:
        assert [p for p in root.rglob("*") if p.name in NOT_SHIPPED] == []
    for name, folder in function_dirs.items():
        assert {p.name for p in folder.iterdir() if p.is_file()} == {"app.py"}, name


def test_nothing_from_the_build_host_ships(layer_dir: Path, function_dirs: dict[str, Path]) -> None:
    host_paths = {str(REPO_ROOT).encode(), sys.prefix.encode(), sys.base_prefix.encode()}
    roots = [layer_dir, *function_dirs.values()]

    leaks = [p for root in roots for p in files_under(root) if any(h in p.read_bytes() for h in host_paths)]
    foreign_bytecode = [p for root in roots for p in root.rglob("*.pyc") if ".cpython-313" not in p.name]

    assert leaks == []
    assert foreign_bytecode == []


def test_bytecode_ships_for_every_module_when_the_build_machine_has_python313(
    layer_dir: Path, function_dirs: dict[str, Path], runtime_magic: bytes | None, build_output: str
) -> None:
    roots = [layer_dir, *function_dirs.values()]
    modules = [p for root in roots for p in root.rglob("*.py")]
    if runtime_magic is None:
        assert [p for root in roots for p in root.rglob("*.pyc")] == []
        assert "shipping WITHOUT bytecode" in build_output
        pytest.skip("no Python 3.13 on this machine: the build ships sources only, and says so")
    missing = [p for p in modules if not (p.parent / "__pycache__" / f"{p.stem}.cpython-313.pyc").is_file()]
    headers = {(p.parent / "__pycache__" / f"{p.stem}.cpython-313.pyc").read_bytes()[:8] for p in modules}

    assert missing == []
    # Magic of 3.13, flags 0b01: hash-based and unchecked, valid whatever mtimes the zip gives the sources.
    assert headers == {runtime_magic + (1).to_bytes(4, "little")}


def test_artifact_sizes_leave_room_under_lambdas_limit(
    layer_dir: Path, function_dirs: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    layer = unzipped_size(layer_dir)
    by_top_level = sorted(
        ((unzipped_size(p) if p.is_dir() else p.stat().st_size, p.name) for p in layer_dir.iterdir()), reverse=True
    )
    lines = [f"layer unzipped: {layer / 1e6:.1f} MB; largest parts:"]
    lines += [f"  {name:<40} {size / 1e6:6.1f} MB" for size, name in by_top_level[:6]]
    lines += [f"function {name:<31} {unzipped_size(p) / 1e3:6.1f} kB unzipped" for name, p in function_dirs.items()]
    with capsys.disabled():  # the figures belong in the run's output (make build prints them too)
        sys.stdout.write("\n" + "\n".join(lines) + "\n")

    largest_function = max(unzipped_size(folder) for folder in function_dirs.values())
    assert layer + largest_function < LAYER_LIMIT_BYTES / 2


def test_build_without_python313_ships_sources_and_says_so(tmp_path: Path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    (source / "app.py").write_text("def lambda_handler(event, context):\n    return None\n")
    artifacts = tmp_path / "out"

    result = subprocess.run(  # noqa: S603 - this interpreter, fixed arguments
        [sys.executable, str(REPO_ROOT / "tools" / "lambda_build.py"), "function", str(source), str(artifacts)],
        env={**os.environ, "RUNTIME_PYTHON": ""},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )

    assert "shipping WITHOUT bytecode" in result.stdout
    assert [p.name for p in artifacts.rglob("*")] == ["app.py"]


def write_fake_python(path: Path, body: str) -> Path:
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)
    return path


def test_runtime_python_search_skips_refusing_shims_and_other_versions(tmp_path: Path) -> None:
    shim = write_fake_python(tmp_path / "shim", 'echo "pyenv: python3.13: command not found" >&2; exit 127')
    other = write_fake_python(tmp_path / "py312", "echo 3.12")
    runtime = write_fake_python(tmp_path / "py313", "echo 3.13")

    assert lambda_build.find_runtime_python([shim, other, runtime]) == runtime
    assert lambda_build.find_runtime_python([shim, other]) is None


def test_runtime_python_candidates_include_pyenv_versions_newest_first(tmp_path: Path) -> None:
    for version in ("3.13.0", "3.13.2", "3.12.1"):
        write_fake_python_dir = tmp_path / ".pyenv" / "versions" / version / "bin"
        write_fake_python_dir.mkdir(parents=True)
        write_fake_python(write_fake_python_dir / "python3.13", "echo 3.13")

    candidates = lambda_build.runtime_python_candidates(tmp_path, [])

    assert [c.parent.parent.name for c in candidates] == ["3.13.2", "3.13.0"]
