"""The decision points' records mapped to audit events (components/governance/compliance/events.py), and every
mapped event put through the contract's own SQL in chdb: accepted into audit.events, nothing in ingest_errors.

Records are built the way their emitters write them: Gatekeeper's Events with the annotations of
pkg/webhook/policy.go and pkg/audit/manager.go (v3.23), OPA-Envoy's console decision log entries with the
result components/mesh/edge/rego/authz.rego returns, Argo CD's OperationCompleted Events.
"""
from __future__ import annotations

import base64
import json

import pytest

from components.governance.compliance import events
from tests.governance.audit_pipeline import Pipeline, ago, as_message, rfc3339


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    pipe = Pipeline(str(tmp_path_factory.mktemp("chdb-events")))
    yield pipe
    pipe.close()


def gatekeeper_event(reason: str, process: str, constraint: str, *, uid: str = "5c0e8a52-1d8b-4c1e-9f53-0c8f3a1b2d44",
                     namespace: str = "soma-agents", username: str = "system:serviceaccount:soma-agents:deployer",
                     message: str = "container app has an image without a digest") -> dict:
    annotations = {
        "process": process,
        "event_type": "violation" if process == "admission" else "violation_audited",
        "constraint_group": "constraints.gatekeeper.sh",
        "constraint_api_version": "v1beta1",
        "constraint_kind": "K8sImageDigests",
        "constraint_name": constraint,
        "constraint_action": "deny",
        "resource_group": "",
        "resource_api_version": "v1",
        "resource_kind": "Pod",
        "resource_namespace": namespace,
        "resource_name": "app-7d9f",
    }
    if process == "admission":
        annotations["request_username"] = username
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": "app-7d9f.18a1", "namespace": "soma-admission", "uid": uid, "annotations": annotations,
                     "creationTimestamp": rfc3339(ago(minutes=3))},
        "reason": reason,
        "message": f"Admission webhook \"validation.gatekeeper.sh\" denied request, Resource Namespace: {namespace}, "
                   f"Constraint: {constraint}, Message: {message}",
        "lastTimestamp": rfc3339(ago(minutes=2)).replace(".000Z", "Z"),
        "count": 1,
        "type": "Warning",
        "involvedObject": {"kind": "Pod", "namespace": namespace, "name": "app-7d9f"},
    }


def token(claims: dict) -> str:
    def part(value: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")
    return f"{part({'alg': 'RS256'})}.{part(claims)}.c2lnbmF0dXJl"


def opa_entry(allowed: bool, *, tenant: str = "acme", traceparent: str | None = None) -> dict:
    headers = {"authorization": f"Bearer {token({'sub': 'users/42', 'tenant': tenant})}", "x-soma-tenant": tenant}
    if traceparent:
        headers["traceparent"] = traceparent
    result = ({"allowed": True, "headers": {"x-soma-authz-route": "orchestrator-runs"}} if allowed else
              {"allowed": False, "headers": {"x-soma-authz-route": "orchestrator-runs"}, "http_status": 403, "body": "",
               "response_headers_to_add": {"x-soma-authz-reason": "token lacks a scope this method needs"}})
    return {
        "decision_id": "4f9b1d6e-2f2a-4c55-8a3c-1b5e8c7d9a10" if allowed else "0a7c3e2b-9d41-4b6f-a8e5-2c9d7f1e3b20",
        "labels": {"id": "opa-1", "version": "1.16.2"},
        "msg": "Decision Log",
        "path": "soma/edge/authz/result",
        "input": {"attributes": {"request": {"http": {"method": "DELETE", "host": "api.dev.soma.local", "path": "/v1/runs/9?x=1",
                                                      "headers": headers}}}},
        "result": result,
        "timestamp": rfc3339(ago(minutes=1)).replace("Z", "123456Z"),  # OPA writes nanoseconds
    }


def argocd_event(message: str, uid: str) -> dict:
    return {
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"name": "agents.18a2", "namespace": "soma-gitops", "uid": uid},
        "involvedObject": {"kind": "Application", "namespace": "soma-gitops", "name": "agents-dev"},
        "reason": "OperationCompleted", "message": message, "lastTimestamp": rfc3339(ago(minutes=4)), "count": 1,
    }


SAMPLES = {
    "gatekeeper admission denial": lambda: events.from_gatekeeper_event(gatekeeper_event("FailedAdmission", "admission", "soma-imagedigests")),
    "gatekeeper dry-run": lambda: events.from_gatekeeper_event(gatekeeper_event("DryrunViolation", "admission", "soma-run-as-non-root",
                                                                               uid="7a1d2e3f-0000-4000-8000-000000000001")),
    "gatekeeper audit": lambda: events.from_gatekeeper_event(gatekeeper_event("AuditViolation", "audit", "soma-catalog-images",
                                                                             uid="7a1d2e3f-0000-4000-8000-000000000002")),
    "edge deny": lambda: events.from_opa_decision(opa_entry(False)),
    "edge allow with trace": lambda: events.from_opa_decision(opa_entry(True, traceparent="00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")),
    "argocd sync": lambda: events.from_argocd_event(argocd_event("Sync operation to 1a2b3c succeeded", "9f0e-1")),
    "argocd unsigned": lambda: events.from_argocd_event(argocd_event(
        "Sync operation to 4d5e6f failed: ComparisonError: Target revision 4d5e6f is not signed with a trusted GnuPG key", "9f0e-2")),
}


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_every_mapped_record_is_accepted_by_the_contract_sql(pipeline, name):
    event = SAMPLES[name]()
    message = events.to_message(event)
    pipeline.deliver(message)
    assert pipeline.errors_for(message) == []
    assert pipeline.accepted(event["event_id"]) == 1


def test_the_check_is_real_a_broken_mapping_is_refused(pipeline):
    event = SAMPLES["gatekeeper admission denial"]()
    event["event_id"] = "11111111-2222-4333-8444-555555555555"
    event["attributes"]["count"] = 3  # numbers are not allowed in attributes
    message = as_message(event)
    pipeline.deliver(message)
    assert pipeline.accepted(event["event_id"]) == 0
    assert [e.split(":")[0] for e in pipeline.errors_for(message)] == ["attributes"]


def test_gatekeeper_events_name_the_gate_rule_and_what_was_enforced():
    denial = SAMPLES["gatekeeper admission denial"]()
    assert (denial["decision"], denial["action"], denial["source"]) == ("deny", "admission.review", "gatekeeper")
    assert denial["attributes"]["policy.rule"] == "digest-pinned-images"
    assert denial["attributes"]["compliance.category"] == "image.unpinned"
    assert denial["attributes"]["enforcement"] == "deny" and denial["attributes"]["k8s.namespace"] == "soma-agents"
    assert denial["actor"] == {"type": "service", "id": "system:serviceaccount:soma-agents:deployer"}
    assert SAMPLES["gatekeeper dry-run"]()["attributes"]["enforcement"] == "dryrun"
    assert SAMPLES["gatekeeper dry-run"]()["attributes"]["policy.rule"] == "non-root"
    audit = SAMPLES["gatekeeper audit"]()
    assert (audit["action"], audit["attributes"]["enforcement"], audit["actor"]["type"]) == ("admission.audit", "audit", "system")
    assert events.from_gatekeeper_event({**gatekeeper_event("FailedAdmission", "admission", "x"), "reason": "Scheduled"}) is None


def test_the_same_record_read_twice_is_the_same_event():
    first, again = SAMPLES["gatekeeper admission denial"](), SAMPLES["gatekeeper admission denial"]()
    assert first["event_id"] == again["event_id"]
    recounted = gatekeeper_event("FailedAdmission", "admission", "soma-imagedigests")
    recounted["count"] = 2  # Kubernetes folds a repeat into the same Event with a higher count: a new decision
    assert events.from_gatekeeper_event(recounted)["event_id"] != first["event_id"]


def test_the_edge_event_keeps_the_tenant_and_trace_and_never_the_token():
    entry = opa_entry(True, traceparent="00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
    event = events.from_opa_decision(entry)
    assert event["tenant"] == "acme" and event["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert event["actor"] == {"type": "user", "id": "users/42"} and event["decision"] == "allow"
    bearer = entry["input"]["attributes"]["request"]["http"]["headers"]["authorization"].split(" ")[1]
    assert bearer not in events.to_message(event) and bearer.split(".")[1] not in events.to_message(event)
    denied = events.from_opa_decision(opa_entry(False, tenant="Not A Label"))
    assert denied["decision"] == "deny" and denied["reason"] == "token lacks a scope this method needs"
    assert denied["tenant"] == "platform"


def test_argocd_sync_of_an_unsigned_revision_is_a_deny():
    assert SAMPLES["argocd sync"]()["decision"] == "allow"
    refused = SAMPLES["argocd unsigned"]()
    assert refused["decision"] == "deny" and "not signed" in refused["reason"]
    assert refused["attributes"]["policy.rule"] == "signed-sources"


def test_the_backfill_command_maps_a_kubectl_list_and_skips_what_is_not_a_decision(pipeline, tmp_path):
    import subprocess
    import sys

    from tools.render import ROOT

    listing = {"apiVersion": "v1", "kind": "List", "items": [
        {**gatekeeper_event("FailedAdmission", "admission", "soma-imagedigests", uid="cafe0000-0000-4000-8000-000000000001"), "kind": "Event"},
        {"apiVersion": "v1", "kind": "Event", "reason": "Scheduled", "metadata": {"uid": "x"}, "message": "assigned"},
        argocd_event("Sync operation to 1a2b succeeded", "cafe-2"),
    ]}
    result = subprocess.run([sys.executable, "-m", "components.governance.compliance.events"], input=json.dumps(listing, indent=1),
                            capture_output=True, text=True, cwd=ROOT, check=True)
    lines = result.stdout.splitlines()
    assert len(lines) == 2
    for line in lines:
        tenant, message = line.split("\t", 1)
        assert tenant == json.loads(message)["tenant"] == "platform"
        pipeline.deliver(message)
        assert pipeline.errors_for(message) == [] and pipeline.accepted(json.loads(message)["event_id"]) == 1
