"""Find the pod template inside every kind that carries one, and list its containers.

Pod, Deployment, StatefulSet, DaemonSet, ReplicaSet, Job and CronJob keep the pod spec at
different depths; the pod rules should not care which one they are looking at.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .model import Finding, ResourceView, Unresolved, dig, is_unknown

POD_SPEC_PATHS: dict[str, tuple[str, ...]] = {
    "kubernetes:core/v1:Pod": ("spec",),
    "kubernetes:apps/v1:Deployment": ("spec", "template", "spec"),
    "kubernetes:apps/v1:StatefulSet": ("spec", "template", "spec"),
    "kubernetes:apps/v1:DaemonSet": ("spec", "template", "spec"),
    "kubernetes:apps/v1:ReplicaSet": ("spec", "template", "spec"),
    "kubernetes:batch/v1:Job": ("spec", "template", "spec"),
    "kubernetes:batch/v1:CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
}
CONTAINER_FIELDS = ("containers", "initContainers", "ephemeralContainers")


def carries_pod_template(type_token: str) -> bool:
    return type_token in POD_SPEC_PATHS


@dataclass(frozen=True)
class ContainerRef:
    """One container of a pod template, with the wire path used in messages."""

    field: str
    index: int
    spec: dict[str, Any]
    base: str

    @property
    def path(self) -> str:
        return f"{self.base}.{self.field}[{self.index}]"

    @property
    def label(self) -> str:
        name = self.spec.get("name")
        shown = name if isinstance(name, str) else f"#{self.index}"
        return f"{self.field[:-1]} '{shown}'"

    @property
    def is_ephemeral(self) -> bool:
        return self.field == "ephemeralContainers"

    def get(self, *path: str | int) -> Any:
        return dig(self.spec, *path)


@dataclass(frozen=True)
class PodTemplate:
    spec: dict[str, Any]
    base: str
    containers: tuple[ContainerRef, ...]
    unresolved: tuple[Finding, ...] = field(default=())

    def get(self, *path: str | int) -> Any:
        return dig(self.spec, *path)


def pod_template(resource: ResourceView) -> PodTemplate | None:
    """The pod template of ``resource``, or None when its kind has none (computed once per resource)."""
    if "pod_template" not in resource.derived:
        resource.derived["pod_template"] = _find_pod_template(resource)
    return resource.derived["pod_template"]


def _find_pod_template(resource: ResourceView) -> PodTemplate | None:
    path = POD_SPEC_PATHS.get(resource.type)
    if path is None:
        return None
    base = ".".join(path)
    spec = dig(resource.props, *path)
    if is_unknown(spec):
        return PodTemplate({}, base, (), (Unresolved(base, spec.sentinel),))
    if not isinstance(spec, dict):
        return PodTemplate({}, base, ())
    containers: list[ContainerRef] = []
    unresolved: list[Finding] = []
    for field_name in CONTAINER_FIELDS:
        items = spec.get(field_name)
        if is_unknown(items):
            unresolved.append(Unresolved(f"{base}.{field_name}", items.sentinel))
            continue
        for index, item in enumerate(items if isinstance(items, list) else []):
            if is_unknown(item):
                unresolved.append(Unresolved(f"{base}.{field_name}[{index}]", item.sentinel))
            elif isinstance(item, dict):
                containers.append(ContainerRef(field_name, index, item, base))
    return PodTemplate(spec, base, tuple(containers), tuple(unresolved))
