"""The local analogue of the staging experiment ``gateway-openfga-partition`` (docs/chaos.md).

A network partition does not refuse connections, it swallows them: Chaos Mesh's NetworkChaos ``partition``
drops the packets, so the gateway's call to OpenFGA gets no answer at all. Here OpenFGA is a socket that
listens and never answers. The gateway must fail closed within its OpenFGA timeout (503
``authorization_unavailable``, a deny in the audit trail, nothing forwarded) and serve again once OpenFGA
answers. (test_gateway_app.py covers the refused connection, a stopped server.)
"""
from __future__ import annotations

import socket
import time
from types import SimpleNamespace

import pytest

from gateway_fixtures import gateway_settings, running_gateway
from test_gateway_app import bearer

TIMEOUT = 0.3


@pytest.fixture
def silent_openfga():
    """A TCP socket whose backlog completes the handshake and whose owner never reads or answers."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    yield SimpleNamespace(url=f"http://127.0.0.1:{listener.getsockname()[1]}")
    listener.close()


def test_partitioned_from_openfga_the_gateway_fails_closed_within_its_timeout(tmp_path, identity, fga, upstream, redis_server, silent_openfga):
    for folder in ("cut", "healed"):
        (tmp_path / folder).mkdir()
    cut = gateway_settings(tmp_path / "cut", identity, silent_openfga, upstream, redis_server, openfga_timeout_seconds=TIMEOUT)
    before = len(upstream.received)
    with running_gateway(cut) as client:
        started = time.monotonic()
        answer = client.post("/v1/workflows/acme-triage/runs", headers=bearer(identity, sub="bob"))
        elapsed = time.monotonic() - started
        events = client.audit.events
    assert (answer.status_code, answer.json()["error"]["code"]) == (503, "authorization_unavailable")
    assert "echo" not in answer.text and len(upstream.received) == before, "nothing reaches the backing service"
    assert elapsed < 10 * TIMEOUT, f"waited {elapsed:.2f}s for an OpenFGA that never answers"
    assert [e["decision"] for e in events] == ["deny"] and events[0]["reason"].startswith("authorization_unavailable")

    healed = gateway_settings(tmp_path / "healed", identity, fga, upstream, redis_server, openfga_timeout_seconds=TIMEOUT)
    with running_gateway(healed) as client:
        assert client.post("/v1/workflows/acme-triage/runs", headers=bearer(identity, sub="bob")).status_code == 200
