"""Kubernetes Events (core/v1, what Gatekeeper and Argo CD record): list, then watch from the list's
resourceVersion, the way client-go's reflector does, against the documented API
(kubernetes.io/docs/reference/using-api/api-concepts, "Efficient detection of changes"):

* ``GET /api/v1/events?limit=N`` (``continue`` for the next page): the items and the list's
  ``metadata.resourceVersion``;
* ``GET /api/v1/events?watch=1&resourceVersion=RV&allowWatchBookmarks=true&timeoutSeconds=T``: a stream of JSON
  lines ``{"type": ADDED|MODIFIED|DELETED|BOOKMARK|ERROR, "object": ...}``; a BOOKMARK carries only a newer
  resourceVersion; the server ends the stream after T seconds and the watch is started again from the last
  resourceVersion;
* ``410 Gone`` (as the answer, or an ERROR line whose Status has code 410) when that resourceVersion is too old:
  list again from scratch.

The resume point advances only after the event at it was handled (delivered, or skipped as not a decision); a
handler that raises stops the stream and, after a backoff, the watch starts again from the last handled
resourceVersion, so the event comes again (at least once). A relist delivers the Events still stored again:
their event ids are the same (Event uid and count), so they are the same audit events. No resourceVersion is
kept across restarts: a restarted shipper lists first.

Tested against an in-test HTTP server speaking this wire format (no API server runs here).
"""
from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx

LOG = logging.getLogger("soma_audit_shipper.kube")
Handler = Callable[[dict], Awaitable[None]]


class Gone(Exception):
    """The resourceVersion is no longer available: list again."""


class WatchFailed(Exception):
    """The API answered something else than a list or a stream (401, 403, 500, a malformed line...)."""


def events_path(namespace: str | None) -> str:
    return f"/api/v1/namespaces/{namespace}/events" if namespace else "/api/v1/events"


class EventWatcher:
    def __init__(self, client: httpx.AsyncClient, path: str, handle: Handler, *, token_file: Path,
                 watch_timeout_seconds: int = 300, page_size: int = 500, retry_min_seconds: float = 1.0,
                 retry_max_seconds: float = 60.0, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep, meter=None):
        self.client = client
        self.path = path
        self.handle = handle
        self.token_file = token_file
        self.watch_timeout_seconds = watch_timeout_seconds
        self.page_size = page_size
        self.retry_min_seconds = retry_min_seconds
        self.retry_max_seconds = retry_max_seconds
        self.sleep = sleep
        self.resource_version: str | None = None
        self.lists = 0
        self._restarts = meter.create_counter(
            "audit_shipper.kubernetes.restarts", unit="{restart}",
            description="list/watch rounds of the Events watcher that ended early, by reason: gone (410, a relist "
                        "follows) or failed (the API or the sink failed; a backoff follows)") if meter else None

    def _restarted(self, reason: str) -> None:
        if self._restarts is not None:
            self._restarts.add(1, {"reason": reason})

    def _headers(self) -> dict[str, str]:
        token = self.token_file.read_text().strip()
        return {"Authorization": f"Bearer {token}", "Accept": "application/json"}

    async def run(self) -> None:
        """List and watch until cancelled; failures back off exponentially (reset by a successful round)."""
        delay = self.retry_min_seconds
        while True:
            try:
                if self.resource_version is None:
                    await self.relist()
                await self.watch_once()
                delay = self.retry_min_seconds
            except Gone:
                LOG.info("resourceVersion %s expired (410 Gone): listing again", self.resource_version)
                self.resource_version = None
                self._restarted("gone")
            except asyncio.CancelledError:
                raise
            except Exception as error:  # noqa: BLE001 - the API or the sink failed: back off, resume
                LOG.warning("Kubernetes Events: %s: %s; again in %.1fs from resourceVersion %s",
                            type(error).__name__, error, delay, self.resource_version)
                self._restarted("failed")
                await self.sleep(delay)
                delay = min(delay * 2, self.retry_max_seconds)

    async def relist(self) -> None:
        """Every stored Event, page by page; the resume point is the list's resourceVersion, set only once
        every item was handled."""
        self.lists += 1
        params: dict[str, Any] = {"limit": self.page_size}
        version = None
        while True:
            response = await self.client.get(self.path, params=params, headers=self._headers())
            if response.status_code == 410:  # the continue token expired
                raise Gone()
            if response.status_code != 200:
                raise WatchFailed(f"list {self.path}: HTTP {response.status_code}: {response.text[:200]}")
            page = response.json()
            metadata = page.get("metadata") or {}
            version = version or metadata.get("resourceVersion")
            for item in page.get("items") or []:
                await self.handle(item)
            if not metadata.get("continue"):
                break
            params = {"limit": self.page_size, "continue": metadata["continue"]}
        if not version:
            raise WatchFailed(f"list {self.path}: no metadata.resourceVersion")
        self.resource_version = version

    async def watch_once(self) -> None:
        """One watch request from the resume point until the server ends it."""
        params = {"watch": "1", "resourceVersion": self.resource_version, "allowWatchBookmarks": "true",
                  "timeoutSeconds": str(self.watch_timeout_seconds)}
        async with self.client.stream("GET", self.path, params=params, headers=self._headers()) as response:
            if response.status_code == 410:
                raise Gone()
            if response.status_code != 200:
                await response.aread()
                raise WatchFailed(f"watch {self.path}: HTTP {response.status_code}: {response.text[:200]}")
            async for line in response.aiter_lines():
                if line.strip():
                    await self._on(line)

    async def _on(self, line: str) -> None:
        try:
            change = json.loads(line)
            kind, item = change["type"], change["object"]
        except (json.JSONDecodeError, KeyError, TypeError) as error:
            raise WatchFailed(f"watch {self.path}: not a watch event: {line[:200]!r} ({error})") from None
        if kind == "ERROR":
            if item.get("code") == 410:
                raise Gone()
            raise WatchFailed(f"watch {self.path}: {item.get('code')} {item.get('reason')}: {item.get('message')}")
        if kind in ("ADDED", "MODIFIED"):
            await self.handle(item)
        version = (item.get("metadata") or {}).get("resourceVersion")
        if version:
            self.resource_version = version
