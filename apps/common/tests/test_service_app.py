"""The app every service gets: probes, request IDs, one error body, JSON logs with trace IDs."""

from __future__ import annotations

import asyncio
import io
import json
import logging

import pytest
from fastapi import APIRouter
from fastapi.testclient import TestClient
from pydantic import BaseModel, Field

from soma_service import ReadinessCheck, ServiceError, ServiceSettings, create_app
from soma_service.logs import JsonFormatter

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"


class Item(BaseModel):
    name: str = Field(min_length=1)
    quantity: int


def build(checks=(), **settings):
    router = APIRouter()

    @router.post("/items")
    def create_item(item: Item) -> dict:
        logging.getLogger("demo").info("creating %s", item.name)
        return {"name": item.name}

    @router.get("/items/{item_id}")
    def get_item(item_id: int) -> dict:
        raise ServiceError(404, "item_not_found", f"no item {item_id}")

    @router.get("/crash")
    def crash() -> dict:
        raise RuntimeError("boom")

    settings = ServiceSettings(service_name="demo", readiness_timeout_seconds=0.5, **settings)
    return create_app(settings, routers=[router], readiness_checks=checks)


@pytest.fixture
def logs():
    """The JSON lines the root logger writes during the test."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter("demo"))
    root = logging.getLogger()
    root.addHandler(handler)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    root.removeHandler(handler)


def assert_error_shape(response, status, code, request_id=None):
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) >= {"error"} and set(body["error"]) == {"code", "message", "request_id"}
    assert body["error"]["code"] == code
    assert body["error"]["request_id"] == response.headers["x-request-id"]
    if request_id:
        assert body["error"]["request_id"] == request_id
    return body["error"]["message"]


def test_a_request_id_is_echoed_or_generated_and_unsafe_ones_are_replaced():
    with TestClient(build()) as client:
        assert client.get("/healthz", headers={"X-Request-Id": "edge-123"}).headers["x-request-id"] == "edge-123"
        generated = client.get("/healthz").headers["x-request-id"]
        assert len(generated) == 32
        forged = client.get("/healthz", headers={"X-Request-Id": 'x"}\n{"level":"ERROR'}).headers["x-request-id"]
        assert forged != 'x"}\n{"level":"ERROR' and len(forged) == 32


def test_every_error_has_the_one_body_shape():
    with TestClient(build()) as client:
        assert assert_error_shape(client.get("/items/7", headers={"X-Request-Id": "r1"}), 404, "item_not_found", "r1") \
            == "no item 7"
        assert_error_shape(client.get("/nowhere"), 404, "not_found")
        assert_error_shape(client.delete("/items/7"), 405, "method_not_allowed")
        assert "internal error" in assert_error_shape(client.get("/crash"), 500, "internal_error")


def test_validation_errors_are_400_and_name_each_field():
    with TestClient(build()) as client:
        message = assert_error_shape(client.post("/items", json={"name": ""}), 400, "invalid_request")
        assert "body.name: String should have at least 1 character" in message
        assert "body.quantity: Field required" in message
        assert "path.item_id" in assert_error_shape(client.get("/items/seven"), 400, "invalid_request")
        assert "body" in assert_error_shape(
            client.post("/items", content=b"{not json", headers={"content-type": "application/json"}),
            400, "invalid_request")


def test_readiness_runs_the_registered_checks_and_names_the_failing_one():
    database_up = {"value": True}

    def database():
        if not database_up["value"]:
            raise ConnectionError("connection refused")

    async def slow_vault():
        await asyncio.sleep(5)

    with TestClient(build(checks=[ReadinessCheck("database", database)])) as client:
        ready = client.get("/readyz")
        assert ready.status_code == 200 and ready.json()["checks"][0]["name"] == "database"
        database_up["value"] = False
        message = assert_error_shape(client.get("/readyz"), 503, "not_ready")
        assert "database failing" in message
        assert client.get("/readyz").json()["checks"][0]["error"] == "ConnectionError: connection refused"
        assert client.get("/healthz").status_code == 200  # liveness does not depend on dependencies
    with TestClient(build(checks=[ReadinessCheck("vault", slow_vault)])) as client:
        assert client.get("/readyz").json()["checks"][0]["error"] == "no answer within 0.5s"


def test_readiness_is_503_before_start_up_and_after_shutdown_began():
    app = build()
    client = TestClient(app)  # not entered: the lifespan (start-up) has not run
    assert "starting" in assert_error_shape(client.get("/readyz"), 503, "not_ready")
    with TestClient(app) as running:
        assert running.get("/readyz").status_code == 200
        app.state.service.draining = True
        assert "draining" in assert_error_shape(running.get("/readyz"), 503, "not_ready")


def test_logs_are_json_with_the_callers_trace_id_and_the_request_id(logs):
    with TestClient(build()) as client:
        response = client.post("/items", json={"name": "a", "quantity": 1}, headers={
            "traceparent": f"00-{TRACE_ID}-00f067aa0ba902b7-01", "X-Request-Id": "req-42"})
        assert response.status_code == 200
    lines = logs()
    route_line = next(line for line in lines if line["message"] == "creating a")
    access_line = next(line for line in lines if line["logger"] == "soma_service.access")
    for line in (route_line, access_line):
        assert line["trace_id"] == TRACE_ID  # the caller's trace continues here
        assert len(line["span_id"]) == 16 and line["span_id"] != "00f067aa0ba902b7"
        assert line["request_id"] == "req-42"
    assert access_line["http_route"] == "/items" and access_line["http_status"] == 200


def test_a_crash_is_logged_with_its_traceback_and_request_id(logs):
    with TestClient(build()) as client:
        client.get("/crash", headers={"X-Request-Id": "crash-1"})
    crash = next(line for line in logs() if line["level"] == "ERROR")
    assert crash["request_id"] == "crash-1" and "RuntimeError: boom" in crash["exception"]


def test_the_openapi_document_shows_400_and_the_error_body_instead_of_422():
    schema = build().openapi()
    create = schema["paths"]["/items"]["post"]["responses"]
    assert "422" not in create and "HTTPValidationError" not in schema["components"]["schemas"]
    assert create["400"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ErrorBody"}
    assert schema["components"]["schemas"]["ErrorBody"]["properties"]["error"]["required"] == ["code", "message", "request_id"]
