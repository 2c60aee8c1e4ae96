"""Real servers for identity's tests: an OpenBao dev server (Vault API) and a local PostgreSQL.

Both are started by the tests on loopback ports and thrown away afterwards. PostgreSQL runs as ``nobody``
when the tests run as root (initdb refuses root). Neither is skipped silently: without ``bao`` or the
PostgreSQL server binaries the tests fail or skip saying what to install.
"""

from __future__ import annotations

import hvac
import pytest

from tests.local_servers import server_bin, throwaway_database
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
    with throwaway_database("identity", fsync="off") as dsn:
        yield dsn
