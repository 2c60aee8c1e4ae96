"""Forwarding an authorized request to its backing service.

What crosses: the method, the upstream path from the route table, the query string, the body, the caller's
headers minus hop-by-hop ones and minus ``Authorization`` (the upstream trusts the gateway's decision, not
the caller's token, unless the route declares ``forward_authorization``), minus any ``X-Soma-*`` header the
caller tried to set. Added: the request id, W3C trace context, and the verified tenant and principal as
``X-Soma-Tenant`` / ``X-Soma-Principal``. Timeouts on every phase; an upstream that cannot be reached is
502, one that does not answer in time is 504.

Answers are read whole and relayed (``Buffered``), except Server-Sent Events: an answer whose content type is
``text/event-stream`` is relayed chunk by chunk as it arrives (``Streamed``), so a run's events reach the
caller as they happen. A request that asks for a stream (``Accept: text/event-stream``, as EventSource and
SSE clients send) waits at most the stream idle timeout *between* chunks instead of the ordinary read
timeout, so a long quiet step does not cut the stream; it has no total time limit. A stream that breaks or
goes quiet too long after its headers were relayed simply ends (the status is already sent): SSE clients
reconnect with ``Last-Event-ID``, which is forwarded like any other header.
"""
from __future__ import annotations

import contextlib
import logging
import os
import re
from dataclasses import dataclass
from typing import AsyncIterator, Iterable, Iterator, Mapping

import httpx

HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
              "transfer-encoding", "upgrade", "host", "content-length"}
EVENT_STREAM = "text/event-stream"
LOG = logging.getLogger("soma_gateway")
_TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")


class UpstreamFailed(Exception):
    def __init__(self, status: int, reason: str, detail: str):
        super().__init__(detail)
        self.status, self.reason, self.detail = status, reason, detail


@dataclass(frozen=True)
class TraceContext:
    trace_id: str
    traceparent: str
    tracestate: str | None = None


def trace_context(headers: Mapping[str, str]) -> TraceContext:
    """The trace this request belongs to: the active OpenTelemetry span's when there is one (the service
    base instruments the app), else the caller's ``traceparent``, else a new trace. Its id goes into the
    audit event and, as ``traceparent``, to the upstream."""
    try:
        from opentelemetry import trace

        span = trace.get_current_span().get_span_context()
        if span.is_valid:
            flags = "01" if span.trace_flags.sampled else "00"
            return TraceContext(f"{span.trace_id:032x}", f"00-{span.trace_id:032x}-{span.span_id:016x}-{flags}",
                                headers.get("tracestate"))
    except ImportError:  # pragma: no cover - opentelemetry-api is a dependency of the service base
        pass
    found = _TRACEPARENT.match(headers.get("traceparent", ""))
    if found and set(found[1]) != {"0"} and set(found[2]) != {"0"}:
        return TraceContext(found[1], headers["traceparent"], headers.get("tracestate"))
    trace_id, span_id = os.urandom(16).hex(), os.urandom(8).hex()
    return TraceContext(trace_id, f"00-{trace_id}-{span_id}-00")


def upstream_headers(incoming: Iterable[tuple[str, str]], *, forward_authorization: bool, request_id: str,
                     trace: TraceContext, tenant: str, principal: str) -> list[tuple[str, str]]:
    kept = []
    for name, value in incoming:
        lower = name.lower()
        if lower in HOP_BY_HOP or lower.startswith("x-soma-") or lower in ("x-request-id", "traceparent", "tracestate"):
            continue
        if lower == "authorization" and not forward_authorization:
            continue
        kept.append((name, value))
    kept += [("x-request-id", request_id), ("traceparent", trace.traceparent),
             ("x-soma-tenant", tenant), ("x-soma-principal", principal)]
    if trace.tracestate:
        kept.append(("tracestate", trace.tracestate))
    return kept


@dataclass(frozen=True)
class Buffered:
    """An ordinary answer, read whole."""

    status: int
    headers: dict[str, str]
    body: bytes


@dataclass(frozen=True)
class Streamed:
    """A ``text/event-stream`` answer: ``chunks`` relays the body as it arrives and closes the upstream
    response when it ends or the caller goes away."""

    status: int
    headers: dict[str, str]
    chunks: AsyncIterator[bytes]


def asks_for_stream(headers: Iterable[tuple[str, str]]) -> bool:
    return any(name.lower() == "accept" and EVENT_STREAM in value.lower() for name, value in headers)


class Forwarder:
    """``stream_idle_seconds``: the read timeout, between chunks, of a request asking for a stream."""

    def __init__(self, upstreams: Mapping[str, str], client: httpx.AsyncClient, stream_idle_seconds: float = 300.0):
        self.upstreams = {name: url.rstrip("/") for name, url in upstreams.items()}
        self.client = client
        self.stream_timeout = httpx.Timeout(connect=client.timeout.connect, read=stream_idle_seconds,
                                            write=client.timeout.write, pool=client.timeout.pool)

    async def send(self, upstream: str, method: str, path: str, query: str, headers: list[tuple[str, str]],
                   body: bytes) -> Buffered | Streamed:
        url = self.upstreams[upstream] + path + (f"?{query}" if query else "")
        timeout = self.stream_timeout if asks_for_stream(headers) else self.client.timeout
        with _failures(upstream):
            request = self.client.build_request(method, url, headers=headers, content=body, timeout=timeout)
            answer = await self.client.send(request, stream=True)
        if answer.headers.get("content-type", "").lower().startswith(EVENT_STREAM):
            return Streamed(answer.status_code, response_headers(answer), _relay(answer, upstream))
        try:
            with _failures(upstream):
                await answer.aread()
        finally:
            await answer.aclose()
        return Buffered(answer.status_code, response_headers(answer), answer.content)


@contextlib.contextmanager
def _failures(upstream: str) -> Iterator[None]:
    try:
        yield
    except httpx.TimeoutException:
        raise UpstreamFailed(504, "upstream_timeout", f"{upstream} did not answer in time") from None
    except httpx.HTTPError as exc:
        raise UpstreamFailed(502, "upstream_unavailable", f"{upstream} unreachable: {type(exc).__name__}") from None


async def _relay(answer: httpx.Response, upstream: str) -> AsyncIterator[bytes]:
    """The body as it arrives (decoded, as the buffered path relays it: ``content-encoding`` is not passed on)."""
    try:
        async for chunk in answer.aiter_bytes():
            yield chunk
    except httpx.HTTPError as exc:    # the status is sent already: end the stream; the client reconnects
        LOG.warning("stream from %s ended early: %s", upstream, type(exc).__name__)
    finally:
        await answer.aclose()


# set by the gateway's own server on its answer (request id by the service base, date and server by uvicorn);
# content-encoding goes because httpx hands over the decoded body
_OWN_RESPONSE_HEADERS = {"content-encoding", "x-request-id", "date", "server"}


def response_headers(upstream: httpx.Response) -> dict[str, str]:
    return {k: v for k, v in upstream.headers.items() if k.lower() not in HOP_BY_HOP | _OWN_RESPONSE_HEADERS}
