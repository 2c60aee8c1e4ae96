"""``python -m soma_gateway.openapi``: the gateway's OpenAPI document, generated from the code (the route
table and the service base's probes), printed as JSON. Nothing is started or contacted: the settings are
placeholders that only satisfy validation."""
from __future__ import annotations

import json
import sys

from pydantic import SecretStr

from .app import build_app
from .settings import GatewaySettings

PLACEHOLDER_ID = "01JH6Q8ZK3P5R7T9V2X4Y6A8C0"


def document() -> dict:
    settings = GatewaySettings(
        jwt_issuer="https://identity.example", jwt_audience="soma-api", jwks_url="http://identity/.well-known/jwks.json",
        openfga_api_url="http://openfga:8080", openfga_store_id=SecretStr(PLACEHOLDER_ID), openfga_model_id=SecretStr(PLACEHOLDER_ID),
        redis_url="redis://redis:6379/0", audit_sink="log",
        upstreams={"orchestrator": "http://orchestrator", "tools": "http://tools", "memory": "http://memory"})
    return build_app(settings, configure_logging=False).openapi()


if __name__ == "__main__":
    json.dump(document(), sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")
