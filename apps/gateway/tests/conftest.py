"""Fixtures for the gateway's tests: the local servers it talks to (soma_gateway.standins), started per test
module, with the decisions of the OpenFGA stand-in taken from the store test the OpenFGA engine runs."""
from __future__ import annotations

import pytest
import yaml

from gateway_fixtures import AUDIENCE, ISSUER, MODEL_ID, STORE_ID, STORE_TEST
from soma_gateway import standins


@pytest.fixture(scope="module")
def identity():
    keys = standins.IdentityKeys(ISSUER, AUDIENCE)
    keys.add_key("k1")
    keys.start()
    yield keys
    keys.stop()


@pytest.fixture(scope="module")
def fga():
    decisions = standins.decisions_from_store_test(yaml.safe_load(STORE_TEST.read_text()))
    server = standins.OpenFgaStandIn(STORE_ID, MODEL_ID, decisions).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def upstream():
    server = standins.EchoUpstream().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory):
    binary = standins.redis_server_binary()
    if binary is None:
        pytest.skip("no redis-server: run `sh tools/fetch_redis.sh` (make test does) or install Debian's redis-server")
    server = standins.RedisServer(binary, str(tmp_path_factory.mktemp("redis"))).start()
    yield server
    server.stop()
