"""The gateway relays Server-Sent Events as they come (the orchestrator's run events), over a real socket:
the gateway served by uvicorn, an upstream that sends events with pauses (soma_gateway.standins), identity,
OpenFGA and Redis as in the other app tests. Ordinary answers stay buffered, as before."""
from __future__ import annotations

import time

import httpx
import pytest

from gateway_fixtures import gateway_settings, served_gateway
from soma_gateway.standins import EventStreamUpstream

EVENTS = "/v1/workflows/acme-triage/runs/0b7e3f7c-1d2e-4f50-8a6b-7c8d9e0f1a2b/events"


def bearer(identity, **claims) -> dict:
    return {"authorization": f"Bearer {identity.token('k1', **claims)}"}


def next_event(lines) -> dict:
    event = {}
    for line in lines:
        if not line:
            return event
        key, _, value = line.partition(": ")
        event[key] = value
    return event


@pytest.fixture
def upstreams():
    made = []

    def make(**kwargs) -> EventStreamUpstream:
        made.append(EventStreamUpstream(**kwargs).start())
        return made[-1]

    yield make
    for upstream in made:
        upstream.release.set()
        upstream.stop()


def test_the_first_event_arrives_before_the_stream_ends_and_last_event_id_goes_upstream(tmp_path, identity, fga,
                                                                                         redis_server, upstreams):
    upstream = upstreams(events=3, pause=10)
    settings = gateway_settings(tmp_path, identity, fga, upstream, redis_server)
    with served_gateway(settings) as (url, sink):
        headers = {**bearer(identity, sub="bob"), "accept": "text/event-stream", "last-event-id": "4",
                   "x-soma-principal": "user:root"}
        with httpx.stream("GET", url + EVENTS, headers=headers, timeout=5) as answer:
            lines = answer.iter_lines()
            first = next_event(lines)
            still_open = not upstream.finished.is_set()
            upstream.release.set()
            rest = [next_event(lines), next_event(lines)]
            assert next_event(lines) == {}                 # and then the stream ends
        events = list(sink.events)

    assert still_open and first == {"id": "5", "event": "step", "data": '{"seq": 5}'}
    assert [e["id"] for e in rest] == ["6", "7"]
    assert answer.status_code == 200 and answer.headers["content-type"] == "text/event-stream"
    assert answer.headers["cache-control"] == "no-store" and answer.headers["x-request-id"]
    (seen,) = upstream.received
    assert seen["path"] == "/workflows/acme-triage/runs/0b7e3f7c-1d2e-4f50-8a6b-7c8d9e0f1a2b/events"
    assert seen["headers"]["last-event-id"] == "4" and "authorization" not in seen["headers"]
    assert (seen["headers"]["x-soma-tenant"], seen["headers"]["x-soma-principal"]) == ("acme", "user:bob")
    (event,) = events                                      # one decision, one event, however long the stream
    assert (event["action"], event["decision"]) == ("workflow.run.read", "allow")


def test_a_quiet_stream_outlives_the_read_timeout_and_ends_after_the_idle_timeout(tmp_path, identity, fga, redis_server,
                                                                                  upstreams):
    quiet = upstreams(events=2, pause=0.6)               # longer than the read timeout, shorter than the idle one
    stalled = upstreams(events=2, pause=30)              # never sends its second event
    settings = gateway_settings(tmp_path, identity, fga, quiet, redis_server, upstream_timeout_seconds="0.2",
                                upstream_stream_idle_timeout_seconds="1.5",
                                upstreams={"orchestrator": quiet.url, "tools": stalled.url, "memory": quiet.url})
    with served_gateway(settings) as (url, _):
        ask = {"accept": "text/event-stream"}
        with httpx.stream("GET", url + EVENTS, headers={**bearer(identity, sub="bob"), **ask}, timeout=5) as answer:
            lines = answer.iter_lines()
            both = [next_event(lines), next_event(lines)]
        started = time.monotonic()
        with httpx.stream("GET", url + "/v1/tools", headers={**bearer(identity, sub="bob"), **ask}, timeout=5) as cut:
            lines = cut.iter_lines()
            only = [next_event(lines), next_event(lines)]
        waited = time.monotonic() - started

    assert [e["id"] for e in both] == ["1", "2"]
    assert cut.status_code == 200 and [e.get("id") for e in only] == ["1", None]      # ended, not hung
    assert 1.4 < waited < 4


def test_an_ordinary_answer_is_relayed_whole_as_before(tmp_path, identity, fga, redis_server, upstreams):
    upstream = upstreams()
    settings = gateway_settings(tmp_path, identity, fga, upstream, redis_server)
    with served_gateway(settings) as (url, _):
        answer = httpx.post(url + "/v1/workflows/acme-triage/runs", headers={**bearer(identity, sub="bob"),
                                                                            "accept": "text/event-stream"}, timeout=5)
    assert answer.status_code == 200 and answer.json() == {"ordinary": True}
    assert answer.headers["content-type"] == "application/json" and answer.headers["content-length"] == str(len(answer.content))
