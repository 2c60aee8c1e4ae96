"""Shared by the shipper's test modules (a uniquely named module: the apps' test folders are not packages).

* :class:`RecordingSink`: the audit sink the tests read back; it fails on demand, as a broker that is away.
* :class:`FakeKubernetesApi`: a small HTTP server speaking the API server's list/watch wire format for
  ``/api/v1/events`` (JSON list pages, watch streams of JSON lines, 410 Gone), scripted per request, recording
  every request. No Kubernetes API server can run here; this is the documented format, not a cluster.
* Records as their emitters write them: Gatekeeper's and Argo CD's Events as the API returns list items,
  OPA-Envoy decisions as its decision log plugin uploads them.
"""
from __future__ import annotations

import base64
import gzip
import json
import ssl
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from tests.openbao import issue_server_certificate, make_ca


class SinkDown(ConnectionError):
    pass


class RecordingSink:
    """Records delivered events; while ``failing`` is set every delivery raises, as ``send_and_wait`` does when
    the broker does not acknowledge. ``fail_after`` lets that many deliveries through first."""

    def __init__(self):
        self.events: list[dict] = []
        self.failing = False
        self.fail_after: int | None = None
        self.started = self.stopped = False

    async def start(self):
        self.started = True

    async def emit(self, event):
        self.events.append(event)

    async def deliver(self, event):
        if self.fail_after is not None:
            if self.fail_after == 0:
                raise SinkDown("broker unreachable")
            self.fail_after -= 1
        if self.failing:
            raise SinkDown("broker unreachable")
        self.events.append(event)

    async def stop(self):
        self.stopped = True


class Meter:
    """A meter whose counts the tests read: ``counts()`` -> {(source, outcome): value}."""

    def __init__(self):
        self.reader = InMemoryMetricReader()
        self.provider = MeterProvider(metric_readers=[self.reader])
        self.meter = self.provider.get_meter("test")

    def counts(self, name: str = "audit_shipper.events", *keys: str) -> dict:
        """{(source, outcome): value} for the events counter; {attribute value: value} for ``name`` and one key."""
        keys = keys or ("source", "outcome")
        data = self.reader.get_metrics_data()
        out = {}
        for resource in data.resource_metrics if data else []:
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    if metric.name == name:
                        for point in metric.data.data_points:
                            key = tuple(point.attributes[k] for k in keys)
                            out[key if len(key) > 1 else key[0]] = point.value
        return out


# --- records ---------------------------------------------------------------------------------------------

RULES = {"imagedigests": "digest-pinned-images", "users": "non-root"}


def gatekeeper_event(uid: str, version: str, *, count: int = 1, constraint: str = "soma-imagedigests") -> dict:
    return {
        "metadata": {"name": f"app.{uid[:6]}", "namespace": "soma-admission", "uid": uid, "resourceVersion": version,
                     "creationTimestamp": "2026-11-29T22:00:00Z",
                     "annotations": {"process": "admission", "constraint_kind": "K8sImageDigests", "constraint_name": constraint,
                                     "constraint_action": "deny", "resource_kind": "Pod", "resource_namespace": "soma-agents",
                                     "resource_name": "app-7d9f", "request_username": "system:serviceaccount:soma-agents:deployer"}},
        "involvedObject": {"kind": "Pod", "namespace": "soma-agents", "name": "app-7d9f"},
        "reason": "FailedAdmission", "type": "Warning", "count": count,
        "message": "Admission webhook \"validation.gatekeeper.sh\" denied request, Constraint: soma-imagedigests",
        "lastTimestamp": "2026-11-29T22:00:01Z",
    }


def argocd_event(uid: str, version: str, message: str = "Sync operation to 1a2b3c succeeded") -> dict:
    return {
        "metadata": {"name": f"platform.{uid[:6]}", "namespace": "soma-gitops", "uid": uid, "resourceVersion": version,
                     "creationTimestamp": "2026-11-29T22:05:00Z"},
        "involvedObject": {"kind": "Application", "namespace": "soma-gitops", "name": "platform"},
        "reason": "OperationCompleted", "type": "Normal", "count": 1, "message": message,
        "lastTimestamp": "2026-11-29T22:05:00Z",
    }


def other_event(uid: str, version: str) -> dict:
    """An Event that is no decision (a pod scheduled): skipped."""
    return {"metadata": {"name": f"pod.{uid[:6]}", "namespace": "soma-agents", "uid": uid, "resourceVersion": version},
            "involvedObject": {"kind": "Pod", "namespace": "soma-agents", "name": "app-7d9f"},
            "reason": "Scheduled", "type": "Normal", "count": 1, "message": "assigned", "lastTimestamp": "2026-11-29T22:00:00Z"}


def _token(claims: dict) -> str:
    part = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"eyJhbGciOiJSUzI1NiJ9.{part}.c2ln"


def opa_decision(decision_id: str, allowed: bool, *, tenant: str = "acme") -> dict:
    """One element of an OPA-Envoy decision-log upload (the result as components/mesh/edge/rego/authz.rego answers)."""
    result = {"allowed": allowed, "headers": {"x-soma-authz-route": "runs"}}
    if not allowed:
        result["response_headers_to_add"] = {"x-soma-authz-reason": "scope_missing"}
    return {
        "labels": {"app": "opa-envoy", "id": "1780d507-aea2-45cc-ae50-fa153c8e4a5a", "version": "1.10.1-envoy"},
        "decision_id": decision_id,
        "path": "envoy/authz/allow",
        "input": {"attributes": {"request": {"http": {
            "method": "POST", "host": "api.soma.example", "path": "/v1/runs?x=1",
            "headers": {"authorization": "Bearer " + _token({"sub": "user-42"}), "x-soma-tenant": tenant,
                        "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}}}}},
        "result": result,
        "timestamp": "2026-11-29T22:10:00.123456789Z",
    }


def gzipped(value) -> bytes:
    return gzip.compress(json.dumps(value).encode() if not isinstance(value, bytes) else value, mtime=0)


# --- the fake API server -------------------------------------------------------------------------------------

def page(items: list[dict], version: str, cont: str | None = None) -> tuple:
    metadata = {"resourceVersion": version, **({"continue": cont} if cont else {})}
    return ("json", 200, {"kind": "EventList", "apiVersion": "v1", "metadata": metadata, "items": items})


def stream(*changes: tuple[str, dict]) -> tuple:
    return ("stream", 200, [{"type": kind, "object": obj} for kind, obj in changes])


def gone_status() -> dict:
    return {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "Expired", "code": 410,
            "message": "too old resource version: 10 (20)"}


def bookmark(version: str) -> tuple[str, dict]:
    return ("BOOKMARK", {"kind": "Event", "apiVersion": "v1", "metadata": {"resourceVersion": version}})


class FakeKubernetesApi:
    """Answers requests in order from ``script``; when it runs out, holds the connection open (a watch with
    nothing new) until the server stops. ``requests`` holds (path, query, authorization) of each."""

    def __init__(self, script: list[tuple], tls: tuple | None = None):
        self.script = list(script)
        self.scheme = "https" if tls else "http"
        self.requests: list[tuple[str, dict, str]] = []
        self.arrived = threading.Condition()
        self.stopping = threading.Event()
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                return None

            def do_GET(self):
                url = urllib.parse.urlsplit(self.path)
                with api.arrived:
                    api.requests.append((url.path, dict(urllib.parse.parse_qsl(url.query)), self.headers.get("Authorization", "")))
                    answer = api.script.pop(0) if api.script else None
                    api.arrived.notify_all()
                if answer is None:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.end_headers()
                    self.wfile.flush()
                    api.stopping.wait(30)
                    return
                kind, status, body = answer
                if kind == "json":
                    data = json.dumps(body).encode()
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                    return
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                for line in body:  # HTTP/1.0: the stream ends when the server closes it
                    self.wfile.write(json.dumps(line).encode() + b"\n")
                    self.wfile.flush()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        if tls:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*tls)
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stopping.set()
        self.server.shutdown()
        self.server.server_close()

    def wait_for_requests(self, count: int, timeout: float = 10.0) -> bool:
        with self.arrived:
            return self.arrived.wait_for(lambda: len(self.requests) >= count, timeout)


class ClusterCa:
    """A CA like a cluster's (the file a pod finds at .../serviceaccount/ca.crt) and the API server's certificate
    for 127.0.0.1 it signs, as PEM files (the throw-away CA and serving certificate of tests/openbao.py)."""

    def __init__(self, folder, name: str):
        self.folder, self.ca = folder / name, make_ca(name)
        self.ca_file = folder / f"{name}.crt"
        self.ca_file.write_bytes(self.ca.pem)

    def server(self, ip: str = "127.0.0.1") -> tuple:
        return issue_server_certificate(self.ca, self.folder / "apiserver", ip=ip)
