"""chart-hardening: a Helm chart's values harden every pod the chart runs.

The pod rules cannot see inside a chart (charts are not expanded offline); the values the
program passes are all the gate has. ``chart_hardening_map`` says where each chart takes its
pods' securityContext and resources, and this rule checks those values paths as it would a pod
spec. A chart missing from the map is reported, so a new chart cannot slip in unchecked; a check
a chart cannot satisfy is a documented exception in the map, reported as WAIVED.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from ..chart_hardening_map import CHART_HARDENING, ChartContainer, ChartPod
from ..hardening import SECCOMP_TYPES, drops_all_capabilities
from ..model import (
    Finding,
    ResourceView,
    Unresolved,
    Violation,
    check_value,
    dig,
    is_unknown,
)
from ..rule import Rule, RuleConfig, Severity

CHART_TYPES = frozenset({"kubernetes:helm.sh/v4:Chart", "kubernetes:helm.sh/v3:Release"})
REQUIRED_RESOURCES = (("requests", "cpu"), ("requests", "memory"), ("limits", "cpu"), ("limits", "memory"))
OFF_VALUES = (None, False, 0, "", "false")


def chart_name(chart: Any) -> Any:
    """The chart's name as the map keys it: ``oci://host/path/name`` and ``repo/name`` -> ``name``."""
    return chart.rstrip("/").rsplit("/", 1)[-1] if isinstance(chart, str) else chart


def _at(values: Any, path: str) -> Any:
    return dig(values, *path.split("."))


def check(resource: ResourceView, _config: RuleConfig) -> Iterator[Finding]:
    if resource.type not in CHART_TYPES:
        return
    chart = chart_name(resource.props.get("chart"))
    values = resource.props.get("values")
    for value, path in ((chart, "chart"), (values, "values")):
        if is_unknown(value):
            yield Unresolved(path, value.sentinel)
            return
    pods = CHART_HARDENING.get(str(chart))
    if pods is None:
        yield Violation(
            f"no hardening map for chart '{chart}': add the values paths of its pods' securityContext "
            "and resources to policies/chart_hardening_map.py"
        )
        return
    for pod in pods:
        enabled = _runs(values, pod)
        if isinstance(enabled, Unresolved):
            yield enabled
        elif enabled and pod.unmapped:
            yield Violation(
                f"chart '{chart}' runs {pod.name} (values.{pod.when} is on), which has no hardening map: "
                "switch it off or map its securityContext and resources in policies/chart_hardening_map.py"
            )
        elif enabled:
            for container in pod.containers:
                yield from _check_container(str(chart), values, pod, container)


def _runs(values: Any, pod: ChartPod) -> bool | Unresolved:
    if pod.when is None:
        return True
    value = _at(values, pod.when)
    if is_unknown(value):
        return Unresolved(f"values.{pod.when}", value.sentinel)
    if value is None:
        return pod.when_default
    if pod.when_in:
        return value in pod.when_in
    return value not in OFF_VALUES


@dataclass(frozen=True)
class Check:
    """One requirement on one container: what the map may waive, the value, and where it is read."""

    name: str
    value: Any
    ok: Callable[[Any], bool]
    places: tuple[str, ...]
    key: str
    requirement: str


def _checks(values: Any, pod: ChartPod, c: ChartContainer) -> Iterator[Check]:
    pod_sc = (f"values.{pod.pod_security_context}",) if pod.pod_security_context else ()
    own_sc = (f"values.{c.security_context}",) if c.security_context else ()

    def own(key: str) -> Any:
        return _at(values, f"{c.security_context}.{key}") if c.security_context else None

    def effective(key: str) -> Any:
        value = own(key)
        if value is None and pod.pod_security_context:
            return _at(values, f"{pod.pod_security_context}.{key}")
        return value

    either = (*own_sc, *pod_sc)
    yield Check("runAsNonRoot", effective("runAsNonRoot"), lambda v: v is True, either, "runAsNonRoot", "must be true")
    yield Check("runAsUser", effective("runAsUser"), lambda v: v != 0, either, "runAsUser", "must not be 0")
    yield Check(
        "seccompProfile",
        effective("seccompProfile.type"),
        lambda v: v in SECCOMP_TYPES,
        either,
        "seccompProfile.type",
        "must be RuntimeDefault or Localhost",
    )
    yield Check("privileged", own("privileged"), lambda v: v is not True, own_sc, "privileged", "must not be true")
    yield Check(
        "allowPrivilegeEscalation",
        own("allowPrivilegeEscalation"),
        lambda v: v is False,
        own_sc,
        "allowPrivilegeEscalation",
        "must be false",
    )
    yield Check("capabilities", own("capabilities.drop"), drops_all_capabilities, own_sc, "capabilities.drop", "must contain ALL")
    yield Check(
        "readOnlyRootFilesystem",
        own("readOnlyRootFilesystem"),
        lambda v: v is True,
        own_sc,
        "readOnlyRootFilesystem",
        "must be true",
    )
    places = (f"values.{c.resources}",) if c.resources else ()
    for section, name in REQUIRED_RESOURCES:
        value = _at(values, f"{c.resources}.{section}.{name}") if c.resources else None
        yield Check("resources", value, lambda v: v is not None and v != "", places, f"{section}.{name}", "must be set")


def _check_container(chart: str, values: Any, pod: ChartPod, c: ChartContainer) -> Iterator[Finding]:
    who = f"chart '{chart}' pod '{pod.name}' container '{c.name}'"
    waived: dict[str, list[str]] = {}
    for check in _checks(values, pod, c):
        if check.name not in c.waived:
            yield from _judge(who, check)
        elif is_unknown(check.value) or not check.ok(check.value):
            waived.setdefault(c.waived[check.name], []).append(f"{check.key} {check.requirement}")
    for reason, requirements in waived.items():
        unmet = ", ".join(dict.fromkeys(requirements))
        yield Violation(f"{who}: not set through the chart's values: {unmet}", documented_waiver=reason)


def _judge(who: str, check: Check) -> Iterator[Finding]:
    """A place the chart lacks is a violation of its own (unless the map waives it); else the value decides."""
    if not check.places:
        if not check.ok(check.value):
            yield Violation(
                f"{who}: the chart has no values path for {check.key} ({check.requirement}), "
                "and the hardening map documents no reason"
            )
        return
    message = f"{who}: {' or '.join(check.places)}.{check.key} {check.requirement}"
    ok = not is_unknown(check.value) and check.ok(check.value)
    yield from check_value(check.value, f"{check.places[0]}.{check.key}", ok, message)



RULE = Rule(
    name="chart-hardening",
    description=(
        "Every Helm chart is in the pack's chart hardening map, and for every pod it runs, the "
        "values it is given set runAsNonRoot: true (no UID 0, RuntimeDefault/Localhost seccomp), "
        "allowPrivilegeEscalation: false, capabilities.drop [ALL], privileged not true, "
        "readOnlyRootFilesystem: true and cpu/memory requests and limits."
    ),
    severity=Severity.HIGH,
    remediation=(
        "Pass the chart kit.security's pod_security_context(...), container_security_context(...) "
        "and resource_requirements(...) at the values paths the message names. A new chart, or a "
        "newly enabled optional pod, first gets its values paths in policies/chart_hardening_map.py "
        "(read them from the chart's values.yaml); a check the chart cannot satisfy through values "
        "is a documented entry there with its reason, reported as WAIVED."
    ),
    check_resource=check,
)
