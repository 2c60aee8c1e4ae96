"""External Secrets Operator from its chart, and the per-consumer store and secret objects.

ESO's own service account gets no Vault access: each consumer's ClusterSecretStore logs into
Vault *as the consumer's service account* (TokenRequest with audience ``vault``), and is
usable only from the consumer's namespace (``spec.conditions``). See vault_access.py.
"""
from __future__ import annotations

from typing import Mapping

import pulumi

from components.core.secrets.vault_server import KUBERNETES_AUTH_PATH, VaultEndpoint
from components.kit.security import container_security_context, pod_security_context, resource_requirements
from components.core.secrets.vault_access import VAULT_AUDIENCE, SecretConsumer, role_name
from components.kit import KitContext, custom_resource, helm_chart
from components.settings import CoreSettings

API = "external-secrets.io/v1"
RELEASE = "external-secrets"
CONTROLLER_LABELS = {"app.kubernetes.io/name": "external-secrets"}
WEBHOOK_LABELS = {"app.kubernetes.io/name": "external-secrets-webhook"}
CERT_CONTROLLER_LABELS = {"app.kubernetes.io/name": "external-secrets-cert-controller"}
WEBHOOK_PORT = 10250
METRICS_PORT = 8080
METRICS_PODS = {"app.kubernetes.io/instance": RELEASE}
"""All three of the chart's pods (controller, webhook, cert-controller) serve metrics on METRICS_PORT, and
``serviceMonitor.enabled`` renders a ServiceMonitor for each: Prometheus may reach all three."""
METRICS_SERVICE = f"{RELEASE}-metrics"
"""The chart's metrics Service (``<fullname>-metrics``), which names the scrape job."""
REFRESH_INTERVAL = "1h"


def chart_values(settings: CoreSettings, ctx: KitContext) -> dict:
    """Keys read from external-secrets deploy/charts/external-secrets/values.yaml (see platform.lock.yaml).

    The chart has no digest key; the tag carries it (``v2.10.0@sha256:...``). All three
    Deployments run the same image, each set explicitly so none falls back to the chart default.
    """
    image = ctx.catalog.image("external-secrets")
    pinned = {"repository": image.name, "tag": image.tag_at_digest, "pullPolicy": "IfNotPresent"}
    pod = pod_security_context(1000)
    container = container_security_context(uid=1000)
    es = settings.external_secrets
    replicas = es.replicas
    common = {
        "replicaCount": replicas,
        "podSecurityContext": pod,
        "securityContext": container,
        "podDisruptionBudget": {"enabled": replicas > 1, "minAvailable": 1},
    }
    return {
        "installCRDs": True,
        # Only the deployer creates ExternalSecrets and stores: an ExternalSecret may name any store its
        # namespace may use, so whoever can write one reads every consumer's secrets there. The chart
        # would add that write access to the built-in edit and admin roles of every namespace.
        "rbac": {"aggregateToEdit": False, "aggregateToAdmin": False},
        # The chart templates its CRDs; `keep` makes the provider retain them on delete
        # (pulumi-kubernetes helm/v4 chart.go), so a destroy leaves every ExternalSecret in place.
        **({"crds": {"annotations": {"helm.sh/resource-policy": "keep"}}} if ctx.deletion_protection else {}),
        "leaderElect": True,
        "image": pinned,
        "resources": resource_requirements(es.resources),
        # The controller's metrics Service (port "metrics", 8080) and the chart's ServiceMonitor on it
        # (values.yaml metrics.service.enabled, serviceMonitor.enabled; templates/servicemonitor.yaml
        # renders only once the monitoring CRDs exist, which is why every chart waits for them).
        "metrics": {"service": {"enabled": True, "port": METRICS_PORT}},
        # honorLabels: the controller's metrics carry the ExternalSecret's own namespace label, which the
        # scrape would otherwise rename exported_namespace (external-secrets v2.9.0 pkg/controllers/metrics/labels.go)
        "serviceMonitor": {"enabled": True, "interval": "30s", "honorLabels": True},
        **common,
        "webhook": {"image": pinned, "resources": resource_requirements(es.resources), **common},
        "certController": {"image": pinned, "resources": resource_requirements(es.resources), **common},
    }


def operator(settings: CoreSettings, ctx: KitContext, opts: pulumi.ResourceOptions) -> pulumi.Resource:
    return helm_chart(RELEASE, "external-secrets", settings.namespaces.operators.name, chart_values(settings, ctx), ctx, ctx.keep(opts))


def store_name(consumer: SecretConsumer) -> str:
    return f"vault-{role_name(consumer)}"


def cluster_secret_store(consumer: SecretConsumer, endpoint: VaultEndpoint, mount: str, opts: pulumi.ResourceOptions) -> pulumi.Resource:
    """One store per consumer: its namespace only, its service account only, its Vault role only."""
    provider: dict = {
        "server": endpoint.url,
        "path": mount,
        "version": "v2",
        "auth": {
            "kubernetes": {
                "mountPath": KUBERNETES_AUTH_PATH,
                "role": role_name(consumer),
                "serviceAccountRef": {"name": consumer.service_account, "namespace": consumer.namespace, "audiences": [VAULT_AUDIENCE]},
            }
        },
    }
    if endpoint.ca_secret:
        provider["caProvider"] = {"type": "Secret", "name": endpoint.ca_secret, "key": "ca.crt", "namespace": endpoint.namespace}
    spec = {"conditions": [{"namespaces": [consumer.namespace]}], "provider": {"vault": provider}}
    return custom_resource(API, "ClusterSecretStore", store_name(consumer), None, spec, opts)


def external_secret(
    consumer: SecretConsumer,
    name: str,
    path: str,
    keys: tuple[str, ...],
    opts: pulumi.ResourceOptions,
    secret_type: str | None = None,
    secret_labels: Mapping[str, str] | None = None,
) -> pulumi.Resource:
    """The Kubernetes Secret ``name`` in the consumer's namespace, one key per Vault property."""
    target: dict = {"name": name, "creationPolicy": "Owner"}
    template: dict = {}
    if secret_type:
        template["type"] = secret_type
    if secret_labels:
        template["metadata"] = {"labels": dict(secret_labels)}
    if template:
        template["engineVersion"] = "v2"
        template["mergePolicy"] = "Merge"
        target["template"] = template
    spec = {
        "refreshInterval": REFRESH_INTERVAL,
        "secretStoreRef": {"kind": "ClusterSecretStore", "name": store_name(consumer)},
        "target": target,
        "data": [{"secretKey": key, "remoteRef": {"key": path, "property": key}} for key in keys],
    }
    return custom_resource(API, "ExternalSecret", name, consumer.namespace, spec, opts)
