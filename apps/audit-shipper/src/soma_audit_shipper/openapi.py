"""``python -m soma_audit_shipper.openapi``: the shipper's OpenAPI document (``POST /logs`` and the probes),
generated from the code and printed as JSON. Nothing is started or contacted: the settings are placeholders."""
from __future__ import annotations

import json
import sys

from .app import build_app
from .settings import ShipperSettings


def document() -> dict:
    return build_app(ShipperSettings(audit_sink="log", kubernetes_events=False), configure_logging=False).openapi()


if __name__ == "__main__":
    json.dump(document(), sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")
