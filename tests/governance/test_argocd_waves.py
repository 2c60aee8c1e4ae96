"""Promotion waves: dev, then staging, then prod, each step waiting for the previous to be Healthy (Argo CD's
RollingSync), and inside an environment the applications in their declared dependency order."""
from __future__ import annotations

import copy

import pytest

from components import settings as settings_module
from components.governance.argocd import promotion
from tests.governance.argocd_plan import HUBS, application_set, wave_problems
from tests.helpers import objects
from tools.render import stack_config


def declared_dependencies(stack: str) -> dict[str, tuple[str, ...]]:
    loaded = settings_module.parse(stack_config(stack), stack)
    return {name: app.depends_on for name, app in loaded.governance.argocd.applications.items()}


@pytest.mark.parametrize("stack", HUBS)
def test_the_rendered_waves_follow_environments_and_dependencies(plans, stack):
    assert wave_problems(application_set(plans[stack]), declared_dependencies(stack)) == []


def test_prod_promotes_dev_then_staging_then_prod(plans):
    steps = application_set(plans["prod"])["strategy"]["rollingSync"]["steps"]
    envs = [next(e["values"][0] for e in s["matchExpressions"] if e["key"] == promotion.ENVIRONMENT_LABEL) for s in steps]
    assert envs == ["dev"] * 3 + ["staging"] * 3 + ["prod"] * 3
    waves = [next(e["values"][0] for e in s["matchExpressions"] if e["key"] == promotion.WAVE_LABEL) for s in steps]
    assert waves == ["0", "1", "2"] * 3


def test_identity_before_gateway_before_orchestrator(plans):
    elements = application_set(plans["prod"])["generators"][0]["list"]["elements"]
    wave = {e["app"]: int(e["wave"]) for e in elements if e["env"] == "prod"}
    assert wave["identity"] < wave["gateway"] < wave["orchestrator"]


def test_a_wrong_order_is_caught(plans):
    good = application_set(plans["prod"])
    deps = declared_dependencies("prod")
    swapped_envs = copy.deepcopy(good)
    steps = swapped_envs["strategy"]["rollingSync"]["steps"]
    steps[0:3], steps[6:9] = steps[6:9], steps[0:3]
    assert any("before dev is done" in p or "before staging is done" in p for p in wave_problems(swapped_envs, deps))
    early_orchestrator = copy.deepcopy(good)
    for element in early_orchestrator["generators"][0]["list"]["elements"]:
        if element["app"] == "orchestrator":
            element["wave"] = "0"
    assert any("orchestrator" in p and "does not wait for gateway" in p for p in wave_problems(early_orchestrator, deps))
    all_at_once = copy.deepcopy(good)
    all_at_once["strategy"] = {"type": "AllAtOnce"}
    assert wave_problems(all_at_once, deps)
    missing_step = copy.deepcopy(good)
    del missing_step["strategy"]["rollingSync"]["steps"][-1]
    assert any("not exactly one" in p for p in wave_problems(missing_step, deps))


def test_waves_come_from_the_dependency_list_not_from_numbers():
    apps = {"c": settings_module.ArgoCdApplication(path="c", depends_on=("b",)),
            "b": settings_module.ArgoCdApplication(path="b", depends_on=("a",)),
            "a": settings_module.ArgoCdApplication(path="a"),
            "d": settings_module.ArgoCdApplication(path="d", depends_on=("a",))}
    assert promotion.waves(apps) == {"a": 0, "b": 1, "c": 2, "d": 1}


@pytest.mark.parametrize("stack", HUBS)
def test_progressive_syncs_are_on_and_the_controller_starts_each_sync(plans, stack):
    """RollingSync does nothing unless the ApplicationSet controller runs with progressive syncs; the
    generated Applications carry no automated policy, so no environment syncs before its step."""
    (params,) = [o for o in objects(plans[stack], "ConfigMap") if o["metadata"]["name"] == "argocd-cmd-params-cm"]
    assert params["data"]["applicationsetcontroller.enable.progressive.syncs"] == "true"
    spec = application_set(plans[stack])["template"]["spec"]
    assert "automated" not in spec["syncPolicy"]
    assert spec["project"] == "{{.project}}"
    for element in application_set(plans[stack])["generators"][0]["list"]["elements"]:
        assert element["project"] == f"apps-{element['env']}" and element["path"].endswith("/" + element["env"])
