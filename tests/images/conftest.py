"""Shared by the image tests: Debian's docker-registry on 127.0.0.1, cosign key pairs."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from tools.images import release
from tools.images.release import ReleaseError


def _tool(name: str) -> str | None:
    try:
        return release.tool(name)
    except ReleaseError:
        return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture()
def registry(tmp_path):
    port = _free_port()
    config = tmp_path / "registry.yml"
    config.write_text(json.dumps({"version": 0.1, "storage": {"filesystem": {"rootdirectory": str(tmp_path / "data")}},
                                  "http": {"addr": f"127.0.0.1:{port}"}, "log": {"level": "error"}}))
    proc = subprocess.Popen([_tool("docker-registry"), "serve", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        else:
            pytest.fail("docker-registry did not start")
        yield f"127.0.0.1:{port}", tmp_path / "data"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def keys(folder: Path) -> tuple[str, str]:
    folder.mkdir()
    done = subprocess.run([_tool("cosign"), "generate-key-pair"], cwd=folder, capture_output=True,
                          env={**os.environ, "COSIGN_PASSWORD": "", "HOME": str(folder)})
    assert done.returncode == 0, done.stderr
    return str(folder / "cosign.key"), str(folder / "cosign.pub")
