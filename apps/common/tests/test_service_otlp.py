"""Traces, metrics and logs really leave the service over OTLP/gRPC.

A real gRPC server implementing OTLP's collector services (the ``opentelemetry-proto`` stubs) stands in for
the platform's collector on a loopback port; the app exports to it with the production exporters.
"""

from __future__ import annotations

import logging
import threading
from concurrent import futures

import grpc
import pytest
from fastapi import APIRouter
from fastapi.testclient import TestClient
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2, logs_service_pb2_grpc
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2, metrics_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

from soma_service import ServiceSettings, create_app

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"


class Collector(trace_service_pb2_grpc.TraceServiceServicer, metrics_service_pb2_grpc.MetricsServiceServicer,
                logs_service_pb2_grpc.LogsServiceServicer):
    def __init__(self):
        self.spans, self.metrics, self.logs = [], [], []
        self.lock = threading.Lock()

    def Export(self, request, context):  # noqa: N802 - gRPC method name
        with self.lock:
            if isinstance(request, trace_service_pb2.ExportTraceServiceRequest):
                self.spans += [s for r in request.resource_spans for ss in r.scope_spans for s in ss.spans]
                self.resources = [r.resource for r in request.resource_spans]
                return trace_service_pb2.ExportTraceServiceResponse()
            if isinstance(request, metrics_service_pb2.ExportMetricsServiceRequest):
                self.metrics += [m for r in request.resource_metrics for sm in r.scope_metrics for m in sm.metrics]
                return metrics_service_pb2.ExportMetricsServiceResponse()
            self.logs += [lr for r in request.resource_logs for sl in r.scope_logs for lr in sl.log_records]
            return logs_service_pb2.ExportLogsServiceResponse()


@pytest.fixture
def collector():
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    sink = Collector()
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(sink, server)
    metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(sink, server)
    logs_service_pb2_grpc.add_LogsServiceServicer_to_server(sink, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield sink, f"http://127.0.0.1:{port}"
    server.stop(grace=None)


def attributes(item):
    return {a.key: (a.value.string_value or a.value.int_value) for a in item.attributes}


def test_a_request_is_exported_as_a_span_a_duration_metric_and_a_correlated_log(collector):
    sink, endpoint = collector
    router = APIRouter()

    @router.get("/orders/{order_id}")
    def order(order_id: str) -> dict:
        logging.getLogger("orders").warning("order %s looked up", order_id)
        return {"id": order_id}

    settings = ServiceSettings(service_name="orders", service_version="1.2.3", otlp_endpoint=endpoint)
    with TestClient(create_app(settings, routers=[router])) as client:
        response = client.get("/orders/o-1", headers={"traceparent": f"00-{TRACE_ID}-b7ad6b7169203331-01"})
        assert response.status_code == 200
        client.get("/healthz")
    # leaving the client ran the lifespan's shutdown, which flushed every exporter

    span = next(s for s in sink.spans if s.name == "GET /orders/{order_id}")
    assert span.trace_id.hex() == TRACE_ID and span.parent_span_id.hex() == "b7ad6b7169203331"
    assert attributes(span)["http.route"] == "/orders/{order_id}"
    assert attributes(span)["http.response.status_code"] == 200
    assert attributes(span)["soma.request_id"] == response.headers["x-request-id"]
    assert not any(s.name.startswith("GET /healthz") for s in sink.spans)  # probes are not traced
    assert {"service.name": "orders", "service.version": "1.2.3"}.items() <= attributes(sink.resources[0]).items()

    durations = [m for m in sink.metrics if m.name == "http.server.request.duration"]
    routes = {attributes(p)["http.route"] for m in durations for p in m.histogram.data_points}
    assert {"/orders/{order_id}", "/healthz"} <= routes

    record = next(r for r in sink.logs if r.body.string_value == "order o-1 looked up")
    assert record.trace_id.hex() == TRACE_ID and record.span_id == span.span_id
    assert record.severity_text == "WARN"
