"""The resilience Workflow as Chaos Mesh 2.8.2 would take it, and the bounds each experiment keeps.

The Workflow is validated against the Workflow CRD the plan installs (charts/chaos-mesh/crds, strict: an unknown
field is refused, as the API server's field validation does), without rendering a stack.
"""
from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest
import yaml

from components.catalog import load as load_catalog
from components.core.data import kafka, postgres, qdrant
from components.governance import openfga
from components.ops import experiments as ex
from tests.verification import installed_crd_validators, validate
from tools.ops.release import release_digests, release_id

ROOT = Path(__file__).resolve().parents[2]
CRDS = ROOT / "charts" / "chaos-mesh" / "crds"
NAMESPACES = {"core.secrets": "soma-secrets", "core.data": "soma-data", "agents.agents": "soma-agents",
              "governance.governance": "soma-governance"}
PROMETHEUS = "http://kps-prometheus.soma-observability.svc.cluster.local:9090"
EVERYTHING = {"vault", "postgres", "kafka", "qdrant", "openfga", "gateway", "memory", "orchestrator"}


@pytest.fixture(scope="module")
def validators():
    return installed_crd_validators([yaml.load((CRDS / "chaos-mesh.org_workflows.yaml").read_text(), Loader=yaml.CSafeLoader)])


def workflow(spec: dict) -> dict:
    return {"apiVersion": ex.API_VERSION, "kind": "Workflow", "metadata": {"name": "resilience-0123456789ab", "namespace": "soma-chaos"},
            "spec": spec}


@pytest.fixture(scope="module")
def spec() -> dict:
    return ex.workflow_spec(ex.EXPERIMENTS, NAMESPACES, PROMETHEUS, "2h")


def test_the_workflow_is_valid_against_the_installed_crd(validators, spec):
    assert validate(workflow(spec), "1.33", validators) == []


def test_a_misspelled_field_is_refused_by_the_same_validation(validators, spec):
    broken = copy.deepcopy(spec)
    broken["templates"][1]["abortWithStatusChecks"] = True
    assert any("abortWithStatusChecks" in p for p in validate(workflow(broken), "1.33", validators))


def test_steady_state_first_then_each_fault_followed_by_its_check(spec):
    entry = spec["templates"][0]
    assert (spec["entry"], entry["templateType"], entry["deadline"]) == ("resilience", "Serial", "2h")
    expected = ["steady-state"] + [n for e in ex.EXPERIMENTS for n in (e.name, f"{e.name}-check")]
    assert entry["children"] == expected
    kinds = {t["name"]: t["templateType"] for t in spec["templates"][1:]}
    assert all(kinds[n] == "StatusCheck" for n in expected[::2]) and all(kinds[n] in ("PodChaos", "NetworkChaos") for n in expected[1::2])


def test_every_check_aborts_the_workflow_when_its_hypothesis_does_not_hold(spec):
    checks = [t for t in spec["templates"] if t["templateType"] == "StatusCheck"]
    assert len(checks) == len(ex.EXPERIMENTS) + 1
    for check in checks:
        status = check["statusCheck"]
        assert check["abortWithStatusCheck"] is True and status["mode"] == "Synchronous"
        assert status["failureThreshold"] >= 2 and status["successThreshold"] >= 2
        assert status["http"]["criteria"] == {"statusCode": "200"}
        assert status["http"]["url"].startswith(f"{PROMETHEUS}/api/v1/query?query=vector%281%29")


def test_every_fault_has_a_bounded_blast_radius(spec):
    faults = [t for t in spec["templates"] if t["templateType"] in ("PodChaos", "NetworkChaos")]
    assert len(faults) == len(ex.EXPERIMENTS)
    for fault in faults:
        body = fault["podChaos" if fault["templateType"] == "PodChaos" else "networkChaos"]
        assert body["mode"] == "one", fault["name"]
        assert len(body["selector"]["namespaces"]) == 1 and body["selector"]["labelSelectors"], fault["name"]
        assert re.fullmatch(r"[0-9]+[sm]", fault["deadline"]), fault["name"]
        if fault["templateType"] == "NetworkChaos":
            assert body["duration"] == fault["deadline"]
            assert len(body["target"]["selector"]["namespaces"]) == 1 and body["target"]["selector"]["labelSelectors"]


def test_the_experiments_select_pods_by_the_labels_the_platform_gives_them():
    by_name = {e.name: e for e in ex.EXPERIMENTS}
    assert postgres.INSTANCE_LABELS.items() <= by_name["postgres-primary-failover"].target.pods.items()
    assert by_name["postgres-primary-failover"].target.pods["cnpg.io/instanceRole"] == "primary"
    assert kafka.KAFKA_LABELS.items() <= by_name["kafka-broker-kill"].target.pods.items()
    assert by_name["gateway-openfga-partition"].peer.pods.items() <= openfga.POD_LABELS.items()
    assert by_name["memory-qdrant-delay"].peer.pods.items() <= qdrant.POD_LABELS.items()
    assert {by_name[n].target.pods["vault-active"] for n in ("vault-standby-kill", "vault-active-kill")} == {"false", "true"}


def test_hypotheses_read_only_metrics_the_platform_documents():
    documented = (ROOT / "docs" / "observability-metrics.md").read_text()
    for experiment in ex.EXPERIMENTS:
        names = set(re.findall(r"\b([a-z][a-z0-9_]+)\{", experiment.hypothesis))
        assert names, experiment.name
        for name in names:
            base = re.sub(r"_(bucket|count|sum)$", "", name)
            assert f"`{name}`" in documented or f"`{base}`" in documented, (experiment.name, name)


def test_a_component_that_is_not_deployed_leaves_its_experiments_out():
    without_agents = ex.selected(ex.EXPERIMENTS, EVERYTHING - {"gateway", "memory", "orchestrator"})
    assert [e.name for e in without_agents] == ["vault-standby-kill", "vault-active-kill", "postgres-primary-failover", "kafka-broker-kill"]
    assert "gateway-openfga-partition" not in [e.name for e in ex.selected(ex.EXPERIMENTS, EVERYTHING - {"openfga"})]
    with pytest.raises(ValueError, match="no experiment"):
        ex.workflow_spec((), NAMESPACES, PROMETHEUS, "2h")


def test_a_hypothesis_naming_a_namespace_the_stack_lacks_is_an_error():
    with pytest.raises(KeyError, match="agents.agents"):
        ex.workflow_spec(ex.EXPERIMENTS, {k: v for k, v in NAMESPACES.items() if k != "agents.agents"}, PROMETHEUS, "2h")


def test_each_promoted_release_is_a_new_workflow_name():
    catalog = load_catalog()
    digests = release_digests(catalog)
    first = ex.run_name(release_id(digests))
    changed = dict(digests, **{"image/chaos-mesh-daemon": "sha256:" + "0" * 64})
    assert re.fullmatch(r"resilience-[0-9a-f]{12}", first)
    assert ex.run_name(release_id(changed)) != first
    assert ex.run_name(release_id(dict(digests))) == first
    with pytest.raises(ValueError, match="not a release id"):
        ex.run_name("v1.2.3")


def test_each_local_analogue_named_by_an_experiment_exists():
    named = [e.local_test for e in ex.EXPERIMENTS if e.local_test]
    assert len(named) == 2
    for test in named:
        assert (ROOT / test.split("::")[0]).is_file(), test
