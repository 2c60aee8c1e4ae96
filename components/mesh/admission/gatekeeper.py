"""Gatekeeper from its official chart (``charts/gatekeeper``, 3.23.0, vendored from the release tag).

Values are read from charts/gatekeeper/values.yaml and templates/ at v3.23.0. What the chart does in Helm
hooks, which the provider never runs, and how nothing essential is lost:

* ``upgrade-crds-hook.yaml`` (pre-install/pre-upgrade Job, image gatekeeper-crds) applies the CRDs of
  ``crds/``: the program installs those CRDs itself before the chart (kit ``helm_chart`` → ``chart_crds``),
  and keeps them on delete where the stack protects its data;
* ``namespace-post-install.yaml`` (post-install Job) labels the release namespace
  ``admission.gatekeeper.sh/ignore`` and with Pod Security labels: the webhooks already skip the release
  namespace by name (``gatekeeper.mandatoryNamespaceExemption``, kubernetes.io/metadata.name NotIn), the
  manager is started with ``--exempt-namespace=<release namespace>``, and the platform's namespace already
  carries its Pod Security labels (kit ``PlatformNamespace``), so the label adds nothing;
* ``probe-webhook-post-install.yaml`` (post-install Job, image curlimages/curl) waits until the webhook
  answers: the constraints wait for the chart (Pulumi waits for its Deployments to be ready) and for the
  templates, whose constraint CRDs Gatekeeper creates (components/mesh/admission/__init__.py);
* ``webhook-configs-pre-delete.yaml`` (pre-delete, off by default) deletes the webhook configurations on
  uninstall: the provider deletes them with the chart.

All four are switched off in the values too, so a ``helm install`` with these values behaves the same.
"""
from __future__ import annotations

from components.kit import KitContext, Peer, allow_egress, allow_ingress
from components.kit.security import anti_affinity, container_security_context, pod_security_context, resource_requirements
from components.settings import AdmissionSettings

RELEASE = "gatekeeper"
UID, GID = 1000, 999
"""The chart's own user and group (values.yaml controllerManager/audit securityContext runAsUser 1000,
runAsGroup 999, fsGroup 999)."""
WEBHOOK_PORT = 8443
"""``controllerManager.port``: the API server calls the webhook Service's 443 → this port."""
METRICS_PORT = 8888
"""``controllerManager.metricsPort`` and ``audit.metricsPort``: container port ``metrics``."""
HEALTH_PORT = 9090
API_SERVER_PORTS = (443, 6443)
SYSTEM_LABELS = {"gatekeeper.sh/system": "yes"}
"""Every Gatekeeper pod (templates/*-deployment.yaml pod labels)."""
WEBHOOK_LABELS = {**SYSTEM_LABELS, "control-plane": "controller-manager"}
AUDIT_LABELS = {**SYSTEM_LABELS, "control-plane": "audit-controller"}
WEBHOOK_EXEMPT_NAMESPACES = ("kube-system",)
"""Namespaces whose requests the API server never sends to Gatekeeper (with the release namespace, which
the chart always adds): the cluster's own components must start even when Gatekeeper does not (a node's
CNI pod in kube-system is what lets Gatekeeper's pods get an address). Nothing of the platform runs there."""


def _image(ctx: KitContext) -> dict:
    ref = ctx.catalog.image("gatekeeper")
    # the template writes "repository:release"; the digest rides in release
    return {"repository": ref.name, "release": f"{ref.tag}@{ref.digest}", "pullPolicy": "IfNotPresent"}


def _container_security() -> dict:
    return {**container_security_context(uid=UID), "runAsGroup": GID}


def _pod_security() -> dict:
    return {**pod_security_context(UID, GID), "supplementalGroups": [GID]}


def chart_values(settings: AdmissionSettings, namespace: str, ctx: KitContext) -> dict:
    replicas = settings.gatekeeper.replicas
    hook_off = {"enabled": False}
    return {
        "replicas": replicas,
        "image": _image(ctx),
        "validatingWebhookFailurePolicy": settings.failure_policy,
        "validatingWebhookExemptNamespacesLabels": {"kubernetes.io/metadata.name": list(WEBHOOK_EXEMPT_NAMESPACES)},
        # no mutation: the platform's pods are admitted as the gate judged them, not rewritten
        "disableMutation": True,
        "logDenies": True,
        # every violation also a Kubernetes Event (reasons FailedAdmission/WarningAdmission/DryrunViolation and
        # AuditViolation, annotated with the constraint and the object): the compliance part maps them to audit
        # events (components/governance/compliance/events.py). templates/gatekeeper-controller-manager-deployment.yaml
        # and gatekeeper-audit-deployment.yaml pass them as --emit-admission-events / --emit-audit-events.
        "emitAdmissionEvents": True,
        "emitAuditEvents": True,
        "metricsBackends": ["prometheus"],
        "enableRuntimeDefaultSeccompProfile": True,
        "pdb": {"controllerManager": {"minAvailable": max(replicas - 1, 0)}},
        "controllerManager": {
            "exemptNamespaces": list(WEBHOOK_EXEMPT_NAMESPACES),
            "resources": resource_requirements(settings.gatekeeper.resources),
            "securityContext": _container_security(),
            "podSecurityContext": _pod_security(),
            "affinity": anti_affinity(WEBHOOK_LABELS, required=ctx.high_availability and replicas > 1),
            "networkPolicy": {"enabled": False},
        },
        "audit": {
            "resources": resource_requirements(settings.audit),
            "securityContext": _container_security(),
            "podSecurityContext": _pod_security(),
        },
        "postInstall": {"labelNamespace": hook_off, "probeWebhook": hook_off},
        "postUpgrade": {"labelNamespace": hook_off},
        "preUninstall": {"deleteWebhookConfigurations": hook_off},
        "upgradeCRDs": hook_off,
    }


def network(namespace: str, observability_namespace: str, api_server_cidr: str, ctx: KitContext, opts) -> list:
    """API server → webhook; both pods → API server; Prometheus → both pods' metrics."""
    api = Peer(cidr=api_server_cidr)
    prometheus = Peer(namespace=observability_namespace, pods={"app.kubernetes.io/name": "prometheus"})
    return [
        allow_ingress("gatekeeper-webhook-from-api-server", namespace, WEBHOOK_LABELS, [api], [WEBHOOK_PORT], opts, ledger=ctx.flows),
        allow_egress("gatekeeper-to-api-server", namespace, SYSTEM_LABELS, [api], API_SERVER_PORTS, opts, ledger=ctx.flows),
        allow_ingress("gatekeeper-metrics-scrape", namespace, SYSTEM_LABELS, [prometheus], [METRICS_PORT], opts, ledger=ctx.flows),
    ]
