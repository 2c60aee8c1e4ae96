"""Chaos Mesh in the rendered stacks: in staging, for the release its lock pins; nowhere else.

Uses the session's renders (tests/conftest.py), so the gate, the schema validation and the admission agreement
tests judge the same staging plan with its chaos objects.
"""
from __future__ import annotations

from components import catalog
from components.ops import chaos
from tests.helpers import objects
from tools.ops.release import release_digests, release_id


def chaos_objects(plan: dict) -> list[dict]:
    return [o for o in objects(plan) if o["apiVersion"].startswith("chaos-mesh.org/")
            or (o["kind"] == "CustomResourceDefinition" and o["spec"]["group"] == "chaos-mesh.org")]


def test_only_staging_runs_chaos_mesh(plans):
    assert chaos_objects(plans["staging"])
    for stack in ("dev", "prod"):
        assert chaos_objects(plans[stack]) == [], stack
        assert not [o for o in objects(plans[stack], "DaemonSet") if o["metadata"]["name"] == "chaos-daemon"], stack


def test_the_staging_workflow_names_the_release_its_lock_pins(plans):
    [workflow] = [o for o in objects(plans["staging"], "Workflow")]
    release = release_id(release_digests(catalog.load()))
    assert workflow["metadata"]["name"] == f"resilience-{release.removeprefix('sha256:')[:12]}"
    assert workflow["metadata"]["namespace"] == "soma-chaos"
    assert workflow["metadata"]["annotations"]["somaagenthub.io/release"] == release
    # the agent services are off in staging today: their experiments wait for them
    assert workflow["metadata"]["annotations"]["somaagenthub.io/experiments"] == \
        "vault-standby-kill,vault-active-kill,postgres-primary-failover,kafka-broker-kill"


def test_the_daemon_is_privileged_only_in_its_own_namespace(plans):
    [namespace] = [o for o in objects(plans["staging"], "Namespace") if o["metadata"]["name"] == "soma-chaos"]
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "privileged"
    [daemon] = [o for o in objects(plans["staging"], "DaemonSet") if o["metadata"]["name"] == "chaos-daemon"]
    assert daemon["metadata"]["namespace"] == "soma-chaos"
    pod = daemon["spec"]["template"]["spec"]
    assert pod["containers"][0]["image"].endswith(catalog.load().images["chaos-mesh-daemon"].digest)
    privileged = [o["metadata"]["name"] for o in objects(plans["staging"], "Namespace")
                  if o["metadata"].get("labels", {}).get("pod-security.kubernetes.io/enforce") == "privileged"]
    assert "soma-chaos" in privileged and len(privileged) == 3, privileged   # node logs, the mesh's node agents, chaos


def test_prometheus_admits_the_chaos_controller_and_nothing_else_from_its_namespace(plans):
    policies = [o for o in objects(plans["staging"], "NetworkPolicy") if o["metadata"]["name"] == "prometheus-from-chaos-controller"]
    assert len(policies) == 1
    [rule] = policies[0]["spec"]["ingress"]
    assert rule["from"][0]["podSelector"]["matchLabels"] == chaos.CONTROLLER
    assert rule["ports"] == [{"protocol": "TCP", "port": 9090}]
