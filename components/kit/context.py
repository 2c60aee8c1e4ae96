"""What every kit building block needs to know about the stack, passed explicitly."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import pulumi

from components.catalog import Catalog
from components.kit.network import PROMETHEUS_PODS, FlowLedger
from components.settings import ContainerDefaults, PlatformSettings


@dataclass(frozen=True)
class Telemetry:
    """Where workloads send OTLP, and which namespace scrapes their metrics."""

    otlp_endpoint: str
    scraper_namespace: str


@dataclass(frozen=True)
class MeshMembership:
    """Which namespaces are in the Istio ambient mesh, which have a waypoint, and where istiod runs
    (settings ``mesh.istio``): every :class:`PlatformNamespace` labels and opens itself from this."""

    members: frozenset[str] = frozenset()
    waypoints: frozenset[str] = frozenset()
    istio_namespace: str = ""
    enrolled_pods: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = ()
    """Pods in the mesh one by one, outside the member namespaces, as ``(namespace, pod labels)``: Prometheus,
    which scrapes in-mesh pods over HBONE (docs/architecture/mesh.md, "Prometheus and STRICT mTLS").
    Members admit HBONE from them as from each other."""

    def enrols(self, namespace: str, pods: dict[str, str]) -> bool:
        """Whether the pods ``pods`` selects in ``namespace`` are enrolled one by one (they carry the ambient label)."""
        return (namespace, tuple(pods.items())) in self.enrolled_pods


@dataclass(frozen=True)
class KitContext:
    """Stack-wide facts the kit applies to every object: HA, catalog, telemetry, defaults."""

    stack: str
    kubernetes_version: str
    high_availability: bool
    deletion_protection: bool
    storage_class: str
    container_defaults: ContainerDefaults
    catalog: Catalog
    telemetry: Telemetry
    mesh: MeshMembership = MeshMembership()
    metrics_crds: tuple[pulumi.Resource, ...] = ()
    """The ServiceMonitor, PodMonitor and PrometheusRule CRDs (installed from kube-prometheus-stack's
    ``crds/`` before the release). Every chart and every monitor or rule the kit creates waits for
    them, and for nothing more of the monitoring stack: on a fresh cluster those objects cannot be
    applied before their CRDs exist, and charts render their own monitors only when the API server
    already knows the kind."""

    verified_namespaces: frozenset[str] = frozenset()
    """The namespaces whose pods the image signature verifier checks (labelled by :class:`PlatformNamespace`):
    every platform namespace but the exempt ones, when ``mesh.signatures`` is set and the Mesh phase is on."""

    delivered_secrets: dict[tuple[str, str], pulumi.Resource] = dataclasses.field(default_factory=dict, compare=False, repr=False)
    """Every Secret the platform delivers (an ExternalSecret), by (namespace, name): shared by all the
    copies of this context, filled by :meth:`deliver` as grants are made, read by :meth:`after_secrets`."""

    flows: FlowLedger = dataclasses.field(default_factory=FlowLedger, compare=False, repr=False)
    """Every flow declared with this context (shared by its copies): the NetworkPolicies are made where
    each flow is declared, the mesh's AuthorizationPolicies from this same list."""

    def deliver(self, namespace: str, name: str, source: pulumi.Resource) -> None:
        """Record that ``source`` (an ExternalSecret) makes the Secret ``namespace``/``name``."""
        self.delivered_secrets[(namespace, name)] = source

    def after_secrets(self, namespace: str | None, body: object, opts: pulumi.ResourceOptions | None,
                      *, by_name: bool = False) -> pulumi.ResourceOptions:
        """``opts`` plus a dependency on every delivered Secret that ``body`` reads in ``namespace``, so a
        pod never starts before its credentials exist.

        A pod spec or custom resource names a Secret in ``secretKeyRef``/``secretRef``/``secret``
        volumes; chart values spell it per chart (``existingSecret``, ``extraEnv``...), so with
        ``by_name`` any string equal to a delivered Secret's name counts.
        """
        names = secret_names(body, by_name)
        sources = [self.delivered_secrets[(namespace, n)] for n in sorted(names) if (namespace, n) in self.delivered_secrets]
        if not sources:
            return opts or pulumi.ResourceOptions()
        return pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=sources))

    def with_metrics_crds(self, *resources: pulumi.Resource) -> "KitContext":
        """A copy whose charts and monitoring objects wait for ``resources``."""
        return dataclasses.replace(self, metrics_crds=tuple(resources))

    def keep(self, opts: pulumi.ResourceOptions) -> pulumi.ResourceOptions:
        """``opts`` for a stateful resource or a chart that installs CRDs: protected when the stack
        says so, so that no rename, parent move or destroy deletes it (children inherit protect)."""
        if not self.deletion_protection:
            return opts
        return pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(protect=True))

    def after_metrics_crds(self, opts: pulumi.ResourceOptions) -> pulumi.ResourceOptions:
        """``opts`` plus a dependency on the monitoring CRDs, when this context has them."""
        if not self.metrics_crds:
            return opts
        return pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=list(self.metrics_crds)))

    @classmethod
    def from_settings(cls, settings: PlatformSettings, catalog: Catalog, telemetry: Telemetry) -> "KitContext":
        return cls(
            stack=settings.stack,
            kubernetes_version=settings.kubernetes_version,
            high_availability=settings.high_availability,
            deletion_protection=settings.deletion_protection,
            storage_class=settings.storage_class,
            container_defaults=settings.container_defaults,
            catalog=catalog.for_registry(settings.registry),
            telemetry=telemetry,
            mesh=mesh_membership(settings),
            verified_namespaces=verified_namespaces(settings),
        )


def mesh_membership(settings: PlatformSettings) -> MeshMembership:
    """The mesh namespaces by name, from ``mesh.istio`` (empty when the mesh phase is off)."""
    istio = settings.mesh.istio
    if not settings.phases.mesh or istio is None:
        return MeshMembership()
    names = namespace_keys(settings)
    members = frozenset(names[m] for m in istio.members)
    scraper = settings.core.namespaces.observability.name
    return MeshMembership(members=members, waypoints=frozenset(names[w] for w in istio.waypoints),
                          istio_namespace=settings.mesh.namespaces["istio"].name,
                          enrolled_pods=() if scraper in members else ((scraper, tuple(PROMETHEUS_PODS.items())),))


def verified_namespaces(settings: PlatformSettings) -> frozenset[str]:
    """Every platform namespace but those ``mesh.signatures.exemptNamespaces`` leaves out with a reason."""
    signatures = settings.mesh.signatures
    if signatures is None or not settings.phases.mesh:
        return frozenset()
    return frozenset(settings.all_namespaces()) - {settings.namespace_named_by(p) for p in signatures.exempt_namespaces}


def secret_names(body: object, by_name: bool = False) -> set[str]:
    """The Secret names ``body`` refers to (see :meth:`KitContext.after_secrets`)."""
    found: set[str] = set()

    def walk(node: object) -> None:
        if isinstance(node, dict):
            for key in ("secretKeyRef", "secretRef"):
                ref = node.get(key)
                if isinstance(ref, dict) and isinstance(ref.get("name"), str):
                    found.add(ref["name"])
            volume = node.get("secret")
            if isinstance(volume, dict) and isinstance(volume.get("secretName"), str):
                found.add(volume["secretName"])
            for value in node.values():
                walk(value)
        elif isinstance(node, (list, tuple)):
            for value in node:
                walk(value)
        elif by_name and isinstance(node, str):
            found.add(node)

    walk(body)
    return found


def namespace_keys(settings: PlatformSettings) -> dict[str, str]:
    """``<phase>.<purpose>`` -> namespace name (``core.observability`` -> ``soma-observability``), as settings name them."""
    from components.settings import _namespace_keys

    return _namespace_keys(settings)
