"""A chart expands into the children pulumi-kubernetes' helm.v4.Chart would register, or the render fails
naming the chart and what is wrong. Uses the small chart in fixtures/demo, one object per case."""
from __future__ import annotations

import pytest

from tools import chart_expansion as ce
from tools.mock_runtime import Registration, make_urn

CHART_URN = "urn:pulumi:dev::somaagenthub::somaagenthub:phase:Core$kubernetes:helm.sh/v4:Chart::demo"
BASE = "urn:pulumi:dev::somaagenthub::somaagenthub:phase:Core$kubernetes:helm.sh/v4:Chart$"


def chart(values: dict | None = None, **inputs) -> Registration:
    return Registration(urn=CHART_URN, type=ce.CHART_TYPE, name="demo", parent=None, dependencies=[], custom=False,
                        remote=True, inputs={"chart": "./tests/charts/fixtures/demo", "namespace": "apps",
                                             "values": values or {}, **inputs})


def expand(values: dict | None = None, **inputs) -> tuple[dict[str, Registration], ce.ChartReport]:
    kids, (report,) = ce.expand([chart(values, **inputs)], "1.33", make_urn)
    return {k.urn.removeprefix(BASE): k for k in kids}, report


def test_children_are_named_typed_and_parented_as_the_provider_does():
    kids, _ = expand()
    assert set(kids) == {
        "kubernetes:apiextensions.k8s.io/v1:CustomResourceDefinition::demo:widgets.demo.example.test",
        "kubernetes:apps/v1:Deployment::demo:apps/demo-app",
        "kubernetes:core/v1:ConfigMap::demo:apps/demo-settings",
        "kubernetes:core/v1:ConfigMap::demo:apps/demo-listed",
        "kubernetes:core/v1:Secret::demo:apps/demo-token",
        "kubernetes:demo.example.test/v1:Widget::demo:apps/demo-widget",
        "kubernetes:rbac.authorization.k8s.io/v1:ClusterRole::demo:demo-reader",
    }
    assert {k.parent for k in kids.values()} == {CHART_URN}
    assert all(k.custom and not k.remote for k in kids.values())


def test_hooks_are_not_deployed_and_are_reported():
    kids, report = expand()
    assert not any("demo-test" in urn for urn in kids)
    assert report.hooks_dropped == ["Pod/demo-test (test)"]


def test_namespaced_objects_get_the_chart_namespace_and_cluster_scoped_ones_none():
    kids, _ = expand()
    namespaces = {urn.rsplit("::", 1)[1]: (k.inputs["metadata"].get("namespace")) for urn, k in kids.items()}
    assert namespaces["demo:apps/demo-widget"] == "apps"  # scope read from the bundled CRD
    assert namespaces["demo:demo-reader"] is None
    assert namespaces["demo:widgets.demo.example.test"] is None


def test_dependency_edges_follow_cli_utils_crd_namespace_and_depends_on():
    kids, _ = expand()
    widget = kids["kubernetes:demo.example.test/v1:Widget::demo:apps/demo-widget"]
    assert widget.dependencies == sorted([
        BASE + "kubernetes:apiextensions.k8s.io/v1:CustomResourceDefinition::demo:widgets.demo.example.test",
        BASE + "kubernetes:core/v1:ConfigMap::demo:apps/demo-settings",
    ])
    assert kids["kubernetes:apps/v1:Deployment::demo:apps/demo-app"].dependencies == []


def test_secret_data_is_a_secret_and_keep_policy_retains_on_delete():
    kids, _ = expand()
    token = kids["kubernetes:core/v1:Secret::demo:apps/demo-token"].inputs["stringData"]
    assert token[ce._special_sig_key] == ce._special_secret_sig
    assert kids["kubernetes:core/v1:ConfigMap::demo:apps/demo-settings"].options == {"retainOnDelete": True}
    assert kids["kubernetes:apps/v1:Deployment::demo:apps/demo-app"].options == {}


def test_rendered_for_the_stack_kubernetes_version_and_the_installed_crds():
    kids, _ = expand()
    data = kids["kubernetes:core/v1:ConfigMap::demo:apps/demo-settings"].inputs["data"]
    assert data["kubeVersion"] == "v1.33.0"
    assert data["hasWidgets"] == "true"


def test_skip_crds_leaves_the_crds_folder_out():
    kids, report = expand(skipCrds=True)
    assert not any("CustomResourceDefinition" in urn for urn in kids)
    assert report.crds == 0


def test_an_enabled_subchart_brings_its_crds_and_objects_a_disabled_one_does_not():
    kids, _ = expand({"extras": {"enabled": True}})
    assert "kubernetes:apiextensions.k8s.io/v1:CustomResourceDefinition::demo:gadgets.demo.example.test" in kids
    gadget = kids["kubernetes:demo.example.test/v1:Gadget::demo:demo-gadget"]
    assert gadget.inputs["metadata"].get("namespace") is None  # the Gadget CRD says Cluster
    off, _ = expand()
    assert not any("gadget" in urn for urn in off)


def test_secret_values_are_masked_in_children():
    secret = {ce._special_sig_key: ce._special_secret_sig, "value": "s3cr3t-value"}
    kids, _ = expand({"message": secret})
    assert kids["kubernetes:core/v1:ConfigMap::demo:apps/demo-settings"].inputs["data"]["message"] == ce.SECRET_MASK


def test_a_value_the_chart_ignores_fails_and_names_the_key():
    with pytest.raises(ce.ChartRenderError, match=r"chart demo \(demo 1.2.3\) ignores values the program sets: replicaz"):
        expand({"replicaz": 3})


def test_values_the_chart_declares_or_reads_pass():
    kids, _ = expand({"replicas": 2, "podLabels": {"team": "agents"}})
    pod = kids["kubernetes:apps/v1:Deployment::demo:apps/demo-app"].inputs["spec"]["template"]
    assert pod["metadata"]["labels"] == {"app": "demo", "team": "agents"}


def test_a_chart_that_fails_to_render_names_the_chart_and_helms_message():
    with pytest.raises(ce.ChartRenderError, match=r"chart demo \(demo 1.2.3\) failed to render: .*message must be set"):
        expand({"message": None})


def test_a_helm_warning_about_our_values_fails_the_render():
    # A mapping where the chart's default is a string: Helm says so only on stderr, then renders on.
    with pytest.raises(ce.ChartRenderError, match=r"rendered with warnings about our values: .*skipped value for demo.message"):
        expand({"message": {"text": "hi"}})


def test_a_chart_that_is_not_vendored_is_refused():
    with pytest.raises(ce.ChartRenderError, match="is not a vendored chart folder"):
        ce.expand([chart(chart="vault")], "1.33", make_urn)


def test_the_engine_urn_leaves_the_root_stack_type_out():
    root = "urn:pulumi:prod::somaagenthub::pulumi:pulumi:Stack::somaagenthub-prod"
    core = make_urn(root, "somaagenthub:phase:Core", "core")
    assert core == "urn:pulumi:prod::somaagenthub::somaagenthub:phase:Core::core"
    assert make_urn(core, "kubernetes:core/v1:Namespace", "core") == (
        "urn:pulumi:prod::somaagenthub::somaagenthub:phase:Core$kubernetes:core/v1:Namespace::core")
