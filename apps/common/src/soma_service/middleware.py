"""One ASGI middleware for what every request needs: request ID, server span, metrics, access log, and a
last-resort 500 in the common error shape.

It is the outermost layer the app controls, so the request ID and the span exist before any route code runs
and the access log sees the final status — including for crashes, which are answered here (the exception is
logged with its trace, the client gets ``internal_error`` and the request ID to quote).
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from .context import REQUEST_ID_HEADER, accept_or_generate, current_request_id
from .errors import error_body
from .health import ServiceState
from .telemetry import Telemetry

access_log = logging.getLogger("soma_service.access")
log = logging.getLogger("soma_service")

# The bucket boundaries OpenTelemetry's HTTP semantic conventions give http.server.request.duration (seconds).
# Without them the SDK's default boundaries (0, 5, 10, 25 ... 10000, meant for milliseconds) put every request
# under 5 s in one bucket, and the dashboards' p50/p99 (histogram_quantile) would read about 2.5 s and 4.95 s.
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)

# Probes are called every few seconds: metered, but neither traced nor access-logged.
QUIET_PATHS = frozenset({"/healthz", "/readyz"})


class ServiceMiddleware:
    def __init__(self, app: Any, telemetry: Telemetry, state: ServiceState):
        self.app = app
        self.tracer = telemetry.tracer
        self.state = state
        meter = telemetry.meter
        self.duration = meter.create_histogram(
            "http.server.request.duration", unit="s", description="Duration of HTTP server requests",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS)
        self.active = meter.create_up_down_counter(
            "http.server.active_requests", unit="{request}", description="In-flight HTTP server requests")

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        request_id = accept_or_generate(headers.get(REQUEST_ID_HEADER))
        token = current_request_id.set(request_id)
        scope.setdefault("state", {})["request_id"] = request_id
        method, path = scope["method"], scope["path"]
        status_holder = {"status": 500, "started": False}
        quiet = path in QUIET_PATHS
        started = time.perf_counter()
        self.state.in_flight += 1
        self.active.add(1, {"http.request.method": method})

        async def send_with_id(message: dict) -> None:
            if message["type"] == "http.response.start":
                status_holder["status"] = message["status"]
                status_holder["started"] = True
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
            await send(message)

        context = propagate.extract(headers)
        span_cm = trace.use_span(trace.INVALID_SPAN) if quiet else self.tracer.start_as_current_span(
            f"{method} {path}", context=context, kind=SpanKind.SERVER,
            attributes={"http.request.method": method, "url.path": path, "soma.request_id": request_id})
        try:
            with span_cm as span:
                try:
                    await self.app(scope, receive, send_with_id)
                except Exception as exc:  # noqa: BLE001 - answered here in the common shape
                    log.exception("unhandled error in %s %s", method, path)
                    span.record_exception(exc)
                    if not status_holder["started"]:
                        body = json.dumps(error_body("internal_error", "internal error; quote the request ID")).encode()
                        await send_with_id({"type": "http.response.start", "status": 500,
                                            "headers": [(b"content-type", b"application/json"),
                                                        (b"content-length", str(len(body)).encode())]})
                        await send_with_id({"type": "http.response.body", "body": body})
                status = status_holder["status"]
                route = scope.get("route")
                route_path = getattr(route, "path", None) or "unmatched"
                if span.is_recording():
                    span.update_name(f"{method} {route_path}")
                    span.set_attribute("http.route", route_path)
                    span.set_attribute("http.response.status_code", status)
                    if status >= 500:
                        span.set_status(Status(StatusCode.ERROR))
                elapsed = time.perf_counter() - started
                self.duration.record(elapsed, {"http.request.method": method, "http.route": route_path,
                                               "http.response.status_code": status})
                if not quiet:
                    access_log.info("%s %s %s", method, path, status, extra={
                        "http_method": method, "http_route": route_path, "http_status": status,
                        "duration_ms": round(elapsed * 1000, 2)})
        finally:
            self.state.in_flight -= 1
            self.active.add(-1, {"http.request.method": method})
            current_request_id.reset(token)
