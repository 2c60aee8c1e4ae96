"""What the data stores share: who they are, who their clients are, how to reach the API server."""
from __future__ import annotations

from dataclasses import dataclass

import pulumi
from typing import Sequence

from components.core.secrets import Secrets
from components.kit.labels import client_label
from components.kit import KitContext, Peer
from components.settings import ComplianceSettings, CoreSettings, PlatformSettings

API_SERVER_PORTS = (443, 6443)
PROMETHEUS_LABELS = {"app.kubernetes.io/name": "prometheus"}
LATER_PHASES = ("mesh", "governance", "agents", "ops")


@dataclass(frozen=True)
class ClientNamespaces:
    """The later phases' namespaces whose services use Core's stores.

    Core's settings do not name them (each phase declares its own namespaces), yet the stores'
    NetworkPolicies must admit clients from those namespaces and no others, so ``__main__`` reads
    them from the stack settings and hands them to Core explicitly.
    """

    governance: str
    agents: str
    workloads: tuple[str, ...] = ()
    """Every namespace the platform creates (all phases) but the node log agent's: where platform and
    app workloads run, and so the only namespaces that send telemetry to the collector."""
    by_phase: tuple[tuple[str, tuple[str, ...]], ...] = ()
    """The later phases' namespaces, phase by phase: what their dashboards and alerts look at."""
    scraped: tuple[tuple[str, tuple[tuple[str, str], ...], tuple[int, ...]], ...] = ()
    """The later phases' scrape targets off the kit's metrics port, as (namespace, pod labels, ports): Prometheus'
    egress (Core) must reach them, and Core is built first."""
    compliance: ComplianceSettings | None = None
    """The Governance phase's compliance part (docs/architecture/compliance.md): when set, Core's Grafana gets
    the ClickHouse data source (its pinned plugin fetched from ``compliance.plugin_source``) and ClickHouse its
    read-only ``grafana`` user. Core is built first, so it reads this here, like the scrape targets."""

    @classmethod
    def of(cls, settings: PlatformSettings) -> "ClientNamespaces":
        return cls(
            governance=settings.governance.namespaces["governance"].name,
            agents=settings.agents.namespaces["agents"].name,
            workloads=tuple(sorted(settings.workload_namespaces())),
            by_phase=tuple((phase, tuple(ns.name for ns in getattr(settings, phase).namespaces.values()))
                           for phase in LATER_PHASES),
            scraped=later_scrape_targets(settings),
            compliance=settings.governance.compliance if settings.phases.governance else None,
        )

    @property
    def phases(self) -> dict[str, tuple[str, ...]]:
        return dict(self.by_phase)


@dataclass(frozen=True)
class StoreContext:
    """Everything a store module needs, passed explicitly (no globals, no reaching into siblings)."""

    settings: CoreSettings
    ctx: KitContext
    secrets: Secrets
    clients: ClientNamespaces
    cert_manager: pulumi.Resource | None = None
    """cert-manager (Core's Certificates): what a chart that requests certificates waits for, as its
    Issuers and Certificates cannot be applied before cert-manager's CRDs and webhook exist."""

    @property
    def data_ns(self) -> str:
        return self.settings.namespaces.data.name

    @property
    def observability_ns(self) -> str:
        return self.settings.namespaces.observability.name

    @property
    def operators_ns(self) -> str:
        return self.settings.namespaces.operators.name

    @property
    def api_server(self) -> Peer:
        return Peer(cidr=self.settings.api_server_cidr)

    @property
    def prometheus(self) -> Peer:
        return Peer(namespace=self.settings.namespaces.observability.name, pods=PROMETHEUS_LABELS)


def client_peer(store: str, namespaces: Sequence[str]) -> Peer:
    """Pods labelled ``somaagenthub.io/<store>-client: "true"`` in ``namespaces`` only.

    Any pod can label itself, so the label alone would admit every namespace; the list is the
    namespaces whose services Core grants the store's credentials to.
    """
    return Peer(namespaces=tuple(namespaces), pods=client_label(store))


def later_scrape_targets(settings: PlatformSettings) -> tuple[tuple[str, tuple[tuple[str, str], ...], tuple[int, ...]], ...]:
    """The Mesh phase's metrics endpoints that are not on the kit's metrics port (open everywhere):
    Gatekeeper's, the image signature webhook's (knative's 9090, which its chart fixes), Envoy Gateway's
    controller and proxies, and OPA's diagnostic port. Core builds Prometheus' egress before the later
    phases exist, so their targets come from the settings that will make them. A target in a mesh member
    namespace needs none: Prometheus is enrolled in the mesh and reaches members over HBONE (15008), which
    the mesh's own policies open (components/mesh/istio/scraper.py)."""
    if not settings.phases.mesh:
        return ()
    # imported late: the Mesh package imports Core
    from components.kit.labels import selector
    from components.mesh.admission import gatekeeper
    from components.mesh.edge import control_plane, opa, proxy
    from components.mesh.signatures import METRICS_PORT, WEBHOOK_PODS

    mesh = settings.mesh
    targets: list[tuple[str, dict[str, str], tuple[int, ...]]] = [
        (mesh.namespaces["admission"].name, gatekeeper.SYSTEM_LABELS, (gatekeeper.METRICS_PORT,))]
    if mesh.signatures:
        targets.append((mesh.namespaces["admission"].name, WEBHOOK_PODS, (METRICS_PORT,)))
    if mesh.edge:
        targets += [(mesh.namespaces["gateway"].name, control_plane.CONTROLLER_LABELS, (control_plane.METRICS_PORT,)),
                    (mesh.namespaces["gateway"].name, proxy.PROXY_LABELS, (proxy.STATS_PORT,)),
                    (mesh.namespaces["policy"].name, selector(opa.NAME), (opa.DIAGNOSTIC_PORT,))]
    members = {settings.namespace_named_by(key) for key in (mesh.istio.members if mesh.istio else ())}
    return tuple((namespace, tuple(sorted(pods.items())), ports) for namespace, pods, ports in targets if namespace not in members)
