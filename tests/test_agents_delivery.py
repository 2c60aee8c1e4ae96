"""How the first-party services reach a cluster (``agents.delivery``; docs/architecture/gitops.md, "Who owns what"):
the settings' rules, and ``make app-manifests`` on a stack that renders nothing to files. What a stack with the
services on renders (prod through the applications repository, dev through Pulumi) is checked on the services'
render, in tests/test_agents_services.py ("Delivery"), so that render happens once.
"""
from __future__ import annotations

import copy
import json

import pytest

from tests.agents_render import agents_with_services, governance_with_every_application
from tests.governance import standalone
from tests.helpers import refused, stack_document
from tools import app_manifests


def test_app_manifests_says_when_a_stack_renders_nothing_to_files(plans, tmp_path, capsys):
    """The stock stacks (every service off) render nothing to files, whatever their delivery; the command says so
    and writes nothing; a plan of another stack is unusable input."""
    assert all(app_manifests.render_providers(plan) == {} for plan in plans.values())
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
    """prod runs the hub's Argo CD; dev's and staging's waves are its, so their folders are the ones prod lists."""
    from components import settings
    from tools.render import stack_config

    parsed = {s: settings.parse(stack_config(s), s) for s in ("dev", "staging", "prod")}
    assert {s: (p.agents.delivery.mode, p.agents.delivery.environment) for s, p in parsed.items()} == {
        "dev": ("argocd", "dev"), "staging": ("argocd", "staging"), "prod": ("argocd", "prod")}
    prod_paths = {n: a.path for n, a in parsed["prod"].governance.argocd.applications.items()}
    for spoke in ("dev", "staging"):
        assert parsed[spoke].governance.argocd is None
        assert dict(parsed[spoke].agents.delivery.paths) == prod_paths
        assert spoke in {e.name for e in parsed["prod"].governance.argocd.environments}


def test_a_spoke_needs_the_gitops_namespace_for_the_hubs_account():
    governance = copy.deepcopy(stack_document("staging")["somaagenthub:governance"])
    del governance["namespaces"]["gitops"]
    problems = refused("staging", governance=governance)
    assert [p for p in problems if p.startswith("somaagenthub:governance.namespaces.gitops: required: agents.delivery.mode is "
                                                "argocd and this stack runs no Argo CD")], problems


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
    """A single-cluster estate (tests/governance/standalone.py) whose one wave is dev cannot render prod's folder."""
    from components import settings
    from components.config_schema import SettingsError

    with pytest.raises(SettingsError) as caught:
        settings.parse(standalone.config(agents=delivery("dev", environment="prod")), "dev")
    problems = caught.value.problems
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
