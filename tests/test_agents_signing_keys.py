"""App signing keys: generated, kept in Vault, delivered to the agents namespace only through ESO."""
from __future__ import annotations

import json

import pytest

from components.agents.signing_keys import SERVICES
from tests.helpers import objects

STACKS = ("dev", "prod")


def urn_of(plan: dict, kind: str, namespace: str | None, name: str) -> str:
    for r in plan["resources"]:
        meta = r["inputs"].get("metadata") or {}
        if r["inputs"].get("kind") == kind and meta.get("name") == name and meta.get("namespace") == namespace:
            return r["urn"]
    raise AssertionError(f"no {kind} {namespace}/{name}")


@pytest.mark.parametrize("stack", STACKS)
def test_every_agent_service_gets_its_signing_key_through_external_secrets(plans, stack):
    plan = plans[stack]
    secrets = {o["metadata"]["name"]: o for o in objects(plan, "ExternalSecret") if o["metadata"]["namespace"] == "soma-agents"}
    for service in SERVICES:
        external = secrets[f"{service}-signing-key"]
        assert [d["secretKey"] for d in external["spec"]["data"]] == ["key"]
        assert external["spec"]["secretStoreRef"] == {"kind": "ClusterSecretStore", "name": f"vault-soma-agents-{service}"}


@pytest.mark.parametrize("stack", STACKS)
def test_each_key_store_serves_only_the_agents_namespace_as_its_own_account(plans, stack):
    stores = {o["metadata"]["name"]: o["spec"] for o in objects(plans[stack], "ClusterSecretStore")}
    for service in SERVICES:
        spec = stores[f"vault-soma-agents-{service}"]
        assert spec["conditions"] == [{"namespaces": ["soma-agents"]}]
        auth = spec["provider"]["vault"]["auth"]["kubernetes"]
        assert auth["serviceAccountRef"]["name"] == f"{service}-secrets"


@pytest.mark.parametrize("stack", STACKS)
def test_the_key_objects_wait_for_the_agents_namespace(plans, stack):
    plan = plans[stack]
    namespace = urn_of(plan, "Namespace", None, "soma-agents")
    for service in SERVICES:
        for kind, name in (("ExternalSecret", f"{service}-signing-key"), ("ServiceAccount", f"{service}-secrets")):
            urn = urn_of(plan, kind, "soma-agents", name)
            resource = next(r for r in plan["resources"] if r["urn"] == urn)
            assert namespace in resource["dependencies"], f"{kind} {name} would be applied before its namespace exists"


@pytest.mark.parametrize("stack", STACKS)
def test_the_generated_keys_never_appear_in_the_plan(rendered, stack):
    plan, generated, _ = rendered[stack]
    text = json.dumps(plan)
    keys = {name: value for name, value in generated.items() if name.endswith("-signing-key")}
    assert len(keys) == len(SERVICES)
    assert not [name for name, value in keys.items() if value in text]
