"""The node log agent: every container's stdout and stderr, read on its node, shipped to Loki.

Workloads built with the kit send their logs over OTLP, but third-party components (Vault's audit
device among them, which writes to stdout), crash output before an SDK starts and anything else a
container prints reach only the node's log files. This agent reads them: a second release of the
vendored OpenTelemetry Collector chart (catalog key ``opentelemetry-collector``, the same image as
the gateway) in ``mode: daemonset``, one pod per node, in a namespace of its own.

What the chart renders and what is kept (read from charts/opentelemetry-collector 0.170.0):

* ``presets.kubernetesAttributes``: the ``k8s_attributes`` processor (filtered to the pod's node
  through ``K8S_NODE_NAME``) and a ClusterRole that may get, list and watch pods, namespaces and
  replicasets, nothing else. Kept: it adds the workload, node and service attributes.
* ``presets.logsCollection`` is **not** used: besides ``/var/log/pods`` it always mounts the hostPath
  ``/var/lib/docker/containers`` (templates/_pod.tpl), which only Docker-shim nodes need (there the
  files under /var/log/pods are links into it); containerd and CRI-O write the files in
  ``/var/log/pods`` itself. The preset's ``file_log`` receiver (templates/_config.tpl,
  ``logsCollectionConfig``) is written out below instead, and ``/var/log/pods`` is mounted through
  ``extraVolumes`` alone: a read-only mount of a hostPath of ``type: Directory`` (the kubelet creates
  nothing on the node), the one host access of the platform.
* Every receiver port is closed (the chart gives each a ``hostPort`` in daemonset mode), so the pod
  has no hostPort; no hostNetwork, no hostPID; only the metrics port 8888, scraped by a PodMonitor.

Why it needs no root: containerd opens each log file ``0640`` as root:root in directories ``0755``
(containerd internal/cri/server/helpers_linux.go, ``openLogFile``), so group 0 may read them. The
agent runs as UID 10001 with the supplementary group 0, every capability dropped, a read-only root
filesystem and no privilege escalation; it can read the files and write nothing on the host. A
runtime that writes ``0600`` files (older conmon releases of CRI-O) leaves it reading nothing:
docs/runbooks/observability.md, "Node logs", says what to do then.

Labels: the ``container`` operator reads namespace, pod, container and pod UID from the file path
(add_metadata_from_filepath, on by default), ``k8s_attributes`` adds the rest, and the same
``resource/loki-labels`` processor as the gateway's copies namespace, pod and container into the
attributes Loki indexes as the ``namespace``, ``pod`` and ``container`` labels. So a third-party
pod's lines are found exactly like a kit workload's: ``{namespace="...", container="..."}``.
"""
from __future__ import annotations

from typing import Any

import pulumi

from components.core.observability import topology as t
from components.core.observability.collector import LOG_LABELS, label_processor
from components.core.observability.images import repository_tag_digest
from components.kit import KitContext, helm_chart
from components.kit.network import Flow, FlowRule, Peer, flow_policy, tcp
from components.kit.security import container_security_context, pod_security_context, resource_requirements
from components.settings import CollectorSettings, NodeLogSettings

RELEASE = "node-log-agent"
"""The chart release and the pods' ``app.kubernetes.io/name`` (``nameOverride``)."""
FULLNAME = "node-log"
"""The chart appends ``-agent`` to the DaemonSet (and its ConfigMap and PodMonitor): ``node-log-agent``."""
DAEMONSET = f"{FULLNAME}-agent"
CONTAINER = "opentelemetry-collector"
"""The chart names the container after itself (``lowercase_chartname``), whatever the release."""
POD_LABELS = {t.NAME_LABEL: RELEASE}

LOG_DIRECTORY = "/var/log/pods"
LOG_VOLUME = "varlogpods"
LOG_FILES = f"{LOG_DIRECTORY}/*/*/*.log"
"""``<namespace>_<pod>_<uid>/<container>/<restart>.log``: every container of every pod on the node."""
RECEIVER = "file_log"
"""The filelog receiver's name since collector-contrib 0.149 (chart UPGRADING.md); the image is 0.161."""
MAX_LOG_SIZE = 102400
"""The chart's ``presets.logsCollection.maxRecombineLogSize``: a partial line is flushed past this size."""

AGENT_UID = 10001
LOG_FILE_GROUP = 0
"""The group of the log files (root): containerd creates them 0640 root:root."""
METRICS_PORT = t.COLLECTOR_METRICS
PROCESSORS = ["memory_limiter", "k8s_attributes", LOG_LABELS, "batch"]
"""``k8s_attributes`` is configured by the chart's preset; listing it here fixes its place after the limiter."""

HOST_ACCESS_REASON = (
    "The node log agent reads every container's stdout and stderr from /var/log/pods, where the container "
    "runtime writes them; nothing else on the node can give it those files. The hostPath is that one directory, "
    "type Directory, mounted read-only; no other hostPath, no host network, PID or IPC namespace, no hostPort."
)
POD_SECURITY_REASON = (
    "Pod Security baseline and restricted forbid every hostPath volume, so the node log agent's namespace enforces "
    "privileged; it holds that DaemonSet alone, and the agent itself runs as non-root with every capability dropped "
    "(audit and warn stay restricted)."
)


def exclusions(namespace: str) -> list[str]:
    """The agent's own files: shipping its own complaints about Loki would feed them back (chart README)."""
    return [f"{LOG_DIRECTORY}/{namespace}_{FULLNAME}*_*/{CONTAINER}/*.log"]


def pipeline_config(collector: CollectorSettings, namespace: str, loki_otlp_url: str) -> dict[str, Any]:
    """Files in, Kubernetes attributes and the Loki labels added, OTLP to Loki out; nothing else listens.

    The receiver is the chart's logsCollection preset written out (same include, exclude, ``start_at:
    end``, retries, file path attribute and ``container`` parser); no checkpoint storage, as keeping
    offsets across pod restarts needs a writable hostPath. Memory limiter and batch follow the gateway's
    settings. The chart's default receivers and its metrics and traces pipelines are switched off.
    """
    return {
        "receivers": {
            "otlp": None,
            "jaeger": None,
            "zipkin": None,
            "prometheus": None,
            RECEIVER: {
                "include": [LOG_FILES],
                "exclude": exclusions(namespace),
                "start_at": "end",
                "retry_on_failure": {"enabled": True},
                "include_file_path": True,
                "include_file_name": False,
                "operators": [{"type": "container", "id": "container-parser", "max_log_size": MAX_LOG_SIZE}],
            },
        },
        "processors": {
            "memory_limiter": {
                "check_interval": "1s",
                "limit_percentage": collector.memory_limit_percentage,
                "spike_limit_percentage": collector.memory_spike_percentage,
            },
            "batch": {"send_batch_size": collector.batch_size, "timeout": t.go_duration(collector.batch_timeout)},
            LOG_LABELS: label_processor(),
        },
        "exporters": {
            "debug": None,
            "otlp_http/loki": {"endpoint": loki_otlp_url, "tls": {"insecure": True}},
        },
        "service": {
            "pipelines": {
                "logs": {"receivers": [RECEIVER], "processors": PROCESSORS, "exporters": ["otlp_http/loki"]},
                "metrics": None,
                "traces": None,
            }
        },
    }


def values(agent: NodeLogSettings, collector: CollectorSettings, ctx: KitContext, namespace: str, loki_otlp_url: str) -> dict[str, Any]:
    closed = {"enabled": False}
    return {
        "mode": "daemonset",
        "nameOverride": RELEASE,
        "fullnameOverride": FULLNAME,
        "image": repository_tag_digest(ctx.catalog.image("opentelemetry-collector-k8s")),
        "command": {"name": "otelcol-k8s"},
        "presets": {"kubernetesAttributes": {"enabled": True}},
        "resources": resource_requirements(agent.resources),
        "podSecurityContext": {**pod_security_context(AGENT_UID), "supplementalGroups": [LOG_FILE_GROUP]},
        "securityContext": container_security_context(uid=AGENT_UID),
        # k8s_attributes watches pods through the API, so this one ServiceAccount keeps its token
        "serviceAccount": {"create": True, "automountServiceAccountToken": True},
        "ports": {
            "otlp": closed,
            "otlp-http": closed,
            "jaeger-compact": closed,
            "jaeger-thrift": closed,
            "jaeger-grpc": closed,
            "zipkin": closed,
            "metrics": {"enabled": True},
        },
        "extraVolumes": [{"name": LOG_VOLUME, "hostPath": {"path": LOG_DIRECTORY, "type": "Directory"}}],
        "extraVolumeMounts": [{"name": LOG_VOLUME, "mountPath": LOG_DIRECTORY, "readOnly": True}],
        # every node, tainted pools and control planes included: a node without the agent loses its logs
        "tolerations": [{"operator": "Exists", "effect": "NoSchedule"}],
        "config": pipeline_config(collector, namespace, loki_otlp_url),
        "podMonitor": {"enabled": True},
        "networkPolicy": {"enabled": False},
    }


def flows(loki_namespace: str, api_server_cidr: str, scraper_namespace: str) -> list[Flow]:
    """The agent's namespace opens exactly these; Loki's ingress from the agent is in flows.py."""
    agent = {"matchLabels": POD_LABELS}
    return [
        Flow("node-log-agent-to-loki", "Egress", agent,
             (FlowRule((Peer(namespace=loki_namespace, pods=t.pods("loki")).as_rule(),), tcp(t.LOKI_HTTP)),),
             "the node log agent pushes the logs it reads to Loki's OTLP endpoint"),
        Flow("node-log-agent-to-kubernetes-api", "Egress", agent,
             (FlowRule(({"ipBlock": {"cidr": api_server_cidr}},), tcp(*t.KUBERNETES_API)),),
             "k8s_attributes watches the pods of its node (and their namespaces and replicasets) to label each line"),
        Flow("node-log-agent-metrics-scrape", "Ingress", agent,
             (FlowRule((Peer(namespace=scraper_namespace, pods=t.pods("prometheus")).as_rule(),), tcp(METRICS_PORT)),),
             "Prometheus scrapes the agent's own metrics (records read, sent, refused, dropped)"),
    ]


class NodeLogs(pulumi.ComponentResource):
    """The agent's chart and its NetworkPolicies, in ``core.namespaces.nodeLogs``."""

    def __init__(self, agent: NodeLogSettings, collector: CollectorSettings, ctx: KitContext, namespace: str,
                 loki_namespace: str, loki_otlp_url: str, api_server_cidr: str, opts: pulumi.ResourceOptions | None = None):
        super().__init__("somaagenthub:core:NodeLogs", "node-logs", None, opts)
        depends_on = list(opts.depends_on) if opts and isinstance(opts.depends_on, (list, tuple)) else []
        child = pulumi.ResourceOptions(parent=self, depends_on=depends_on)
        self.namespace = namespace
        self.chart = helm_chart(RELEASE, "opentelemetry-collector", namespace,
                                values(agent, collector, ctx, namespace, loki_otlp_url), ctx, child)
        self.network_policies = [flow_policy(namespace, flow, child)
                                 for flow in flows(loki_namespace, api_server_cidr, ctx.telemetry.scraper_namespace)]
        self.register_outputs({"namespace": namespace, "daemonSet": DAEMONSET})
