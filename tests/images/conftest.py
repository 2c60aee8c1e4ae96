"""Shared by the image tests: Debian's docker-registry on 127.0.0.1, cosign key pairs."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.local_registry import local_registry
from tools.images import release
from tools.images.release import ReleaseError


def _tool(name: str) -> str | None:
    try:
        return release.tool(name)
    except ReleaseError:
        return None


@pytest.fixture()
def registry(tmp_path):
    with local_registry(_tool("docker-registry"), tmp_path) as running:
        yield running


def keys(folder: Path) -> tuple[str, str]:
    folder.mkdir()
    done = subprocess.run([_tool("cosign"), "generate-key-pair"], cwd=folder, capture_output=True,
                          env={**os.environ, "COSIGN_PASSWORD": "", "HOME": str(folder)})
    assert done.returncode == 0, done.stderr
    return str(folder / "cosign.key"), str(folder / "cosign.pub")
