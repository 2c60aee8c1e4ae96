"""The compliance dashboard's queries, run in chdb against sample events that went through the contract's SQL.

Samples are mapped by components/governance/compliance/events.py from records shaped like Gatekeeper's, OPA's
and Argo CD's (see test_compliance_events.py), plus one unsigned-image denial written as a contract event; one
message is delivered twice (Kafka is at-least-once) and one falls outside the dashboard's time range. Each
panel's SQL is the shipped text with the plugin's macros expanded as the plugin expands them.
"""
from __future__ import annotations

import copy
import json
from collections import Counter
from datetime import timedelta

import pytest

from components.governance.compliance import events, grafana_files
from policies.config import load_config_file, stack_config_path
from tests.conftest import STACKS
from tests.governance.audit_pipeline import Pipeline, ago, expand_macros, now, rfc3339
from tests.governance.test_compliance_events import argocd_event, gatekeeper_event, opa_entry

RANGE_HOURS = 6


def unsigned_image_event() -> dict:
    return {
        "event_id": "0192f0c1-8d11-7a02-8c55-6e0f2b9d1e99",
        "occurred_at": rfc3339(ago(minutes=50)),
        "actor": {"type": "service", "id": "system:serviceaccount:soma-ops:deployer"},
        "tenant": "platform",
        "action": "admission.review",
        "resource": {"type": "k8s.pod", "id": "soma-ops/report-1"},
        "decision": "deny",
        "reason": "image ghcr.io/acme/report@sha256:... has no valid signature from its catalog signer",
        "trace_id": "5bf92f3577b34da6a3ce929d0e0e4736",
        "source": "policy-controller",
        "attributes": {"policy.engine": "policy-controller", "policy.rule": "signed-images", "enforcement": "deny",
                       "k8s.namespace": "soma-ops", "compliance.category": "image.unsigned"},
    }


def sample_messages() -> list[str]:
    unpinned = [events.from_gatekeeper_event(gatekeeper_event("FailedAdmission", "admission", "soma-imagedigests",
                                                              uid=f"0000000{i}-aaaa-4bbb-8ccc-dddddddddddd"))
                for i in range(3)]
    dryrun = [events.from_gatekeeper_event(gatekeeper_event("DryrunViolation", "admission", "soma-run-as-non-root",
                                                            uid=f"1000000{i}-aaaa-4bbb-8ccc-dddddddddddd", namespace="soma-ops"))
              for i in range(2)]
    old = gatekeeper_event("FailedAdmission", "admission", "soma-imagedigests", uid="20000000-aaaa-4bbb-8ccc-dddddddddddd")
    old["lastTimestamp"] = rfc3339(ago(days=2))
    edge_denials = [events.from_opa_decision({**opa_entry(False), "decision_id": f"edge-{i}"}) for i in range(2)]
    messages = [events.to_message(e) for e in [*unpinned, *dryrun, *edge_denials, events.from_gatekeeper_event(old),
                                               events.from_opa_decision(opa_entry(True)),
                                               events.from_argocd_event(argocd_event("Sync operation to 1a2b succeeded", "a-1")),
                                               unsigned_image_event()]]
    return [*messages, messages[0]]  # the first denial is delivered again


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    pipe = Pipeline(str(tmp_path_factory.mktemp("chdb-dashboards")))
    for message in sample_messages():
        pipe.deliver(message)
    pipe.deliver('{"event_id": "not-a-uuid"}')  # refused by the contract: one row in ingest_errors
    yield pipe
    pipe.close()


@pytest.fixture(scope="module")
def dashboard():
    return grafana_files.load_dashboards(load_config_file(stack_config_path("prod")))["compliance"]


def panel_sql(dashboard: dict, title: str) -> str:
    (panel,) = [p for p in dashboard["panels"] if p["title"] == title]
    return panel["targets"][0]["rawSql"]


def run(pipeline, sql: str) -> list[dict]:
    return pipeline.rows(expand_macros(sql, now() - timedelta(hours=RANGE_HOURS), now() + timedelta(minutes=5)))


def totals(rows: list[dict], key: str, value: str) -> dict[str, int]:
    counted: Counter = Counter()
    for row in rows:
        counted[row[key]] += int(row[value])
    return dict(counted)


def test_the_samples_landed_once_each_in_audit_events(pipeline):
    assert int(pipeline.query("SELECT count() FROM audit.events").strip()) == 12  # 11 events, one delivered twice
    assert int(pipeline.query("SELECT uniqExact(event_id) FROM audit.events").strip()) == 11


def test_denials_by_rule(pipeline, dashboard):
    rows = run(pipeline, panel_sql(dashboard, "Denials by rule"))
    assert totals(rows, "rule", "denials") == {"digest-pinned-images": 3, "non-root": 2, "edge-authz": 2, "signed-images": 1}
    assert all(set(row) == {"time", "rule", "denials"} for row in rows)


def test_a_query_without_the_deduplication_would_count_a_redelivery_twice(pipeline, dashboard):
    wrong = panel_sql(dashboard, "Denials by rule").replace(" LIMIT 1 BY event_id", "")
    assert wrong != panel_sql(dashboard, "Denials by rule")
    assert totals(run(pipeline, wrong), "rule", "denials")["digest-pinned-images"] == 4


def test_denials_by_namespace(pipeline, dashboard):
    rows = run(pipeline, panel_sql(dashboard, "Denials by namespace"))
    assert totals(rows, "namespace", "denials") == {"soma-agents": 3, "soma-ops": 3, "(no namespace)": 2}


def test_denials_by_tenant(pipeline, dashboard):
    rows = run(pipeline, panel_sql(dashboard, "Denials by tenant"))
    assert totals(rows, "tenant", "denials") == {"platform": 6, "acme": 2}


def test_top_denied_rules(pipeline, dashboard):
    rows = run(pipeline, panel_sql(dashboard, "Top denied rules"))
    assert [(r["rule"], r["enforcement"], int(r["denials"])) for r in rows] == [
        ("digest-pinned-images", "deny", 3), ("edge-authz", "", 2), ("non-root", "dryrun", 2), ("signed-images", "deny", 1)]


def test_unsigned_or_unpinned_image_attempts(pipeline, dashboard):
    series = run(pipeline, panel_sql(dashboard, "Unsigned or unpinned image attempts"))
    assert totals(series, "category", "attempts") == {"image.unpinned": 3, "image.unsigned": 1}
    table = run(pipeline, panel_sql(dashboard, "Image attempts (latest 100)"))
    assert len(table) == 4
    assert [r["occurred_at"] for r in table] == sorted((r["occurred_at"] for r in table), reverse=True)
    assert {r["rule"] for r in table} == {"digest-pinned-images", "signed-images"}


def test_events_refused_by_the_contract(pipeline, dashboard):
    (row,) = run(pipeline, panel_sql(dashboard, "Events refused by the audit contract"))
    assert int(row["refused"]) == 1


@pytest.mark.parametrize("stack", STACKS)
def test_the_waivers_panel_lists_the_stacks_waivers(pipeline, stack):
    config = load_config_file(stack_config_path(stack))
    board = grafana_files.load_dashboards(config)["compliance"]
    rows = run(pipeline, panel_sql(board, "Waivers in force"))
    expected = [entry for rule in config.values() if isinstance(rule, dict) for entry in rule.get("allowedWaivers", [])]
    assert len(rows) == len(expected) > 0
    assert Counter((r["rule"], r["resource"], r["reason"]) for r in rows) == Counter(
        (rule, e["resource"], e["reason"]) for rule, c in config.items() if isinstance(c, dict) for e in c.get("allowedWaivers", []))


def test_a_waiver_reason_with_quotes_survives_the_query(pipeline):
    config = {"non-root": {"allowedWaivers": [{"resource": "Deployment/x/y", "finding": "runAsNonRoot",
                                               "reason": "it's the \\ vendor's \"image\"; DROP TABLE audit.events"}]}}
    (row,) = pipeline.rows(grafana_files.waivers_query(config))
    assert row == {"rule": "non-root", "resource": "Deployment/x/y", "finding": "runAsNonRoot",
                   "reason": "it's the \\ vendor's \"image\"; DROP TABLE audit.events"}
    assert pipeline.rows(grafana_files.waivers_query({})) == []


def test_the_loader_refuses_a_panel_that_would_count_redeliveries(tmp_path):
    source = grafana_files.DASHBOARDS / "compliance.json"
    board = json.loads(source.read_text())
    broken = copy.deepcopy(board)
    broken["panels"][0]["targets"][0]["rawSql"] = broken["panels"][0]["targets"][0]["rawSql"].replace(" LIMIT 1 BY event_id", "")
    (tmp_path / "compliance.json").write_text(json.dumps(broken))
    with pytest.raises(ValueError, match="without 'LIMIT 1 BY event_id'"):
        grafana_files.load_dashboards({}, tmp_path)
    other = copy.deepcopy(board)
    other["panels"][1]["datasource"] = {"type": "prometheus", "uid": "prometheus"}
    (tmp_path / "compliance.json").write_text(json.dumps(other))
    with pytest.raises(ValueError, match="must query the ClickHouse data source"):
        grafana_files.load_dashboards({}, tmp_path)


@pytest.mark.parametrize("stack", STACKS)
def test_the_dashboard_reaches_grafana_as_a_labelled_config_map(plans, stack):
    from tests.helpers import objects

    (config_map,) = [o for o in objects(plans[stack], "ConfigMap") if o["metadata"]["name"] == "grafana-dashboard-compliance"]
    assert config_map["metadata"]["namespace"] == "soma-observability"
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    board = json.loads(config_map["data"]["grafana-dashboard-compliance.json"])
    assert board["uid"] == "soma-compliance"
    assert all(t["datasource"]["uid"] == "clickhouse" for p in board["panels"] for t in p["targets"])
    assert "<<" not in config_map["data"]["grafana-dashboard-compliance.json"]
