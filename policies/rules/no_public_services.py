"""no-public-services: only the edge gateway is reachable from outside the cluster."""

from __future__ import annotations

from collections.abc import Iterator

from ..model import Finding, ResourceView, check_value, dig
from ..rule import Rule, RuleConfig, Severity

PUBLIC_TYPES = ("LoadBalancer", "NodePort")


def check(resource: ResourceView, config: RuleConfig) -> Iterator[Finding]:
    if resource.type != "kubernetes:core/v1:Service":
        return
    edge = {str(entry) for entry in config.get("edgeGatewayServices", [])}
    if f"{resource.namespace}/{resource.object_name}" in edge:
        return
    service_type = dig(resource.props, "spec", "type")
    yield from check_value(
        service_type,
        "spec.type",
        service_type not in PUBLIC_TYPES,
        f"Service '{resource.namespace}/{resource.object_name}' is of type {service_type}; "
        "only the edge gateway may be",
    )


RULE = Rule(
    name="no-public-services",
    description=(
        "No Service of type LoadBalancer or NodePort, except the edge gateway's "
        "(named in the policy config as edgeGatewayServices)."
    ),
    severity=Severity.HIGH,
    remediation=(
        "Use a ClusterIP Service (kit.service(...)) and publish the endpoint through the edge "
        "gateway with a route. Only the edge gateway's Service, listed as <namespace>/<name> in "
        "edgeGatewayServices of the policy config, may be a LoadBalancer."
    ),
    check_resource=check,
    config_schema={
        "edgeGatewayServices": {
            "type": "array",
            "items": {"type": "string"},
            "default": [],
            "description": "<namespace>/<name> of the edge gateway Service(s) allowed to be public.",
        },
    },
)
