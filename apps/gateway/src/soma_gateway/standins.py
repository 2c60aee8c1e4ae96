"""Local servers the gateway's tests and benchmark talk to over real TCP; never wired into the app.

- ``IdentityKeys``: identity's JWKS endpoint with keys that can be rotated, and a signer for tokens.
- ``OpenFgaStandIn``: OpenFGA's ``POST /stores/{store_id}/check`` with the documented request and answer
  shapes (request validated against the schema of openfga/api docs/openapiv2/apidocs.swagger.json); it does
  not evaluate a model: it answers from a table of decisions (the tests take it from the store test that
  the OpenFGA engine ran, tests/openfga/gateway.fga.yaml).
- ``EchoUpstream``: a backing service that answers with what it received.
- ``RedisServer``: a real ``redis-server`` process (Debian's, fetched by tools/fetch_redis.sh).

Each runs until stopped and can be stopped and restarted on the same port, which is how the tests make a
dependency unreachable.
"""
from __future__ import annotations

import json
import shutil
import socket
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Mapping

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa

# The body of POST /stores/{store_id}/check and CheckRequestTupleKey, as openfga/api's OpenAPI document
# declares them (docs/openapiv2/apidocs.swagger.json, commit f153694bfc20f7be303e33cabe72b668596c5a06).
CHECK_REQUEST_SCHEMA = {
    "type": "object",
    "properties": {
        "tuple_key": {
            "type": "object",
            "properties": {"user": {"type": "string", "maxLength": 512}, "relation": {"type": "string", "maxLength": 50},
                           "object": {"type": "string", "maxLength": 256}},
            "required": ["user", "relation", "object"],
        },
        "contextual_tuples": {"type": "object"},
        "authorization_model_id": {"type": "string"},
        "trace": {"type": "boolean"},
        "context": {"type": "object"},
        "consistency": {"type": "string"},
    },
    "required": ["tuple_key"],
    "additionalProperties": False,
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _TrackingHTTPServer(ThreadingHTTPServer):
    """Remembers open connections, so that stopping the server also drops its keep-alive connections
    (as a server process that goes away does), not only the listening socket."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, *args, **kwargs):
        self.connections: set[socket.socket] = set()
        super().__init__(*args, **kwargs)

    def process_request(self, request, client_address):
        self.connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request):
        self.connections.discard(request)
        super().shutdown_request(request)

    def drop_connections(self) -> None:
        for connection in list(self.connections):
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class _Server:
    """A threaded HTTP server on 127.0.0.1 that can be stopped and started again on the same port."""

    def __init__(self, port: int | None = None):
        self.port = port or free_port()
        self._httpd: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def handler(self) -> type[BaseHTTPRequestHandler]:
        raise NotImplementedError

    def start(self) -> "_Server":
        handler = self.handler()
        handler.protocol_version = "HTTP/1.1"
        handler.disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms delayed-ACK stall
        handler.log_message = lambda *args: None
        self._httpd = _TrackingHTTPServer(("127.0.0.1", self.port), handler)
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._httpd:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd.drop_connections()
            self._httpd = None


def _answer(handler: BaseHTTPRequestHandler, status: int, body: dict, headers: Mapping[str, str] | None = None) -> None:
    raw = json.dumps(body).encode()
    handler.send_response(status)
    handler.send_header("content-type", "application/json")
    handler.send_header("content-length", str(len(raw)))
    for name, value in (headers or {}).items():
        handler.send_header(name, value)
    handler.end_headers()
    try:
        handler.wfile.write(raw)
    except BrokenPipeError:  # the client gave up (the gateway's upstream timeout): nothing to answer
        pass


def _body(handler: BaseHTTPRequestHandler) -> bytes:
    return handler.rfile.read(int(handler.headers.get("content-length") or 0))


class IdentityKeys(_Server):
    """Identity's signing keys: the JWKS it publishes and the private halves, to sign test tokens."""

    def __init__(self, issuer: str, audience: str, port: int | None = None):
        super().__init__(port)
        self.issuer, self.audience = issuer, audience
        self.private: dict[str, tuple[str, object]] = {}   # kid -> (alg, private key)
        self.published: list[str] = []                       # kids in the JWKS
        self.requests = 0

    def add_key(self, kid: str, alg: str = "RS256", publish: bool = True) -> str:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048) if alg == "RS256" else ec.generate_private_key(ec.SECP256R1())
        self.private[kid] = (alg, key)
        if publish:
            self.published.append(kid)
        return kid

    def retire(self, kid: str) -> None:
        self.published.remove(kid)

    def jwks(self) -> dict:
        keys = []
        for kid in self.published:
            alg, key = self.private[kid]
            algorithm = jwt.get_algorithm_by_name(alg)
            jwk = json.loads(algorithm.to_jwk(key.public_key()))
            keys.append({**jwk, "kid": kid, "use": "sig", "alg": alg})
        return {"keys": keys}

    def token(self, kid: str, *, sub: str = "alice", kind: str = "user", tenant: str | None = "acme",
              lifetime: float = 300, headers: Mapping | None = None, **claims) -> str:
        alg, key = self.private[kid]
        now = int(time.time())
        body = {"iss": self.issuer, "aud": self.audience, "sub": sub, "principal_type": kind, "iat": now,
                "nbf": now, "exp": now + int(lifetime)}
        if tenant is not None:
            body["tenant"] = tenant
        body.update(claims)
        body = {k: v for k, v in body.items() if v is not None}
        return jwt.encode(body, key, algorithm=alg, headers={"kid": kid, **(headers or {})})

    def handler(self):
        keys = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                keys.requests += 1
                if self.path == "/.well-known/jwks.json":
                    _answer(self, 200, keys.jwks())
                else:
                    _answer(self, 404, {"error": "not found"})
        return Handler


class OpenFgaStandIn(_Server):
    """POST /stores/{store_id}/check answered from ``decisions``: {(user, relation, object): allowed}."""

    def __init__(self, store_id: str, model_id: str, decisions: Mapping[tuple[str, str, str], bool], port: int | None = None):
        super().__init__(port)
        import jsonschema

        self.store_id, self.model_id = store_id, model_id
        self.decisions = dict(decisions)
        self.asked: list[tuple[str, str, str]] = []
        self.unknown: list[tuple[str, str, str]] = []
        self.validator = jsonschema.Draft7Validator(CHECK_REQUEST_SCHEMA)
        self.fail_with: int | None = None   # answer every check with this status (500: internal_error)

    def handler(self):
        fga = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - the server's health endpoint, which the gateway's readiness asks
                if self.path == "/healthz":
                    return _answer(self, 200, {"status": "SERVING"})
                _answer(self, 404, {"code": "undefined_endpoint", "message": "Endpoint not enabled"})

            def do_POST(self):  # noqa: N802
                parts = self.path.strip("/").split("/")
                raw = _body(self)
                if len(parts) != 3 or parts[0] != "stores" or parts[2] != "check":
                    return _answer(self, 404, {"code": "undefined_endpoint", "message": "Endpoint not enabled"})
                if parts[1] != fga.store_id:
                    return _answer(self, 404, {"code": "store_id_not_found", "message": f"store {parts[1]} not found"})
                try:
                    body = json.loads(raw)
                except ValueError:
                    return _answer(self, 400, {"code": "validation_error", "message": "invalid JSON"})
                problems = [e.message for e in fga.validator.iter_errors(body)]
                if problems:
                    return _answer(self, 400, {"code": "validation_error", "message": "; ".join(problems)})
                if body.get("authorization_model_id") != fga.model_id:
                    return _answer(self, 400, {"code": "authorization_model_not_found",
                                               "message": f"model {body.get('authorization_model_id')} not found"})
                if fga.fail_with:
                    return _answer(self, fga.fail_with, {"code": "internal_error", "message": "Internal Server Error"})
                key = (body["tuple_key"]["user"], body["tuple_key"]["relation"], body["tuple_key"]["object"])
                fga.asked.append(key)
                if key not in fga.decisions:
                    fga.unknown.append(key)
                _answer(self, 200, {"allowed": fga.decisions.get(key, False), "resolution": ""})
        return Handler


class EchoUpstream(_Server):
    """A backing service answering 200 with what it received: method, path, query, headers, body."""

    def __init__(self, port: int | None = None, delay: float = 0.0):
        super().__init__(port)
        self.delay = delay
        self.received: list[dict] = []

    def handler(self):
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            def _echo(self):
                body = _body(self)
                if upstream.delay:
                    time.sleep(upstream.delay)
                path, _, query = self.path.partition("?")
                seen = {"method": self.command, "path": path, "query": query,
                        "headers": {k.lower(): v for k, v in self.headers.items()}, "body": body.decode(errors="replace")}
                upstream.received.append(seen)
                _answer(self, 200, seen, {"x-upstream": "echo"})

            do_GET = do_POST = do_PUT = do_DELETE = _echo  # noqa: N815
        return Handler


class EventStreamUpstream(_Server):
    """A backing service that answers GET with Server-Sent Events (chunked, as the orchestrator's run events
    come): the first event at once, each next one after ``pause`` seconds or as soon as ``release`` is set,
    then the end. ``finished`` is set once the last event was written. Any other method gets the echo's JSON."""

    def __init__(self, events: int = 3, pause: float = 0.0, port: int | None = None):
        super().__init__(port)
        self.events, self.pause = events, pause
        self.release, self.finished = threading.Event(), threading.Event()
        self.received: list[dict] = []

    def handler(self):
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                upstream.received.append({"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()}})
                self.send_response(200)
                self.send_header("content-type", "text/event-stream")
                self.send_header("cache-control", "no-store")
                self.send_header("transfer-encoding", "chunked")
                self.end_headers()
                start = int(self.headers.get("last-event-id") or 0) + 1
                try:
                    for seq in range(start, start + upstream.events):
                        if seq > start:
                            upstream.release.wait(upstream.pause)
                        self._chunk(f"id: {seq}\nevent: step\ndata: {{\"seq\": {seq}}}\n\n".encode())
                    self._chunk(b"")
                    upstream.finished.set()
                except OSError:          # the gateway went away (an idle timeout, a caller that left)
                    self.close_connection = True

            def _chunk(self, data: bytes) -> None:
                self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                self.wfile.flush()

            def do_POST(self):  # noqa: N802
                _body(self)
                _answer(self, 200, {"ordinary": True})
        return Handler


def decisions_from_store_test(document: Mapping) -> dict[tuple[str, str, str], bool]:
    """The check assertions of an ``fga model test`` file: what the OpenFGA engine answered when it ran it."""
    found = {}
    for case in document["tests"]:
        for check in case.get("check", []):
            for relation, allowed in check["assertions"].items():
                found[(check["user"], relation, check["object"])] = bool(allowed)
    return found


def redis_server_binary() -> str | None:
    """Debian's redis-server: .tools/bin (tools/fetch_redis.sh, from the repository root) or PATH."""
    for parent in Path(__file__).resolve().parents:
        candidate = parent / ".tools" / "bin" / "redis-server"
        if candidate.exists():
            return str(candidate)
    return shutil.which("redis-server")


class RedisServer:
    """A real redis-server on 127.0.0.1 (no persistence), stoppable and restartable on the same port."""

    def __init__(self, binary: str, workdir: str, port: int | None = None):
        self.binary, self.workdir = binary, workdir
        self.port = port or free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> "RedisServer":
        self.process = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", self.workdir, "--protected-mode", "yes"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return self
            except OSError:
                time.sleep(0.05)
            if self.process.poll() is not None:
                raise RuntimeError(f"redis-server exited: {self.process.stderr.read().decode()[-500:]}")
        raise RuntimeError("redis-server did not answer PING within 10 s")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        self.process = None

