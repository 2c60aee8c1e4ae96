"""A first-party workload with every secure and observable default already on.

``Workload(WorkloadArgs(name=..., image="catalog-key", port=8080, ...), ctx)`` gives a
ServiceAccount without token automount, a non-root read-only Deployment or StatefulSet with
requests, limits and probes, a Service, a ServiceMonitor, the NetworkPolicies for its flows
(callers, telemetry, metrics scraping) and, with more than one replica, a PodDisruptionBudget
and spreading across nodes.

Metrics are scraped (a ``metrics`` port, a ServiceMonitor, the scrape flow) unless the server pushes
them over OTLP (``metrics="otlp"``: the first-party services of apps/, whose soma_service base
exports through the collector to Prometheus' OTLP receiver). Then the kit declares no metrics port,
no monitor and no scrape flow, so no monitor points at a port nothing serves.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Mapping

import pulumi
import pulumi_kubernetes as k8s

from components.catalog import ImageRef
from components.kit import network
from components.kit.containers import SecretEnv, SecretFile, ServiceAccountToken, environment, writable_scratch
from components.kit.context import KitContext
from components.kit.labels import recommended, selector, waiver_annotations
from components.kit.network import Peer
from components.kit.observability import METRICS_PORT_NAME, otel_env, service_monitor
from components.kit.security import (
    NON_ROOT_UID,
    RETAIN_CLAIMS,
    anti_affinity,
    container_security_context,
    pod_security_context,
    resource_requirements,
)
from components.settings import Resources

OTLP_GRPC_PORT = 4317
MetricsDelivery = Literal["scrape", "otlp"]


@dataclass(frozen=True)
class Egress:
    """A destination the workload may call, and on which ports."""

    to: Peer
    ports: tuple[int, ...]


@dataclass(frozen=True)
class WorkloadArgs:
    name: str
    namespace: str
    component: str
    image: str
    port: int
    resources: Resources
    replicas: int = 1
    kind: Literal["Deployment", "StatefulSet"] = "Deployment"
    metrics_port: int = 9464
    metrics: MetricsDelivery = "scrape"
    """``scrape``: Prometheus scrapes ``metrics_port``; ``otlp``: the server pushes its metrics over OTLP to the
    collector, so no metrics port, ServiceMonitor or scrape flow is declared."""
    health_path: str = "/healthz"
    ready_path: str = "/readyz"
    args: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    secret_env: tuple[SecretEnv, ...] = ()
    storage: str | None = None
    writable_paths: tuple[str, ...] = ("/tmp",)
    callers: tuple[Peer, ...] = ()
    egress: tuple[Egress, ...] = ()
    opt_out: Mapping[str, str] = field(default_factory=dict)
    run_as_user: int = NON_ROOT_UID
    metrics_path: str = "/metrics"
    metrics_on_service_port: bool = False
    """The server exposes metrics on its service port (MinIO): the ``metrics`` port names the same
    container port, and the Service maps ``metrics_port`` to it, so scraping stays uniform."""
    volumes_per_replica: int = 1
    parallel_start: bool = False
    config_maps: tuple[tuple[str, str], ...] = ()
    """(ConfigMap name, mount path): read-only files the server reads (policies, its configuration)."""
    app_image: bool = False
    """``image`` names a first-party service (``catalog.app_image``, the release pipeline's pin), not a third-party image."""
    secret_files: tuple[SecretFile, ...] = ()
    """Chosen keys of delivered Secrets as read-only files: how first-party services read every credential."""
    token: ServiceAccountToken | None = None
    """A projected token of the pod's own ServiceAccount for one audience (Vault's Kubernetes auth)."""
    pod_labels: Mapping[str, str] = field(default_factory=dict)
    """Extra pod labels a store admits its clients by (``somaagenthub.io/postgres-client``)."""
    termination_grace_seconds: int | None = None
    """Above the server's own drain time, so Kubernetes never kills a draining pod (None: Kubernetes' 30 s)."""

    def __post_init__(self) -> None:
        if self.kind == "StatefulSet" and not self.storage:
            raise ValueError(f"workload {self.name}: a StatefulSet needs storage")
        if self.volumes_per_replica < 1 or (self.volumes_per_replica > 1 and self.kind != "StatefulSet"):
            raise ValueError(f"workload {self.name}: several data volumes per replica need a StatefulSet")
        if self.metrics not in ("scrape", "otlp"):
            raise ValueError(f"workload {self.name}: metrics must be 'scrape' or 'otlp', not {self.metrics!r}")
        if self.metrics == "otlp" and self.metrics_on_service_port:
            raise ValueError(f"workload {self.name}: metrics pushed over OTLP are not served on the service port")
        if self.metrics == "scrape" and self.port == self.metrics_port:
            raise ValueError(f"workload {self.name}: the metrics port must differ from the service port")
        for item in self.secret_env:
            if item.env in self.env:
                raise ValueError(f"workload {self.name}: env {item.env} is set both literally and from a Secret")

    @property
    def scraped(self) -> bool:
        """Prometheus scrapes the server (a metrics port and a ServiceMonitor), rather than receiving its metrics over OTLP."""
        return self.metrics == "scrape"


def data_volumes(args: WorkloadArgs) -> list[tuple[str, str]]:
    """(claim name, mount path): ``data`` at ``/data``, or ``data-<i>`` at ``/data<i>`` when there are several."""
    if args.volumes_per_replica == 1:
        return [("data", "/data")]
    return [(f"data-{i}", f"/data{i}") for i in range(args.volumes_per_replica)]


class Workload(pulumi.ComponentResource):
    """See the module docstring; ``opt_out`` relaxes only what the kit allows, with a reason.

    ``applications``: the provider of the workload's application objects (its Deployment or StatefulSet, Services and
    PodDisruptionBudget: what an Argo CD application holds, governance/argocd/projects.APPLICATION_KINDS), e.g. one
    that renders YAML into the applications repository for Argo CD to sync (docs/architecture/gitops.md). Its
    ServiceAccount, NetworkPolicies and monitor stay with the stack's cluster provider: the platform owns them.
    None: everything goes to the cluster.
    """

    def __init__(self, args: WorkloadArgs, ctx: KitContext, opts: pulumi.ResourceOptions | None = None,
                 applications: pulumi.ProviderResource | None = None):
        super().__init__("somaagenthub:kit:Workload", f"{args.namespace}-{args.name}", None, opts)
        child = pulumi.ResourceOptions(parent=self)
        app = pulumi.ResourceOptions(parent=self, provider=applications)
        image = ctx.catalog.app_image(args.image) if args.app_image else ctx.catalog.image(args.image)
        labels = recommended(args.name, args.component, image.tag)
        match = selector(args.name)
        annotations = waiver_annotations(dict(args.opt_out))
        metadata = {"name": args.name, "namespace": args.namespace, "labels": labels, "annotations": annotations}
        prefix = f"{args.namespace}-{args.name}"

        self.service_account = k8s.core.v1.ServiceAccount(
            prefix, metadata={"name": args.name, "namespace": args.namespace, "labels": labels},
            automount_service_account_token=False, opts=child,
        )
        pod_spec = self._pod_spec(args, ctx, image)
        template = {"metadata": {"labels": {**labels, **dict(args.pod_labels), **match}, "annotations": annotations}, "spec": pod_spec}
        spec: dict = {"replicas": args.replicas, "selector": {"matchLabels": match}, "template": template}
        depends = pulumi.ResourceOptions(parent=self, provider=applications, depends_on=[self.service_account])
        # the pods read Secrets that External Secrets writes: they wait for them (below, once the spec is known)
        self.headless_service = None
        if args.kind == "StatefulSet":
            self.headless_service = k8s.core.v1.Service(
                f"{prefix}-headless",
                metadata={"name": f"{args.name}-headless", "namespace": args.namespace, "labels": labels},
                spec={
                    "clusterIP": "None",
                    "publishNotReadyAddresses": True,
                    "selector": match,
                    "ports": [{"name": "http", "port": args.port, "targetPort": "http", "protocol": "TCP"}],
                },
                opts=app,
            )
            spec["serviceName"] = f"{args.name}-headless"
            spec["podManagementPolicy"] = "Parallel" if args.parallel_start else "OrderedReady"
            # The data outlives the StatefulSet and a scale-down (Kubernetes' default, said explicitly).
            spec["persistentVolumeClaimRetentionPolicy"] = RETAIN_CLAIMS
            spec["volumeClaimTemplates"] = [
                {
                    "metadata": {"name": volume, "labels": labels},
                    "spec": {
                        "accessModes": ["ReadWriteOnce"],
                        "storageClassName": ctx.storage_class,
                        "resources": {"requests": {"storage": args.storage}},
                    },
                }
                for volume, _ in data_volumes(args)
            ]
            self.pods = k8s.apps.v1.StatefulSet(prefix, metadata=metadata, spec=spec, opts=ctx.after_secrets(args.namespace, spec, depends))
        else:
            spec["strategy"] = {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}}
            self.pods = k8s.apps.v1.Deployment(prefix, metadata=metadata, spec=spec, opts=ctx.after_secrets(args.namespace, spec, depends))

        self.service = k8s.core.v1.Service(
            prefix,
            metadata={"name": args.name, "namespace": args.namespace, "labels": labels},
            spec={
                "type": "ClusterIP",
                "selector": match,
                "ports": [
                    {"name": "http", "port": args.port, "targetPort": "http", "protocol": "TCP"},
                    *([{"name": METRICS_PORT_NAME, "port": args.metrics_port, "targetPort": METRICS_PORT_NAME, "protocol": "TCP"}]
                      if args.scraped else []),
                ],
            },
            opts=app,
        )
        self.service_monitor = (service_monitor(args.name, args.namespace, ctx, child, path=args.metrics_path)
                                if args.scraped else None)
        self.network_policies = self._network_policies(args, ctx, match, child)
        self.disruption_budget = None
        if args.replicas > 1:
            self.disruption_budget = k8s.policy.v1.PodDisruptionBudget(
                prefix,
                metadata={"name": args.name, "namespace": args.namespace, "labels": labels},
                spec={"maxUnavailable": 1, "selector": {"matchLabels": match}},
                opts=app,
            )
        self.address = f"{args.name}.{args.namespace}.svc.cluster.local:{args.port}"
        self.register_outputs({"address": self.address})

    @staticmethod
    def _pod_spec(args: WorkloadArgs, ctx: KitContext, image: ImageRef) -> dict:
        match = selector(args.name)
        env = [*environment(args.env, args.secret_env),
               *otel_env(args.name, args.namespace, ctx.stack, image.tag, ctx.telemetry, metrics=args.metrics)]
        mounts, volumes = writable_scratch(args.writable_paths)
        if args.kind == "StatefulSet":
            mounts.extend({"name": volume, "mountPath": path} for volume, path in data_volumes(args))
        for i, (config_map, path) in enumerate(args.config_maps):
            mounts.append({"name": f"config-{i}", "mountPath": path, "readOnly": True})
            volumes.append({"name": f"config-{i}", "configMap": {"name": config_map}})
        for i, item in enumerate(args.secret_files):
            mounts.append({"name": f"secret-{i}", "mountPath": item.path, "readOnly": True})
            volumes.append({"name": f"secret-{i}", "secret": {
                "secretName": item.secret, "defaultMode": 0o444, "items": [{"key": k, "path": k} for k in item.keys]}})
        if args.token is not None:
            mounts.append({"name": "token", "mountPath": args.token.path, "readOnly": True})
            volumes.append({"name": "token", "projected": {"sources": [{"serviceAccountToken": {
                "audience": args.token.audience, "expirationSeconds": args.token.expiration_seconds, "path": "token"}}]}})
        container = {
            "name": args.name,
            "image": image.reference,
            "imagePullPolicy": "IfNotPresent",
            "args": list(args.args),
            "env": env,
            "ports": [
                {"name": "http", "containerPort": args.port, "protocol": "TCP"},
                *([{"name": METRICS_PORT_NAME, "containerPort": args.port if args.metrics_on_service_port else args.metrics_port,
                    "protocol": "TCP"}] if args.scraped else []),
            ],
            "resources": resource_requirements(args.resources),
            "securityContext": container_security_context(args.opt_out, args.run_as_user),
            "livenessProbe": {"httpGet": {"path": args.health_path, "port": "http"}, "periodSeconds": 10, "failureThreshold": 3},
            "readinessProbe": {"httpGet": {"path": args.ready_path, "port": "http"}, "periodSeconds": 5, "failureThreshold": 3},
            "startupProbe": {"httpGet": {"path": args.health_path, "port": "http"}, "periodSeconds": 5, "failureThreshold": 30},
            "volumeMounts": mounts,
        }
        spec: dict = {
            "serviceAccountName": args.name,
            "automountServiceAccountToken": False,
            "enableServiceLinks": False,
            "securityContext": pod_security_context(args.run_as_user),
            "containers": [container],
            "volumes": volumes,
        }
        if args.termination_grace_seconds is not None:
            spec["terminationGracePeriodSeconds"] = args.termination_grace_seconds
        if args.replicas > 1:
            spec["topologySpreadConstraints"] = [
                {
                    "maxSkew": 1,
                    "topologyKey": "kubernetes.io/hostname",
                    "whenUnsatisfiable": "DoNotSchedule" if ctx.high_availability else "ScheduleAnyway",
                    "labelSelector": {"matchLabels": match},
                }
            ]
            spec["affinity"] = anti_affinity(match, ctx.high_availability)
        return spec

    @staticmethod
    def _network_policies(args: WorkloadArgs, ctx: KitContext, match: dict[str, str], opts: pulumi.ResourceOptions) -> list:
        scraper = Peer(namespace=ctx.telemetry.scraper_namespace, pods={"app.kubernetes.io/name": "prometheus"})
        collector = Peer(namespace=ctx.telemetry.scraper_namespace, pods={"app.kubernetes.io/name": "opentelemetry-collector"})
        scrape_port = args.port if args.metrics_on_service_port else args.metrics_port
        policies = [
            *([network.allow_ingress(f"{args.name}-metrics-scrape", args.namespace, match, [scraper], [scrape_port], opts, ctx.flows)]
              if args.scraped else []),
            network.allow_egress(f"{args.name}-telemetry", args.namespace, match, [collector], [OTLP_GRPC_PORT], opts, ctx.flows),
        ]
        if args.callers:
            policies.append(network.allow_ingress(f"{args.name}-callers", args.namespace, match, list(args.callers), [args.port], opts, ctx.flows))
        for i, flow in enumerate(args.egress):
            policies.append(network.allow_egress(f"{args.name}-egress-{i}", args.namespace, match, [flow.to], list(flow.ports), opts, ctx.flows))
        return policies
