"""How the first-party services reach a cluster (``agents.delivery``; docs/architecture/gitops.md, "Who owns what").

prod runs Argo CD, so its services' application objects (Deployment, Service, PodDisruptionBudget) are registered
with one YAML render provider per (service, environment), writing into the applications repository's
``<path>/prod``, while everything the platform owns stays on the cluster; dev without Argo CD (``pulumi``) deploys
them to the cluster as before. ``make app-manifests`` writes the same files from the plan. Renders: the session's
``services_rendered`` (tests/agents_render.py) and ``plans``.
"""
from __future__ import annotations

import copy
import json

import pytest
import yaml

from components.governance.argocd.projects import APPLICATION_KINDS
from policies.config import load_config_file, stack_config_path
from tests.agents_render import NS, SERVICES, agents_with_services, governance_with_every_application
from tests.governance.argocd_plan import app_projects, application_set, permitted
from tests.helpers import objects, refused, stack_document
from tests.verification import validate
from tools import app_manifests
from tools.app_manifests import manifest_files, on_cluster, render_providers, rendered_to_files

CHECKOUT = "../agent-apps"
"""prod's agents.delivery.checkout (Pulumi.prod.yaml)."""
APPLICATION_OBJECTS = {("Deployment", "apps/v1"), ("Service", "v1"), ("PodDisruptionBudget", "policy/v1")}
"""What each service of prod (2 replicas) puts in its folder."""


def kinds_of(resources: list[dict]) -> set[tuple[str, str, str]]:
    return {(r["inputs"]["kind"], r["inputs"]["metadata"].get("namespace", ""), r["inputs"]["metadata"]["name"]) for r in resources}


def test_prod_renders_each_services_application_objects_into_the_folder_its_application_syncs(services_rendered):
    plan, _, parsed, _ = services_rendered["prod"]
    providers = render_providers(plan)
    applications = parsed.governance.argocd.applications
    # one render provider per service, writing <checkout>/<applications.<name>.path>/prod ...
    assert sorted(providers.values()) == sorted(f"{CHECKOUT}/{applications[s].path}/prod" for s in SERVICES)
    # ... which is the path the ApplicationSet generates for that application in the prod wave
    generated = {(e["app"], e["env"]): e["path"] for e in application_set(plan)["generators"][0]["list"]["elements"]}
    for service in SERVICES:
        assert f"{CHECKOUT}/{generated[(service, 'prod')]}" in providers.values(), service
    assert application_set(plan)["template"]["spec"]["source"]["directory"] == {"recurse": True}
    # each provider holds exactly that service's application objects
    for urn, directory in providers.items():
        service = directory.split("/")[-2]
        held = [r for r in rendered_to_files(plan) if r["options"]["provider"] == urn]
        assert {(r["inputs"]["kind"], r["inputs"]["apiVersion"]) for r in held} == APPLICATION_OBJECTS, service
        assert {r["inputs"]["metadata"]["name"] for r in held} == {service}
        assert {r["inputs"]["metadata"]["namespace"] for r in held} == {NS}


def test_prod_keeps_the_platforms_part_of_each_service_on_the_cluster_and_only_that(services_rendered):
    plan = services_rendered["prod"][0]
    application_kinds = {k for _, k in APPLICATION_KINDS}
    cluster = kinds_of(on_cluster(plan))
    assert not [c for c in cluster if c[1] == NS and c[0] in application_kinds], "an application kind reaches the cluster through Pulumi"
    for service in SERVICES:
        assert ("ServiceAccount", NS, service) in cluster
        assert ("NetworkPolicy", NS, f"{service}-telemetry") in cluster
        assert any(c[0] == "ExternalSecret" and c[1] == NS and c[2].startswith(service) for c in cluster), service
    assert {("AuthorizationPolicy", NS, f"{s}-callers") for s in ("identity", "orchestrator", "tools", "memory")} <= cluster
    vault = {r["type"] for r in plan["resources"] if r["type"].startswith("vault:")}
    assert "vault:transit/secretBackendKey:SecretBackendKey" in vault
    # Argo CD may sync every file: apps-prod permits each object in its folder
    projects = app_projects(plan)
    for resource in rendered_to_files(plan):
        obj = resource["inputs"]
        group = obj["apiVersion"].rpartition("/")[0]
        assert permitted(projects, NS, group, obj["kind"]) == ["apps-prod"], obj


def test_the_gate_judges_the_files_and_passes_them_with_the_pinned_catalog(services_rendered, tmp_path):
    """make app-manifests, through its command: with a catalog that pins the app images, one file per object in
    the provider's layout, each valid against the Kubernetes schema and equal to the object Argo CD will apply;
    again, byte for byte the same files; with the real lock (no ``apps``) the gate blocks the Deployments and
    nothing is written."""
    plan, _, parsed, lock = services_rendered["prod"]
    plan_file = tmp_path / "plan.json"
    plan_file.write_text(json.dumps(plan))
    config = load_config_file(stack_config_path("prod"))
    for rule in config.values():
        if isinstance(rule, dict) and "catalogPath" in rule:
            rule["catalogPath"] = str(lock)
    config_file = tmp_path / "policy.json"
    config_file.write_text(json.dumps(config))
    out = tmp_path / "agent-apps"
    assert app_manifests.main(["--stack", "prod", "--plan", str(plan_file), "--out", str(out), "--config", str(config_file)]) == 0
    written = sorted(str(p.relative_to(out)) for p in out.rglob("*.yaml"))
    assert written == sorted(
        f"deploy/{s}/prod/1-manifest/{prefix}-{kind}-soma-agents-{s}.yaml"
        for s in SERVICES for prefix, kind in (("apps_v1", "deployment"), ("v1", "service"), ("policy_v1", "poddisruptionbudget")))
    by_file = {f.path: f for f in manifest_files(plan, CHECKOUT)}
    for name in written:
        obj = yaml.safe_load((out / name).read_text())
        assert obj == by_file[name].object
        assert validate(obj, parsed.kubernetes_version) == [], name
    first = {name: (out / name).read_bytes() for name in written}
    (out / "deploy/gateway/prod/1-manifest/v1-configmap-soma-agents-stale.yaml").write_text("stale: true\n")
    assert app_manifests.main(["--stack", "prod", "--plan", str(plan_file), "--out", str(out), "--config", str(config_file)]) == 0
    assert {str(p.relative_to(out)): p.read_bytes() for p in out.rglob("*.yaml")} == first
    refused_out = tmp_path / "refused"
    assert app_manifests.main(["--stack", "prod", "--plan", str(plan_file), "--out", str(refused_out)]) == 1
    assert not refused_out.exists()


def test_a_secret_or_two_objects_in_one_file_are_refused(services_rendered):
    plan = copy.deepcopy(services_rendered["prod"][0])
    (deployment,) = [r for r in rendered_to_files(plan) if r["inputs"]["kind"] == "Deployment" and r["inputs"]["metadata"]["name"] == "tools"]
    deployment["inputs"]["spec"]["template"]["spec"]["containers"][0]["env"].append({"name": "SOMA_TOKEN", "value": "[secret]"})
    files = manifest_files(plan, CHECKOUT)
    assert app_manifests.problems(files, {}) == [
        f"deploy/tools/prod/1-manifest/apps_v1-deployment-soma-agents-tools.yaml: {deployment['urn']} holds a secret value; an "
        "application manifest holds none (credentials come from Vault through External Secrets, which the platform owns)"]
    twice = [*files, files[0]]
    assert any("written by both" in p for p in app_manifests.problems(twice, {}))


def test_a_pulumi_delivery_stack_applies_its_services_to_the_cluster(services_rendered, plans):
    """dev without Argo CD: no render provider, every object of the services on the cluster as before; and the
    stock stacks (services off) render no provider for files at all."""
    plan = services_rendered["dev"][0]
    assert render_providers(plan) == {} and rendered_to_files(plan) == []
    assert {("Deployment", NS, s) for s in SERVICES} | {("Service", NS, s) for s in SERVICES} <= kinds_of(on_cluster(plan))
    for stack, stock in plans.items():
        assert render_providers(stock) == {}, stack


def test_app_manifests_says_when_a_stack_renders_nothing_to_files(plans, tmp_path, capsys):
    plan_file = tmp_path / "plan.json"
    plan_file.write_text(json.dumps(plans["dev"]))
    assert app_manifests.main(["--stack", "dev", "--plan", str(plan_file), "--out", str(tmp_path / "out")]) == 0
    assert "no object is rendered" in capsys.readouterr().out and not (tmp_path / "out").exists()
    assert app_manifests.main(["--stack", "prod", "--plan", str(plan_file)]) == 2


# settings ------------------------------------------------------------------------------------------------------------

def delivery(stack: str, **changes) -> dict:
    agents = copy.deepcopy(stack_document(stack)["somaagenthub:agents"])
    agents["delivery"] = {**agents["delivery"], **changes}
    for key in [k for k, v in agents["delivery"].items() if v is None]:
        del agents["delivery"][key]
    return agents


def test_every_stack_delivers_through_argo_cd_into_its_own_wave():
    """dev and prod run Argo CD; staging's wave is prod's Argo CD's, so its folders are the ones prod lists."""
    from components import settings
    from tools.render import stack_config

    parsed = {s: settings.parse(stack_config(s), s) for s in ("dev", "staging", "prod")}
    assert {s: (p.agents.delivery.mode, p.agents.delivery.environment) for s, p in parsed.items()} == {
        "dev": ("argocd", "dev"), "staging": ("argocd", "staging"), "prod": ("argocd", "prod")}
    assert parsed["staging"].governance.argocd is None
    prod_paths = {n: a.path for n, a in parsed["prod"].governance.argocd.applications.items()}
    assert dict(parsed["staging"].agents.delivery.paths) == prod_paths
    assert "staging" in {e.name for e in parsed["prod"].governance.argocd.environments}


def test_a_stack_with_argo_cd_must_deliver_through_it():
    problems = refused("prod", agents=delivery("prod", mode="pulumi", environment=None, checkout=None))
    assert [p for p in problems if p.startswith("somaagenthub:agents.delivery.mode: governance.argocd is set")]
    problems = refused("dev", agents=delivery("dev", mode="pulumi"))
    assert "somaagenthub:agents.delivery.environment: only with mode argocd (mode is pulumi: the services go to the cluster)" in problems


@pytest.mark.parametrize("change, expected", [
    ({"environment": None}, "somaagenthub:agents.delivery.environment: required with mode argocd"),
    ({"checkout": None}, "somaagenthub:agents.delivery.checkout: required with mode argocd"),
    ({"environment": "staging"}, "somaagenthub:agents.delivery.environment: the staging wave deploys to "
                                 "https://api.staging.soma.example.com:6443, another cluster"),
    ({"paths": {"gateway": "deploy/api-gateway"}}, "somaagenthub:agents.delivery.paths.gateway: deploy/api-gateway is not "
                                                   "governance.argocd.applications.gateway.path (deploy/gateway)"),
    ({"paths": {"billing": "deploy/billing"}}, "somaagenthub:agents.delivery.paths.billing: not a service"),
])
def test_bad_delivery_settings_name_the_key(change, expected):
    problems = refused("prod", agents=delivery("prod", **change))
    assert [p for p in problems if p.startswith(expected)], problems


def test_a_wave_the_stacks_argo_cd_does_not_run_is_refused():
    problems = refused("dev", agents=delivery("dev", environment="prod"))
    assert [p for p in problems if p.startswith("somaagenthub:agents.delivery.environment: prod is not a wave of "
                                                "governance.argocd.environments (dev)")]


def test_an_enabled_service_must_be_one_of_argo_cds_applications():
    """prod lists identity, gateway and orchestrator; the tool service and the memory gateway are not yet there."""
    problems = refused("prod", agents=agents_with_services("prod"))
    missing = sorted(p.split(":")[1].split(".")[3] for p in problems if p.startswith("somaagenthub:governance.argocd.applications."))
    assert missing == ["memory", "tools"]
    assert not [p for p in refused("prod", agents=agents_with_services("prod"), governance=governance_with_every_application("prod"))
                if "governance.argocd.applications" in p or "agents.delivery" in p]


def test_a_stack_whose_wave_another_argo_cd_drives_names_each_services_folder():
    problems = refused("staging", agents=agents_with_services("staging"))
    missing = sorted(p.split(":")[1].split(".")[3] for p in problems if p.startswith("somaagenthub:agents.delivery.paths."))
    assert missing == ["memory", "tools"]
    assert [p for p in problems if p.startswith("somaagenthub:agents.delivery.paths.tools: required: this stack has no Argo CD")]
