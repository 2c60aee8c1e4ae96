"""namespace-pod-security: every namespace enforces the restricted Pod Security Standard.

The admission controller then refuses privileged pods even if something bypasses this pack
(a chart's hook, a kubectl apply).
"""

from __future__ import annotations

from collections.abc import Iterator

from ..model import Finding, ResourceView, check_value, dig
from ..rule import Rule, RuleConfig, Severity

ENFORCE = "pod-security.kubernetes.io/enforce"
LEVELS = ("privileged", "baseline", "restricted")


def check(resource: ResourceView, _config: RuleConfig) -> Iterator[Finding]:
    if resource.type != "kubernetes:core/v1:Namespace":
        return
    level = dig(resource.props, "metadata", "labels", ENFORCE)
    path = f"metadata.labels.{ENFORCE}"
    name = resource.object_name
    if level is None:
        yield from check_value(level, path, False, f"namespace '{name}' has no {ENFORCE} label")
    elif level not in LEVELS:
        yield from check_value(level, path, False, f"namespace '{name}' has an invalid {ENFORCE} level '{level}'")
    else:
        yield from check_value(
            level,
            path,
            level == "restricted",
            f"namespace '{name}' enforces '{level}', weaker than restricted",
        )


RULE = Rule(
    name="namespace-pod-security",
    description=(
        "Every namespace carries the Pod Security Admission label pod-security.kubernetes.io/enforce: restricted."
    ),
    severity=Severity.HIGH,
    remediation=(
        "Create namespaces with kit.namespace(...), which labels them enforce/audit/warn: restricted. "
        "A namespace that must run privileged node agents (CNI, chaos daemon) keeps a weaker level "
        "only with a reviewed waiver: kit.namespace writes waivers.somaagenthub.io/namespace-pod-security "
        "with the reason you give (prod: also listed in allowedWaivers)."
    ),
    check_resource=check,
)
