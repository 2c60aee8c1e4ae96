"""The load tests as the Ops phase deploys them, rendered alone under the mock runtime (the chart expanded by Helm's
engine) with a copy of the catalog that pins the k6 controller by a test-only digest (sha256 of a sentence that
says so; the real lock file is untouched and settings still refuse ops.loadTests).

Checked: the TestRuns validate against the CRD the chart installs, run the pinned images hardened, target the
gateway with the token from its Secret at the stack's scale; the operator is namespaced (a Role, its own
namespace watched) and hardened; the flows exist in both namespaces and in the ledger the mesh reads; the gate
finds nothing in these resources but what a partial plan and a test-only digest explain.
"""
from __future__ import annotations

import hashlib
import json

import pytest
import yaml

from components import catalog
from components import settings as platform_settings
from components.core import telemetry_for
from components.core.interfaces import SecretRef
from components.kit import KitContext, Peer, selector
from components.ops import k6
from components.ops.load import LoadTests
from components.settings import LoadTestSettings, Resources
from tests.helpers import objects
from tests.verification import installed_crd_validators, validate
from tools import mock_runtime
from tools.render import build_plan, expand_charts, stack_config

TEST_ONLY = "sha256:" + hashlib.sha256(b"test-only digest for k6-operator-controller, not an image").hexdigest()
GATEWAY_URL = "http://gateway.soma-agents.svc.cluster.local:8080"
SETTINGS = LoadTestSettings(operator=Resources("50m", "64Mi", "200m", "128Mi"), runner=Resources("250m", "256Mi", "1", "512Mi"),
                            scenarios=("workflow-run", "tool-list"), rate_scale=0.5)
EXPLAINED = {"default-deny-network-policy", "signed-images"}
"""The namespace's default deny and the ClusterImagePolicies are the other phases' (absent from a partial plan)."""


@pytest.fixture(scope="module")
def deployed(tmp_path_factory):
    lock = tmp_path_factory.mktemp("k6") / "platform.lock.yaml"
    pinned = yaml.safe_load(catalog.LOCK_FILE.read_text(encoding="utf-8"))
    pinned["images"]["k6-operator-controller"] = {
        "registry": "ghcr.io", "repository": "grafana/k6-operator", "tag": "controller-v1.6.0", "digest": TEST_ONLY,
        "source": "https://example.invalid/test-only (no image has this digest; tests only)", "signer": {"kind": "platform"}}
    lock.write_text(yaml.safe_dump(pinned, sort_keys=False), encoding="utf-8")
    pinned_catalog = catalog.load(lock, "upstream")
    config = stack_config("dev")
    parsed = platform_settings.parse(config, "dev")
    made = {}

    def program():
        ctx = KitContext.from_settings(parsed, pinned_catalog, telemetry_for(parsed.core))
        made["ctx"] = ctx
        made["tests"] = LoadTests(SETTINGS, "soma-ops", GATEWAY_URL, Peer(namespace="soma-agents", pods=selector("gateway")), 8080,
                                  "10.96.0.1/32", SecretRef("k6-load-token-credentials", "soma-ops", ("token",)), ctx, [])

    recording = mock_runtime.run(program, "dev", config)
    expand_charts(recording, parsed.kubernetes_version)
    plan = build_plan("dev", recording, {"registry": parsed.registry, "kubernetesVersion": parsed.kubernetes_version,
                                         "enforcement": parsed.policy_enforcement, "phases": ["ops"]})
    return plan, made, pinned_catalog, parsed


def runs_of(plan):
    return {o["metadata"]["name"]: o for o in objects(plan, "TestRun")}


def test_one_testrun_per_chosen_scenario_valid_against_the_installed_crd(deployed):
    plan, _, _, parsed = deployed
    found = objects(plan)
    installed = installed_crd_validators(found)
    assert ("k6.io", "v1alpha1", "TestRun") in installed          # the CRD comes from the chart, not from elsewhere
    assert set(runs_of(plan)) == {"workflow-run", "tool-list"}
    for run in runs_of(plan).values():
        assert validate(run, parsed.kubernetes_version, installed) == []
    broken = json.loads(json.dumps(runs_of(plan)["tool-list"]))
    broken["spec"]["parallelism"] = "one"
    assert validate(broken, parsed.kubernetes_version, installed)


def test_the_testruns_run_pinned_hardened_pods_against_the_gateway_with_the_token(deployed):
    plan, _, pinned_catalog, _ = deployed
    spec = runs_of(plan)["tool-list"]["spec"]
    assert spec["runner"]["image"] == spec["initializer"]["image"] == pinned_catalog.image("k6").reference
    assert spec["starter"]["image"] == pinned_catalog.image("k6-operator-starter").reference
    env = {e["name"]: e for e in spec["runner"]["env"]}
    assert env[k6.BASE_URL_ENV]["value"] == GATEWAY_URL
    assert env[k6.TOKEN_ENV]["valueFrom"] == {"secretKeyRef": {"name": "k6-load-token-credentials", "key": "token"}}
    assert k6.TOKEN_ENV not in {e["name"] for e in spec["initializer"]["env"]}
    for role in ("runner", "initializer", "starter"):
        pod = spec[role]
        assert pod["automountServiceAccountToken"] == "false" and pod["serviceAccountName"] == "k6-load-test"
        assert pod["securityContext"]["runAsNonRoot"] and pod["containerSecurityContext"]["readOnlyRootFilesystem"]
        assert pod["resources"]["limits"]["memory"]
    assert spec["runner"]["resources"]["limits"] == {"cpu": "1", "memory": "512Mi"}


def test_the_scripts_hold_the_stacks_scaled_rates(deployed):
    plan, _, _, _ = deployed
    (scripts,) = [c for c in objects(plan, "ConfigMap") if c["metadata"]["name"] == "k6-load-test-scripts"]
    assert set(scripts["data"]) == {"workflow-run.js", "tool-list.js"}
    assert '"rate": 15,' in scripts["data"]["tool-list.js"]             # 30/s declared, rateScale 0.5
    assert '"rate": 10,' in scripts["data"]["workflow-run.js"]          # 20/s declared


def test_the_operator_is_namespaced_and_hardened(deployed):
    plan, _, _, _ = deployed
    assert not objects(plan, "ClusterRole") and not objects(plan, "ClusterRoleBinding")
    (manager,) = objects(plan, "Deployment")
    pod = manager["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["image"] == f"ghcr.io/grafana/k6-operator:controller-v1.6.0@{TEST_ONLY}"
    assert {"name": "WATCH_NAMESPACE", "value": "soma-ops"} in container["env"]
    assert pod["securityContext"]["runAsNonRoot"] and container["securityContext"]["readOnlyRootFilesystem"]
    assert container["resources"]["limits"] == {"cpu": "200m", "memory": "128Mi"}
    assert pod["serviceAccountName"] == "k6-operator-controller"
    assert not [s for s in objects(plan, "Service")]


def test_the_flows_are_declared_once_for_both_layers(deployed):
    plan, made, _, _ = deployed
    policies = {(p["metadata"]["namespace"], p["metadata"]["name"]): p for p in objects(plan, "NetworkPolicy")}
    into_gateway = policies[("soma-agents", "api-gateway-from-k6-runners")]["spec"]
    assert into_gateway["podSelector"]["matchLabels"] == selector("gateway")
    (rule,) = into_gateway["ingress"]
    assert rule["ports"] == [{"protocol": "TCP", "port": 8080}]
    assert rule["from"][0]["namespaceSelector"]["matchLabels"] == {"kubernetes.io/metadata.name": "soma-ops"}
    assert ("soma-ops", "k6-runners-to-gateway") in policies and ("soma-ops", "k6-operator-to-api-server") in policies
    ledger = {(ns, f.name) for ns, f in made["ctx"].flows.ingress(["soma-agents", "soma-ops"])}
    assert ledger == {("soma-agents", "api-gateway-from-k6-runners"), ("soma-ops", "k6-runners-from-operator-and-starter")}


def test_the_gate_finds_nothing_but_what_the_partial_plan_explains(deployed):
    from policies.config import load_config_file, stack_config_path
    from tools.gate import run_gate

    plan, _, _, _ = deployed
    report = run_gate(plan, load_config_file(stack_config_path("dev")))
    unexplained = [line for line in report.lines if line.level != "pass" and line.rule not in EXPLAINED
                   and not (line.rule == "digest-pinned-images" and TEST_ONLY in line.message)]
    assert unexplained == []


def test_who_may_do_what_stays_in_the_ops_namespace(deployed):
    from tools.rbac_review import Subject, can, grants

    plan, _, _, _ = deployed
    controller = Subject("soma-ops", "k6-operator-controller")
    assert can(plan, controller, "create", "batch", "jobs", "soma-ops")            # it runs the TestRuns' jobs here
    assert can(plan, controller, "patch", "k6.io", "testruns/status", "soma-ops")
    assert not can(plan, controller, "create", "batch", "jobs", "soma-agents")     # and nowhere else
    assert not can(plan, controller, "get", "", "secrets", "soma-agents")
    assert all(g.namespace == "soma-ops" for g in grants(plan, controller))
    assert grants(plan, Subject("soma-ops", "k6-load-test")) == []                  # the load pods may do nothing


def test_the_mesh_allows_the_runners_into_the_gateway_from_the_same_flow(deployed):
    from components.mesh.istio.authorization import MeshScope, rules

    _, made, _, _ = deployed
    scope = MeshScope(members=("soma-agents", "soma-ops"), waypoints=(), trust_domain="cluster.local",
                      all_namespaces=("soma-agents", "soma-ops", "soma-data"))
    (flow,) = [f for ns, f in made["ctx"].flows.ingress(["soma-agents"]) if f.name == "api-gateway-from-k6-runners"]
    assert rules(flow, "soma-agents", scope) == [{"from": [{"source": {"namespaces": ["soma-ops"]}}],
                                                  "to": [{"operation": {"ports": ["8080"]}}]}]
