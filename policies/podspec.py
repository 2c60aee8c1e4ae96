"""Find every pod inside every kind that carries one, and list its containers.

The pod rules (non-root, resource-limits, read-only-root-filesystem, no-host-access, the env
check of no-plaintext-secrets, digest-pinned-images) ask one question per pod and per container and
should not care where the pod lives:

* Kubernetes workloads keep one pod spec at a fixed depth (Pod, Deployment, StatefulSet,
  DaemonSet, ReplicaSet, Job, CronJob).
* ClickHouseInstallation and ClickHouseKeeperInstallation keep a list of full pod specs under
  ``spec.templates.podTemplates[*].spec``.
* Operator-managed resources (Strimzi Kafka and KafkaNodePool, CloudNativePG Cluster) carry no
  pod spec; ``operator_pods`` says where their pods' settings are, and each such pod is presented
  as a pod spec assembled from those places, with every place remembered for messages.

A kind missing here is invisible to the pod rules, so a custom resource that runs pods belongs
in this module (or in ``operator_pods``) before the platform uses it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .model import Finding, ResourceView, Unresolved, dig, is_unknown
from .operator_pods import OPERATOR_PODS, REQUIRED_IMAGES, OperatorPod

POD_SPEC_PATHS: dict[str, tuple[str, ...]] = {
    "kubernetes:core/v1:Pod": ("spec",),
    "kubernetes:apps/v1:Deployment": ("spec", "template", "spec"),
    "kubernetes:apps/v1:StatefulSet": ("spec", "template", "spec"),
    "kubernetes:apps/v1:DaemonSet": ("spec", "template", "spec"),
    "kubernetes:apps/v1:ReplicaSet": ("spec", "template", "spec"),
    "kubernetes:batch/v1:Job": ("spec", "template", "spec"),
    "kubernetes:batch/v1:CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
}
POD_TEMPLATE_LISTS: dict[str, tuple[str, ...]] = {
    "clickhouse.altinity.com/ClickHouseInstallation": ("spec", "templates", "podTemplates"),
    "clickhouse-keeper.altinity.com/ClickHouseKeeperInstallation": ("spec", "templates", "podTemplates"),
}
"""Custom resources that carry a list of named, full pod specs (each item's ``spec``)."""
CONTAINER_FIELDS = ("containers", "initContainers", "ephemeralContainers")


def group_kind(type_token: str) -> str:
    """``kubernetes:kafka.strimzi.io/v1:Kafka`` -> ``kafka.strimzi.io/Kafka``."""
    parts = type_token.split(":")
    if len(parts) != 3 or parts[0] != "kubernetes":
        return ""
    return f"{parts[1].rsplit('/', 1)[0]}/{parts[2]}"


def is_custom_resource(type_token: str) -> bool:
    """A Kubernetes object of a CRD's API group (dotted, not ``*.k8s.io``, not a Helm chart)."""
    group = group_kind(type_token).rsplit("/", 1)[0]
    return "." in group and not group.endswith(".k8s.io") and group != "helm.sh"


def carries_pod_template(type_token: str) -> bool:
    kind = group_kind(type_token)
    return type_token in POD_SPEC_PATHS or kind in POD_TEMPLATE_LISTS or kind in OPERATOR_PODS


def _dotted(path: str) -> tuple[str | tuple[str, str], ...]:
    """``spec.containers[name=prometheus].securityContext`` -> steps for :func:`dig`."""
    steps: list[str | tuple[str, str]] = []
    for part in path.split("."):
        name, _, selector = part.partition("[")
        steps.append(name)
        if selector:
            key, _, value = selector.rstrip("]").partition("=")
            steps.append((key, value))
    return tuple(steps)


@dataclass(frozen=True)
class ContainerRef:
    """One container of a pod, with the wire paths used in messages.

    ``places`` is set for operator-managed containers: container key (``securityContext``,
    ``resources``, ``env``, ``image``) -> the field of the custom resource that holds it.
    """

    field: str
    index: int
    spec: dict[str, Any]
    base: str
    pod_label: str = ""
    places: Mapping[str, str] = field(default_factory=dict)

    @property
    def path(self) -> str:
        return f"{self.base}.{self.field}[{self.index}]"

    @property
    def label(self) -> str:
        name = self.spec.get("name")
        shown = name if isinstance(name, str) else f"#{self.index}"
        own = f"{self.field[:-1]} '{shown}'"
        return f"{self.pod_label} {own}" if self.pod_label else own

    @property
    def is_ephemeral(self) -> bool:
        return self.field == "ephemeralContainers"

    def where(self, key: str) -> str:
        """The wire path of one of the container's keys."""
        return self.places.get(key, f"{self.path}.{key}")

    def hint(self, key: str) -> str:
        """`` (set <path>)`` for an operator-managed container, where the key is not obvious."""
        return f" (set {self.places[key]})" if key in self.places else ""

    def get(self, *path: str | int) -> Any:
        return dig(self.spec, *path)


@dataclass(frozen=True)
class PodTemplate:
    spec: dict[str, Any]
    base: str
    containers: tuple[ContainerRef, ...]
    unresolved: tuple[Finding, ...] = field(default=())
    places: Mapping[str, str] = field(default_factory=dict)

    def where(self, key: str) -> str:
        return self.places.get(key, f"{self.base}.{key}")

    def get(self, *path: str | int) -> Any:
        return dig(self.spec, *path)


def pod_templates(resource: ResourceView) -> tuple[PodTemplate, ...]:
    """Every pod ``resource`` carries (none when its kind carries none), computed once per resource."""
    if "pod_templates" not in resource.derived:
        resource.derived["pod_templates"] = _find_pod_templates(resource)
    return resource.derived["pod_templates"]


def required_images(resource: ResourceView) -> tuple[tuple[str, str, Any], ...]:
    """(label, wire path, value) of each image the resource must name for its operator.

    The images of operator-managed containers and of pod-template containers, plus the
    operator's own extras (Kafka's broker image): a missing one would be the operator's default.
    """
    found: list[tuple[str, str, Any]] = []
    for pod in pod_templates(resource):
        for c in pod.containers:
            if c.places and "image" not in c.places:
                continue  # the image comes from another resource (a node pool's from its Kafka)
            found.append((c.label, c.where("image"), c.get("image")))
    for path in REQUIRED_IMAGES.get(group_kind(resource.type), ()):
        found.append((path, path, dig(resource.props, *_dotted(path))))
    return tuple(found)


def _find_pod_templates(resource: ResourceView) -> tuple[PodTemplate, ...]:
    path = POD_SPEC_PATHS.get(resource.type)
    if path is not None:
        return (_pod_from_spec(dig(resource.props, *path), ".".join(path)),)
    kind = group_kind(resource.type)
    if kind in POD_TEMPLATE_LISTS:
        return _pod_template_list(resource, POD_TEMPLATE_LISTS[kind])
    if kind in OPERATOR_PODS:
        return tuple(
            _operator_pod(resource, pod)
            for pod in OPERATOR_PODS[kind]
            if pod.present is None or dig(resource.props, *_dotted(pod.present)) is not None
        )
    return ()


def _pod_template_list(resource: ResourceView, path: tuple[str, ...]) -> tuple[PodTemplate, ...]:
    base = ".".join(path)
    items = dig(resource.props, *path)
    if is_unknown(items):
        return (PodTemplate({}, base, (), (Unresolved(base, items.sentinel),)),)
    pods: list[PodTemplate] = []
    for index, item in enumerate(items if isinstance(items, list) else []):
        where = f"{base}[{index}]"
        if is_unknown(item):
            pods.append(PodTemplate({}, where, (), (Unresolved(where, item.sentinel),)))
            continue
        name = dig(item, "name")
        label = f"podTemplate '{name if isinstance(name, str) else f'#{index}'}':"
        pods.append(_pod_from_spec(dig(item, "spec"), f"{where}.spec", label))
    return tuple(pods)


def _pod_from_spec(spec: Any, base: str, pod_label: str = "") -> PodTemplate:
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
                containers.append(ContainerRef(field_name, index, item, base, pod_label))
    return PodTemplate(spec, base, tuple(containers), tuple(unresolved))


def _operator_pod(resource: ResourceView, layout: OperatorPod) -> PodTemplate:
    """A pod spec assembled from the places the operator reads, each place kept for messages."""
    props = resource.props

    def at(path: str | None) -> Any:
        return dig(props, *_dotted(path)) if path else None

    security_context = at(layout.pod_security_context)
    fallback = at(layout.seccomp_fallback)
    if fallback is not None and (security_context is None or isinstance(security_context, dict)):
        security_context = {"seccompProfile": fallback, **(security_context or {})}
    spec: dict[str, Any] = {"securityContext": security_context, "volumes": at(layout.volumes)}
    places = {"securityContext": layout.pod_security_context}
    if layout.seccomp_fallback:
        places["seccompProfile"] = layout.seccomp_fallback
    if layout.volumes:
        places["volumes"] = layout.volumes
    if layout.host_network:
        spec["hostNetwork"] = at(layout.host_network)
        places["hostNetwork"] = layout.host_network
    containers = []
    for index, container in enumerate(layout.containers):
        if container.present is not None and at(container.present) is None:
            continue
        keys = {
            "securityContext": container.security_context,
            "resources": container.resources,
            "env": container.env,
            "image": container.image,
        }
        own = {"name": container.name, **{key: at(path) for key, path in keys.items() if path}}
        containers.append(
            ContainerRef(
                "containers",
                index,
                own,
                layout.pod_security_context,
                f"{layout.label} pod:",
                {key: path for key, path in keys.items() if path},
            )
        )
    generated = {c.name for c in layout.containers}
    unresolved: list[Finding] = []
    for field_name, path in layout.extra_containers:
        items = at(path)
        if is_unknown(items):
            unresolved.append(Unresolved(path, items.sentinel))
            continue
        for index, item in enumerate(items if isinstance(items, list) else []):
            if is_unknown(item):
                unresolved.append(Unresolved(f"{path}[{index}]", item.sentinel))
            elif isinstance(item, dict) and item.get("name") not in generated:
                containers.append(ContainerRef(field_name, index, item, path.rpartition(".")[0], f"{layout.label} pod:"))
    return PodTemplate(spec, "spec", tuple(containers), tuple(unresolved), places)
