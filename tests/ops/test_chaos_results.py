"""tools.ops.chaos_results reads a Workflow's status as Chaos Mesh 2.8.2 writes it and records the chaos result.

The input is built in the CRDs' shape (the Workflow and WorkflowNode objects validate against
charts/chaos-mesh/crds, status included) with the conditions the 2.8.2 controllers set
(pkg/workflow/controllers: statuscheck_reconciler.go, abort_workflow_reconciler.go): a green run, a run whose
Kafka check exceeded its failure threshold and aborted, and one still running. No cluster here: running it
against a cluster is the kubectl pipeline in docs/chaos.md.
"""
from __future__ import annotations

import io
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml

from components.ops import experiments as ex
from tests.verification import installed_crd_validators, validate
from tools.ops import chaos_results
from tools.ops.results import require_green

CRDS = Path(__file__).resolve().parents[2] / "charts" / "chaos-mesh" / "crds"
RELEASE = "sha256:" + "ab" * 32
NAMESPACES = {"core.secrets": "soma-secrets", "core.data": "soma-data", "agents.agents": "soma-agents",
              "governance.governance": "soma-governance"}
NAME = ex.run_name(RELEASE)


def workflow_objects(last_template: str | None = None, abort_at: str | None = None, finished: bool = True) -> list[dict]:
    """The Workflow and one node per template that ran, in order, up to ``last_template``."""
    spec = ex.workflow_spec(ex.EXPERIMENTS, NAMESPACES, "http://kps-prometheus.soma-observability.svc.cluster.local:9090", "2h")
    status = {"entryNode": "resilience-x1", "startTime": "2026-11-29T18:00:00Z",
              "conditions": [{"type": "Scheduled", "status": "True", "reason": ""},
                             {"type": "Accomplished", "status": "True" if finished else "False", "reason": ""}]}
    if finished:
        status["endTime"] = "2026-11-29T18:41:07Z"
    annotations = {chaos_results.RELEASE_ANNOTATION: RELEASE}
    if abort_at:
        annotations[chaos_results.ABORT_ANNOTATION] = "true"
    flow = {"apiVersion": ex.API_VERSION, "kind": "Workflow",
            "metadata": {"name": NAME, "namespace": "soma-chaos", "annotations": annotations}, "spec": spec, "status": status}
    nodes = []
    order = spec["templates"][0]["children"]
    ran = order if last_template is None else order[: order.index(last_template) + 1]
    for index, template_name in enumerate(["resilience", *ran]):
        template = next(t for t in spec["templates"] if t["name"] == template_name)
        conditions = [{"type": "Accomplished", "status": "True", "reason": "StatusCheckCompleted" if template["templateType"] == "StatusCheck" else ""}]
        if template["templateType"] == "StatusCheck":
            aborted = template_name == abort_at
            conditions = [{"type": "Accomplished", "status": "True", "reason": "StatusCheckCompleted"},
                          {"type": "Aborted", "status": "True" if aborted else "False",
                           "reason": "StatusCheckNotExceedSuccessThreshold" if aborted else ""}]
        if template_name == "resilience" and abort_at:
            conditions = [{"type": "Accomplished", "status": "True", "reason": ""},
                          {"type": "Aborted", "status": "True", "reason": "WorkflowAborted"}]
        nodes.append({"apiVersion": ex.API_VERSION, "kind": "WorkflowNode",
                      "metadata": {"name": f"{template_name}-x{index}", "namespace": "soma-chaos",
                                   "labels": {chaos_results.WORKFLOW_LABEL: NAME}},
                      "spec": {"templateName": template_name, "workflowName": NAME, "type": template["templateType"],
                               "startTime": "2026-11-29T18:00:00Z"},
                      "status": {"conditions": conditions}})
    return [flow, {"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": ""}, "items": nodes}]


def kubectl_output(objects: list[dict]) -> str:
    return "\n".join(json.dumps(o, indent=4) for o in objects)


@pytest.fixture(scope="module")
def validators():
    docs = [yaml.load((CRDS / f"chaos-mesh.org_{n}.yaml").read_text(), Loader=yaml.CSafeLoader) for n in ("workflows", "workflownodes")]
    return installed_crd_validators(docs)


def test_the_inputs_are_in_the_crds_shape(validators):
    objects = chaos_results.documents(kubectl_output(workflow_objects(abort_at="kafka-broker-kill-check", last_template="kafka-broker-kill-check")))
    assert {o["kind"] for o in objects} == {"Workflow", "WorkflowNode"}
    for obj in objects:
        assert validate(obj, "1.33", validators) == [], obj["metadata"]["name"]


def test_a_green_run_is_written_and_lets_a_promotion_pass(tmp_path):
    stage = chaos_results.result(chaos_results.documents(kubectl_output(workflow_objects())), "staging")
    assert stage.passed and stage.release == RELEASE and stage.kind == "chaos"
    assert stage.source == f"Chaos Mesh Workflow soma-chaos/{NAME}"
    assert [c.name for c in stage.checks] == ["steady-state", *[f"{e.name}-check" for e in ex.EXPERIMENTS]]
    assert all(c.observed == "held" for c in stage.checks)
    chaos_results.write(tmp_path, stage)
    now = datetime(2026, 11, 29, 19, 0, tzinfo=timezone.utc)
    assert require_green(tmp_path, "staging", "chaos", RELEASE, timedelta(days=2), now).passed


def test_an_aborted_run_names_the_failed_hypothesis_and_what_never_ran(tmp_path, monkeypatch, capsys):
    text = kubectl_output(workflow_objects(last_template="kafka-broker-kill-check", abort_at="kafka-broker-kill-check"))
    monkeypatch.setattr("sys.stdin", io.StringIO(text))
    assert chaos_results.main(["--stack", "staging", "--root", str(tmp_path)]) == 2
    stage = json.loads((tmp_path / "promotions/results/staging/chaos.json").read_text())
    observed = {c["name"]: (c["passed"], c["observed"]) for c in stage["checks"]}
    assert stage["passed"] is False
    assert observed["postgres-primary-failover-check"] == (True, "held")
    assert observed["kafka-broker-kill-check"][0] is False and "failure threshold" in observed["kafka-broker-kill-check"][1]
    assert observed["orchestrator-kill-check"] == (False, "not run (the Workflow stopped before it)")
    assert observed["workflow"] == (False, "aborted")
    assert "FAIL  kafka-broker-kill-check" in capsys.readouterr().out


def test_a_running_workflow_writes_nothing(tmp_path, capsys):
    status = tmp_path / "status.json"
    status.write_text(kubectl_output(workflow_objects(last_template="vault-active-kill", finished=False)))
    assert chaos_results.main(["--stack", "staging", "--status", str(status), "--root", str(tmp_path)]) == 1
    assert "has not finished" in capsys.readouterr().err
    assert not (tmp_path / "promotions").exists()


@pytest.mark.parametrize("objects,message", [
    ([], "no Workflow in the input"),
    (workflow_objects()[:1], "no WorkflowNode of resilience-"),
    ([{**workflow_objects()[0], "metadata": {"name": NAME, "namespace": "soma-chaos"}}], "has no somaagenthub.io/release annotation"),
])
def test_incomplete_input_is_refused_naming_what_is_missing(objects, message):
    with pytest.raises(chaos_results.StatusError, match=message):
        chaos_results.result(chaos_results.documents(kubectl_output(objects)), "staging")


def test_text_that_is_not_json_is_refused():
    with pytest.raises(chaos_results.StatusError, match="not kubectl's JSON output"):
        chaos_results.documents("Error from server (NotFound): workflows.chaos-mesh.org not found")
