"""The layer ships exactly its lock: pinned and hash-checked, agreeing with requirements.txt, complete, and
without the AWS SDK that Lambda's python3.13 runtime already has (layers/transcode_core/lambda-runtime.txt)."""

from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from local.template import load_template, resource

LAYER = Path(__file__).resolve().parent.parent / "layers" / "transcode_core"
# Whatever lambda-runtime.txt says, these must never be shipped: the runtime has them, and a copy in the
# layer shadows the runtime's and adds tens of MB to every cold start.
SDK = {"boto3", "botocore", "s3transfer"}
# The runtime the lock is resolved for (make lock: --python-version 3.13, aarch64 manylinux).
RUNTIME_MARKERS = {
    **default_environment(),
    "python_version": "3.13",
    "python_full_version": "3.13.0",
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
    "sys_platform": "linux",
    "platform_system": "Linux",
    "platform_machine": "aarch64",
    "os_name": "posix",
}


def requirement_lines(path: Path) -> list[str]:
    """The file's requirements, one per entry: comments dropped, backslash continuations joined."""
    text = re.sub(r"\\\n", " ", path.read_text(encoding="utf-8"))
    lines = (line.split(" #")[0].strip() for line in text.splitlines() if not line.lstrip().startswith("#"))
    return [line for line in lines if line]


def parse_lock(path: Path) -> dict[str, tuple[str, list[str]]]:
    """name -> (pinned version, hashes); raises when an entry is not `name==version --hash=...`."""
    entries = {}
    for line in requirement_lines(path):
        spec, *options = line.split()
        hashes = [option.removeprefix("--hash=") for option in options if option.startswith("--hash=")]
        requirement = Requirement(spec)
        (pin,) = requirement.specifier  # exactly one specifier
        assert pin.operator == "==", f"{spec} is not pinned with =="
        entries[canonicalize_name(requirement.name)] = (pin.version, hashes)
    return entries


def runtime_provided() -> set[str]:
    return {canonicalize_name(Requirement(line).name) for line in requirement_lines(LAYER / "lambda-runtime.txt")}


@pytest.fixture(scope="module")
def lock() -> dict[str, tuple[str, list[str]]]:
    return parse_lock(LAYER / "requirements.lock")


def test_every_locked_package_is_pinned_with_sha256_hashes(lock):
    assert lock
    for name, (_, hashes) in lock.items():
        assert hashes, f"{name} has no hash in requirements.lock (run make lock)"
        assert all(re.fullmatch(r"sha256:[0-9a-f]{64}", value) for value in hashes), name


def test_the_layer_ships_no_aws_sdk(lock):
    assert runtime_provided() >= SDK
    shipped = sorted(set(lock) & runtime_provided())
    assert not shipped, f"requirements.lock ships what the runtime has: {shipped} (make lock leaves them out)"


def test_requirements_txt_and_lock_agree(lock):
    wanted = [Requirement(line) for line in requirement_lines(LAYER / "requirements.txt")]
    for requirement in wanted:
        name = canonicalize_name(requirement.name)
        assert name in lock, f"{requirement} is in requirements.txt but not in requirements.lock (run make lock)"
        version = lock[name][0]
        assert requirement.specifier.contains(version, prereleases=True), (
            f"requirements.lock has {name}=={version}, outside requirements.txt's {requirement} (run make lock)"
        )
    # and the lock names no direct requirement that requirements.txt dropped
    lock_text = (LAYER / "requirements.lock").read_text(encoding="utf-8")
    direct = re.findall(
        r"^([A-Za-z0-9_.\-]+)==\S+ \\\n(?:\s+--hash=\S+(?: \\)?\n)+\s+# via -r \S*requirements\.txt$", lock_text, re.M
    )
    assert {canonicalize_name(name) for name in direct} == {canonicalize_name(r.name) for r in wanted}


def test_the_tests_import_the_locked_versions(lock):
    """make install puts the lock over the dev requirements: what the suite imports is what the layer ships."""
    installed = {name: metadata.version(name) for name in lock}
    assert installed == {name: version for name, (version, _) in lock.items()}, "run make install"


def test_the_lock_is_complete_for_the_runtime(lock):
    """Every dependency of a locked package (with the extras requirements.txt asks for) is locked or provided
    by the runtime: nothing the layer needs is left to chance. Read from the installed metadata, which is the
    lock's (see the test above)."""
    extras: dict[str, set[str]] = {}
    for line in requirement_lines(LAYER / "requirements.txt"):
        requirement = Requirement(line)
        extras.setdefault(canonicalize_name(requirement.name), set()).update(requirement.extras)
    available = set(lock) | runtime_provided()
    missing = []
    for name in lock:
        for dependency in map(Requirement, metadata.requires(name) or []):
            needed = any(
                dependency.marker is None or dependency.marker.evaluate({**RUNTIME_MARKERS, "extra": extra})
                for extra in extras.get(name, set()) | {""}
            )
            if needed and canonicalize_name(dependency.name) not in available:
                missing.append(f"{name} needs {dependency}")
    assert not missing, missing


def test_sam_build_installs_the_lock_hash_checked_and_compiled():
    metadata_ = resource(load_template(), "CoreLayer")["Metadata"]
    assert metadata_["BuildMethod"] == "makefile"
    makefile = (LAYER / "Makefile").read_text(encoding="utf-8")
    assert "build-CoreLayer:" in makefile
    assert re.search(r"pip install .*--require-hashes", makefile.replace("\\\n", " "))
    assert "requirements.lock" in makefile
    assert "compileall" in makefile and "unchecked-hash" in makefile
