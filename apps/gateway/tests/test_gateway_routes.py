"""The route table: matching, the object it names, the upstream path, and refusal of what it does not declare."""
from __future__ import annotations

import pytest

from soma_gateway.routes import DEFAULT_ROUTES, Route, RouteTable


def test_a_declared_route_names_its_relation_object_and_upstream_path():
    matched = DEFAULT_ROUTES.match("POST", "/v1/workflows/acme-triage/runs")
    assert matched.route.name == "workflow-run" and matched.route.relation == "can_run"
    assert matched.fga_object == "workflow:acme-triage" and matched.upstream_path() == "/workflows/acme-triage/runs"
    assert DEFAULT_ROUTES.match("get", "/v1/memory/acme-kb/records").fga_object == "memory_collection:acme-kb"


@pytest.mark.parametrize("method, path", [
    ("POST", "/v1/workflows/acme-triage/runs/extra"),
    ("POST", "/v1/workflows//runs"),
    ("POST", "/v1/workflows/a:b/runs"),        # ':' would change the OpenFGA object's type
    ("POST", "/v1/workflows/a%23b/runs"),
    ("POST", "/v1/workflows/../runs"),
    ("GET", "/v2/workflows/acme-triage"),
])
def test_paths_outside_the_table_match_nothing(method, path):
    assert DEFAULT_ROUTES.match(method, path) is None


def test_a_known_path_with_another_method_lists_the_allowed_ones():
    assert DEFAULT_ROUTES.match("DELETE", "/v1/workflows/acme-triage") is None
    assert DEFAULT_ROUTES.allowed_methods("/v1/workflows/acme-triage") == ["GET", "PUT"]


def test_a_route_must_capture_its_object_and_every_upstream_segment():
    with pytest.raises(ValueError, match="object_param 'tool_id'"):
        Route("x", "GET", "/v1/tools", "can_call", "tool", "tool_id", "tools", "/tools", "tool.list")
    with pytest.raises(ValueError, match=r"upstream_path uses \['other'\]"):
        Route("x", "GET", "/v1/tools/{tool_id}", "can_call", "tool", "tool_id", "tools", "/t/{other}", "tool.read")
    route = Route("x", "GET", "/v1/tools/{tool_id}", "can_call", "tool", "tool_id", "tools", "/t/{tool_id}", "tool.read")
    with pytest.raises(ValueError, match="unique"):
        RouteTable([route, route])


def test_a_run_is_authorized_on_its_workflow_and_forwarded_with_its_id():
    run = "0193a1b2-7c4d-7e8f-9a0b-1c2d3e4f5a6b"
    events = DEFAULT_ROUTES.match("GET", f"/v1/workflows/acme-triage/runs/{run}/events")
    assert (events.route.relation, events.fga_object) == ("can_view", "workflow:acme-triage")
    assert events.upstream_path() == f"/workflows/acme-triage/runs/{run}/events"
    cancel = DEFAULT_ROUTES.match("POST", f"/v1/workflows/acme-triage/runs/{run}/cancel")
    assert (cancel.route.relation, cancel.route.action) == ("can_run", "workflow.run.cancel")
    assert DEFAULT_ROUTES.match("DELETE", f"/v1/workflows/acme-triage/runs/{run}") is None
