"""The Grafana-managed compliance alert rules: their file shape, and their ClickHouse queries run in chdb.

Each rule's query is the shipped text with the stack's thresholds filled in; it must return a value above 0
(fire) on a spike sample and exactly 0 on baseline samples, every sample having gone through the contract's
SQL first. Redeliveries of the same events must not make a spike (the query deduplicates by event_id; the same
query without the deduplication would fire, which the test shows).
"""
from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from components import settings as platform_settings
from components.governance.compliance import alert_values, grafana_files
from tests.conftest import STACKS
from tests.governance.audit_pipeline import Pipeline, as_message, deliver_many, now, rfc3339
from tools.render import stack_config

DEV = platform_settings.parse(stack_config("dev"), "dev").governance.compliance
WINDOW = DEV.spike_window_minutes
RUNBOOK = "docs/runbooks/governance.md#"


def rules(values: dict[str, int]) -> dict[str, dict]:
    return {r["uid"]: r for doc in grafana_files.load_alert_files(values).values() for g in doc["groups"] for r in g["rules"]}


def query_of(rule: dict) -> str:
    (query,) = [d for d in rule["data"] if d["datasourceUid"] == "clickhouse"]
    return query["model"]["rawSql"]


def denial(minutes_ago: float, *, category: str = "workload", enforcement: str = "deny", event_id: str | None = None) -> str:
    return as_message({
        "event_id": event_id or str(uuid.uuid4()),
        "occurred_at": rfc3339(now() - timedelta(minutes=minutes_ago)),
        "actor": {"type": "service", "id": "system:serviceaccount:soma-agents:deployer"},
        "tenant": "platform",
        "action": "admission.review",
        "resource": {"type": "k8s.pod", "id": "soma-agents/app"},
        "decision": "deny",
        "reason": "refused by policy",
        "trace_id": uuid.uuid4().hex,
        "source": "gatekeeper",
        "attributes": {"policy.rule": "digest-pinned-images" if category.startswith("image") else "non-root",
                       "compliance.category": category, "enforcement": enforcement},
    })


def steady(per_window: int) -> list[str]:
    """``per_window`` denials in every window of the previous day (before the current window)."""
    windows = 1440 // WINDOW
    return [denial(WINDOW * (w + 1) + 1 + i * (WINDOW - 2) / max(per_window, 1)) for w in range(windows) for i in range(per_window)]


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    pipe = Pipeline(str(tmp_path_factory.mktemp("chdb-alerts")))
    yield pipe
    pipe.close()


def value(pipe: Pipeline, sql: str, messages: list[str]) -> float:
    pipe.reset()
    deliver_many(pipe, messages)
    assert pipe.rows("SELECT count() AS n FROM audit.ingest_errors") == [{"n": 0}], "a sample broke the contract"
    (row,) = pipe.rows(sql)
    return float(row["value"])


SPIKE = rules(alert_values(DEV))["compliance-denial-spike"]
IMAGES = rules(alert_values(DEV))["compliance-image-attempts"]


def test_a_denial_spike_fires(pipeline):
    recent = DEV.denial_spike * 2
    assert value(pipeline, query_of(SPIKE), [*steady(1), *(denial(i % (WINDOW - 1)) for i in range(recent))]) == recent


@pytest.mark.parametrize("name, messages", [
    ("quiet", lambda: [denial(1) for _ in range(DEV.denial_spike - 5)]),
    ("busy but steady", lambda: [*steady(DEV.denial_spike + 10), *(denial(2) for _ in range(DEV.denial_spike + 10))]),
    ("nothing", lambda: []),
])
def test_baselines_do_not_fire(pipeline, name, messages):
    assert value(pipeline, query_of(SPIKE), messages()) == 0, name


def test_redeliveries_are_not_a_spike_and_the_undeduplicated_query_would_fire(pipeline):
    same = [denial(1, event_id=str(uuid.uuid4())) for _ in range(DEV.denial_spike - 5)]
    redelivered = same * 3
    assert value(pipeline, query_of(SPIKE), redelivered) == 0
    wrong = query_of(SPIKE).replace("LIMIT 1 BY event_id", "")
    assert value(pipeline, wrong, redelivered) == len(redelivered)


def test_an_unpinned_image_attempt_fires(pipeline):
    assert value(pipeline, query_of(IMAGES), [denial(2, category="image.unpinned"), denial(3, category="image.unsigned")]) == 2


def test_audit_findings_and_old_attempts_do_not_fire(pipeline):
    messages = [denial(2, category="image.unpinned", enforcement="audit"), denial(WINDOW + 5, category="image.unpinned"),
                denial(1, category="workload")]
    assert value(pipeline, query_of(IMAGES), messages) == 0


@pytest.mark.parametrize("stack", STACKS)
def test_every_rule_has_what_on_call_relies_on(stack):
    compliance = platform_settings.parse(stack_config(stack), stack).governance.compliance
    for uid, rule in rules(alert_values(compliance)).items():
        assert len(uid) <= 40 and rule["title"] and rule["condition"] == "C"
        assert rule["labels"]["severity"] in ("critical", "warning", "info") and rule["labels"]["phase"] == "governance"
        assert rule["annotations"]["runbook_url"].startswith(RUNBOOK) and rule["annotations"]["summary"]
        refs = {d["refId"]: d for d in rule["data"]}
        assert refs["A"]["datasourceUid"] == "clickhouse"
        assert refs["C"]["model"]["conditions"][0]["evaluator"] == {"type": "gt", "params": [0]}
        assert str(compliance.spike_window_minutes) in query_of(rule)


def test_a_threshold_placeholder_nobody_fills_stops_the_load(tmp_path):
    (tmp_path / "x.yaml").write_text("apiVersion: 1\ngroups: [{name: x, rules: [{uid: y, data: [{datasourceUid: clickhouse, "
                                     "model: {rawSql: 'SELECT <<nope>> AS value'}}]}]}]\n")
    with pytest.raises(ValueError, match="unknown placeholder"):
        grafana_files.load_alert_files(alert_values(DEV), tmp_path)


@pytest.mark.parametrize("stack", STACKS)
def test_the_rules_reach_grafana_as_a_labelled_config_map(plans, stack):
    import yaml

    from tests.helpers import objects

    compliance = platform_settings.parse(stack_config(stack), stack).governance.compliance
    (config_map,) = [o for o in objects(plans[stack], "ConfigMap") if o["metadata"]["name"] == "grafana-alerts-compliance"]
    assert config_map["metadata"]["namespace"] == "soma-observability"
    assert config_map["metadata"]["labels"]["grafana_alert"] == "1"
    document = yaml.safe_load(config_map["data"]["grafana-alerts-compliance.yaml"])
    shipped = {r["uid"]: r for g in document["groups"] for r in g["rules"]}
    assert f"recent > {compliance.denial_spike} AND" in query_of(shipped["compliance-denial-spike"])
