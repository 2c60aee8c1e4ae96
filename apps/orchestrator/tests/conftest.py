"""Fixtures for the orchestrator's tests: a real local PostgreSQL per test module (LangGraph's checkpoints
and the orchestrator's tables) and the OpenFGA stand-in (soma_gateway.standins) answering from a dict."""
from __future__ import annotations

import pytest

from orchestrator_fixtures import MODEL_ID, STORE_ID
from soma_gateway.standins import OpenFgaStandIn
from tests.local_servers import server_bin, throwaway_database


@pytest.fixture(scope="module")
def postgres():
    """A throw-away PostgreSQL on a loopback port; yields the DSN of the database ``orchestrator``."""
    if server_bin() is None:
        pytest.skip("no PostgreSQL server binaries (initdb, pg_ctl): apt-get install postgresql")
    with throwaway_database("orchestrator", fsync="off", synchronous_commit="off") as dsn:
        yield dsn


@pytest.fixture(scope="module")
def fga():
    server = OpenFgaStandIn(STORE_ID, MODEL_ID, {}).start()
    yield server
    server.stop()
