"""no-fault-injection: Chaos Mesh runs only where the stack's policy config allows fault injection.

A Chaos Mesh object kills pods, partitions networks and delays traffic; its daemon is privileged on
every node. Staging exists to take those faults before a release reaches prod, so staging's policy
config sets ``allowFaultInjection`` and every other stack refuses, whatever its settings say: a chaos
object that reached prod by mistake (a copied stack file, a hand-written manifest) is stopped here.
"""

from __future__ import annotations

from collections.abc import Iterator

from ..images import ImageRef
from ..model import Finding, ResourceView, Unresolved, Violation, dig, is_unknown
from ..podspec import pod_templates
from ..rule import Rule, RuleConfig, Severity

GROUP = "chaos-mesh.org"
CRD = "kubernetes:apiextensions.k8s.io/v1:CustomResourceDefinition"
CHART_TYPES = frozenset({"kubernetes:helm.sh/v4:Chart", "kubernetes:helm.sh/v3:Release"})
CHART_NAME = "chaos-mesh"
DAEMON_REPOSITORY = "chaos-mesh/chaos-daemon"
"""The daemon's image repository, under any registry (upstream ghcr.io or the platform's mirror)."""


def _is_chaos_chart(resource: ResourceView) -> bool:
    chart = resource.props.get("chart")
    repo = dig(resource.props, "repositoryOpts", "repo")
    named = isinstance(chart, str) and chart.rstrip("/").rsplit("/", 1)[-1] == CHART_NAME
    return named or (isinstance(repo, str) and "chaos-mesh.org" in repo)


def _findings(resource: ResourceView) -> Iterator[Finding]:
    what = f"{resource.kind} '{resource.object_name}'"
    if resource.type.startswith(f"kubernetes:{GROUP}/"):
        yield Violation(f"{what} is a Chaos Mesh object ({GROUP}): it injects faults into the platform")
        return
    if resource.type == CRD:
        group = dig(resource.props, "spec", "group")
        if is_unknown(group):
            yield Unresolved("spec.group", group.sentinel)
        elif group == GROUP:
            yield Violation(f"CustomResourceDefinition '{resource.object_name}' installs Chaos Mesh's API ({GROUP})")
        return
    if resource.type in CHART_TYPES:
        if _is_chaos_chart(resource):
            yield Violation(f"chart '{resource.props.get('chart')}' installs Chaos Mesh (its controller and privileged daemon)")
        return
    for pod in pod_templates(resource):
        for container in pod.containers:
            image = container.get("image")
            # An image unknown during preview is judged on update, once known; digest-pinned-images
            # already reports it as undecidable, and one advisory per unknown image is enough.
            if isinstance(image, str) and ImageRef.parse(image).name.endswith(DAEMON_REPOSITORY):
                yield Violation(f"{what}: {container.label} runs Chaos Mesh's daemon ({image}), which enters other pods' "
                                "namespaces to inject faults")


def check(resource: ResourceView, config: RuleConfig) -> Iterator[Finding]:
    if config.get("allowFaultInjection") is True:
        return
    yield from _findings(resource)


RULE = Rule(
    name="no-fault-injection",
    description=(
        "No Chaos Mesh custom resource (API group chaos-mesh.org: PodChaos, NetworkChaos, Workflow, Schedule, ...), "
        "no Chaos Mesh CRD, chart or chaos-daemon pod, unless the stack's policy config allows fault injection "
        "(allowFaultInjection: staging only)."
    ),
    severity=Severity.CRITICAL,
    remediation=(
        "Fault injection belongs to the staging stack: leave ops.chaos unset here (settings refuse it outside staging) "
        "and delete any hand-written chaos object. Only a stack whose releases must survive faults before prod sets "
        "\"no-fault-injection\": {\"allowFaultInjection\": true} in its policy config (docs/chaos.md)."
    ),
    check_resource=check,
    config_schema={
        "allowFaultInjection": {
            "type": "boolean",
            "default": False,
            "description": "true only in the stack where resilience experiments run (staging); false refuses every "
            "Chaos Mesh object.",
        },
    },
)
