"""read-only-root-filesystem: containers cannot write to their image's filesystem."""

from __future__ import annotations

from collections.abc import Iterator

from ..model import Finding, ResourceView, check_value
from ..podspec import pod_template
from ..rule import Rule, RuleConfig, Severity


def check(resource: ResourceView, _config: RuleConfig) -> Iterator[Finding]:
    pod = pod_template(resource)
    if pod is None:
        return
    yield from pod.unresolved
    for c in pod.containers:
        read_only = c.get("securityContext", "readOnlyRootFilesystem")
        yield from check_value(
            read_only,
            f"{c.path}.securityContext.readOnlyRootFilesystem",
            read_only is True,
            f"{c.label}: securityContext.readOnlyRootFilesystem must be true",
        )


RULE = Rule(
    name="read-only-root-filesystem",
    description=(
        "Every container (init and ephemeral included) mounts its root filesystem read-only, "
        "so a compromised process cannot change the binaries it runs."
    ),
    severity=Severity.MEDIUM,
    remediation=(
        "kit.workload(...) sets readOnlyRootFilesystem: true; give the process an emptyDir "
        "volume for each path it must write to. For a chart, set "
        "securityContext.readOnlyRootFilesystem: true and give it emptyDir volumes for /tmp."
    ),
    check_resource=check,
)
