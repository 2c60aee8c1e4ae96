"""resource-limits: every container requests and is limited in CPU and memory."""

from __future__ import annotations

from collections.abc import Iterator

from ..model import Finding, ResourceView, check_value
from ..podspec import pod_templates
from ..rule import Rule, RuleConfig, Severity

REQUIRED = (("requests", "cpu"), ("requests", "memory"), ("limits", "cpu"), ("limits", "memory"))


def check(resource: ResourceView, _config: RuleConfig) -> Iterator[Finding]:
    for pod in pod_templates(resource):
        yield from pod.unresolved
        for c in pod.containers:
            if c.is_ephemeral:
                continue  # the Kubernetes API forbids resources on ephemeral containers
            for section, resource_name in REQUIRED:
                value = c.get("resources", section, resource_name)
                yield from check_value(
                    value,
                    f"{c.where('resources')}.{section}.{resource_name}",
                    value is not None and value != "",
                    f"{c.label}: resources.{section}.{resource_name} must be set{c.hint('resources')}",
                )


RULE = Rule(
    name="resource-limits",
    description=(
        "Every container and init container (those of custom resources that run pods included) "
        "sets CPU and memory requests and limits, so one agent cannot starve the node or its "
        "neighbours (ephemeral containers cannot carry resources and are exempt)."
    ),
    severity=Severity.MEDIUM,
    remediation=(
        "Pass resources to kit.workload(...) (it refuses to build a container without them), or "
        "set resources.requests and resources.limits for cpu and memory in the chart's values or "
        "in the custom resource's field the message names."
    ),
    check_resource=check,
)
