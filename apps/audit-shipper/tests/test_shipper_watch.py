"""Kubernetes Events: list, then watch from the list's resourceVersion, resume after each stream, relist on
410 Gone, advance only past what was delivered. Against FakeKubernetesApi (shipper_fixtures): the API's
list/watch wire format served by a local HTTP server (no API server runs here)."""
from __future__ import annotations

import asyncio
import contextlib

import httpx
import pytest

from shipper_fixtures import (RULES, ClusterCa, FakeKubernetesApi, Meter, RecordingSink, argocd_event, bookmark, gatekeeper_event,
                              gone_status, other_event, page, stream)
from soma_audit_shipper.delivery import Shipper
from soma_audit_shipper.kube import EventWatcher, events_path
from soma_audit_shipper.mapping import from_event

GK1 = "5c0e8a52-1d8b-4c1e-9f53-0c8f3a1b2d41"
GK2 = "5c0e8a52-1d8b-4c1e-9f53-0c8f3a1b2d42"
ARGO = "9f0e1d2c-3b4a-4596-8877-665544332211"
POD = "0a0b0c0d-1111-2222-3333-444455556666"


@pytest.fixture
def token_file(tmp_path):
    path = tmp_path / "token"
    path.write_text("sa-token-1\n")
    return path


class Harness:
    def __init__(self, api: FakeKubernetesApi, token_file, sink: RecordingSink | None = None):
        self.sink = sink or RecordingSink()
        self.meter = Meter()
        self.shipper = Shipper(self.sink, self.meter.meter, unready_seconds=30)
        self.delays: list[float] = []
        self.api = api
        self.token_file = token_file

    async def handle(self, item: dict) -> None:
        event = from_event(item, RULES)
        if event is None:
            self.shipper.skipped("kubernetes")
        else:
            await self.shipper.deliver(event, "kubernetes")

    async def no_wait(self, seconds: float) -> None:
        self.delays.append(seconds)

    async def run_until(self, requests: int) -> EventWatcher:
        """Run the watcher until the API has seen ``requests`` requests (the last one is held open), then stop it."""
        async with httpx.AsyncClient(base_url=self.api.url, timeout=10) as client:
            watcher = EventWatcher(client, events_path(None), self.handle, token_file=self.token_file, page_size=2,
                                   watch_timeout_seconds=60, retry_min_seconds=0.5, retry_max_seconds=4, sleep=self.no_wait,
                                   meter=self.meter.meter)
            task = asyncio.create_task(watcher.run())
            arrived = await asyncio.to_thread(self.api.wait_for_requests, requests)
            await asyncio.sleep(0)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        assert arrived, f"the watcher made {len(self.api.requests)} requests, expected {requests}: {self.api.requests}"
        return watcher

    def ids(self) -> list[str]:
        return [event["event_id"] for event in self.sink.events]


def test_lists_every_page_then_watches_from_the_lists_version_and_resumes_after_each_stream(token_file):
    script = [
        page([gatekeeper_event(GK1, "11"), other_event(POD, "12")], "20", cont="page-2"),
        page([argocd_event(ARGO, "13")], "20"),
        stream(("ADDED", gatekeeper_event(GK2, "21")), bookmark("25"), ("DELETED", other_event(POD, "26"))),
        stream(("MODIFIED", gatekeeper_event(GK2, "30", count=2))),
    ]
    with FakeKubernetesApi(script) as api:
        harness = Harness(api, token_file)
        watcher = asyncio.run(harness.run_until(5))
    (list1, q1, auth1), (list2, q2, _), (watch1, w1, _), (_, w2, _), (_, w3, _) = api.requests
    assert list1 == list2 == watch1 == "/api/v1/events"
    assert auth1 == "Bearer sa-token-1"
    assert q1 == {"limit": "2"} and q2 == {"limit": "2", "continue": "page-2"}
    assert w1 == {"watch": "1", "resourceVersion": "20", "allowWatchBookmarks": "true", "timeoutSeconds": "60"}
    assert w2["resourceVersion"] == "26", "the second watch resumes after the bookmark and the deletion"
    assert w3["resourceVersion"] == "30"
    sources = [event["source"] for event in harness.sink.events]
    assert sources == ["gatekeeper", "argocd", "gatekeeper", "gatekeeper"]
    assert harness.sink.events[0]["attributes"]["policy.rule"] == "digest-pinned-images"
    assert harness.ids()[2] != harness.ids()[3], "a recounted Event (count 2) is a new decision"
    assert harness.meter.counts() == {("kubernetes", "delivered"): 4, ("kubernetes", "skipped"): 1}
    assert watcher.lists == 1 and harness.delays == []


@pytest.mark.parametrize("expiry", ["error line", "http status"])
def test_an_expired_version_lists_again_and_the_events_delivered_again_are_the_same_events(token_file, expiry):
    gone = stream(("ERROR", gone_status())) if expiry == "error line" else ("json", 410, gone_status())
    script = [
        page([gatekeeper_event(GK1, "11")], "20"),
        gone,
        page([gatekeeper_event(GK1, "11"), argocd_event(ARGO, "40")], "41"),
    ]
    with FakeKubernetesApi(script) as api:
        harness = Harness(api, token_file)
        watcher = asyncio.run(harness.run_until(4))
    relist, rewatch = api.requests[2], api.requests[3]
    assert "watch" not in relist[1] and "resourceVersion" not in relist[1], "a relist starts from scratch"
    assert rewatch[1]["resourceVersion"] == "41"
    first, again, argo = harness.ids()
    assert first == again, "the Event read twice is one audit event (readers keep one per event_id)"
    assert watcher.lists == 2 and harness.delays == []
    assert harness.meter.counts("audit_shipper.kubernetes.restarts", "reason") == {"gone": 1}


def test_an_event_the_sink_refused_is_read_again_from_the_last_delivered_version(token_file):
    sink = RecordingSink()
    sink.fail_after = 1  # the list's event goes through, the watch's first event does not
    script = [
        page([gatekeeper_event(GK1, "11")], "20"),
        stream(("ADDED", gatekeeper_event(GK2, "21")), ("ADDED", argocd_event(ARGO, "22"))),
        stream(("ADDED", gatekeeper_event(GK2, "21")), ("ADDED", argocd_event(ARGO, "22"))),
    ]
    with FakeKubernetesApi(script) as api:
        harness = Harness(api, token_file, sink)

        async def recover_then_run():
            original = harness.no_wait

            async def recover(seconds):  # the broker is back by the time the backoff is over
                sink.fail_after = None
                await original(seconds)
            harness.no_wait = recover
            return await harness.run_until(4)

        asyncio.run(recover_then_run())
    assert api.requests[2][1]["resourceVersion"] == "20", "the failed event's version was not passed"
    assert api.requests[3][1]["resourceVersion"] == "22"
    assert [e["source"] for e in sink.events] == ["gatekeeper", "gatekeeper", "argocd"]
    assert harness.delays == [0.5]
    assert harness.meter.counts() == {("kubernetes", "delivered"): 3, ("kubernetes", "failed"): 1}


def test_an_api_that_refuses_backs_off_exponentially_up_to_the_limit(token_file):
    forbidden = ("json", 403, {"kind": "Status", "code": 403, "reason": "Forbidden", "message": "events is forbidden"})
    with FakeKubernetesApi([forbidden] * 5 + [page([], "5")]) as api:
        harness = Harness(api, token_file)
        asyncio.run(harness.run_until(7))
    assert harness.delays == [0.5, 1.0, 2.0, 4.0, 4.0]
    assert harness.meter.counts("audit_shipper.kubernetes.restarts", "reason") == {"failed": 5}
    assert api.requests[6][1]["resourceVersion"] == "5"
    assert harness.sink.events == []


def test_the_service_watches_events_from_start_up_with_the_rules_the_program_gives_it(token_file):
    import json

    from fastapi.testclient import TestClient

    from soma_audit_shipper.app import Dependencies, build_app
    from soma_audit_shipper.settings import ShipperSettings

    sink = RecordingSink()
    script = [page([gatekeeper_event(GK1, "11"), gatekeeper_event(GK2, "12", constraint="soma-users")], "20")]
    with FakeKubernetesApi(script) as api:
        settings = ShipperSettings.from_env({
            "SOMA_AUDIT_SINK": "log", "SOMA_KUBERNETES_API_URL": api.url, "SOMA_KUBERNETES_TOKEN_FILE": str(token_file),
            "SOMA_CONSTRAINT_RULES": json.dumps({"imagedigests": "digest-pinned-images"}),
            "SOMA_EVENTS_NAMESPACE": "soma-admission"})
        with TestClient(build_app(settings, Dependencies(audit=sink), configure_logging=False)) as client:
            assert api.wait_for_requests(2), api.requests
            assert client.get("/readyz").status_code == 200
        assert sink.stopped, "the sink is stopped after the watcher, at shutdown"
    assert [path for path, _, _ in api.requests] == ["/api/v1/namespaces/soma-admission/events"] * 2
    assert [e["attributes"]["policy.rule"] for e in sink.events] == ["digest-pinned-images", "soma-users"], \
        "a constraint the rules do not name keeps its own name"


def test_the_api_is_reached_over_tls_trusting_only_the_cluster_ca(tmp_path):
    from soma_audit_shipper.app import kubernetes_client
    from soma_audit_shipper.settings import ShipperSettings

    cluster, other = ClusterCa(tmp_path, "cluster-ca"), ClusterCa(tmp_path, "other-ca")
    with FakeKubernetesApi([page([gatekeeper_event(GK1, "11")], "20")], tls=cluster.server()) as api:
        trusting = ShipperSettings(audit_sink="log", kubernetes_api_url=api.url, kubernetes_ca_file=cluster.ca_file)
        mistrusting = ShipperSettings(audit_sink="log", kubernetes_api_url=api.url, kubernetes_ca_file=other.ca_file)

        async def get(settings):
            async with kubernetes_client(settings) as client:
                return await client.get("/api/v1/events")

        assert asyncio.run(get(trusting)).json()["metadata"]["resourceVersion"] == "20"
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            asyncio.run(get(mistrusting))
    assert len(api.requests) == 1, "the API never answered the client that does not trust it"


def test_an_https_api_without_a_readable_cluster_ca_is_refused_at_load_naming_the_setting(tmp_path):
    from soma_audit_shipper.settings import ShipperSettings
    from soma_service import SettingsError

    not_a_ca = tmp_path / "ca.crt"
    not_a_ca.write_text("stand-in, no certificate here\n")
    base = {"SOMA_AUDIT_SINK": "log", "SOMA_KUBERNETES_API_URL": "https://kubernetes.default.svc"}
    for ca_file in (not_a_ca, tmp_path / "missing.crt"):
        with pytest.raises(SettingsError, match="SOMA_KUBERNETES_CA_FILE: Value error, not a readable PEM CA certificate"):
            ShipperSettings.from_env({**base, "SOMA_KUBERNETES_CA_FILE": str(ca_file)})
    # without the watcher, or over plain http, no CA is read
    ShipperSettings.from_env({**base, "SOMA_KUBERNETES_CA_FILE": str(not_a_ca), "SOMA_KUBERNETES_EVENTS": "false"})
    ShipperSettings.from_env({**base, "SOMA_KUBERNETES_API_URL": "http://127.0.0.1:1", "SOMA_KUBERNETES_CA_FILE": str(not_a_ca)})
