"""The stacks rendered with the first-party services on, once per module (tests/test_agents_services.py's
``rendered`` fixture), and the settings blocks those renders use, which the delivery tests
(tests/test_agents_delivery.py) also parse.

The catalog is a copy of platform.lock.yaml that pins the app images with test-only digests (sha256 of a sentence
that says so; the real lock has no ``apps`` yet and is untouched). dev deploys the services with Pulumi
(``agents.delivery.mode: pulumi``, without Argo CD); prod keeps its Argo CD and delivers them through the
applications repository (``argocd``, the stack file's delivery), with tools and memory added to its applications.
Both also run Governance's audit shipper (``governance.compliance.shipper``, pinned by the same test catalog),
checked in tests/test_agents_services.py ("the audit shipper").
Rendering is slow (about a minute per stack).
"""
from __future__ import annotations

import hashlib

import pytest
import yaml

from components import catalog
from components import settings as platform_settings
from tests.helpers import config_with, stack_document

SERVICES = ("identity", "gateway", "orchestrator", "tools", "memory")
SHIPPER = "audit-shipper"
"""Governance's first-party service (governance.compliance.shipper), on in the same renders."""
TEST_ONLY = {app: "sha256:" + hashlib.sha256(f"test-only digest for the {app} app, not an image".encode()).hexdigest()
             for app in (*SERVICES, SHIPPER)}
SIZE = {"cpuRequest": "50m", "memoryRequest": "128Mi", "cpuLimit": "500m", "memoryLimit": "256Mi"}
NS = "soma-agents"
PLATFORM_REGISTRY = "registry.soma.example.com/mirror"
"""Where the release pipeline pushes (``make images-release REGISTRY=...``): the registry prod pulls from."""
DELIVERY = {"dev": "pulumi", "prod": "argocd"}


def services_block(stack: str) -> dict:
    replicas = 2 if stack == "prod" else 1
    return {
        "identity": {"enabled": True, "replicas": replicas, "resources": SIZE},
        "gateway": {"enabled": True, "replicas": replicas, "resources": SIZE,
                    "redis": {"url": "redis://redis.soma-agents.svc:6379/0", "namespace": NS, "pods": {"app.kubernetes.io/name": "redis"}},
                    "redisPasswordPath": "gateway/redis"},
        "orchestrator": {"enabled": True, "replicas": replicas, "resources": SIZE,
                         "model": {"url": "https://models.soma.example.com/v1", "cidr": "192.0.2.10/32"},
                         "modelName": "scripted", "modelApiKeyPath": "orchestrator/model"},
        "tools": {"enabled": True, "replicas": replicas, "resources": SIZE},
        "memory": {"enabled": True, "replicas": replicas, "resources": SIZE},
    }


def agents_with_services(stack: str, delivery: dict | None = None) -> dict:
    """The stack's Agents block with every service on; ``delivery`` replaces the stack file's when given."""
    agents = dict(stack_document(stack)["somaagenthub:agents"])
    agents["services"] = services_block(stack)
    if delivery is not None:
        agents["delivery"] = delivery
    return agents


def governance_without_argocd(stack: str) -> dict:
    """The stack's Governance settings without Argo CD (a stack whose services Pulumi deploys to the cluster)."""
    return {k: v for k, v in stack_document(stack)["somaagenthub:governance"].items() if k != "argocd"}


def governance_with_every_application(stack: str) -> dict:
    """The stack's Governance settings with Argo CD delivering every service (tools and memory added)."""
    governance = dict(stack_document(stack)["somaagenthub:governance"])
    argocd = dict(governance["argocd"])
    argocd["applications"] = {**argocd["applications"], "tools": {"path": "deploy/tools"},
                              "memory": {"path": "deploy/memory", "dependsOn": ["tools"]}}
    governance["argocd"] = argocd
    return governance


def with_shipper(governance: dict) -> dict:
    """Governance settings with the audit shipper on (its image pinned by the same test-only catalog)."""
    return {**governance, "compliance": {**governance["compliance"], "shipper": {"enabled": True, "resources": SIZE}}}


def services_config(stack: str) -> dict[str, str]:
    if DELIVERY[stack] == "pulumi":
        return config_with(stack, agents=agents_with_services(stack, {"mode": "pulumi"}),
                           governance=with_shipper(governance_without_argocd(stack)))
    return config_with(stack, agents=agents_with_services(stack), governance=with_shipper(governance_with_every_application(stack)))


def lock_with_apps(folder, registry: str):
    """platform.lock.yaml plus test-only ``apps`` pins, pushed (as the pipeline would) to the stack's platform registry."""
    lock = folder / "platform.lock.yaml"
    document = yaml.safe_load(catalog.LOCK_FILE.read_text(encoding="utf-8"))
    document["apps"] = {app: {
        "registry": registry, "repository": f"somaagenthub/{app}",
        "tag": "0.1.0", "digest": digest,
        "source": f"test-only: no image has this digest (git commit {'0' * 8}{hashlib.sha1(app.encode()).hexdigest()[8:]})",
        "signer": {"kind": "platform"},
        "sbom": {"format": "CycloneDX JSON", "predicate_type": catalog.SBOM_PREDICATE, "digest": digest,
                 "attestation": f"{registry}/somaagenthub/{app}:{digest.replace(':', '-')}.att"},
    } for app, digest in TEST_ONLY.items()}
    lock.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return lock


def render_services(folder) -> dict:
    """``{stack: (plan, generated credentials, parsed settings, lock path)}`` for dev and prod."""
    from tools.render import render_with_secrets

    lock = lock_with_apps(folder, PLATFORM_REGISTRY)
    original = catalog.load
    patch = pytest.MonkeyPatch()
    patch.setattr(catalog, "load", lambda path=lock, registry="upstream": original(path, registry))
    try:
        out = {}
        for stack in DELIVERY:
            config = services_config(stack)
            plan, generated = render_with_secrets(stack, folder / stack, config)
            out[stack] = (plan, generated, platform_settings.parse(config, stack), lock)
    finally:
        patch.undo()  # only while rendering: the other tests see the real lock
    return out
