"""no-host-access: pods share nothing with the node: no host namespaces, paths or ports."""

from __future__ import annotations

from collections.abc import Iterator

from ..model import Finding, ResourceView, Unresolved, check_value, dig, is_unknown
from ..podspec import PodTemplate, pod_templates
from ..rule import Rule, RuleConfig, Severity

HOST_NAMESPACES = ("hostNetwork", "hostPID", "hostIPC")


def check(resource: ResourceView, _config: RuleConfig) -> Iterator[Finding]:
    for pod in pod_templates(resource):
        yield from pod.unresolved
        yield from _check_pod(pod)


def _check_pod(pod: PodTemplate) -> Iterator[Finding]:
    for flag in HOST_NAMESPACES:
        value = pod.get(flag)
        yield from check_value(value, pod.where(flag), value is not True, f"{flag} must not be true")
    volumes = pod.get("volumes")
    if is_unknown(volumes):
        yield Unresolved(pod.where("volumes"), volumes.sentinel)
    for index, volume in enumerate(volumes if isinstance(volumes, list) else []):
        host_path = dig(volume, "hostPath")
        name = dig(volume, "name")
        yield from check_value(
            host_path,
            f"{pod.where('volumes')}[{index}].hostPath",
            host_path is None,
            f"volume '{name}' must not use hostPath",
        )
    for c in pod.containers:
        ports = c.get("ports")
        if is_unknown(ports):
            yield Unresolved(f"{c.where('ports')}", ports.sentinel)
        for index, port in enumerate(ports if isinstance(ports, list) else []):
            host_port = dig(port, "hostPort")
            yield from check_value(
                host_port,
                f"{c.where('ports')}[{index}].hostPort",
                not host_port,
                f"{c.label}: port {dig(port, 'containerPort')} must not set hostPort",
            )


RULE = Rule(
    name="no-host-access",
    description=(
        "Pods do not use the node's network, PID or IPC namespace, mount no hostPath volume and bind no hostPort."
    ),
    severity=Severity.HIGH,
    remediation=(
        "Remove hostNetwork/hostPID/hostIPC, hostPath volumes and hostPort from the pod; expose "
        "the workload with kit.service(...) and store data in a PersistentVolumeClaim or emptyDir. "
        "Node agents that must reach the host (CNI, chaos daemon) come from their upstream chart "
        "with a reviewed waiver annotation waivers.somaagenthub.io/no-host-access: '<reason>' "
        "(prod: also listed in allowedWaivers)."
    ),
    check_resource=check,
)
