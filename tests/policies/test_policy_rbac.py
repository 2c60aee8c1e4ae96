"""least-privilege-rbac against the rendered plans: the operators' grants are excused one by one, by
role and grant, and any other broad grant, on a chart role or ours, blocks prod."""
from __future__ import annotations

import copy
from typing import Any

import pytest

from policies.config import load_config_file, stack_config_path
from tools.gate import run_gate

RULE = "least-privilege-rbac"


@pytest.fixture(scope="module")
def prod_plan(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from tools.render import render

    return render("prod", out_dir=tmp_path_factory.mktemp("rbac"))


def _config() -> dict[str, Any]:
    return load_config_file(stack_config_path("prod"))


def _with(plan: dict[str, Any], name: str, edit) -> dict[str, Any]:
    resources = copy.deepcopy(plan["resources"])
    (role,) = [r for r in resources if r["inputs"].get("kind") == "ClusterRole" and r["inputs"]["metadata"]["name"] == name]
    edit(role["inputs"])
    return {**plan, "resources": resources}


def test_every_operator_grant_is_excused_by_its_own_entry_and_nothing_blocks(prod_plan):
    report = run_gate(prod_plan, _config())
    lines = [line for line in report.lines if line.rule == RULE]
    assert lines and all(line.waiver is not None and line.waiver.accepted for line in lines)
    entries = [use for use in report.waivers if use.waiver.rule == RULE]
    assert entries and all(use.used for use in entries), [u.waiver.scope for u in entries if not u.used]


def test_a_new_broad_grant_on_an_excused_operator_role_blocks(prod_plan):
    """The allow list names the grant, not the role: strimzi's RBAC writes stay excused, * resources do not."""
    plan = _with(prod_plan, "strimzi-cluster-operator-namespaced",
                 lambda role: role["rules"].append({"apiGroups": [""], "resources": ["*"], "verbs": ["get"]}))
    blocking = [line.message for line in run_gate(plan, _config()).blocking if line.rule == RULE]
    assert len(blocking) == 1 and blocking[0].startswith("ClusterRole 'strimzi-cluster-operator-namespaced' rules[")
    assert blocking[0].endswith("grants * resources")


def test_an_excused_grant_on_another_role_blocks(prod_plan):
    plan = _with(prod_plan, "kube-prometheus-stack-kube-state-metrics",
                 lambda role: role["rules"].append({"apiGroups": [""], "resources": ["secrets"], "verbs": ["update"]}))
    blocking = [line.message for line in run_gate(plan, _config()).blocking if line.rule == RULE]
    assert any("'kube-prometheus-stack-kube-state-metrics'" in m and m.endswith("grants write on secrets") for m in blocking)
