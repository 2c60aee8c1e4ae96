"""OPA's decision-log uploads (POST /logs, gzip JSON array), through the whole app: 200 only once every decision
of the batch was delivered, 503 (OPA keeps and retries the batch) while the sink refuses, 400 with nothing
delivered for a body that is no batch; readiness follows the sink; the delivered events pass the audit
contract's own SQL (chdb)."""
from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
import os

import pytest
from fastapi.testclient import TestClient
from opentelemetry.sdk.trace import TracerProvider

from shipper_fixtures import Meter, RecordingSink, gzipped, opa_decision
from soma_audit_shipper.app import Dependencies, build_app
from soma_audit_shipper.settings import ShipperSettings
from soma_service.telemetry import Telemetry

HEADERS = {"Content-Encoding": "gzip", "Content-Type": "application/json"}  # what OPA's uploadChunk sends
D1, D2 = "4ca636c1-55e4-417a-b1d8-4aceb67960d1", "4ca636c1-55e4-417a-b1d8-4aceb67960d2"


@contextlib.contextmanager
def shipper(sink: RecordingSink, **settings):
    meter = Meter()
    environ = {"SOMA_AUDIT_SINK": "log", "SOMA_KUBERNETES_EVENTS": "false",
               **{f"SOMA_{k.upper()}": str(v) for k, v in settings.items()}}
    telemetry = Telemetry(TracerProvider(), meter.provider, None, None)
    app = build_app(ShipperSettings.from_env(environ), Dependencies(audit=sink), telemetry=telemetry, configure_logging=False)
    with TestClient(app) as client:
        client.meter = meter
        yield client


def test_a_batch_is_acknowledged_once_every_decision_is_delivered_and_non_decisions_are_counted():
    sink = RecordingSink()
    batch = [opa_decision(D1, False), {"labels": {}, "path": "system/health"}, opa_decision(D2, True), "not an object"]
    with shipper(sink) as client:
        answer = client.post("/logs", content=gzipped(batch), headers=HEADERS)
        assert answer.status_code == 200, answer.text
        assert answer.json() == {"delivered": 2, "skipped": 2}
        assert [(e["decision"], e["reason"] if "reason" in e else None) for e in sink.events] == \
            [("deny", "scope_missing"), ("allow", None)]
        assert all("Bearer" not in json.dumps(e) for e in sink.events), "the token never leaves OPA's log"
        again = client.post("/logs", content=gzipped(batch), headers=HEADERS)
        assert again.status_code == 200
        assert [e["event_id"] for e in sink.events[2:]] == [e["event_id"] for e in sink.events[:2]], \
            "a batch sent twice is the same events"
        assert client.meter.counts() == {("opa", "delivered"): 4, ("opa", "skipped"): 4}


def test_a_batch_the_sink_refuses_is_503_until_the_sink_is_back_and_readiness_says_so():
    sink = RecordingSink()
    batch = [opa_decision(D1, False), opa_decision(D2, True)]
    with shipper(sink, sink_unready_seconds=600) as client:
        assert client.get("/readyz").status_code == 200
        sink.fail_after = 1
        refused = client.post("/logs", content=gzipped(batch), headers=HEADERS)
        assert refused.status_code == 503
        assert refused.json()["error"]["code"] == "sink_unavailable"
        ready = client.get("/readyz")
        assert ready.status_code == 503 and "audit-sink" in ready.json()["error"]["message"]
        sink.fail_after = None
        retried = client.post("/logs", content=gzipped(batch), headers=HEADERS)  # OPA sends the kept chunk again
        assert retried.status_code == 200
        assert client.get("/readyz").status_code == 200
        delivered = [e["event_id"] for e in sink.events]
        assert len(delivered) == 3 and set(delivered) == {delivered[1], delivered[2]}, \
            "the first decision twice (at least once), the second once"
        assert client.meter.counts() == {("opa", "delivered"): 3, ("opa", "failed"): 1}


def _bomb(size: int) -> bytes:
    return gzip.compress(b"[" + b" " * size + b"]", mtime=0)


@pytest.mark.parametrize("name, body, code", [
    ("plain JSON", json.dumps([opa_decision(D1, True)]).encode(), "not_gzip"),
    ("gzip of text", gzipped(b"decision log"), "not_json"),
    ("gzip of an object", gzipped({"decision_id": D1}), "not_a_list"),
    ("truncated gzip", gzipped([opa_decision(D1, True)])[:-12], "not_gzip"),
    ("over the compressed limit", gzipped([opa_decision(D1, True)] * 40) + os.urandom(4096), "body_too_large"),
    ("a gzip bomb", _bomb(8 << 20), "body_too_large"),
])
def test_a_body_that_is_no_batch_is_400_naming_why_and_nothing_is_delivered(name, body, code):
    sink = RecordingSink()
    with shipper(sink, opa_max_body_bytes=4096, opa_max_decoded_bytes=1 << 20) as client:
        answer = client.post("/logs", content=body, headers=HEADERS)
        assert answer.status_code == 400, (name, answer.text)
        assert answer.json()["error"]["code"] == code, answer.json()
        assert sink.events == []
        assert client.meter.counts() == {}


def test_readiness_returns_after_the_unready_period_so_opa_tries_the_sink_again():
    from soma_audit_shipper.delivery import Shipper

    now = [100.0]
    meter = Meter()
    sink = RecordingSink()
    sink.failing = True
    shipper_ = Shipper(sink, meter.meter, unready_seconds=30, clock=lambda: now[0])
    with pytest.raises(ConnectionError):
        asyncio.run(shipper_.deliver({"event_id": "x", "tenant": "platform"}, "opa"))
    assert not shipper_.sink_ready()
    now[0] += 29.9
    assert not shipper_.sink_ready()
    now[0] += 0.2
    assert shipper_.sink_ready()


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    from tests.governance.audit_pipeline import Pipeline

    pipe = Pipeline(str(tmp_path_factory.mktemp("chdb-shipper")))
    yield pipe
    pipe.close()


def test_the_delivered_events_are_accepted_by_the_audit_contract(pipeline):
    from tests.governance.audit_pipeline import as_message

    sink = RecordingSink()
    with shipper(sink) as client:
        assert client.post("/logs", content=gzipped([opa_decision(D1, False, tenant="acme"), opa_decision(D2, True)]),
                           headers=HEADERS).status_code == 200
    for event in sink.events:
        pipeline.deliver(as_message(event))
        assert pipeline.accepted(event["event_id"]) == 1, pipeline.errors_for(as_message(event))
    rows = pipeline.rows("SELECT tenant, decision, attributes['policy.rule'] AS rule FROM audit.events")
    assert sorted((r["tenant"], r["decision"], r["rule"]) for r in rows) == [("acme", "allow", "edge-authz"), ("acme", "deny", "edge-authz")]


def test_settings_refuse_what_cannot_work_naming_each_variable():
    from soma_service import SettingsError

    with pytest.raises(SettingsError) as refused:
        ShipperSettings.from_env({"SOMA_AUDIT_SINK": "kafka", "SOMA_OPA_MAX_BODY_BYTES": "10",
                                  "SOMA_CONSTRAINT_RULES": "imagedigests=digest-pinned-images"})
    text = str(refused.value)
    for expected in ("SOMA_OPA_MAX_BODY_BYTES", "SOMA_CONSTRAINT_RULES: not valid JSON", "SOMA_AUDIT_KAFKA_BOOTSTRAP"):
        assert expected in text, text
