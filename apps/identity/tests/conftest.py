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
import tempfile
from pathlib import Path

import hvac
import pytest

from tests.openbao import dev_server

ROOT_TOKEN = "identity-tests-root"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def vault(tmp_path_factory):
    """An OpenBao dev server with the transit engine mounted; yields (address, root client)."""
    with dev_server(tmp_path_factory.mktemp("openbao")) as server:
        client = hvac.Client(url=server.addr, token=server.root_token)
        client.sys.enable_secrets_engine("transit", path="transit")
        yield server.addr, client


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
