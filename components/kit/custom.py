"""Custom resources (operator CRs, mesh and policy objects) named and labelled like the rest."""
from __future__ import annotations

from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.kit.context import KitContext
from components.kit.labels import recommended


def custom_resource(
    api_version: str,
    kind: str,
    name: str,
    namespace: str | None,
    spec: Any,
    opts: pulumi.ResourceOptions,
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
    resource_name: str | None = None,
    ctx: KitContext | None = None,
) -> k8s.apiextensions.CustomResource:
    """Register ``kind`` with a camelCase ``spec`` (passed to the API server untranslated).

    The Pulumi name is ``<namespace>-<kind>-<name>`` unless given, so two objects of the same
    kind and name in different namespaces never collide in URNs. With ``ctx``, the resource waits
    for the delivered Secrets its spec reads (an operator starts pods from it).
    """
    if ctx is not None:
        opts = ctx.after_secrets(namespace, spec, opts)
    metadata: dict[str, Any] = {"name": name, "labels": labels or recommended(name, kind.lower())}
    if namespace:
        metadata["namespace"] = namespace
    if annotations:
        metadata["annotations"] = annotations
    pulumi_name = resource_name or "-".join(p for p in (namespace, kind.lower(), name) if p)
    return k8s.apiextensions.CustomResource(
        pulumi_name, api_version=api_version, kind=kind, metadata=metadata, spec=spec, opts=opts
    )
