"""Chaos Mesh in staging: its official chart, the experiments' Workflow, and the flows they need.

The chart (charts/chaos-mesh, v2.8.2) runs a controller manager and, on every node, the chaos daemon.
The daemon is the one privileged pod of the stack: to kill a process, drop packets or delay them it
enters the target pod's namespaces through the container runtime's socket (``hostPID``, the runtime
socket and cgroup hostPaths, ``privileged``). So it runs in a namespace of its own
(``ops.namespaces.chaos``, Pod Security ``privileged``), and policies/config/staging.json lists it as
the allow-listed exception, rule by rule, with this reason; prod's gate refuses every Chaos Mesh
object (policies/rules/no_fault_injection.py).

What the values change from the chart's defaults, and why:

* images by digest from the catalog (``tag: v2.8.2@sha256:...``; the chart joins registry, repository
  and tag); the dashboard (a NodePort UI with its own SQLite store) and the DNS server (DNSChaos, not
  used) are off, so their images are not needed;
* the webhook's certificates from cert-manager (``webhook.certManager``), not from Helm's ``genCA`` into
  Secrets with literal data; ``chaosdSecurityMode`` off (it signs a client for chaosd, the physical
  machine agent, which the platform does not run);
* the controller manager's pods non-root (UID 65532, RuntimeDefault seccomp); the chart has no value for
  its container's security context, so staging.json waives what that leaves (a writable root filesystem,
  capabilities not dropped) for the controller by name;
* the controller's pause image for PodChaos ``pod-failure`` is the controller's own (pinned) image:
  the experiments use ``pod-kill`` only, and an unpinned ``gcr.io/google-containers/pause:latest``
  would be an image the gate and admission refuse.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pulumi

from components.core import CoreOutputs
from components.core.certificates import API_SERVER_PORTS
from components.core.observability import topology
from components.kit import KitContext, PlatformNamespace, helm_chart
from components.kit.custom import custom_resource
from components.kit.network import Flow, FlowRule, Peer, flow_policy, tcp
from components.kit.security import resource_requirements
from components.ops import experiments as ex
from components.settings import ChaosSettings, PlatformSettings
from tools.ops.release import release_digests, release_id

RELEASE = "chaos-mesh"
CHART = "chaos-mesh"
CONTROLLER = {"app.kubernetes.io/instance": RELEASE, "app.kubernetes.io/component": "controller-manager"}
DAEMON = {"app.kubernetes.io/instance": RELEASE, "app.kubernetes.io/component": "chaos-daemon"}
WEBHOOK_PORT = 10250
DAEMON_GRPC_PORT = 31767
CONTROLLER_UID = 65532
"""A high non-root UID for the controller manager (its image is distroless; it writes nothing but /tmp)."""

POD_SECURITY_REASON = (
    "Chaos Mesh's daemon enters other pods' network and process namespaces through the container runtime's socket "
    "to inject faults (hostPID, hostPath mounts of the runtime socket and /sys, privileged), which only Pod Security "
    "privileged admits; the namespace holds Chaos Mesh alone, only in the staging stack (audit and warn stay restricted)."
)
DAEMON_REASON = (
    "chaos-daemon (Chaos Mesh 2.8.2, charts/chaos-mesh/templates/chaos-daemon-daemonset.yaml) injects the staging "
    "experiments' faults: it enters the target pod's namespaces through the container runtime's socket, kills its "
    "processes and rewrites its iptables and tc rules, so it runs privileged with hostPID and hostPath mounts of the "
    "runtime socket and /sys. Staging only (settings refuse ops.chaos elsewhere; prod's no-fault-injection rule refuses it). "
    "Ops phase, part chaos."
)


def images(ctx: KitContext) -> dict[str, Any]:
    controller, daemon = ctx.catalog.image("chaos-mesh-controller"), ctx.catalog.image("chaos-mesh-daemon")
    return {
        "controller": {"registry": controller.registry, "repository": controller.repository, "tag": controller.tag_at_digest},
        "daemon": {"registry": daemon.registry, "repository": daemon.repository, "tag": daemon.tag_at_digest},
        "pause": f"{controller.name}:{controller.tag_at_digest}",
    }


def values(chaos: ChaosSettings, ctx: KitContext, namespace: str) -> dict[str, Any]:
    image = images(ctx)
    return {
        "controllerManager": {
            "replicaCount": chaos.controller_replicas,
            "image": image["controller"],
            "resources": resource_requirements(chaos.controller),
            "securityContext": {"runAsNonRoot": True, "runAsUser": CONTROLLER_UID, "seccompProfile": {"type": "RuntimeDefault"}},
            "chaosdSecurityMode": False,
            "podChaos": {"podFailure": {"pauseImage": image["pause"]}},
        },
        "chaosDaemon": {
            "image": image["daemon"],
            # it runs as root (the chart sets no user); said explicitly, so that the gate and admission both see it
            "securityContext": {"runAsUser": 0},
            "runtime": chaos.runtime,
            "socketPath": chaos.socket_path,
            "resources": resource_requirements(chaos.daemon),
        },
        "dashboard": {"create": False},
        "dnsServer": {"create": False},
        "webhook": {"certManager": {"enabled": True}},
        "enableProfiling": False,
    }


def flows(api_server_cidr: str, observability_namespace: str) -> list[Flow]:
    """The chaos namespace opens exactly these (the daemon reaches its targets from inside their namespaces)."""
    controller, daemon = {"matchLabels": CONTROLLER}, {"matchLabels": DAEMON}
    return [
        Flow("chaos-controller-to-kubernetes-api", "Egress", controller,
             (FlowRule(({"ipBlock": {"cidr": api_server_cidr}},), tcp(*API_SERVER_PORTS)),),
             "the controller manager watches chaos objects and pods and leads through a Lease"),
        Flow("chaos-webhook-from-kubernetes-api", "Ingress", controller,
             (FlowRule(({"ipBlock": {"cidr": api_server_cidr}},), tcp(WEBHOOK_PORT)),),
             "the API server calls Chaos Mesh's admission webhooks for every chaos object"),
        Flow("chaos-controller-to-daemon", "Egress", controller,
             (FlowRule((Peer(pods=DAEMON).as_rule(),), tcp(DAEMON_GRPC_PORT)),),
             "the controller tells the daemon on the target's node what to inject (gRPC, mutual TLS)"),
        Flow("chaos-daemon-from-controller", "Ingress", daemon,
             (FlowRule((Peer(pods=CONTROLLER).as_rule(),), tcp(DAEMON_GRPC_PORT)),),
             "only the controller manager drives the daemon"),
        Flow("chaos-controller-to-prometheus", "Egress", controller,
             (FlowRule((Peer(namespace=observability_namespace, pods=topology.pods("prometheus")).as_rule(),),
                       tcp(topology.PROMETHEUS_WEB)),),
             "the Workflow's StatusChecks ask Prometheus whether each steady-state hypothesis holds"),
    ]


def prometheus_ingress(chaos_namespace: str) -> Flow:
    """The other half of ``chaos-controller-to-prometheus``, in the observability namespace."""
    return Flow("prometheus-from-chaos-controller", "Ingress", {"matchLabels": topology.pods("prometheus")},
                (FlowRule((Peer(namespace=chaos_namespace, pods=CONTROLLER).as_rule(),), tcp(topology.PROMETHEUS_WEB)),),
                "Chaos Mesh's StatusChecks query the steady-state hypotheses (staging only)")


class Chaos(pulumi.ComponentResource):
    """Chaos Mesh's chart, its flows, and one Workflow per release (``resilience-<release>``)."""

    def __init__(self, chaos: ChaosSettings, ctx: KitContext, namespace: str, namespaces: Mapping[str, str],
                 deployed: set[str], release: str, observability_namespace: str, api_server_cidr: str,
                 cert_manager: pulumi.Resource | None, opts: pulumi.ResourceOptions | None = None):
        super().__init__("somaagenthub:ops:Chaos", "chaos", None, opts)
        depends_on = list(opts.depends_on) if opts and isinstance(opts.depends_on, (list, tuple)) else []
        child = pulumi.ResourceOptions(parent=self, depends_on=[*depends_on, *([cert_manager] if cert_manager else [])])
        self.chart = helm_chart(RELEASE, CHART, namespace, values(chaos, ctx, namespace), ctx, child)
        self.network_policies = [flow_policy(namespace, flow, child, ctx.flows) for flow in flows(api_server_cidr, observability_namespace)]
        self.network_policies.append(flow_policy(observability_namespace, prometheus_ingress(namespace), child, ctx.flows))
        self.experiments = ex.selected(ex.EXPERIMENTS, deployed)
        prometheus = topology.Topology(observability_namespace, loki_scalable=False).prometheus_url
        spec = ex.workflow_spec(self.experiments, namespaces, prometheus, chaos.deadline)
        self.workflow_name = ex.run_name(release)
        self.workflow = custom_resource(
            ex.API_VERSION, "Workflow", self.workflow_name, namespace, spec,
            pulumi.ResourceOptions(parent=self, depends_on=[self.chart, *self.network_policies]),
            annotations={ex.RELEASE_ANNOTATION: release,
                         "somaagenthub.io/experiments": ",".join(e.name for e in self.experiments)},
            resource_name=f"{namespace}-workflow-resilience",
        )
        self.register_outputs({"workflow": self.workflow_name, "experiments": [e.name for e in self.experiments]})


def deployed_components(platform: PlatformSettings) -> set[str]:
    """What the experiments can select in this stack: a fault aimed at a component that is not deployed
    would select no pod (Chaos Mesh fails such an experiment), so its experiment is left out."""
    found = {"vault"}
    if platform.core.vault.configure:
        found |= {"postgres", "kafka", "qdrant"}
    if platform.phases.governance and platform.governance.openfga is not None:
        found.add("openfga")
    if platform.phases.agents:
        found |= set(platform.agents.services.enabled())
    return found


def namespaces_by_purpose(platform: PlatformSettings) -> dict[str, str]:
    """``<phase>.<purpose>`` to namespace name, for every purpose an experiment may name."""
    wanted = {e.target.namespace for e in ex.EXPERIMENTS} | {e.peer.namespace for e in ex.EXPERIMENTS if e.peer}
    return {key: name for key in sorted(wanted) if (name := platform.namespace_named_by(key)) is not None}


def for_stack(chaos: ChaosSettings | None, ctx: KitContext, namespace: PlatformNamespace | None, core: CoreOutputs,
              platform: PlatformSettings, opts: pulumi.ResourceOptions) -> Chaos | None:
    """Chaos Mesh where ``ops.chaos`` is set (settings allow that in staging only, with its namespace)."""
    if chaos is None or namespace is None:
        return None
    release = release_id(release_digests(ctx.catalog))
    return Chaos(chaos, ctx, namespace.name, namespaces_by_purpose(platform), deployed_components(platform), release,
                 core.observability_namespace, core.api_server_cidr, core.cert_manager, opts)
