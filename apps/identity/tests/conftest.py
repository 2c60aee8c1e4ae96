"""Real servers for identity's tests: an OpenBao dev server (Vault API) and a local PostgreSQL.

Both are started by the tests on loopback ports and thrown away afterwards. PostgreSQL runs as ``nobody``
when the tests run as root (initdb refuses root). Neither is skipped silently: without ``bao`` or the
PostgreSQL server binaries the tests fail or skip saying what to install.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import hvac
import pytest

from tests.local_servers import PostgresServer, server_bin, unprivileged_user
from tests.openbao import dev_server

@pytest.fixture(scope="session")
def vault(tmp_path_factory):
    """An OpenBao dev server with the transit engine mounted; yields (address, root client)."""
    with dev_server(tmp_path_factory.mktemp("openbao")) as server:
        client = hvac.Client(url=server.addr, token=server.root_token)
        client.sys.enable_secrets_engine("transit", path="transit")
        yield server.addr, client


@pytest.fixture(scope="session")
def postgres():
    """A throw-away PostgreSQL server on a loopback TCP port; yields a DSN for the database ``identity``."""
    if server_bin() is None:
        pytest.skip("no PostgreSQL server binaries (initdb, pg_ctl): apt-get install postgresql")
    user = unprivileged_user()
    root = Path(tempfile.mkdtemp(prefix="pg-identity-", dir="/tmp"))
    if user:
        shutil.chown(root, user)
    server = PostgresServer(root, "data", user)
    try:
        server.initdb()
        server.configure(listen_addresses="127.0.0.1", fsync="off")
        server.start()
        import psycopg
        with psycopg.connect(f"host=127.0.0.1 port={server.port} user=postgres dbname=postgres", autocommit=True) as conn:
            conn.execute("CREATE DATABASE identity")
        yield f"host=127.0.0.1 port={server.port} user=postgres dbname=identity"
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)
