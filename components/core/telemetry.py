"""Where telemetry goes: decided by Core, handed to every phase through the kit context."""
from __future__ import annotations

from components.kit import Telemetry
from components.settings import CoreSettings

COLLECTOR_SERVICE = "opentelemetry-collector"


def telemetry_for(core: CoreSettings) -> Telemetry:
    namespace = core.namespaces.observability.name
    return Telemetry(
        otlp_endpoint=f"http://{COLLECTOR_SERVICE}.{namespace}.svc.cluster.local:4317",
        scraper_namespace=namespace,
    )
