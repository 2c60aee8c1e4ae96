"""read-only-root-filesystem: containers cannot write to their image's filesystem."""

from __future__ import annotations

from collections.abc import Iterator

from ..model import Finding, ResourceView, check_value
from ..podspec import pod_templates
from ..rule import Rule, RuleConfig, Severity


def check(resource: ResourceView, _config: RuleConfig) -> Iterator[Finding]:
    for pod in pod_templates(resource):
        yield from pod.unresolved
        for c in pod.containers:
            read_only = c.get("securityContext", "readOnlyRootFilesystem")
            yield from check_value(
                read_only,
                f"{c.where('securityContext')}.readOnlyRootFilesystem",
                read_only is True,
                f"{c.label}: securityContext.readOnlyRootFilesystem must be true{c.hint('securityContext')}",
            )


RULE = Rule(
    name="read-only-root-filesystem",
    description=(
        "Every container (init and ephemeral included, and those of custom resources that run "
        "pods) mounts its root filesystem read-only, so a compromised process cannot change the "
        "binaries it runs."
    ),
    severity=Severity.MEDIUM,
    remediation=(
        "kit.workload(...) sets readOnlyRootFilesystem: true; give the process an emptyDir "
        "volume for each path it must write to. For a chart, set "
        "securityContext.readOnlyRootFilesystem: true and give it emptyDir volumes for /tmp; for "
        "an operator's custom resource, set it in the container securityContext the message names."
    ),
    check_resource=check,
)
