"""Small hand-written plans (plan.json shape) for the gate tests."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from policies.image_policies import admission_name

DIGEST = "sha256:6a9a8d4f9f29567db9686cadd53d98be09c2665975c4fe9ae5e5a5248214f7cb"
PLATFORM_IMAGE = f"registry.soma.example.com/mirror/somaagenthub/agent-api:1.4.0@{DIGEST}"
UPSTREAM_IMAGE = f"ghcr.example.test/somaagenthub/agent-api:1.4.0@{DIGEST}"
PSA = {f"pod-security.kubernetes.io/{mode}": "restricted" for mode in ("enforce", "audit", "warn")}
VERIFIED = {"policy.sigstore.dev/include": "true"}
CONFIG = Path(__file__).resolve().parents[2] / "policies" / "config"


def signed_images_config(stack: str) -> dict[str, Any]:
    return json.loads((CONFIG / f"{stack}.json").read_text())["signed-images"]


def urn(type_: str, name: str, stack: str = "prod") -> str:
    return f"urn:pulumi:{stack}::somaagenthub::somaagenthub:phase:Agents${type_}::{name}"


def resource(type_: str, name: str, inputs: dict[str, Any], stack: str = "prod") -> dict[str, Any]:
    return {
        "urn": urn(type_, name, stack),
        "type": type_,
        "name": name,
        "parent": None,
        "dependencies": [],
        "custom": True,
        "remote": False,
        "inputs": inputs,
    }


def container(name: str = "api", image: str = PLATFORM_IMAGE) -> dict[str, Any]:
    return {
        "name": name,
        "image": image,
        "securityContext": {
            "runAsNonRoot": True,
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"cpu": "1", "memory": "256Mi"}},
    }


def deployment(
    name: str = "agent-api",
    namespace: str = "agents",
    image: str = PLATFORM_IMAGE,
    annotations: dict[str, str] | None = None,
    stack: str = "prod",
) -> dict[str, Any]:
    return resource(
        "kubernetes:apps/v1:Deployment",
        name,
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name, "namespace": namespace, "annotations": annotations or {}},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app.kubernetes.io/name": name}},
                "template": {
                    "metadata": {"labels": {"app.kubernetes.io/name": name}},
                    "spec": {
                        "securityContext": {
                            "runAsNonRoot": True,
                            "runAsUser": 10001,
                            "seccompProfile": {"type": "RuntimeDefault"},
                        },
                        "containers": [container(image=image)],
                    },
                },
            },
        },
        stack,
    )


def namespace(name: str = "agents", stack: str = "prod") -> dict[str, Any]:
    return resource(
        "kubernetes:core/v1:Namespace",
        name,
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": {**PSA, **VERIFIED}}},
        stack,
    )


def default_deny(namespace_name: str = "agents", stack: str = "prod") -> dict[str, Any]:
    return resource(
        "kubernetes:networking.k8s.io/v1:NetworkPolicy",
        f"{namespace_name}-default-deny",
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": "default-deny", "namespace": namespace_name},
            "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]},
        },
        stack,
    )


def hardened_plan(stack: str = "prod", image: str = PLATFORM_IMAGE) -> dict[str, Any]:
    return {
        "stack": stack,
        "settings": {
            "registry": "registry.soma.example.com/mirror",
            "kubernetesVersion": "1.33",
            "enforcement": "mandatory" if stack == "prod" else "advisory",
        },
        "resources": [
            resource("somaagenthub:phase:Agents", "agents", {}, stack) | {"custom": False},
            namespace(stack=stack),
            default_deny(stack=stack),
            deployment(image=image, stack=stack),
            image_policy(image, stack),
        ],
    }


def image_policy(image: str, stack: str = "prod") -> dict[str, Any]:
    """The ClusterImagePolicy the program would generate for the fixture's platform-signed image."""
    config = signed_images_config(stack)  # dev and prod trust the same platform key
    return resource(
        "kubernetes:policy.sigstore.dev/v1beta1:ClusterImagePolicy",
        "platform-key",
        {
            "apiVersion": "policy.sigstore.dev/v1beta1",
            "kind": "ClusterImagePolicy",
            "metadata": {"name": "platform-key"},
            "spec": {
                "images": [{"glob": admission_name(image)}],
                "authorities": [{"name": "platform", "key": {"data": config["platformKey"], "hashAlgorithm": "sha256"}}],
                "mode": "enforce",
            },
        },
        stack,
    )


def with_deployment(plan: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """A copy of ``plan`` with its Deployment replaced by one built with ``changes``."""
    plan = copy.deepcopy(plan)
    plan["resources"] = [r for r in plan["resources"] if r["type"] != "kubernetes:apps/v1:Deployment"]
    plan["resources"].append(deployment(stack=plan["stack"], **changes))
    return plan
