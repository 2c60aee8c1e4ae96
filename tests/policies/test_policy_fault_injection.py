"""no-fault-injection through pulumi-policy's analyzer service (protobuf properties, proxies, the stacks' configs).

The samples (samples/no-fault-injection) judge plain dicts; here the same objects arrive as the engine sends
them, and each stack's real policy config decides: prod refuses every Chaos Mesh object, staging accepts them.
"""
from __future__ import annotations

from typing import Any

from pulumi.runtime import proto
from test_policy_analyzer import analyze, configured

from policies.config import load_config_file, resolve_settings, stack_config_path
from policies.rules import RULES

DAEMON_IMAGE = "ghcr.io/chaos-mesh/chaos-daemon:v2.8.2@sha256:6e36a3cd02b73d0ce18a5d258dc961dfc2f77d30210e939d5970c66948520aa0"
WORKFLOW_TYPE = "kubernetes:chaos-mesh.org/v1alpha1:Workflow"


def workflow() -> dict[str, Any]:
    return {
        "apiVersion": "chaos-mesh.org/v1alpha1", "kind": "Workflow",
        "metadata": {"name": "resilience-6e4d19d935ad", "namespace": "soma-chaos"},
        "spec": {"entry": "resilience", "templates": [{"name": "resilience", "templateType": "Serial", "children": []}]},
    }


def daemon_set() -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "chaos-daemon", "namespace": "soma-chaos"},
        "spec": {"selector": {"matchLabels": {"app": "d"}}, "template": {
            "metadata": {"labels": {"app": "d"}},
            "spec": {"containers": [{"name": "chaos-daemon", "image": DAEMON_IMAGE}]}}},
    }


def stack_rule_config(stack: str) -> dict[str, Any]:
    settings = resolve_settings(load_config_file(stack_config_path(stack)), RULES)["no-fault-injection"]
    return {"level": settings.level, **settings.config}


def only(diagnostics: list[Any], rule: str = "no-fault-injection") -> list[Any]:
    return [d for d in diagnostics if d.policyName == rule]


def test_prod_refuses_fault_injection_and_blocks() -> None:
    prod = stack_rule_config("prod")
    assert prod["level"] == "mandatory" and prod["allowFaultInjection"] is False


def test_staging_allows_fault_injection_at_prods_mandatory_level() -> None:
    """That every other key of staging.json is prod's is test_staging_policy_config.py's check, not repeated here."""
    staging, prod = (load_config_file(stack_config_path(s)) for s in ("staging", "prod"))
    assert stack_rule_config("staging")["allowFaultInjection"] is True
    assert staging["all"] == prod["all"] == "mandatory"


def test_a_workflow_is_refused_through_the_service_unless_allowed() -> None:
    refused = only(analyze(configured(), workflow(), WORKFLOW_TYPE))
    assert [d.enforcementLevel for d in refused] == [proto.MANDATORY]
    assert "Workflow 'resilience-6e4d19d935ad' is a Chaos Mesh object" in refused[0].message
    assert "Remediation: Fault injection belongs to the staging stack" in refused[0].message
    allowed = configured(overrides={"no-fault-injection": {"allowFaultInjection": True}})
    assert only(analyze(allowed, workflow(), WORKFLOW_TYPE)) == []


def test_the_daemon_is_found_in_a_pod_template_through_the_service() -> None:
    refused = only(analyze(configured(), daemon_set(), "kubernetes:apps/v1:DaemonSet"))
    assert len(refused) == 1 and "container 'chaos-daemon' runs Chaos Mesh's daemon" in refused[0].message


def test_a_workload_without_chaos_passes_through_the_service() -> None:
    plain = daemon_set()
    plain["spec"]["template"]["spec"]["containers"][0]["image"] = DAEMON_IMAGE.replace("chaos-mesh/chaos-daemon", "example/log-agent")
    assert only(analyze(configured(), plain, "kubernetes:apps/v1:DaemonSet")) == []
