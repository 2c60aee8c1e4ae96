"""Debian's docker-registry on 127.0.0.1, for the tests that push, sign and verify images (the platform key's
ClusterImagePolicy check and the release pipeline's): one way to start it, wait for it and stop it."""
from __future__ import annotations

import contextlib
import json
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Iterator

import pytest

from tests.local_servers import free_port


@contextlib.contextmanager
def local_registry(executable: str, folder: Path) -> Iterator[tuple[str, Path]]:
    """A registry storing its blobs under ``folder/data``: yields (``127.0.0.1:<port>``, that storage folder),
    which tests tamper with to show verification reads what the registry serves."""
    port = free_port()
    config = folder / "registry.yml"
    config.write_text(json.dumps({"version": 0.1, "storage": {"filesystem": {"rootdirectory": str(folder / "data")}},
                                  "http": {"addr": f"127.0.0.1:{port}"}, "log": {"level": "error"}}))
    proc = subprocess.Popen([executable, "serve", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        else:
            pytest.fail("docker-registry did not start")
        yield f"127.0.0.1:{port}", folder / "data"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
