"""The data the rules see: a plain, read-only snapshot of one resource, and what a rule reports.

Under the Pulumi engine a resource's properties arrive as pulumi-policy proxies that raise on
unknown values and do not behave like lists (no ``+``). Rules never see those proxies: both
drivers first turn the properties into plain dicts and lists, replacing every unknown value
with an ``Unknown`` marker. A rule that needs a value it cannot see reports ``Unresolved``
instead of guessing, so an image hidden behind an unknown is never silently passed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

UNKNOWN_SENTINELS: frozenset[str] = frozenset(
    {
        "1c4a061d-8072-4f0a-a4cb-0ff528b18fe7",  # boolean
        "3eeb2bf0-c639-47a8-9e75-3b44932eb421",  # number
        "04da6b54-80e4-46f7-96ec-b56ff0331ba9",  # string
        "6a19a0b0-7e62-4c92-b797-7f8e31da9cc2",  # array
        "030794c1-ac77-496b-92df-f27374a8bd58",  # asset
        "e48ece36-62e2-4504-bad9-02848725956a",  # archive
        "dd056dcd-154b-4c76-9bd3-c8f88648b5ff",  # object
    }
)
"""The engine's markers for values not known during preview (same values as pulumi_policy.proxy)."""

SECRET_SIG_KEY = "4dabf18193072939515e22adb298388d"
SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"

CLUSTER_SCOPED_KINDS: frozenset[str] = frozenset(
    {
        "Namespace",
        "ClusterRole",
        "ClusterRoleBinding",
        "CustomResourceDefinition",
        "StorageClass",
        "PriorityClass",
        "PersistentVolume",
        "IngressClass",
        "RuntimeClass",
        "ValidatingWebhookConfiguration",
        "MutatingWebhookConfiguration",
        "ValidatingAdmissionPolicy",
        "ValidatingAdmissionPolicyBinding",
        "APIService",
    }
)


@dataclass(frozen=True)
class Unknown:
    """A value the engine could not know during preview; ``sentinel`` is the engine's marker."""

    sentinel: str


def is_unknown(value: Any) -> bool:
    return isinstance(value, Unknown)


def contains_unknown(value: Any) -> bool:
    if is_unknown(value):
        return True
    if isinstance(value, dict):
        return any(contains_unknown(v) for v in value.values())
    if isinstance(value, list):
        return any(contains_unknown(v) for v in value)
    return False


def plain(value: Any) -> Any:
    """Copy ``value`` into plain dicts/lists, mark unknowns and unwrap secret envelopes."""
    if isinstance(value, str):
        return Unknown(value) if value in UNKNOWN_SENTINELS else value
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, (dict, Mapping)):
        if value.get(SECRET_SIG_KEY) == SECRET_SIG:
            return plain(value.get("value"))
        return {str(key): plain(value[key]) for key in value}
    if isinstance(value, (list, Sequence)) and not isinstance(value, (bytes, bytearray)):
        return [plain(item) for item in value]
    return value


def dig(value: Any, *path: str | int | tuple[str, str]) -> Any:
    """Follow ``path`` through dicts and lists: None when absent, an Unknown when one is in the way.

    A ``(key, value)`` step picks the first list item whose ``key`` is ``value`` (a container by name).
    """
    current = value
    for step in path:
        if is_unknown(current) or current is None:
            return current
        if isinstance(step, tuple):
            if not isinstance(current, list):
                return None
            current = next((i for i in current if isinstance(i, dict) and i.get(step[0]) == step[1]), None)
        elif isinstance(step, int):
            if not isinstance(current, list) or step >= len(current):
                return None
            current = current[step]
        else:
            if not isinstance(current, dict):
                return None
            current = current.get(step)
    return current


def type_kind(type_token: str) -> str:
    """``kubernetes:apps/v1:Deployment`` -> ``Deployment``."""
    return type_token.rsplit(":", 1)[-1]


@dataclass(frozen=True)
class ResourceView:
    """One resource as the rules see it; ``props`` are plain wire-form (camelCase) inputs."""

    type: str
    name: str
    urn: str
    props: Mapping[str, Any] = field(default_factory=dict)
    derived: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)
    """Facts computed once from ``props`` and shared by the rules (the pod template, for one)."""

    @classmethod
    def of(cls, type_: str, name: str, urn: str, props: Any) -> ResourceView:
        snapshot = plain(props) if props is not None else {}
        return cls(type_, name, urn, snapshot if isinstance(snapshot, dict) else {})

    @property
    def kind(self) -> str:
        kind = self.props.get("kind")
        return kind if isinstance(kind, str) else type_kind(self.type)

    @property
    def metadata(self) -> dict[str, Any]:
        metadata = self.props.get("metadata")
        return metadata if isinstance(metadata, dict) else {}

    @property
    def object_name(self) -> str:
        """metadata.name, or the Pulumi resource name when the program lets Pulumi auto-name it."""
        name = self.metadata.get("name")
        if isinstance(name, str) and name:
            return name
        chart_name = self.props.get("name")
        return chart_name if isinstance(chart_name, str) and chart_name else self.name

    @property
    def namespace(self) -> str | None:
        """The object's namespace (``default`` when unset), None for cluster-scoped kinds."""
        if self.kind in CLUSTER_SCOPED_KINDS:
            return None
        namespace = self.metadata.get("namespace", self.props.get("namespace"))
        return namespace if isinstance(namespace, str) and namespace else "default"

    @property
    def resource_id(self) -> str:
        """``<kind>/<namespace>/<name>``, or ``<kind>/<name>`` for cluster-scoped objects."""
        if self.namespace is None:
            return f"{self.kind}/{self.object_name}"
        return f"{self.kind}/{self.namespace}/{self.object_name}"

    @property
    def annotations(self) -> dict[str, Any]:
        annotations = self.metadata.get("annotations")
        return annotations if isinstance(annotations, dict) else {}

    @property
    def labels(self) -> dict[str, Any]:
        labels = self.metadata.get("labels")
        return labels if isinstance(labels, dict) else {}


@dataclass(frozen=True)
class Violation:
    """A broken rule. Stack rules set ``subject`` to the resource the violation is about."""

    message: str
    subject: ResourceView | None = None


@dataclass(frozen=True)
class Unresolved:
    """A value the rule needed was unknown (preview), so the rule could not decide."""

    path: str
    sentinel: str
    subject: ResourceView | None = None


Finding = Violation | Unresolved


def check_value(value: Any, path: str, ok: bool, message: str) -> list[Finding]:
    """One check on one value: Unresolved when unknown, a Violation when ``ok`` is false."""
    if is_unknown(value):
        return [Unresolved(path, value.sentinel)]
    return [] if ok else [Violation(message)]
