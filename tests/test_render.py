"""The offline render: plan format, masking, and refusing what the real engine refuses."""
from __future__ import annotations

import json
import subprocess
import sys

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random
import pytest

from components import settings
from tools import mock_runtime
from tools.render import ROOT, RenderError, build_plan, clean, phase_of, render, stack_config, summary, write_manifests
from tests.core.test_deletion_safety import UNMARKABLE

PLAN_KEYS = {"stack", "settings", "resources", "charts"}
RESOURCE_KEYS = {"urn", "type", "name", "parent", "dependencies", "custom", "remote", "options", "inputs"}
CHART_REPORT_KEYS = {"name", "chart", "version", "objects", "pods", "crds", "hooksDropped"}
CHART = "kubernetes:helm.sh/v4:Chart"


def run_plan(program) -> dict:
    recording = mock_runtime.run(program, "dev", {})
    return build_plan("dev", recording, {})


def test_every_resource_has_the_documented_fields(plans):
    """docs/architecture/contracts.md: the plan's top-level keys, each resource's fields, ``options``
    (``retainOnDelete`` exactly on chart objects marked ``helm.sh/resource-policy: keep`` and on the CRDs of a stack
    with deletionProtection (staging, prod), ``protect``
    only as true, ``aliases`` only when there are some), and one ``charts`` report per chart resource."""
    protecting = {stack for stack in plans if settings.parse(stack_config(stack), stack).deletion_protection}
    assert protecting == {"staging", "prod"}
    for plan in plans.values():
        assert set(plan) == PLAN_KEYS
        assert plan["resources"], "the program registered nothing"
        in_charts = chart_urns(plan)
        for resource in plan["resources"]:
            assert set(resource) == RESOURCE_KEYS
            assert resource["urn"].startswith(f"urn:pulumi:{plan['stack']}::somaagenthub::")
            annotations = (resource["inputs"].get("metadata") or {}).get("annotations") or {}
            kept = annotations.get("helm.sh/resource-policy") == "keep"
            options = resource["options"]
            assert set(options) <= {"protect", "retainOnDelete", "aliases", "provider"}, resource["urn"]
            # and, in a stack that protects its data, on every CRD (tests/core/test_deletion_safety.py)
            # (but the two CRDs policy-controller's chart templates without any annotation: UNMARKABLE)
            protects = (plan["stack"] in protecting and resource["inputs"].get("kind") == "CustomResourceDefinition"
                        and (resource["inputs"].get("metadata") or {}).get("name") not in UNMARKABLE)
            assert options.get("retainOnDelete", False) == (kept and resource["parent"] in in_charts or protects), resource["urn"]
            assert options.get("protect", True) is True and options.get("aliases", [1]) != [], resource["urn"]
        charts = {r["name"]: r for r in plan["resources"] if r["type"] == CHART}
        assert sorted(c["name"] for c in plan["charts"]) == sorted(charts)
        for report in plan["charts"]:
            assert set(report) == CHART_REPORT_KEYS
            chart = charts[report["name"]]
            children = [r for r in plan["resources"] if r["parent"] == chart["urn"]]
            assert report["version"] == chart["inputs"]["version"]
            assert report["objects"] == len(children) > 0, report["name"]
            first = [r for r in plan["resources"] if r["urn"] in chart["dependencies"]]  # crds/ CRDs, installed first
            assert report["crds"] == sum(c["inputs"].get("kind") == "CustomResourceDefinition" for c in children + first)


def chart_urns(plan: dict) -> set[str]:
    return {r["urn"] for r in plan["resources"] if r["type"] == CHART}


def test_objects_a_chart_keeps_on_uninstall_are_retained_on_delete(plans):
    """The CRDs CloudNativePG's chart marks ``helm.sh/resource-policy: keep`` survive ``pulumi destroy``,
    as ``helm uninstall`` would leave them; the check above would pass on a plan without any."""
    retained = [r for r in plans["dev"]["resources"] if r["options"] == {"retainOnDelete": True}]
    assert retained and all(r["parent"] in chart_urns(plans["dev"]) for r in retained)
    assert "urn:pulumi:dev::somaagenthub::somaagenthub:phase:Core$somaagenthub:core:DataStores$kubernetes:helm.sh/v4:Chart" \
        "$kubernetes:apiextensions.k8s.io/v1:CustomResourceDefinition::cloudnative-pg:clusters.postgresql.cnpg.io" \
        in {r["urn"] for r in retained}


def test_urns_are_the_ones_the_engine_builds(plans):
    """Whole URN strings: the engine leaves the root stack's type out and chains every parent's type."""
    urns = {r["urn"] for r in plans["dev"]["resources"]}
    root_child = "urn:pulumi:dev::somaagenthub::somaagenthub:phase:Core::core"
    grandchild = ("urn:pulumi:dev::somaagenthub::somaagenthub:phase:Core$somaagenthub:kit:Namespace"
                  "$kubernetes:core/v1:Namespace::soma-data")
    chart_child = ("urn:pulumi:dev::somaagenthub::somaagenthub:phase:Core$somaagenthub:core:Secrets"
                   "$kubernetes:helm.sh/v4:Chart$kubernetes:apps/v1:StatefulSet::vault:soma-secrets/vault")
    assert {root_child, grandchild, chart_child} <= urns
    by_urn = {r["urn"]: r for r in plans["dev"]["resources"]}
    assert by_urn[root_child]["parent"] == "urn:pulumi:dev::somaagenthub::pulumi:pulumi:Stack::somaagenthub-dev"
    assert by_urn[grandchild]["parent"] == "urn:pulumi:dev::somaagenthub::somaagenthub:phase:Core$somaagenthub:kit:Namespace::soma-data"
    assert by_urn[chart_child]["parent"] == ("urn:pulumi:dev::somaagenthub::somaagenthub:phase:Core$somaagenthub:core:Secrets"
                                             "$kubernetes:helm.sh/v4:Chart::vault")


def test_phases_are_component_resources_with_the_documented_type_tokens(plans):
    for plan in plans.values():
        phases = {r["type"]: r for r in plan["resources"] if r["type"].startswith("somaagenthub:phase:")}
        assert set(phases) == {f"somaagenthub:phase:{p}" for p in ("Core", "Mesh", "Governance", "Agents", "Ops")}
        assert all(not r["custom"] for r in phases.values())


def test_children_are_parented_inside_their_phase(plans):
    for plan in plans.values():
        urns = {r["urn"] for r in plan["resources"]}
        for resource in plan["resources"]:
            if resource["type"].startswith("kubernetes:"):
                assert resource["parent"] in urns, resource["urn"]
                assert phase_of(resource["urn"]) != "(stack)", resource["urn"]


def test_whole_numbers_come_back_as_integers_and_secrets_are_masked():
    def program():
        password = random.RandomPassword("db", length=24)
        k8s.core.v1.ConfigMap("cm", metadata={"name": "cm"}, data={"replicas": "3"})
        k8s.apps.v1.Deployment(
            "d",
            metadata={"name": "d"},
            spec={"replicas": 2, "selector": {"matchLabels": {"a": "b"}}, "template": {"metadata": {"labels": {"a": "b"}}, "spec": {
                "containers": [{"name": "c", "image": "i", "env": [{"name": "P", "value": password.result}]}]}}},
        )

    recording = mock_runtime.run(program, "dev", {})
    plan = build_plan("dev", recording, {})
    deployment = next(r for r in plan["resources"] if r["type"] == "kubernetes:apps/v1:Deployment")
    assert deployment["inputs"]["spec"]["replicas"] == 2 and isinstance(deployment["inputs"]["spec"]["replicas"], int)
    assert deployment["inputs"]["spec"]["template"]["spec"]["containers"][0]["env"][0]["value"] == "[secret]"
    assert recording.generated["db"] not in json.dumps(plan)
    assert deployment["dependencies"] == [next(r["urn"] for r in plan["resources"] if r["name"] == "db")]


def test_clean_keeps_real_fractions():
    assert clean({"a": 1.0, "b": 0.5, "c": [2.0]}) == {"a": 1, "b": 0.5, "c": [2]}


def test_duplicate_urns_are_refused_like_the_engine_does():
    def program():
        k8s.core.v1.Namespace("twice", metadata={"name": "a"})
        k8s.core.v1.Namespace("twice", metadata={"name": "b"})

    with pytest.raises(mock_runtime.DuplicateUrnError, match="Namespace::twice"):
        mock_runtime.run(program, "dev", {})


def test_the_same_object_declared_twice_is_refused(tmp_path):
    def program():
        k8s.core.v1.Namespace("one", metadata={"name": "same"})
        k8s.core.v1.Namespace("two", metadata={"name": "same"})

    with pytest.raises(RenderError, match="Namespace/_cluster/same is declared twice"):
        write_manifests(run_plan(program), tmp_path)


def test_urns_carry_the_whole_parent_chain():
    class Outer(pulumi.ComponentResource):
        def __init__(self):
            super().__init__("somaagenthub:phase:Core", "core")
            k8s.core.v1.Namespace("n", metadata={"name": "n"}, opts=pulumi.ResourceOptions(parent=self))


    plan = run_plan(lambda: Outer())
    ns = next(r for r in plan["resources"] if r["type"] == "kubernetes:core/v1:Namespace")
    assert "somaagenthub:phase:Core$kubernetes:core/v1:Namespace::n" in ns["urn"]
    assert phase_of(ns["urn"]) == "Core"


def test_manifests_are_written_per_namespace(rendered):
    plan, _, folder = rendered["dev"]
    written = sorted(p.relative_to(folder / "manifests").as_posix() for p in (folder / "manifests").rglob("*.yaml"))
    assert "soma-data/networkpolicy-default-deny.yaml" in written
    assert "_cluster/namespace-soma-data.yaml" in written
    assert json.loads((folder / "plan.json").read_text()) == plan


def test_summary_counts_per_phase_and_kind(plans):
    text = summary(plans["prod"], 1.5)
    assert text.startswith(f"stack prod: {len(plans['prod']['resources'])} resources in 1.50s")
    assert "Core" in text and "NetworkPolicy" in text


def test_the_command_line_renders_and_reports(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "tools.render", "--stack", "dev", "--out", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stderr
    assert "per phase:" in result.stdout and (tmp_path / "plan.json").exists()


def test_an_unknown_stack_is_a_clear_error():
    result = subprocess.run([sys.executable, "-m", "tools.render", "--stack", "qa"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 1 and "no stack file" in result.stderr and "Pulumi.dev.yaml" in result.stderr


def test_rendering_is_deterministic():
    assert render("dev") == render("dev")


def test_a_failed_render_removes_the_previous_plan(tmp_path):
    render("dev", tmp_path)
    assert (tmp_path / "plan.json").exists()
    broken = {k: v for k, v in stack_config("dev").items() if k != "somaagenthub:domain"}
    with pytest.raises(RenderError, match="somaagenthub:domain: required value is missing"):
        render("dev", tmp_path, broken)
    assert not (tmp_path / "plan.json").exists(), "a stale plan would let the gate pass a stack that no longer renders"


def test_a_broken_catalog_is_a_clear_render_error(monkeypatch):
    from components import catalog

    def broken(*_args, **_kwargs):
        raise catalog.CatalogError(["images.vault: tag 'latest' floats; pin a release tag"])

    monkeypatch.setattr(catalog, "load", broken)
    with pytest.raises(RenderError, match="tag 'latest' floats"):
        render("dev")


@pytest.mark.parametrize(
    "text, message",
    [("- a\n- b\n", "must be a mapping with a 'config' key"), ("config: hello\n", "'config' must map keys")],
)
def test_a_stack_file_of_the_wrong_shape_is_a_clear_error(tmp_path, text, message):
    bad = tmp_path / "Pulumi.dev.yaml"
    bad.write_text(text)
    with pytest.raises(RenderError, match=message):
        stack_config("dev", bad)


def test_out_must_be_a_folder(tmp_path):
    target = tmp_path / "file"
    target.write_text("x")
    result = subprocess.run([sys.executable, "-m", "tools.render", "--stack", "dev", "--out", str(target)], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 1 and "is a file" in result.stderr and target.read_text() == "x"


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_the_dependency_graph_stays_within_six_waves(plans, stack):
    """Each wave waits for the one before; more than six makes a fresh `pulumi up` crawl."""
    from tools.render import dependency_waves

    chain = dependency_waves(plans[stack])
    assert 1 < len(chain) <= 6, [u.rsplit("::", 1)[-1] for u in chain]
    for earlier, later in zip(chain, chain[1:]):
        (resource,) = [r for r in plans[stack]["resources"] if r["urn"] == later]
        assert earlier in resource["dependencies"], "the chain follows real dependencies"
