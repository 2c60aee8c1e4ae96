"""What every kit building block needs to know about the stack, passed explicitly."""
from __future__ import annotations

from dataclasses import dataclass

from components.catalog import Catalog
from components.settings import ContainerDefaults, PlatformSettings


@dataclass(frozen=True)
class Telemetry:
    """Where workloads send OTLP, and which namespace scrapes their metrics."""

    otlp_endpoint: str
    scraper_namespace: str


@dataclass(frozen=True)
class KitContext:
    """Stack-wide facts the kit applies to every object: HA, catalog, telemetry, defaults."""

    stack: str
    kubernetes_version: str
    high_availability: bool
    storage_class: str
    container_defaults: ContainerDefaults
    catalog: Catalog
    telemetry: Telemetry

    @classmethod
    def from_settings(cls, settings: PlatformSettings, catalog: Catalog, telemetry: Telemetry) -> "KitContext":
        return cls(
            stack=settings.stack,
            kubernetes_version=settings.kubernetes_version,
            high_availability=settings.high_availability,
            storage_class=settings.storage_class,
            container_defaults=settings.container_defaults,
            catalog=catalog.for_registry(settings.registry),
            telemetry=telemetry,
        )
