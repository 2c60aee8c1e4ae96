"""``python -m soma_memory.openapi``: the memory gateway's OpenAPI document, generated from the code, printed
as JSON. Nothing is started, loaded or contacted: the settings are placeholders that only satisfy validation."""
from __future__ import annotations

import json
import sys

from pydantic import SecretStr

from .app import build_app
from .settings import MemorySettings

PLACEHOLDER_ID = "01JH6Q8ZK3P5R7T9V2X4Y6A8C0"


def document() -> dict:
    settings = MemorySettings(qdrant_url="http://qdrant:6333", openfga_api_url="http://openfga:8080",
                              openfga_store_id=SecretStr(PLACEHOLDER_ID), openfga_model_id=SecretStr(PLACEHOLDER_ID),
                              audit_sink="log")
    return build_app(settings, configure_logging=False).openapi()


if __name__ == "__main__":
    json.dump(document(), sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")
