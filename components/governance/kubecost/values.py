"""Values of Kubecost's official chart (charts/kubecost-cost-analyzer, cost-analyzer 2.4.2).

Every key is read from the vendored chart's values.yaml and templates at the tag (line numbers of
values.yaml in brackets). What the platform already runs, Kubecost does not bring again:

* Prometheus: ``global.prometheus.enabled: false`` [3-5] turns off the bundled Prometheus server and,
  with it, the bundled node-exporter DaemonSet and kube-state-metrics (templates/prometheus/*, all under
  ``global.prometheus.enabled``); ``global.prometheus.fqdn`` points the cost-model at Core's
  kube-prometheus-stack, which scrapes Kubecost through the ServiceMonitor ``serviceMonitor.enabled``
  renders [2920] (Kubecost's own metrics are the cost metrics it computes from Prometheus's).
* Grafana: ``global.grafana.enabled: false`` and ``proxy: false`` [10-14], and its dashboard and data
  source ConfigMaps off (``grafana.sidecar.*.enabled`` [2958]): Core's Grafana is the one Grafana; the
  cost dashboard reads ClickHouse there (docs/architecture/cost.md).

Off because they need the node (host network, host PID or hostPath) or a cloud account:

* ``networkCosts.enabled: false`` [2318]: the network-costs DaemonSet runs with hostNetwork and
  NET_ADMIN to read conntrack on every node; Pod Security restricted and the gate refuse it.
* ``prometheus.nodeExporter.enabled: false`` [1742]: hostNetwork, hostPID and hostPath mounts of
  /proc and /sys (it is off with the bundled Prometheus anyway; said twice so a later switch cannot
  bring it back). Core's kube-prometheus-stack already exports node metrics.
* ``clusterController.enabled: false`` [2795]: cluster turndown/right-sizing writes to workloads
  and node pools with cluster-admin-like rights; Pulumi and Argo CD own the workloads.
* ``forecasting.enabled: false`` [2473]: a third image (kubecost-modeling) that is not pinned either.
* ``supportNFS: false``/``initChownDataImage: ""``: no root init container chowning the volume;
  ``global.securityContext`` (fsGroup) gives the volume to the non-root user instead.

Cost allocation labels: ``kubecostProductConfigs.labelMappingConfigs`` [3389] maps Kubecost's
``team`` to the platform's tenant label and ``department`` to its phase label
(components/kit/labels.py), ``product`` to ``app.kubernetes.io/name``, so the Kubecost UI groups
the way the platform's dashboards do.
"""
from __future__ import annotations

from typing import Any

from components.kit.labels import PHASE_LABEL, TENANT_LABEL
from components.kit.security import container_security_context, pod_security_context, resource_requirements
from components.settings import KubecostSettings

CHART = "kubecost-cost-analyzer"
RELEASE = "kubecost"
FULLNAME = "kubecost-cost-analyzer"
"""The chart's fullname for release ``kubecost`` (templates/_helpers.tpl cost-analyzer.fullname): Deployment and Service."""
API_PORT = 9003
"""The cost-model container's API (Service port ``tcp-model``): /allocation, /metrics."""
FRONTEND_PORT = 9090
UID = 1001
"""The chart's default user (global.securityContext.runAsUser) that the images are built for."""
POD_LABELS = {"app": "cost-analyzer", "app.kubernetes.io/name": "cost-analyzer", "app.kubernetes.io/instance": RELEASE}
"""The labels the chart gives the cost-analyzer pod (templates/_helpers.tpl cost-analyzer.selectorLabels)."""


def chart_values(settings: KubecostSettings, prometheus_url: str, model_image: str, frontend_image: str) -> dict[str, Any]:
    """The chart's values for the platform: ``*_image`` are catalog references (``repo:tag@sha256:...``)."""
    return {
        "fullnameOverride": FULLNAME,
        "global": {
            "prometheus": {"enabled": False, "fqdn": prometheus_url},
            "grafana": {"enabled": False, "proxy": False},
            # off by default [149-151]; its example fqdn would still be written into the ConfigMap
            "notifications": {"alertmanager": {"enabled": False, "fqdn": ""}},
            "securityContext": pod_security_context(UID),
            "containerSecurityContext": container_security_context(uid=UID),
        },
        "kubecostModel": {
            "fullImageName": model_image,
            "resources": resource_requirements(settings.model),
        },
        "kubecostFrontend": {
            "fullImageName": frontend_image,
            "resources": resource_requirements(settings.frontend),
        },
        "kubecostAggregator": {"fullImageName": model_image, "resources": resource_requirements(settings.aggregator),
                               "cloudCost": {"resources": resource_requirements(settings.aggregator)}},
        "persistentVolume": {"enabled": True, "size": settings.storage},
        "prometheus": {"nodeExporter": {"enabled": False}, "server": {"enabled": False}},
        "networkCosts": {"enabled": False},
        "clusterController": {"enabled": False},
        "forecasting": {"enabled": False},
        "supportNFS": False,
        "initChownDataImage": "",
        "serviceMonitor": {"enabled": True},
        "prometheusRule": {"enabled": False},
        # the chart's Prometheus-based Grafana dashboards (ConfigMaps for a Grafana sidecar, templates/grafana-dashboard-*)
        "grafana": {"sidecar": {"dashboards": {"enabled": False}, "datasources": {"enabled": False}}},
        "kubecostProductConfigs": {
            "labelMappingConfigs": {
                "enabled": True,
                "team_label": TENANT_LABEL,
                "department_label": PHASE_LABEL,
                "product_label": "app.kubernetes.io/name",
            },
        },
    }
