"""Shared by the gateway's test modules (a uniquely named module: the apps' test folders are not packages, so
importing from ``conftest`` would depend on which conftest pytest loaded last)."""
from __future__ import annotations

import contextlib
import json
from pathlib import Path

HERE = Path(__file__).parent
REPO = HERE.parents[2]
STORE_TEST = HERE / "openfga" / "gateway.fga.yaml"
MODEL = REPO / "components" / "governance" / "openfga" / "model.fga"
ISSUER, AUDIENCE = "https://identity.test.soma.local", "soma-api"
STORE_ID, MODEL_ID = "01JH6Q8ZK3P5R7T9V2X4Y6A8C0", "01JH6Q9B1D3F5H7K9M2N4P6R8S"


class RecordingAuditSink:
    """Keeps the events the gateway emits so the tests can read them (and put them through the contract SQL)."""

    def __init__(self):
        self.events: list[dict] = []

    async def start(self):
        return None

    async def emit(self, event):
        self.events.append(event)

    async def stop(self):
        return None


def gateway_settings(tmp_path, identity, fga, upstream, redis_server, **extra):
    from soma_gateway.settings import GatewaySettings

    (tmp_path / "store-id").write_text(STORE_ID + "\n")
    (tmp_path / "model-id").write_text(MODEL_ID + "\n")
    environ = {
        "SOMA_JWT_ISSUER": ISSUER, "SOMA_JWT_AUDIENCE": AUDIENCE,
        "SOMA_JWKS_URL": identity.url + "/.well-known/jwks.json",
        "SOMA_OPENFGA_API_URL": fga.url,
        "SOMA_OPENFGA_STORE_ID_FILE": str(tmp_path / "store-id"),
        "SOMA_OPENFGA_MODEL_ID_FILE": str(tmp_path / "model-id"),
        "SOMA_REDIS_URL": redis_server.url,
        "SOMA_UPSTREAMS": json.dumps({"orchestrator": upstream.url, "tools": upstream.url, "memory": upstream.url}),
        "SOMA_AUDIT_SINK": "log",
        "SOMA_SECRETS_DIR": str(tmp_path),
    }
    environ.update({f"SOMA_{k.upper()}": v if isinstance(v, str) else json.dumps(v) for k, v in extra.items()})
    return GatewaySettings.from_env(environ)


@contextlib.contextmanager
def running_gateway(settings, routes=None):
    """The gateway app in-process (lifespan run by Starlette's TestClient), with a recording audit sink."""
    from fastapi.testclient import TestClient

    from soma_gateway.app import Dependencies, build_app
    from soma_gateway.routes import DEFAULT_ROUTES

    sink = RecordingAuditSink()
    app = build_app(settings, routes or DEFAULT_ROUTES, Dependencies(audit=sink), configure_logging=False)
    with TestClient(app, raise_server_exceptions=False) as client:
        client.audit = sink
        yield client


@contextlib.contextmanager
def served_gateway(settings, routes=None):
    """The gateway served by uvicorn on 127.0.0.1 in a thread (Starlette's TestClient reads a streamed answer
    whole before returning it, so streams are tested over a real socket); yields (base URL, audit sink)."""
    import threading
    import time

    import uvicorn

    from soma_gateway.app import Dependencies, build_app
    from soma_gateway.routes import DEFAULT_ROUTES
    from soma_gateway.standins import free_port

    sink = RecordingAuditSink()
    app = build_app(settings, routes or DEFAULT_ROUTES, Dependencies(audit=sink), configure_logging=False)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on",
                                           access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the gateway did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}", sink
    finally:
        server.should_exit = True
        thread.join(timeout=10)
