"""Fixtures for the orchestrator's tests: a real local PostgreSQL per test module (LangGraph's checkpoints
and the orchestrator's tables) and the OpenFGA stand-in (soma_gateway.standins) answering from a dict."""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest

from orchestrator_fixtures import MODEL_ID, STORE_ID
from soma_gateway.standins import OpenFgaStandIn
from tests.local_servers import PostgresServer, server_bin, unprivileged_user


@pytest.fixture(scope="module")
def postgres():
    """A throw-away PostgreSQL on a loopback port; yields the DSN of the database ``orchestrator``."""
    if server_bin() is None:
        pytest.skip("no PostgreSQL server binaries (initdb, pg_ctl): apt-get install postgresql")
    user = unprivileged_user()
    root = Path(tempfile.mkdtemp(prefix="pg-orchestrator-", dir="/tmp"))
    if user:
        shutil.chown(root, user)
    server = PostgresServer(root, "data", user)
    try:
        server.initdb()
        server.configure(listen_addresses="127.0.0.1", fsync="off", synchronous_commit="off")
        server.start()
        import psycopg
        with psycopg.connect(f"host=127.0.0.1 port={server.port} user=postgres dbname=postgres", autocommit=True) as conn:
            conn.execute("CREATE DATABASE orchestrator")
        yield f"host=127.0.0.1 port={server.port} user=postgres dbname=orchestrator"
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def fga():
    server = OpenFgaStandIn(STORE_ID, MODEL_ID, {}).start()
    yield server
    server.stop()
