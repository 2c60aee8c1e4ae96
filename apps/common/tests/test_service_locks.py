"""Every app's requirements.lock pins, with hashes, exactly what its pyproject.toml asks for."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

APPS = Path(__file__).resolve().parents[2]
PROJECTS = sorted(APPS.glob("*/pyproject.toml"))
ENTRY = re.compile(r"^([A-Za-z0-9_.\-]+)==(\S+) \\\n((?:\s+--hash=sha256:[0-9a-f]{64}(?: \\)?\n)+)", re.M)


def normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@pytest.mark.parametrize("project", PROJECTS, ids=lambda p: p.parent.name)
def test_the_lock_pins_every_direct_dependency_at_the_pyproject_version_with_hashes(project):
    lock_path = project.parent / "requirements.lock"
    assert lock_path.exists(), f"{lock_path} missing: run sh tools/lock_apps.sh {project.parent.name}"
    lock_text = lock_path.read_text()
    locked = {normal(m.group(1)): m.group(2) for m in ENTRY.finditer(lock_text)}
    requirement_lines = [line for line in lock_text.splitlines() if re.match(r"^[A-Za-z0-9]", line)]
    assert len(locked) == len(requirement_lines), "a requirement in the lock has no hash"
    for requirement in tomllib.loads(project.read_text())["project"]["dependencies"]:
        name, _, version = requirement.partition("==")
        if normal(name).startswith("soma-"):
            assert normal(name) not in locked  # local packages install from source, not from an index
            continue
        assert version, f"{project}: {requirement} is not pinned exactly"
        assert locked.get(normal(name)) == version, f"{lock_path}: {name} locked at {locked.get(normal(name))}, pyproject says {version}"
