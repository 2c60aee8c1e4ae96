"""The audit shipper as a SomaAgentHub service: ``create_app`` with ``POST /logs`` (OPA's decision logs), a
lifespan that starts the audit sink and the Kubernetes Events watcher, and readiness that fails while the sink
does not take events (so the pod leaves the Service and OPA keeps its batches)."""
from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from dataclasses import dataclass
from typing import AsyncIterator

import httpx
from fastapi import FastAPI

from soma_service import ReadinessCheck, create_app
from soma_service.audit import AuditSink
from soma_service.tls import trust_only

from . import opa
from .delivery import Shipper
from .kube import EventWatcher, events_path
from .mapping import from_event
from .settings import ShipperSettings

LOG = logging.getLogger("soma_audit_shipper")
CLIENT_ID = "audit-shipper"
KUBERNETES = "kubernetes"


@dataclass
class Dependencies:
    """What tests may hand in: an audit sink that records or fails."""

    audit: AuditSink | None = None


def kubernetes_client(settings: ShipperSettings) -> httpx.AsyncClient:
    """The API server's client: its CA (the pod's cluster CA) for https, a read timeout longer than a watch."""
    verify: ssl.SSLContext | bool = True
    if settings.kubernetes_api_url.startswith("https://") and settings.kubernetes_ca_file is not None:
        verify = trust_only(settings.kubernetes_ca_file)
    timeout = httpx.Timeout(10.0, read=settings.watch_timeout_seconds + 30.0)
    return httpx.AsyncClient(base_url=settings.kubernetes_api_url, verify=verify, timeout=timeout)


def build_app(settings: ShipperSettings, deps: Dependencies | None = None, **base) -> FastAPI:
    deps = deps or Dependencies()

    # the closures below run only once the app is built: ``shipper`` (made last, with the app's meter) is set by then
    def sink_ready() -> None:
        if not shipper.sink_ready():
            raise RuntimeError("the audit sink failed the last delivery; sources are kept until it takes events again")

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # made here, inside the running loop: aiokafka's producer binds to the loop it is created in
        sink = deps.audit or settings.audit_sink_for(CLIENT_ID)
        shipper.sink = sink
        await sink.start()
        watcher_task = None
        client = None
        try:
            if settings.kubernetes_events:
                client = kubernetes_client(settings)
                watcher = EventWatcher(
                    client, events_path(settings.events_namespace), handle_event, token_file=settings.kubernetes_token_file,
                    watch_timeout_seconds=settings.watch_timeout_seconds, page_size=settings.list_page_size,
                    retry_min_seconds=settings.retry_min_seconds, retry_max_seconds=settings.retry_max_seconds,
                    meter=app.state.telemetry.meter)
                app.state.watcher = watcher
                watcher_task = asyncio.create_task(watcher.run(), name="kubernetes-events")
            yield
        finally:
            if watcher_task is not None:
                watcher_task.cancel()
                with contextlib.suppress(BaseException):
                    await watcher_task
            if client is not None:
                await client.aclose()
            await sink.stop()

    async def handle_event(item: dict) -> None:
        event = from_event(item, settings.constraint_rules)
        if event is None:
            shipper.skipped(KUBERNETES)
        else:
            await shipper.deliver(event, KUBERNETES)

    app = create_app(settings, readiness_checks=[ReadinessCheck("audit-sink", sink_ready)], lifespan=lifespan,
                     title="SomaAgentHub audit shipper",
                     description="OPA decision logs and Kubernetes Events (Gatekeeper, Argo CD) to the audit topic",
                     **base)
    shipper = Shipper(None, app.state.telemetry.meter, unready_seconds=settings.sink_unready_seconds)
    app.state.shipper = shipper
    app.include_router(opa.router(shipper, max_body=settings.opa_max_body_bytes, max_decoded=settings.opa_max_decoded_bytes))
    return app
